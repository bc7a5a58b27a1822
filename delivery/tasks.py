"""The delivery job (its own queue, DELIVERY_QUEUE): a wake-up call for one batch (delivery.services)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from delivery import services

# A wake-up older than this is of no use: while anything is due, the sweep sends a fresh one every second. Without
# it, delivery workers away for an hour would find thousands of wake-ups waiting.
WAKE_EXPIRES_SECONDS = 60


@shared_task(
    name="delivery.deliveries_send",
    ignore_result=True,
    # The database away: the same wake-up shortly; the sweep wakes a job anyway once it is back.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def deliveries_send() -> int:
    return services.deliveries_send(wake_next=deliveries_send_continue).claimed


def deliveries_send_enqueue() -> None:
    deliveries_send.apply_async(expires=WAKE_EXPIRES_SECONDS)


def deliveries_send_continue() -> None:
    # No publish retries: the next sweep makes up for a failure.
    deliveries_send.apply_async(retry=False, expires=WAKE_EXPIRES_SECONDS)
