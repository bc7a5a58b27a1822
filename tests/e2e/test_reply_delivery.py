"""Reply delivery end to end: gunicorn, a worker, beat and a delivery worker on real Redis and PostgreSQL, POSTing
each reply to a real HTTP receiver on 127.0.0.1 that this test scripts (tests/receiver.py). Each test scripts the
answers for its own conversations, so a late retry of one test cannot eat another's answers."""

import hashlib
import hmac
import signal
import time
import uuid
from http import HTTPStatus
from itertools import pairwise

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, started
from tests.e2e.stack import Stack
from tests.helpers import metric_samples, wait_until

pytestmark = pytest.mark.e2e

SECRET = "e2e-reply-secret"
DELIVERY = {
    **SHORT_WINDOWS,
    "REPLY_WEBHOOK_SECRET": SECRET,
    "REPLY_WEBHOOK_TIMEOUT_SECONDS": "2",
    "REPLY_DELIVERY_BACKOFF_SECONDS": "1",
    "REPLY_DELIVERY_BACKOFF_MAX_SECONDS": "2",
    "REPLY_WEBHOOK_CONCURRENCY": "4",
    "REPLY_CIRCUIT_PROBE_SECONDS": "1",
}


@pytest.fixture(scope="module")
def stack(receiver):
    yield from started(
        Stack("delivery", env={**DELIVERY, "REPLY_WEBHOOK_URL": receiver.url}, workers=1, beats=1, deliverers=1)
    )


def conversation_with_burst(
    stack, messages: int = 2, conversation_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, list[str]]:
    """A new conversation (with the id given, e.g. one scripted on the receiver beforehand) and a burst of
    messages in it; returns the conversation id and the message ids."""
    conversation_id = conversation_id or uuid.uuid4()
    timestamp = "2025-06-04T14:20:00Z"
    created = stack.post({"type": "NEW_CONVERSATION", "timestamp": timestamp, "data": {"id": str(conversation_id)}})
    assert created.status_code == HTTPStatus.CREATED
    ids = [str(uuid.uuid4()) for _ in range(messages)]
    for message_id in ids:
        data = {"id": message_id, "content": "oi", "conversation_id": str(conversation_id)}
        assert (
            stack.post({"type": "NEW_MESSAGE", "timestamp": timestamp, "data": data}).status_code == HTTPStatus.ACCEPTED
        )
    return conversation_id, ids


def outbound(stack, conversation_id) -> list[dict]:
    return [m for m in stack.conversation(conversation_id)["messages"] if m["type"] == "OUTBOUND"]


def settled_reply(stack, conversation_id, timeout: float = 30) -> dict:
    """The conversation's one reply once its delivery is delivered or failed."""

    def settled():
        replies = outbound(stack, conversation_id)
        if replies and replies[0]["delivery"] and replies[0]["delivery"]["state"] != "pending":
            return replies
        return None

    [reply] = wait_until(settled, timeout, 0.2, "delivery settled")
    return reply


def delivery_attempts(stack) -> dict[str, float]:
    """realmate_reply_delivery_attempts_total by outcome, scraped from /metrics (all processes added up)."""
    samples = metric_samples(stack.http.get(f"{stack.base_url}/metrics", timeout=10).text)
    return {
        outcome: samples.get(("realmate_reply_delivery_attempts_total", (("outcome", outcome),)), 0.0)
        for outcome in ("delivered", "retry", "failed")
    }


def signed(request) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers["X-Hub-Signature-256"], expected)


def test_a_burst_is_delivered_once_signed_with_its_reply_and_answered_ids(stack, receiver):
    conversation_id, ids = conversation_with_burst(stack, messages=3)

    # Settled as delivered: no batch claims it again, so a second POST could only have come before this point.
    reply = settled_reply(stack, conversation_id)

    [request] = receiver.received_for(conversation_id)
    assert signed(request)
    assert request.headers["Idempotency-Key"] == reply["id"]
    assert request.json["type"] == "OUTBOUND_MESSAGE"
    assert request.json["data"] == {
        "id": reply["id"],
        "conversation_id": str(conversation_id),
        "content": reply["content"],
        "answers": ids,
    }
    assert reply["delivery"]["state"] == "delivered"
    assert reply["delivery"]["attempts"] == 1
    assert reply["delivery"]["delivered_at"] is not None


def test_three_server_errors_then_success_is_delivered_on_the_fourth_attempt(stack, receiver):
    conversation_id = uuid.uuid4()
    receiver.script(conversation_id, [500, 500, 500])
    attempts_before = delivery_attempts(stack)
    conversation_with_burst(stack, conversation_id=conversation_id)

    reply = settled_reply(stack, conversation_id)

    assert reply["delivery"]["state"] == "delivered"
    assert reply["delivery"]["attempts"] == 4
    requests = receiver.received_for(conversation_id)
    assert len(requests) == 4
    assert {r.headers["Idempotency-Key"] for r in requests} == {reply["id"]}
    assert [r.headers["X-Delivery-Attempt"] for r in requests] == ["1", "2", "3", "4"]
    attempts = delivery_attempts(stack)
    assert attempts["retry"] - attempts_before["retry"] == 3
    assert attempts["delivered"] - attempts_before["delivered"] == 1


def test_a_client_error_fails_the_delivery_without_retry(stack, receiver):
    conversation_id = uuid.uuid4()
    receiver.script(conversation_id, [400])
    conversation_with_burst(stack, conversation_id=conversation_id)

    # Settled as failed: no retry can follow (only the admin's "Retry delivery" makes it pending again).
    reply = settled_reply(stack, conversation_id)

    assert reply["delivery"]["state"] == "failed"
    assert reply["delivery"]["attempts"] == 1
    assert reply["delivery"]["last_error"].startswith("HTTP 400")
    assert len(receiver.received_for(conversation_id)) == 1


def test_a_receiver_down_until_the_circuit_opens_gets_the_reply_once_it_returns(stack, receiver):
    receiver.stop()
    try:
        conversation_id, _ = conversation_with_burst(stack)

        def probing() -> dict | None:
            """The reply once five refused connections opened the circuit and a probe followed."""
            replies = outbound(stack, conversation_id)
            if not replies or replies[0]["delivery"]["attempts"] < 6:
                return None
            warnings = stack.http.get(f"{stack.base_url}/healthz", timeout=5).json()["warnings"]
            return replies[0] if warnings == ["receiver"] else None

        reply = wait_until(probing, 40, 0.25, "the circuit open and probing")
        assert reply["delivery"]["state"] == "pending"
        assert "ClientConnectorError" in reply["delivery"]["last_error"]
    finally:
        receiver.start()
    back_at = time.monotonic()

    reply = settled_reply(stack, conversation_id)

    assert reply["delivery"]["state"] == "delivered"
    [request] = receiver.received_for(conversation_id)
    # The next probe (one a second), plus a sweep's wake-up and a job's start.
    assert request.at - back_at < 4
    assert stack.http.get(f"{stack.base_url}/healthz", timeout=5).json()["warnings"] == []


def test_a_delivery_worker_killed_mid_post_still_delivers_every_reply(stack, receiver):
    conversations = [uuid.uuid4() for _ in range(4)]
    for conversation_id in conversations:
        # The first POST of each is held (1.5 s, under the 2 s timeout) long enough for the worker to die during it.
        receiver.script(conversation_id, [200], hold=1.5)
    for conversation_id in conversations:
        conversation_with_burst(stack, messages=1, conversation_id=conversation_id)
    wait_until(lambda: receiver.received_for(conversations[0]), 15, 0.1, "a POST in flight")

    stack.stop_role("delivery0", signal.SIGKILL)
    stack.start_role("delivery", "delivery1")

    replies = [settled_reply(stack, conversation_id, timeout=40) for conversation_id in conversations]
    assert {reply["delivery"]["state"] for reply in replies} == {"delivered"}
    requests = [r for conversation_id in conversations for r in receiver.received_for(conversation_id)]
    # At least once: a POST cut short may be repeated, always with its reply's id as the idempotency key.
    assert {r.json["data"]["id"] for r in requests} == {reply["id"] for reply in replies}
    assert all(r.headers["Idempotency-Key"] == r.json["data"]["id"] for r in requests)
    assert len(requests) >= len(replies)


def replies_written(stack, count: int) -> list[str]:
    """A conversation with one message for each of `count`, answered; returns the reply ids."""
    conversations = [conversation_with_burst(stack, messages=1)[0] for _ in range(count)]
    return [wait_until(lambda c=c: outbound(stack, c), 15, 0.1, "reply written")[0]["id"] for c in conversations]


def test_two_delivery_processes_racing_on_one_backlog_post_each_reply_once(stack, receiver):
    for name in [name for name in stack.processes if name.startswith("delivery")]:
        stack.stop_role(name)
    try:
        reply_ids = replies_written(stack, 60)
        # Small batches, so the four pool processes of the two workers race for many of them.
        for name in ("racer_a", "racer_b"):
            stack.start_role("delivery", name, REPLY_DELIVERY_BATCH="4")
        wait_until(lambda: set(reply_ids) <= set(receiver.ids()), 60, 0.2, "every reply received")
        stack.sweeps_pass()
    finally:
        for name in ("racer_a", "racer_b"):
            stack.stop_role(name)
        stack.start_role("delivery", "delivery0")

    received = receiver.ids()
    assert {reply_id: received.count(reply_id) for reply_id in reply_ids} == dict.fromkeys(reply_ids, 1)


def test_a_failing_receiver_gets_a_few_probes_not_the_backlog_and_the_backlog_follows_its_return(stack, receiver):
    receiver.default = 503
    try:
        reply_ids = replies_written(stack, 40)
        wait_until(
            lambda: stack.http.get(f"{stack.base_url}/healthz", timeout=5).json()["warnings"] == ["receiver"],
            30,
            0.2,
            "the circuit open",
        )
        failed_at = time.monotonic()
        time.sleep(6)
        during = [r for r in receiver.received if r.json["data"]["id"] in reply_ids]
    finally:
        receiver.default = 200
    back_at = time.monotonic()

    wait_until(lambda: set(reply_ids) <= set(receiver.ids()), 30, 0.1, "every reply delivered")

    # Up to a batch's worth in flight (4 per process, two processes) when five failures open the circuit, then one
    # probe a second: not 40 replies retried on their own schedules.
    assert len(during) <= 5 + 2 * 4 + (back_at - failed_at) + 1
    probes = [r for r in during if r.at > failed_at + 1]
    assert all(later.at - earlier.at > 0.8 for earlier, later in pairwise(probes))
    delivered_at = [r.at for r in receiver.received if r.json["data"]["id"] in reply_ids and r.at > back_at]
    assert max(delivered_at) - back_at < 4  # the next probe, then everything at once
    assert all(signed(r) for r in receiver.received if r.json["data"]["id"] in reply_ids)
    samples = metric_samples(stack.http.get(f"{stack.base_url}/metrics", timeout=10).text)
    assert samples[("realmate_receiver_circuit_open", ())] == 0
    assert samples[("realmate_receiver_circuit_openings_total", ())] >= 1
