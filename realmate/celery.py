"""The Celery app: configured from Django settings (CELERY_*), tasks found in the installed apps.

Two things differ from a stock app for broker outages: connections retry every second (see
BrokerConnection), and a worker keeps a liveness file fresh while it is connected to the broker (see
realmate.worker), which the container healthcheck reads. And jobs keep their database connection between them,
as Django's requests do (database_connections_recycle).
"""

import os

import kombu
from celery import Celery
from celery.app.amqp import AMQP
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_process_shutdown
from django.db import close_old_connections

from realmate import tracing
from realmate.worker import WorkerLiveness

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.local")


class BrokerConnection(kombu.Connection):
    """A broker connection that retries every second, forever, while the broker is away.

    kombu waits 2, 4, 6 ... up to 30 s between attempts, and Celery's worker consumer and beat pass no
    intervals of their own: after a 10 s Redis outage the worker could sit idle for another 8 s, and the replies
    with it. Reconnecting to a local Redis costs a millisecond, so a steady one-second retry is cheap.

    No Celery setting passes these intervals; the `amqp` class is the app's documented way to choose the connection
    class. tests/e2e/test_redis_outage.py fails if sweeps take longer than 4 s to resume after an outage.
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


@task_prerun.connect
@task_postrun.connect
def database_connections_recycle(task=None, **kwargs) -> None:
    """Before and after each job, drop the database connections that broke or outlived CONN_MAX_AGE, and keep the
    rest: Django's own rule for requests. Celery's Django fixup would otherwise close every connection around every
    job (unless CELERY_DB_REUSE_MAX is set, which the settings do), and each job would pay a new PostgreSQL
    connection, a forked backend and its setup, which cost a delivery batch more than its claim. A job run eagerly
    (`apply()`) runs in its caller's connection and transaction: left alone, as Celery's fixup does."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@worker_process_init.connect
def tracing_start(**kwargs) -> None:
    """Traces, when on (realmate.tracing), started in each pool process: the exporter's thread must not cross the
    fork. The service is named by the role, as the liveness file is (worker or delivery). The signal is prefork's,
    the pool the entrypoint runs: a solo or threads pool would start no traces."""
    tracing.start(f"realmate-{os.environ.get('LIVENESS_ROLE', 'worker')}")


@worker_process_shutdown.connect
def tracing_stop(**kwargs) -> None:
    tracing.stop()
