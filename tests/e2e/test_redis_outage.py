"""With Redis stopped for 15 s, webhooks keep answering 2xx and every reply arrives once Redis is back; the
worker and beat ride the outage out on their own, quietly, and sweeps resume within seconds."""

import json
import time
import uuid
from http import HTTPStatus

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, running_stack
from tests.e2e.scenario import reply_text
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 15
ROLES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def stack():
    # A leading-dot host first: the web healthcheck must find a Host header that ALLOWED_HOSTS accepts.
    env = {**SHORT_WINDOWS, "ALLOWED_HOSTS": ".example.com,127.0.0.1", "HEALTHCHECK_MAX_AGE_SECONDS": "5"}
    yield from running_stack("outage", env=env, workers=1, beats=1)


def without_lost_acks(log: str) -> str:
    """The log without Celery's CRITICAL "Couldn't ack" records: a job that finished as the connection dropped
    (acks_late) cannot be acknowledged. Its work is committed, and run again it finds nothing to do; any other
    CRITICAL is a crash."""

    def lost_ack(line: str) -> bool:
        if not line.startswith("{"):
            return False
        record = json.loads(line)
        return record["level"] == "CRITICAL" and record["message"].startswith("Couldn't ack")

    return "\n".join(line for line in log.splitlines() if not lost_ack(line))


def failing_healthchecks(stack) -> list[str]:
    return [role for role in ROLES if stack.healthcheck(role).returncode != 0]


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


def sweep_after(stack, moment: str) -> bool:
    rows = stack.sql("SELECT last_sweep_at > %s::timestamptz FROM scheduler_sweepheartbeat", (moment,))
    return bool(rows and rows[0][0])


def test_webhooks_answer_during_a_redis_outage_and_replies_catch_up(stack):
    before, before_ids, _ = send_conversation(stack)
    wait_until(lambda: replies(stack, before), timeout=20, what="a reply before the outage")
    assert failing_healthchecks(stack) == []
    # Reply jobs in flight when Redis goes: the worker holds them unacknowledged until their countdown ends.
    in_flight = [send_conversation(stack) for _ in range(5)]
    time.sleep(float(SHORT_WINDOWS["GROUP_WINDOW_SECONDS"]) * 0.7)

    stack.redis.stop()
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    during = []
    while time.monotonic() < outage_ends:
        during.append(send_conversation(stack))
        time.sleep(0.75)
    assert all(reply == [] for reply in (replies(stack, c) for c, _, _ in during))
    assert failing_healthchecks(stack) == list(ROLES)  # /healthz says Redis is down; worker and beat went stale
    stack.redis.start()
    back_at = stack.sql("SELECT clock_timestamp()::text")[0][0]

    # The worker and beat retry every second: sweeps resume within seconds (kombu's default backoff took up to 8).
    wait_until(lambda: sweep_after(stack, back_at), timeout=4, interval=0.05, what="a sweep after Redis returned")
    assert all(status in (HTTPStatus.CREATED, HTTPStatus.ACCEPTED) for _, _, statuses in during for status in statuses)
    everything = [*in_flight, *during]
    wait_until(lambda: all(replies(stack, c) for c, _, _ in everything), timeout=60, interval=0.5, what="replies after")
    stack.sweeps_pass()  # a duplicate would have been written by now
    for conversation_id, message_ids, _ in everything:
        assert replies(stack, conversation_id) == [reply_text(message_ids)]
    assert replies(stack, before) == [reply_text(before_ids)]
    assert failing_healthchecks(stack) == []


def test_the_outage_left_no_crash_no_restart_and_one_beat_warning(stack):
    """Runs after the outage above (same module stack): what the processes logged about it."""
    worker, beat = stack.log("worker0"), stack.log("beat0")

    assert "CRITICAL" not in without_lost_acks(worker)
    assert "Unrecoverable error" not in worker
    assert "restarting in" not in worker + beat  # the entrypoint's supervise loop never had to step in
    assert beat.count("the broker is unreachable") == 1
    assert "Traceback" not in beat
