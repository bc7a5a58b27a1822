"""Caps on a growing group, over real HTTP at short windows: a user writing every 0.4 s (window 1 s, so a busy
machine's jitter does not make a pause) is answered every ~3 s (MAX_GROUP_WAIT_SECONDS), and a burst larger than
MAX_GROUP_MESSAGES splits exactly there; every message belongs to exactly one reply, and each says why it was sent."""

import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest

from tests.e2e.conftest import running_stack
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

MAX_WAIT = timedelta(seconds=3)
CAPS = {
    "GROUP_WINDOW_SECONDS": "1.0",
    "ORPHAN_TTL_SECONDS": "1.5",
    "SWEEP_INTERVAL_SECONDS": "0.25",
    "MAX_GROUP_WAIT_SECONDS": str(MAX_WAIT.total_seconds()),
    "MAX_GROUP_MESSAGES": "10",
}


@pytest.fixture(scope="module")
def stack():
    yield from running_stack("caps", env=CAPS, workers=1, beats=1)


def message(conversation_id) -> tuple[str, dict]:
    message_id = str(uuid.uuid4())
    data = {"id": message_id, "content": "oi", "conversation_id": str(conversation_id)}
    return message_id, {"type": "NEW_MESSAGE", "timestamp": "2025-06-04T14:20:00Z", "data": data}


def new_conversation(stack) -> uuid.UUID:
    conversation_id = uuid.uuid4()
    payload = {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": str(conversation_id)}}
    assert stack.post(payload).status_code == HTTPStatus.CREATED
    return conversation_id


def replies_when_all_answered(stack, conversation_id, sent: list[str]) -> list[tuple[str, list[dict]]]:
    """(send_reason, answered messages in arrival order) per reply, once no sent message is pending."""

    def answered():
        messages = stack.conversation(conversation_id)["messages"]
        inbound = [m for m in messages if m["type"] == "INBOUND"]
        return messages if len(inbound) == len(sent) and not any(m["pending"] for m in inbound) else None

    messages = wait_until(answered, timeout=30, interval=0.25, what="every message answered")
    by_reply = defaultdict(list)
    for m in sorted((m for m in messages if m["type"] == "INBOUND"), key=lambda m: m["received_at"]):
        by_reply[m["reply_id"]].append(m)
    replies = sorted((m for m in messages if m["type"] == "OUTBOUND"), key=lambda m: m["received_at"])
    return [(reply["send_reason"], by_reply[reply["id"]]) for reply in replies]


def arrived(message: dict) -> datetime:
    return datetime.fromisoformat(message["received_at"])


def test_a_user_who_never_pauses_is_answered_every_max_wait(stack):
    conversation_id = new_conversation(stack)
    sent = []
    started = time.monotonic()
    for n in range(20):  # 8 s of a message every 0.4 s, on a fixed schedule: never 1 s of quiet
        time.sleep(max(0.0, started + n * 0.4 - time.monotonic()))
        message_id, payload = message(conversation_id)
        assert stack.post(payload).status_code == HTTPStatus.ACCEPTED
        sent.append(message_id)

    replies = replies_when_all_answered(stack, conversation_id, sent)

    assert [m["id"] for _, group in replies for m in group] == sent  # disjoint runs, in order, none lost
    assert [reason for reason, _ in replies[:-1]] == ["max_wait"] * (len(replies) - 1)
    assert replies[-1][0] == "quiet"
    assert 2 <= len(replies) <= 4  # about one every 3 s over 8 s
    # The cut follows the server's arrival clock, not the client's schedule (a loaded machine delays a request by
    # a few hundred ms): each capped group spans at most MAX_WAIT, and the message after it arrived beyond MAX_WAIT.
    for (_, group), (_, following) in zip(replies, replies[1:], strict=False):
        assert arrived(group[-1]) - arrived(group[0]) <= MAX_WAIT
        assert arrived(following[0]) - arrived(group[0]) > MAX_WAIT


def test_a_burst_larger_than_max_group_messages_splits_exactly_there(stack):
    conversation_id = new_conversation(stack)
    payloads = [message(conversation_id) for _ in range(25)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda item: stack.post(item[1]).status_code, payloads))
    assert set(statuses) == {HTTPStatus.ACCEPTED}

    replies = replies_when_all_answered(stack, conversation_id, [message_id for message_id, _ in payloads])

    assert [(reason, len(answered)) for reason, answered in replies] == [
        ("max_messages", 10),
        ("max_messages", 10),
        ("quiet", 5),
    ]
    assert sorted(m["id"] for _, group in replies for m in group) == sorted(m for m, _ in payloads)
