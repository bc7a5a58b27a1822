"""Celery beat's logging, through Celery's own extension points; beat's scheduler is scheduler.schedulers (it
imports models, which the logging configuration, read before the apps are ready, must not).

Beat sends a sweep every second. Its INFO line per send is below the level the settings give the `celery.beat`
logger (LOGGING). During a broker outage, its error and traceback per failed send become one warning when the
outage starts (BrokerOutageFilter, on that logger: Celery logs a failed send at ERROR, which that logger always
passes on) and one line when a send succeeds again (after_task_publish). BrokerOutage is also what keeps beat's
liveness file from being touched while the broker is away.
"""

import logging

from celery.signals import after_task_publish, beat_init
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

OUTAGE_WARNING = "the broker is unreachable: due tasks are not sent until it is back (retried every tick)"


class BrokerOutage:
    """Whether beat's last send failed because the broker was unreachable (one beat process, one state)."""

    down = False


def broker_unreachable(exc: BaseException | None) -> bool:
    """Celery wraps a failed send in SchedulingError; the broker's own error is in the chain."""
    while exc is not None:
        if isinstance(exc, OperationalError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class BrokerOutageFilter(logging.Filter):
    """The first failed send of an outage logs as one warning, without the traceback; the next ones, until a send
    succeeds, not at all. Any other error passes as Celery wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not broker_unreachable(exc):
            return True
        if BrokerOutage.down:
            return False
        BrokerOutage.down = True
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.msg, record.args = OUTAGE_WARNING, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.error = str(exc)
        return True


def beat_task_sent(**kwargs) -> None:
    if BrokerOutage.down:
        BrokerOutage.down = False
        logger.info("the broker is reachable again: due tasks are sent")


@beat_init.connect
def beat_signals_connect(**kwargs) -> None:
    """In the beat process only: other processes publish jobs too."""
    after_task_publish.connect(beat_task_sent, weak=False)
