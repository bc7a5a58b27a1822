"""Delivery's jobs, on its own queue (DELIVERY_QUEUE): a wake-up call for one batch, and the periodic step that
expires deliveries and wakes a batch while one is due (delivery.services). Neither waits on the reply engine, nor
the reply engine on them."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from delivery import services

# A wake-up older than this is of no use: while anything is due, the periodic step sends a fresh one every second.
# Without it, delivery workers away for an hour would find thousands of wake-ups waiting.
WAKE_EXPIRES_SECONDS = 60


@shared_task(
    name="delivery.deliveries_send",
    ignore_result=True,
    # The database away: the same wake-up shortly; the periodic step wakes a job anyway once it is back.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def deliveries_send() -> int:
    return services.deliveries_send(wake_next=deliveries_send_continue).claimed


@shared_task(name="delivery.deliveries_wake_due", ignore_result=True)
def deliveries_wake_due() -> int:
    return services.deliveries_wake_due(wake=deliveries_send_enqueue)


def _send(**options) -> None:
    # The batch's own time limits, read from the settings when it is enqueued (they follow the receiver's timeout).
    soft, hard = services.time_limits()
    deliveries_send.apply_async(expires=WAKE_EXPIRES_SECONDS, soft_time_limit=soft, time_limit=hard, **options)


def deliveries_send_enqueue() -> None:
    _send()


def deliveries_send_continue() -> None:
    # No publish retries: the next periodic step makes up for a failure.
    _send(retry=False)
