"""With Redis stopped for 15 s, webhooks keep answering 2xx and every reply arrives once Redis is back."""

import time
import uuid
from http import HTTPStatus

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, running_stack
from tests.e2e.scenario import reply_text
from tests.e2e.stack import wait_until

OUTAGE_SECONDS = 15


@pytest.fixture(scope="module")
def stack():
    yield from running_stack("outage", env=SHORT_WINDOWS, workers=1, beats=1)


def send_conversation(stack) -> tuple[uuid.UUID, list[uuid.UUID], list[int]]:
    conversation_id, message_ids = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    statuses = [
        stack.post(
            {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": str(conversation_id)}}
        ).status_code
    ]
    for message_id in message_ids:
        payload = {
            "type": "NEW_MESSAGE",
            "timestamp": "2025-06-04T14:20:05Z",
            "data": {"id": str(message_id), "content": "oi", "conversation_id": str(conversation_id)},
        }
        statuses.append(stack.post(payload).status_code)
    return conversation_id, message_ids, statuses


def replies(stack, conversation_id) -> list[str]:
    return [m["content"] for m in stack.conversation(conversation_id)["messages"] if m["type"] == "OUTBOUND"]


def test_webhooks_answer_during_a_redis_outage_and_replies_catch_up(stack):
    before, before_ids, _ = send_conversation(stack)
    wait_until(lambda: replies(stack, before), timeout=20, what="a reply before the outage")

    stack.redis.stop()
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    during = []
    while time.monotonic() < outage_ends:
        during.append(send_conversation(stack))
        time.sleep(0.75)
    assert all(reply == [] for reply in (replies(stack, c) for c, _, _ in during))
    stack.redis.start()

    assert all(status in (HTTPStatus.CREATED, HTTPStatus.ACCEPTED) for _, _, statuses in during for status in statuses)
    wait_until(
        lambda: all(replies(stack, c) for c, _, _ in during), timeout=60, interval=0.5, what="replies after the outage"
    )
    time.sleep(float(SHORT_WINDOWS["REPLY_LEASE_SECONDS"]) + 1)  # a duplicate would have appeared by now
    for conversation_id, message_ids, _ in during:
        assert replies(stack, conversation_id) == [reply_text(message_ids)]
    assert replies(stack, before) == [reply_text(before_ids)]
