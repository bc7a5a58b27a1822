"""Builders of webhook payloads and small database helpers shared by the tests."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from chat.models import Message, ParkedMessage


def event(event_type: str, data, timestamp: str = "2025-06-04T14:20:00Z") -> dict:
    return {"type": event_type, "timestamp": timestamp, "data": data}


def new_conversation(conversation_id) -> dict:
    return event("NEW_CONVERSATION", {"id": str(conversation_id)})


def new_message(message_id, conversation_id, content: str = "Olá, quero alugar um apartamento.") -> dict:
    return event("NEW_MESSAGE", {"id": str(message_id), "content": content, "conversation_id": str(conversation_id)})


def close_conversation(conversation_id) -> dict:
    return event("CLOSE_CONVERSATION", {"id": str(conversation_id)})


def agent_message(message_id, conversation_id, content: str = "Oi, sou a Ana; vou te ajudar.") -> dict:
    return event("AGENT_MESSAGE", {"id": str(message_id), "content": content, "conversation_id": str(conversation_id)})


def pause_bot(conversation_id, seconds=None) -> dict:
    data = {"id": str(conversation_id)} | ({} if seconds is None else {"seconds": seconds})
    return event("PAUSE_BOT", data)


def resume_bot(conversation_id) -> dict:
    return event("RESUME_BOT", {"id": str(conversation_id)})


def age_rows(model: type[Message] | type[ParkedMessage], ids, seconds: float) -> None:
    """Move arrival times back in time, as if the rows had arrived `seconds` earlier; for messages, their
    conversations' reply_due_at too (still a lower bound)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET received_at = received_at - %s WHERE id = ANY(%s::uuid[])",
            [timedelta(seconds=seconds), [str(i) for i in ids]],
        )
        if model is Message:
            cursor.execute(
                "UPDATE chat_conversation SET reply_due_at = reply_due_at - %s"
                " WHERE id IN (SELECT conversation_id FROM chat_message WHERE id = ANY(%s::uuid[]))",
                [timedelta(seconds=seconds), [str(i) for i in ids]],
            )


def replies_answer_due(conversation_id=None, **kwargs) -> list[Message]:
    """One reply batch (scheduler.replies) as a job runs it; returns the replies it wrote (those of one
    conversation when given), in the order they were written."""
    from scheduler.replies import replies_write_batch

    replies = Message.objects.filter(id__in=replies_write_batch(limit=1000, **kwargs).reply_ids)
    if conversation_id is not None:
        replies = replies.filter(conversation_id=conversation_id)
    return list(replies.order_by("conversation_id", "timestamp"))


class Woken(list):
    """A stand-in for the reply job's enqueue (scheduler.services.Wake): collects the countdowns asked for."""

    def __call__(self, countdown: float) -> None:
        self.append(countdown)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except (requests.RequestException, psycopg.Error, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)


def in_thread(function) -> threading.Thread:
    """Start `function` in a thread that closes its own database connection when it ends."""

    def run():
        try:
            function()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def run_in_parallel(function, times: int) -> list:
    """Run `function` in `times` threads released together; each thread closes its own database connection.
    Returns the results (in completion order); an exception in any thread is raised here."""
    barrier = threading.Barrier(times)

    def run():
        barrier.wait()
        try:
            return function()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=times) as pool:
        futures = [pool.submit(run) for _ in range(times)]
        return [future.result() for future in futures]


@contextmanager
def unreachable_database():
    """Point the default connection at a closed port: a real unreachable PostgreSQL, not a mock."""
    real_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a /metrics page (Prometheus' text format) by (name, sorted label pairs)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
