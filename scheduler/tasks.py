"""Celery tasks: each takes ids, calls the service of the same name, and is safe to run twice."""

import uuid

from celery import shared_task
from django.db import InterfaceError, OperationalError

from scheduler import services


@shared_task(name="scheduler.sweep", ignore_result=True)
def sweep() -> dict:
    return vars(services.sweep_run())


@shared_task(
    name="scheduler.reply_group_process",
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def reply_group_process(conversation_id: str) -> int:
    return len(services.reply_group_process(conversation_id=uuid.UUID(conversation_id)))


@shared_task(name="scheduler.parked_messages_purge", ignore_result=True)
def parked_messages_purge() -> int:
    return services.parked_messages_purge()
