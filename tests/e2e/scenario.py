"""A scripted conversation against a running stack: send events at given times, watch replies appear."""

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from tests.e2e.stack import Stack

EXAMPLE_TIMESTAMP = "2025-06-04T14:20:00Z"  # the documented examples' timestamps, replayed as senders do
REPLY_HEADER = "Mensagens recebidas:\n"


@dataclass
class Observation:
    """What a scenario saw: its send times, the HTTP answers, and when each OUTBOUND first appeared."""

    conversation_ids: list[uuid.UUID] = field(default_factory=list)
    sent_at: dict[uuid.UUID, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, dict] = field(default_factory=dict)
    reply_seen_at: dict[uuid.UUID, float] = field(default_factory=dict)
    final: dict[uuid.UUID, dict] = field(default_factory=dict)

    def outbound(self, conversation_id) -> list[dict]:
        return [m for m in self.final[conversation_id]["messages"] if m["type"] == "OUTBOUND"]

    def inbound(self, conversation_id) -> list[dict]:
        return [m for m in self.final[conversation_id]["messages"] if m["type"] == "INBOUND"]


def reply_text(message_ids) -> str:
    return REPLY_HEADER + "".join(f"{message_id}\n" for message_id in message_ids)


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


class Scenario:
    def __init__(self, stack: Stack, timestamp: str | None = EXAMPLE_TIMESTAMP) -> None:
        self.stack = stack
        self.http = requests.Session()
        self.timestamp = timestamp
        self.started = time.monotonic()
        self.seen = Observation()

    def now(self) -> float:
        return time.monotonic() - self.started

    def at(self, seconds: float) -> None:
        """Sleep until `seconds` after the scenario started, watching replies meanwhile."""
        while self.now() < seconds:
            self._watch()
            time.sleep(min(0.2, max(0.0, seconds - self.now())))

    def _event(self, event_type: str, data: dict, label: str) -> int:
        timestamp = self.timestamp or datetime.now(UTC).isoformat()
        response = self.http.post(
            f"{self.stack.base_url}/webhook/",
            json={"type": event_type, "timestamp": timestamp, "data": data},
            timeout=10,
        )
        self.seen.statuses[label] = response.status_code
        self.seen.bodies[label] = response.json()
        return response.status_code

    def open(self, conversation_id: uuid.UUID, label: str = "open") -> int:
        if conversation_id not in self.seen.conversation_ids:
            self.seen.conversation_ids.append(conversation_id)
        return self._event("NEW_CONVERSATION", {"id": str(conversation_id)}, label)

    def message(self, message_id: uuid.UUID, conversation_id: uuid.UUID, label: str | None = None) -> int:
        if conversation_id not in self.seen.conversation_ids:
            self.seen.conversation_ids.append(conversation_id)
        self.seen.sent_at[message_id] = self.now()
        data = {"id": str(message_id), "content": f"mensagem {message_id}", "conversation_id": str(conversation_id)}
        return self._event("NEW_MESSAGE", data, label or str(message_id))

    def close(self, conversation_id: uuid.UUID) -> int:
        return self._event("CLOSE_CONVERSATION", {"id": str(conversation_id)}, "close")

    def _watch(self) -> None:
        for conversation_id in self.seen.conversation_ids:
            response = self.http.get(f"{self.stack.base_url}/conversations/{conversation_id}/", timeout=10)
            if response.status_code != 200:
                continue
            for message in response.json()["messages"]:
                if message["type"] == "OUTBOUND":
                    self.seen.reply_seen_at.setdefault(uuid.UUID(message["id"]), self.now())

    def finish(self, at: float) -> Observation:
        self.at(at)
        self._watch()
        for conversation_id in self.seen.conversation_ids:
            response = self.http.get(f"{self.stack.base_url}/conversations/{conversation_id}/", timeout=10)
            if response.status_code == 200:
                self.seen.final[conversation_id] = response.json()
        return self.seen
