"""The Celery app: configured from Django settings (CELERY_*), tasks found in the installed apps.

Two things differ from a stock app, both for broker outages: connections retry every second (see
BrokerConnection), and a worker keeps a liveness file fresh while it is connected to the broker (see
realmate.worker), which the container healthcheck reads.
"""

import os

import kombu
from celery import Celery
from celery.app.amqp import AMQP

from realmate.worker import WorkerLiveness

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.local")


class BrokerConnection(kombu.Connection):
    """A broker connection that retries every second, forever, while the broker is away.

    kombu waits 2, 4, 6 ... up to 30 s between attempts, and Celery's worker consumer and beat pass no
    intervals of their own: after a 10 s Redis outage the worker could sit idle for another 8 s, and the replies
    with it. Reconnecting to a local Redis costs a millisecond, so a steady one-second retry is cheap.
    """

    def ensure_connection(self, errback=None, max_retries=None, **kwargs):
        kwargs.setdefault("interval_start", 1)
        kwargs.setdefault("interval_step", 0)
        kwargs.setdefault("interval_max", 1)
        return super().ensure_connection(errback, max_retries, **kwargs)


class BrokerAMQP(AMQP):
    Connection = BrokerConnection


app = Celery("realmate", amqp=BrokerAMQP)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(WorkerLiveness)
