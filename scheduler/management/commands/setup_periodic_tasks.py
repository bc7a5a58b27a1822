"""Upsert the periodic tasks of the engine by name. Runs on every deploy; running it twice changes nothing.

An existing task keeps the interval and the enabled flag that ops may have set in the admin; pass
--reset-schedule to bring the interval back to the environment's value (SWEEP_INTERVAL_SECONDS).
"""

import math

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from scheduler.selectors import SWEEP_TASK_NAME

PURGE_TASK_NAME = "Purge old parked messages"
RETENTION_TASK_NAME = "Purge conversations past CONVERSATION_RETENTION_DAYS"
# The purges, once a day; one that waited an hour in the queue is dropped (the next day's comes).
DAILY_TASKS = {
    PURGE_TASK_NAME: "scheduler.parked_messages_purge",
    RETENTION_TASK_NAME: "scheduler.conversations_purge_retention",
}
DELIVERY_TASK_NAME = "Delivery: expire and wake due deliveries"
# Retries fall due at their own times; a delivery job is woken at most this long after.
DELIVERY_WAKE_SECONDS = 1


def interval_schedule(seconds: float) -> IntervalSchedule:
    """An interval of `seconds`; sub-second or fractional values are stored in microseconds."""
    if seconds >= 1 and float(seconds).is_integer():
        every, period = int(seconds), IntervalSchedule.SECONDS
    else:
        every, period = round(seconds * 1_000_000), IntervalSchedule.MICROSECONDS
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    return schedule


class Command(BaseCommand):
    help = "Create or update the sweep, delivery's step and the daily purges (django-celery-beat periodic tasks)."
    # The web role's migrate shows the system checks once per start; this command would repeat them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-schedule",
            action="store_true",
            help="Also reset the interval of existing tasks to the environment's values.",
        )

    @transaction.atomic
    def handle(self, *args, reset_schedule: bool = False, **options):
        sweep_interval = settings.SWEEP_INTERVAL_SECONDS
        self._upsert(
            SWEEP_TASK_NAME,
            task="scheduler.sweep",
            interval=interval_schedule(sweep_interval),
            # A sweep that waited in the queue for two intervals is stale: the next one is already on its way.
            expire_seconds=max(1, math.ceil(2 * sweep_interval)),
            reset_schedule=reset_schedule,
        )
        if settings.REPLY_WEBHOOK_URL:  # no job a second for a delivery that is off
            self._upsert(
                DELIVERY_TASK_NAME,
                task="delivery.deliveries_wake_due",
                interval=interval_schedule(DELIVERY_WAKE_SECONDS),
                expire_seconds=2 * DELIVERY_WAKE_SECONDS,
                reset_schedule=reset_schedule,
            )
        for name, task in DAILY_TASKS.items():
            self._upsert(
                name,
                task=task,
                interval=interval_schedule(24 * 60 * 60),
                expire_seconds=60 * 60,
                reset_schedule=reset_schedule,
            )

    def _upsert(self, name: str, *, task: str, interval, expire_seconds: int, reset_schedule: bool) -> None:
        periodic, created = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": task, "interval": interval, "expire_seconds": expire_seconds},
        )
        if not created:
            periodic.task = task
            periodic.expire_seconds = expire_seconds
            if reset_schedule or (periodic.interval is None and periodic.crontab is None):
                periodic.interval, periodic.crontab = interval, None
            periodic.save()
        self.stdout.write(f"{'created' if created else 'updated'}: {name} ({periodic.interval or periodic.crontab})")
