import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
import redis
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from delivery.models import ReceiverCircuit
from scheduler.models import SweepHeartbeat
from scheduler.selectors import SWEEP_TASK_NAME, sweep_stale_seconds
from tests.e2e.stack import free_port
from tests.helpers import unreachable_database

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_sweep():
    SweepHeartbeat.objects.create(last_sweep_at=timezone.now())


@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
def test_healthy_when_database_redis_and_sweeper_are_fine(api, fresh_sweep, path):
    response = api.get(path)

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "sweeper": True,
        "receiver": True,
    }
    assert (body["warnings"], body["checks"]["receiver"]["circuit"]) == ([], "off")


def test_stale_sweeper_is_503(api, settings):
    SweepHeartbeat.objects.create(last_sweep_at=timezone.now() - timedelta(seconds=sweep_stale_seconds() + 1))

    response = api.get("/healthz")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["failing"] == ["sweeper"]
    assert "last sweep" in response.json()["checks"]["sweeper"]["error"]


def test_a_sweep_interval_lengthened_in_the_admin_lengthens_what_counts_as_stale(api):
    call_command("setup_periodic_tasks")
    PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).update(
        interval=IntervalSchedule.objects.create(every=30, period=IntervalSchedule.SECONDS)
    )
    SweepHeartbeat.objects.create(last_sweep_at=timezone.now() - timedelta(seconds=60))

    response = api.get("/healthz")

    assert sweep_stale_seconds() == 150
    assert response.json()["checks"]["sweeper"]["ok"], response.json()


def test_no_sweep_yet_is_503(api):
    response = api.get("/healthz")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["failing"] == ["sweeper"]


def test_unreachable_redis_is_503(api, settings, fresh_sweep):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = api.get("/healthz")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["failing"] == ["redis"]


@pytest.mark.django_db(transaction=True)
def test_unreachable_database_is_503(api):
    with unreachable_database():
        response = api.get("/healthz")

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["failing"] == ["database", "sweeper"]


def test_stale_sweeper_names_a_sweep_queue_nobody_consumes(api, settings):
    settings.SWEEP_QUEUE = f"sweep-test-{uuid.uuid4().hex}"
    SweepHeartbeat.objects.create(last_sweep_at=timezone.now() - timedelta(seconds=sweep_stale_seconds() + 1))
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.rpush(settings.SWEEP_QUEUE, "job-1", "job-2", "job-3")
    try:
        response = api.get("/healthz")
    finally:
        client.delete(settings.SWEEP_QUEUE)
        client.close()

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    error = response.json()["checks"]["sweeper"]["error"]
    assert f"3 sweep jobs wait in the '{settings.SWEEP_QUEUE}' queue: no worker consumes it" in error


def test_stale_sweeper_with_an_empty_sweep_queue_does_not_blame_the_queue(api, settings):
    settings.SWEEP_QUEUE = f"sweep-test-{uuid.uuid4().hex}"
    SweepHeartbeat.objects.create(last_sweep_at=timezone.now() - timedelta(seconds=sweep_stale_seconds() + 1))

    error = api.get("/healthz").json()["checks"]["sweeper"]["error"]

    assert "queue" not in error


def test_an_open_receiver_circuit_is_a_warning_not_a_failure(api, settings, fresh_sweep):
    settings.REPLY_WEBHOOK_URL = "http://127.0.0.1:9/replies"
    assert api.get("/healthz").json()["checks"]["receiver"] == {"ok": True, "circuit": "closed"}
    ReceiverCircuit.objects.update_or_create(
        id=1, defaults={"opened_at": timezone.now(), "probe_at": timezone.now(), "last_error": "HTTP 503: down"}
    )

    response = api.get("/healthz")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert (body["status"], body["failing"], body["warnings"]) == ("ok", [], ["receiver"])
    receiver = body["checks"]["receiver"]
    assert (receiver["ok"], receiver["circuit"]) == (True, "open")
    assert "HTTP 503: down" in receiver["warning"]
