"""The query deadline (realmate/db_deadline.py) holds in any thread, as gunicorn's threaded workers run requests."""

import threading
import time

import pytest
from django.db import OperationalError, connection

from realmate.db_deadline import query_deadline

pytestmark = pytest.mark.django_db


def run_in_a_thread(sql: str) -> tuple[BaseException | None, float]:
    """`sql` under the deadline, in a thread of its own with its own connection: (its error, its seconds)."""
    outcome: dict = {}

    def target() -> None:
        started = time.monotonic()
        try:
            with connection.execute_wrapper(query_deadline), connection.cursor() as cursor:
                cursor.execute(sql)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            outcome["seconds"] = time.monotonic() - started
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    return outcome.get("error"), outcome["seconds"]


def test_a_query_past_its_deadline_raises_in_a_thread_that_is_not_the_main_one(settings):
    settings.DB_QUERY_TIMEOUT_SECONDS = 0.3

    error, seconds = run_in_a_thread("SELECT pg_sleep(5)")

    assert isinstance(error, OperationalError)
    assert "did not answer within 0.3 s" in str(error)
    assert seconds < 2


def test_a_query_within_its_deadline_is_left_alone(settings):
    settings.DB_QUERY_TIMEOUT_SECONDS = 1

    error, _ = run_in_a_thread("SELECT pg_sleep(0.2)")

    assert error is None
