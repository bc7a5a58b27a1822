import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from scheduler.management.commands.setup_periodic_tasks import (
    DELIVERY_TASK_NAME,
    PURGE_TASK_NAME,
    RETENTION_TASK_NAME,
    SWEEP_TASK_NAME,
)

pytestmark = pytest.mark.django_db


def test_creates_the_sweep_and_deliverys_step_every_second_and_the_daily_purges(settings):
    settings.SWEEP_INTERVAL_SECONDS = 1.0
    settings.REPLY_WEBHOOK_URL = "http://127.0.0.1:9/replies"

    call_command("setup_periodic_tasks")

    sweep = PeriodicTask.objects.get(name=SWEEP_TASK_NAME)
    assert (sweep.task, sweep.interval.every, sweep.interval.period) == ("scheduler.sweep", 1, "seconds")
    assert sweep.expire_seconds == 2
    purge = PeriodicTask.objects.get(name=PURGE_TASK_NAME)
    assert (purge.task, purge.interval.every, purge.interval.period) == (
        "scheduler.parked_messages_purge",
        86400,
        "seconds",
    )
    delivery = PeriodicTask.objects.get(name=DELIVERY_TASK_NAME)
    assert (delivery.task, delivery.interval.every, delivery.expire_seconds) == ("delivery.deliveries_wake_due", 1, 2)
    retention = PeriodicTask.objects.get(name=RETENTION_TASK_NAME)
    assert (retention.task, retention.interval.every) == ("scheduler.conversations_purge_retention", 86400)


def test_running_twice_changes_nothing():
    call_command("setup_periodic_tasks")
    before = list(PeriodicTask.objects.order_by("name").values("name", "task", "interval_id", "expire_seconds"))

    call_command("setup_periodic_tasks")

    after = list(PeriodicTask.objects.order_by("name").values("name", "task", "interval_id", "expire_seconds"))
    assert after == before
    assert PeriodicTask.objects.count() == 3  # delivery is off: no step of its own


def test_keeps_the_interval_ops_set_in_the_admin_unless_reset(settings):
    call_command("setup_periodic_tasks")
    tuned, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).update(interval=tuned)

    call_command("setup_periodic_tasks")
    assert PeriodicTask.objects.get(name=SWEEP_TASK_NAME).interval == tuned

    call_command("setup_periodic_tasks", "--reset-schedule")
    assert PeriodicTask.objects.get(name=SWEEP_TASK_NAME).interval.every == 1


def test_sub_second_interval_is_stored_in_microseconds(settings):
    settings.SWEEP_INTERVAL_SECONDS = 0.25

    call_command("setup_periodic_tasks")

    interval = PeriodicTask.objects.get(name=SWEEP_TASK_NAME).interval
    assert (interval.every, interval.period) == (250000, "microseconds")
