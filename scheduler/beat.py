"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler (the schedule is rows that ops edit in the
admin), made quiet. Beat sends a sweep every second, so Celery's INFO line per send and its traceback per failed
send during a broker outage would be most of the log. Here a routine send logs at DEBUG, an outage logs one
warning when it starts and one line when it ends, and beat touches its liveness file (bin/healthcheck) on every
tick while it can reach the broker."""

import logging

from django_celery_beat.schedulers import DatabaseScheduler as BaseDatabaseScheduler
from kombu.exceptions import OperationalError

from core.liveness import liveness_touch

logger = logging.getLogger(__name__)


def _broker_unreachable(exc: BaseException) -> bool:
    """Celery wraps a failed send in SchedulingError; the broker's own error is in the chain."""
    while exc is not None:
        if isinstance(exc, OperationalError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class DatabaseScheduler(BaseDatabaseScheduler):
    broker_down = False

    def tick(self, *args, **kwargs) -> float:
        delay = super().tick(*args, **kwargs)
        if not self.broker_down:
            liveness_touch("beat")
        return delay

    def apply_entry(self, entry, producer=None) -> None:
        logger.debug("sending due task", extra={"entry": entry.name, "task": entry.task})
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            if not _broker_unreachable(exc):
                logger.exception("could not send a due task", extra={"entry": entry.name, "task": entry.task})
            elif not self.broker_down:
                self.broker_down = True
                logger.warning(
                    "the broker is unreachable: due tasks are not sent until it is back (retried every tick)",
                    extra={"error": str(exc)},
                )
            return
        if self.broker_down:
            self.broker_down = False
            logger.info("the broker is reachable again: due tasks are sent")
