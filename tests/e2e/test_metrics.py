"""/metrics scraped from a real stack (gunicorn's two workers, a Celery worker, beat, one metrics directory): after a
known burst, the counters written by the web and worker processes add up to exactly what happened."""

import uuid
from http import HTTPStatus

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, running_stack
from tests.helpers import metric_samples, wait_until

pytestmark = pytest.mark.e2e
STAMP = "2025-06-04T14:20:00Z"


@pytest.fixture(scope="module")
def stack():
    yield from running_stack("metrics", env=SHORT_WINDOWS, workers=1, beats=1)


def scrape(stack) -> dict[tuple[str, tuple], float]:
    response = stack.http.get(f"{stack.base_url}/metrics", timeout=10)
    assert response.status_code == HTTPStatus.OK
    return metric_samples(response.text)


def test_a_known_burst_moves_the_counters_by_exactly_what_happened(stack):
    before = scrape(stack)
    conversations = [uuid.uuid4() for _ in range(4)]
    for conversation_id in conversations:
        payload = {"type": "NEW_CONVERSATION", "timestamp": STAMP, "data": {"id": str(conversation_id)}}
        assert stack.post(payload).status_code == HTTPStatus.CREATED
        for _ in range(3):
            data = {"id": str(uuid.uuid4()), "content": "oi", "conversation_id": str(conversation_id)}
            assert (
                stack.post({"type": "NEW_MESSAGE", "timestamp": STAMP, "data": data}).status_code == HTTPStatus.ACCEPTED
            )
    assert stack.post({"type": "NEW_CONVERSATION", "timestamp": STAMP, "data": {"id": "x"}}).status_code == 400
    # Requests are spread over gunicorn's two workers; the worker process writes the replies.
    wait_until(
        lambda: stack.sql("SELECT count(*) FROM chat_message WHERE type = 'OUTBOUND'") == [(4,)],
        20,
        0.2,
        "four replies",
    )

    def replies_counted():
        samples = scrape(stack)
        return samples if delta(before, samples, "realmate_replies_total", send_reason="quiet") == 4 else None

    after = wait_until(replies_counted, 10, 0.2, "replies counted")

    assert delta(before, after, "realmate_webhook_requests_total", event="NEW_CONVERSATION", outcome="created") == 4
    assert delta(before, after, "realmate_webhook_requests_total", event="NEW_MESSAGE", outcome="stored") == 12
    assert (
        delta(before, after, "realmate_webhook_requests_total", event="NEW_CONVERSATION", outcome="invalid_payload")
        == 1
    )
    assert delta(before, after, "realmate_webhook_request_seconds_count", event="NEW_MESSAGE") == 12
    assert delta(before, after, "realmate_reply_messages_count") == 4
    assert delta(before, after, "realmate_reply_messages_sum") == 12
    # Every lag is at least the window; none is counted under it.
    assert delta(before, after, "realmate_reply_lag_seconds_bucket", le="1.0") == 0
    assert delta(before, after, "realmate_reply_lag_seconds_count") == 4
    # The four replies came from reply batches, each counted once (a batch that found nothing counts 0).
    assert delta(before, after, "realmate_reply_batch_replies_sum") == 4
    assert delta(before, after, "realmate_reply_batch_seconds_count") >= 1
    assert delta(before, after, "realmate_sweep_seconds_count") > 0
    assert after[("realmate_messages_pending", ())] == 0
    assert after[("realmate_last_sweep_timestamp_seconds", ())] > 0


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_celery_jobs_keep_their_database_connection_between_jobs(stack):
    """Celery's Django fixup would close it around every job (a new PostgreSQL backend per sweep, four a second);
    realmate.celery keeps it, as Django keeps a web process's."""
    stack.sweeps_pass()

    def sweeping_connections_older_than(seconds: float) -> int:
        [(count,)] = stack.sql(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND query LIKE 'UPDATE "scheduler_sweepheartbeat"%%'
                 AND backend_start < clock_timestamp() - make_interval(secs => %s)""",
            (seconds,),
        )
        return count

    # Sweeps every 0.25 s, each leaving its connection open with the heartbeat as its last statement.
    wait_until(lambda: sweeping_connections_older_than(2) >= 1, 10, 0.25, "a sweep's connection kept for 2 s")
