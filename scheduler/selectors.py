"""Reads of the scheduler app, for /metrics and /healthz."""

from datetime import datetime

from django.db.models import F

from core.clock import ClockTimestamp
from scheduler.models import SweepHeartbeat


def sweep_last() -> tuple[datetime, float] | None:
    """When the last sweep completed and how many seconds ago, on the database clock; None before the first."""
    row = (
        SweepHeartbeat.objects.annotate(age=ClockTimestamp() - F("last_sweep_at"))
        .values_list("last_sweep_at", "age")
        .first()
    )
    return None if row is None else (row[0], row[1].total_seconds())
