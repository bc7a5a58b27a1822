"""What the Celery worker adds to a stock one: a liveness file kept fresh while it is connected to the broker,
and a warning at start when it does not consume the sweep queue (then nothing would ever be answered)."""

import logging
import os

from celery import bootsteps
from celery.signals import worker_ready
from django.conf import settings

from core.liveness import liveness_touch

logger = logging.getLogger(__name__)


class WorkerLiveness(bootsteps.StartStopStep):
    """A consumer step: it starts once the worker is connected and consuming, and stops when the connection is
    lost (the consumer restarts its steps on reconnect), so a fresh file means "connected and serving"."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer_entry = None

    def start(self, parent) -> None:
        # The entrypoint names the role (worker or delivery), so each has a file of its own on a shared /tmp.
        role = os.environ.get("LIVENESS_ROLE", "worker")
        liveness_touch(role)
        self.timer_entry = parent.timer.call_repeatedly(1.0, liveness_touch, (role,), priority=10)

    def stop(self, parent) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None


@worker_ready.connect
def warn_when_sweep_queue_not_consumed(sender, **kwargs) -> None:
    consumed = {queue.name for queue in sender.task_consumer.queues}
    if settings.SWEEP_QUEUE not in consumed and consumed != {settings.DELIVERY_QUEUE}:
        logger.warning(
            "This worker does not consume the %r queue: unless another worker does, no sweep runs and no reply is "
            "ever written. Start it as bin/entrypoint.sh worker (every queue but the delivery role's).",
            settings.SWEEP_QUEUE,
            extra={"queues": sorted(consumed)},
        )
