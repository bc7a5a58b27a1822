"""A backlog of due groups drained by several real workers at once: every group answered exactly once, in
disjoint batches (the stack starts with no worker: each test starts the ones it needs)."""

import time

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, running_stack
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

GROUPS = 3000
OUTAGE_SECONDS = 15


@pytest.fixture(scope="module")
def stack():
    # Small batches, so a few thousand groups make many batches and the workers race on every one of them.
    yield from running_stack("drain", env={**SHORT_WINDOWS, "REPLY_BATCH_SIZE": "50"}, workers=0, beats=1)


def backlog(stack, groups: int) -> None:
    """`groups` conversations, each with a group of two messages that fell due a moment ago."""
    stack.sql(
        f"""WITH c AS (
                INSERT INTO chat_conversation (id, status, created_at, updated_at)
                SELECT gen_random_uuid(), 'OPEN', now(), now() FROM generate_series(1, {groups})
                RETURNING id)
            INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
            SELECT gen_random_uuid(), c.id, 'INBOUND', 'oi', now(),
                   clock_timestamp() - interval '2 seconds' - n * interval '1 ms', true
            FROM c CROSS JOIN generate_series(0, 1) AS n"""
    )
    # Each conversation's moment, as the webhook sets it (its first arrival plus the window, 1 s here): come already.
    stack.sql(
        """UPDATE chat_conversation c SET reply_due_at = w.first + interval '1 second'
           FROM (SELECT conversation_id, min(received_at) AS first FROM chat_message WHERE pending GROUP BY 1) w
           WHERE c.id = w.conversation_id"""
    )


def assert_answered_exactly_once(stack, groups: int) -> None:
    """Every conversation of the backlog has one reply, answering both its messages; then the backlog is cleared
    for the next test."""
    [(conversations, replies, answered_once, linked)] = stack.sql(
        """SELECT count(DISTINCT conversation_id) FILTER (WHERE type = 'INBOUND'),
                  count(*) FILTER (WHERE type = 'OUTBOUND'),
                  (SELECT count(*) FROM (SELECT conversation_id FROM chat_message WHERE type = 'OUTBOUND'
                                         GROUP BY conversation_id HAVING count(*) = 1) AS once),
                  count(*) FILTER (WHERE type = 'INBOUND' AND reply_id IS NOT NULL)
           FROM chat_message"""
    )
    assert replies == conversations == answered_once == groups
    assert linked == 2 * groups
    stack.sql("TRUNCATE chat_message, chat_conversation CASCADE")


@pytest.mark.parametrize("workers", [2, 4])
def test_several_workers_drain_one_backlog_answering_every_group_exactly_once(stack, workers):
    backlog(stack, GROUPS)
    names = [f"drainer-{workers}-{n}" for n in range(workers)]
    for name in names:
        stack.start_role("worker", name, CELERY_CONCURRENCY="2")
    try:
        wait_until(
            stack.nothing_pending,
            timeout=120,
            interval=0.5,
            what="the backlog drained",
        )
    finally:
        for name in names:
            stack.stop_role(name)

    assert_answered_exactly_once(stack, GROUPS)


def test_redis_down_15_s_during_a_drain_loses_nothing_and_doubles_nothing(stack):
    backlog(stack, GROUPS)
    stack.start_role("worker", "outage-drainer", CELERY_CONCURRENCY="1")
    try:
        wait_until(
            lambda: stack.sql("SELECT count(*) FROM chat_message WHERE type = 'OUTBOUND'")[0][0] > 0,
            timeout=60,
            interval=0.05,
            what="the drain under way",
        )
        stack.redis.stop()
        try:
            [(left,)] = stack.sql("SELECT count(*) FROM chat_message WHERE pending")
            assert left > 0, "the backlog drained before Redis went away: make it larger"
            time.sleep(OUTAGE_SECONDS)
        finally:
            stack.redis.start()
        wait_until(
            stack.nothing_pending,
            timeout=180,
            interval=0.5,
            what="the backlog drained after Redis returned",
        )
    finally:
        stack.stop_role("outage-drainer")

    assert_answered_exactly_once(stack, GROUPS)
