"""A worker SIGKILLed in the middle of reply jobs loses no group and doubles none; a worker that leaves out the
sweep queue says so. The stack starts with no worker: each test starts the ones it needs."""

import uuid

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, running_stack
from tests.e2e.scenario import reply_text
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack():
    yield from running_stack("killed", env=SHORT_WINDOWS, workers=0, beats=1)


def test_a_worker_that_leaves_out_the_sweep_queue_warns_and_healthz_names_the_queue(stack):
    stack.start_role("worker", "replies-only-worker", args=("--queues", "replies"))
    try:
        wait_until(
            lambda: "does not consume the 'sweep' queue" in stack.log("replies-only-worker"),
            timeout=60,
            what="the worker's warning at start",
        )
        sweeper = wait_until(
            lambda: stack.http.get(f"{stack.base_url}/healthz", timeout=5).json()["checks"]["sweeper"]["error"],
            timeout=10,
            what="a failing sweeper check",
        )
        wait_until(
            lambda: "no worker consumes it" in stack.http.get(f"{stack.base_url}/healthz", timeout=5).text,
            timeout=10,
            what=f"healthz naming the unconsumed queue (it said {sweeper!r})",
        )
    finally:
        stack.stop_role("replies-only-worker")


def test_worker_killed_mid_job_loses_no_group_and_doubles_none(stack):
    conversations = {uuid.uuid4(): uuid.uuid4() for _ in range(5)}
    # Another session locks the messages first: each reply job then locks its conversation, writes its OUTBOUND
    # and waits, inside its transaction, to mark the message answered. So the worker is certainly killed mid-job.
    with stack.connect() as holder:
        for conversation_id, message_id in conversations.items():
            stack.post(
                {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": str(conversation_id)}}
            )
            stack.post(
                {
                    "type": "NEW_MESSAGE",
                    "timestamp": "2025-06-04T14:20:05Z",
                    "data": {"id": str(message_id), "content": "oi", "conversation_id": str(conversation_id)},
                }
            )
        holder.execute("SELECT 1 FROM chat_message WHERE id = ANY(%s) FOR UPDATE", [list(conversations.values())])
        stack.start_role("worker", "doomed-worker", CELERY_CONCURRENCY="2")
        wait_until(
            lambda: (
                stack.sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%%UPDATE chat_message m SET pending%%'"
                )[0][0]
                >= 1
            ),
            timeout=30,
            what="a reply job waiting in the middle of its transaction",
        )
        stack.stop_role("doomed-worker", sig=9)
    assert stack.sql("SELECT count(*) FROM chat_message WHERE type = 'OUTBOUND'") == [(0,)]

    stack.start_role("worker", "healthy-worker")
    wait_until(
        lambda: stack.sql("SELECT count(*) FROM chat_message WHERE pending") == [(0,)],
        timeout=45,
        interval=0.25,
        what="every group answered after the kill",
    )
    stack.sweeps_pass()  # a duplicate would have been written by now

    for conversation_id, message_id in conversations.items():
        replies = [m for m in stack.conversation(conversation_id)["messages"] if m["type"] == "OUTBOUND"]
        assert [r["content"] for r in replies] == [reply_text([message_id])]
