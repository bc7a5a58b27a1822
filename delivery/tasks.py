"""The delivery job (its own queue, DELIVERY_QUEUE): one attempt, then Celery's retry with the service's wait."""

import uuid

from celery import shared_task
from django.db import InterfaceError, OperationalError

from delivery import services


@shared_task(
    name="delivery.reply_deliver",
    bind=True,
    ignore_result=True,
    # The database away: the same job again shortly (the lease is still its own, or the sweep takes over).
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def reply_deliver(self, message_id: str, lease_token: str) -> str | None:
    result = services.reply_deliver(services.DeliveryJob(uuid.UUID(message_id), uuid.UUID(lease_token)))
    if result.retry is not None:
        # The next attempt is a new job with the new token; max_retries=None: give_up_at bounds the retries.
        raise self.retry(
            args=[str(result.retry.message_id), str(result.retry.lease_token)],
            countdown=result.retry_in,
            max_retries=None,
        )
    return result.state


def reply_delivery_enqueue(job: services.DeliveryJob) -> None:
    reply_deliver.delay(str(job.message_id), str(job.lease_token))
