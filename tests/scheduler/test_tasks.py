"""The sweep's dispatch: each due group's reply job is held back until its window closes, never less."""

import uuid

import pytest
from celery import current_app
from django.conf import settings

from scheduler.services import DueGroup
from scheduler.tasks import COUNTDOWN_MARGIN_SECONDS, reply_group_process, reply_job_countdown, reply_queue_backlog


@pytest.mark.parametrize(
    ("due_in", "countdown"),
    [
        (0.0, None),
        (-0.2, None),
        (1.0, 1.0 + COUNTDOWN_MARGIN_SECONDS),
        (0.0001, 0.001 + COUNTDOWN_MARGIN_SECONDS),
        (1.2341, 1.235 + COUNTDOWN_MARGIN_SECONDS),
    ],
    ids=["due", "overdue", "one-second", "rounds-up-a-tenth-of-a-millisecond", "rounds-up-to-the-millisecond"],
)
def test_countdown_reaches_the_end_of_the_window(due_in, countdown):
    result = reply_job_countdown(DueGroup(uuid.uuid4(), due_in))

    assert result == (None if countdown is None else pytest.approx(countdown))
    if result is not None:
        assert result >= due_in + COUNTDOWN_MARGIN_SECONDS


def test_the_reply_backlog_counts_the_jobs_waiting_in_redis():
    """Against the real Redis (the test settings' own database), with no worker to take the jobs."""
    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    try:
        for _ in range(3):
            reply_group_process.apply_async(args=[str(uuid.uuid4())])
        assert reply_queue_backlog() == 3
    finally:
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    assert reply_queue_backlog() == 0
