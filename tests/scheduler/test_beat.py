"""Beat's logging and liveness (scheduler/beat.py) around Celery's own beat Scheduler: if Celery changes how a
failed send is logged or stops announcing sends, these fail."""

import logging
import logging.config
import uuid
from datetime import timedelta

import pytest
import redis
from celery import Celery
from celery.beat import ScheduleEntry
from celery.signals import after_task_publish, beat_init
from django.conf import settings

from core.liveness import liveness_age
from realmate.celery import app as celery_app
from realmate.settings import base
from scheduler.beat import OUTAGE_WARNING, BrokerOutage, beat_task_sent
from scheduler.schedulers import DatabaseScheduler


@pytest.fixture
def beat_process(monkeypatch, tmp_path):
    """This process as beat: the service's logging configuration (the test settings send logs nowhere), its signal
    handlers connected, its liveness file in a fresh directory."""
    monkeypatch.setenv("HEALTH_FILE_DIR", str(tmp_path))
    handlers = {"console": {"class": "logging.NullHandler"}}
    logging.config.dictConfig({**base.LOGGING, "handlers": handlers, "root": {"handlers": ["console"]}})
    BrokerOutage.down = False
    beat_init.send(sender=None)
    yield
    after_task_publish.disconnect(beat_task_sent)
    BrokerOutage.down = False
    beat_logger = logging.getLogger("celery.beat")
    beat_logger.setLevel(logging.NOTSET)
    beat_logger.filters.clear()
    logging.config.dictConfig(settings.LOGGING)


def sender(broker_url: str, queue: str) -> tuple[DatabaseScheduler, ScheduleEntry]:
    """Beat's own scheduler class on an app of its own, and an entry to send to `queue`."""
    app = Celery("beat-test", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = {"socket_connect_timeout": 1}
    entry = ScheduleEntry(name="sweep", task="scheduler.sweep", schedule=timedelta(seconds=1), app=app)
    entry.options = {"queue": queue}
    return DatabaseScheduler(app=app, lazy=True), entry


@pytest.mark.django_db(transaction=True)  # beat's scheduler may read its schedule rows while it sends
def test_an_outage_logs_one_warning_and_its_end_one_line(beat_process, caplog):
    queue = f"beat-test-{uuid.uuid4()}"
    down, down_entry = sender("redis://127.0.0.1:9/0", queue)  # nothing listens on port 9
    up, up_entry = sender(settings.CELERY_BROKER_URL, queue)

    with caplog.at_level(logging.INFO):
        for _ in range(3):
            down.apply_entry(down_entry)
        assert BrokerOutage.down
        up.apply_entry(up_entry)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)

    lines = [(record.levelname, record.getMessage(), record.exc_info) for record in caplog.records]
    assert lines == [
        ("WARNING", OUTAGE_WARNING, None),
        ("INFO", "the broker is reachable again: due tasks are sent", None),
    ]
    assert not BrokerOutage.down


@pytest.mark.django_db(transaction=True)  # the scheduler closes old connections, as beat does
def test_beat_is_alive_after_each_tick_unless_the_broker_is_unreachable(beat_process):
    scheduler = DatabaseScheduler(app=celery_app, lazy=True)
    BrokerOutage.down = True
    scheduler.tick()
    assert liveness_age("beat") is None

    BrokerOutage.down = False
    scheduler.tick()
    assert liveness_age("beat") < 5


@pytest.mark.parametrize("during_an_outage", [False, True])
def test_other_errors_pass_as_celery_logged_them(beat_process, caplog, during_an_outage):
    BrokerOutage.down = during_an_outage
    with caplog.at_level(logging.INFO):
        try:
            raise ValueError("not the broker")
        except ValueError:
            logging.getLogger("celery.beat").exception("Message Error")

    assert [(record.levelname, record.exc_info is not None) for record in caplog.records] == [("ERROR", True)]
