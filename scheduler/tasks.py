"""Celery tasks: each takes ids, calls the service of the same name, and is safe to run twice."""

import logging
import math
import uuid

from amqp.exceptions import ChannelError
from celery import current_app, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from chat import parking
from delivery.tasks import reply_delivery_enqueue
from scheduler import services

logger = logging.getLogger(__name__)

# A few milliseconds past the window, so a job never finds its group a hair short of due.
COUNTDOWN_MARGIN_SECONDS = 0.005


@shared_task(name="scheduler.sweep", ignore_result=True)
def sweep() -> dict:
    result = services.sweep_run(
        dispatch=reply_job_enqueue, dispatch_delivery=reply_delivery_enqueue, reply_backlog=reply_queue_backlog
    )
    return vars(result)


def reply_queue_backlog() -> int:
    """Reply jobs waiting in the broker, by a passive queue declaration (kombu's portable way to ask a queue's
    length). Jobs a worker already holds (reserved, or waiting for their countdown) are not counted. 0 when the
    queue is not declared yet."""
    with current_app.connection_for_write() as connection:
        try:
            declared = connection.default_channel.queue_declare(queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True)
        except ChannelError:
            return 0
    return declared.message_count


@shared_task(
    name="scheduler.reply_group_process",
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def reply_group_process(conversation_id: str) -> int:
    replies = services.reply_group_process(
        conversation_id=uuid.UUID(conversation_id), dispatch_delivery=reply_delivery_enqueue
    )
    return len(replies)


@shared_task(name="scheduler.parked_messages_purge", ignore_result=True)
def parked_messages_purge() -> int:
    return parking.parked_messages_purge()


def reply_job_countdown(group: services.DueGroup) -> float | None:
    """Seconds to hold the job back: until the group's window closes (rounded up to the millisecond), plus a
    small margin; None when it is due already."""
    if group.due_in <= 0:
        return None
    return math.ceil(group.due_in * 1000) / 1000 + COUNTDOWN_MARGIN_SECONDS


def reply_job_enqueue(group: services.DueGroup) -> None:
    """How a sweep dispatches a due group: a reply job, held back until the group's window closes. It does not
    expire: a job that waited behind a backlog must still run (a second one for its group is dispatched only once
    the queue is empty, and finds nothing to do)."""
    logger.debug(
        "reply job enqueued",
        extra={"conversation_id": str(group.conversation_id), "due_in": group.due_in},
    )
    reply_group_process.apply_async(args=[str(group.conversation_id)], countdown=reply_job_countdown(group))
