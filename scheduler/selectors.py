"""Reads of the scheduler app, for /metrics and /healthz."""

from datetime import datetime

from django.conf import settings
from django.db.models import F
from django_celery_beat.models import PeriodicTask

from core.clock import ClockTimestamp
from scheduler.models import SweepHeartbeat

# The sweep's periodic task (setup_periodic_tasks creates it; ops may change its interval in the admin).
SWEEP_TASK_NAME = "Sweep: parked messages and reply wake-ups"


def sweep_last() -> tuple[datetime, float] | None:
    """When the last sweep completed and how many seconds ago, on the database clock; None before the first."""
    row = (
        SweepHeartbeat.objects.annotate(age=ClockTimestamp() - F("last_sweep_at"))
        .values_list("last_sweep_at", "age")
        .first()
    )
    return None if row is None else (row[0], row[1].total_seconds())


def sweep_interval_seconds() -> float:
    """The sweep's interval in force: the admin's, else SWEEP_INTERVAL_SECONDS."""
    sweep = PeriodicTask.objects.filter(name=SWEEP_TASK_NAME, interval__isnull=False).select_related("interval")
    task = sweep.first()
    return settings.SWEEP_INTERVAL_SECONDS if task is None else task.interval.schedule.run_every.total_seconds()


def sweep_stale_seconds() -> float:
    """How old the last sweep may be before the sweeper counts as failing: five of the intervals in force, 5 s at
    least."""
    return max(5.0, 5 * sweep_interval_seconds())
