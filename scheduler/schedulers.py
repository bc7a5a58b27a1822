"""Beat's scheduler: django-celery-beat's DatabaseScheduler (the schedule is rows that ops edit in the admin), which
only adds beat's liveness file (bin/healthcheck)."""

from django_celery_beat.schedulers import DatabaseScheduler as BaseDatabaseScheduler

from core.liveness import liveness_touch
from scheduler.beat import BrokerOutage


class DatabaseScheduler(BaseDatabaseScheduler):
    """django-celery-beat's scheduler, touching beat's liveness file after each tick (Celery has no signal per
    tick) unless its last send found the broker unreachable."""

    def tick(self, *args, **kwargs) -> float:
        delay = super().tick(*args, **kwargs)
        if not BrokerOutage.down:
            liveness_touch("beat")
        return delay
