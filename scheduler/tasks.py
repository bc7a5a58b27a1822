"""Celery tasks: each calls the service of the same name and is safe to run twice. A reply job is a wake-up call:
it carries nothing, and claims what is due."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from chat import erasure, parking
from delivery.tasks import deliveries_send_enqueue
from scheduler import services


@shared_task(name="scheduler.sweep", ignore_result=True)
def sweep() -> dict:
    result = services.sweep_run(wake=replies_wake_enqueue)
    return vars(result)


@shared_task(
    name="scheduler.replies_answer",
    ignore_result=True,
    # The database away: the same wake-up shortly; the sweep wakes the engine anyway once it is back.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def replies_answer() -> int:
    result = services.replies_answer(
        continue_now=replies_continue_enqueue, wake=replies_wake_enqueue, wake_delivery=deliveries_send_enqueue
    )
    return result.replies


@shared_task(name="scheduler.parked_messages_purge", ignore_result=True)
def parked_messages_purge() -> int:
    return parking.parked_messages_purge()


@shared_task(name="scheduler.conversations_purge_retention", ignore_result=True)
def conversations_purge_retention() -> int:
    # Within half the soft time limit; a purge with more to do goes on in the next job.
    erased = erasure.conversations_purge_retention(budget_seconds=settings.CELERY_TASK_SOFT_TIME_LIMIT / 2)
    if erased.more:
        conversations_purge_retention.delay()
    return erased.conversations


def replies_wake_enqueue(countdown: float) -> None:
    replies_answer.apply_async(countdown=countdown or None)


def replies_continue_enqueue() -> None:
    # No publish retries: the caller holds its batch's locks meanwhile, and the next sweep makes up for a failure.
    replies_answer.apply_async(retry=False)
