"""The query deadline (realmate/db_deadline.py) holds in any thread, as gunicorn's threaded workers run requests."""

import threading
import time

import pytest
from django.db import OperationalError, connection

from realmate.db_deadline import interrupt, query_deadline, watchdog

pytestmark = pytest.mark.django_db


def run_in_a_thread(sql: str) -> dict:
    """`sql` under the deadline, in a thread of its own with its own connection: its error, its seconds, and
    whether the connection was dropped."""
    outcome: dict = {"error": None}

    def target() -> None:
        started = time.monotonic()
        try:
            with connection.execute_wrapper(query_deadline), connection.cursor() as cursor:
                cursor.execute(sql)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            outcome["seconds"] = time.monotonic() - started
            outcome["dropped"] = connection.connection is None
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the query outlived its deadline by far"
    return outcome


def test_a_query_past_its_deadline_raises_in_a_thread_that_is_not_the_main_one(settings):
    settings.DB_QUERY_TIMEOUT_SECONDS = 0.3

    outcome = run_in_a_thread("SELECT pg_sleep(5)")

    assert isinstance(outcome["error"], OperationalError)
    assert "did not answer within 0.3 s" in str(outcome["error"])
    assert outcome["seconds"] < 2
    assert outcome["dropped"]


def test_a_query_within_its_deadline_is_left_alone(settings):
    settings.DB_QUERY_TIMEOUT_SECONDS = 1

    outcome = run_in_a_thread("SELECT pg_sleep(0.2)")

    assert outcome["error"] is None
    assert not outcome["dropped"]
    assert watchdog.running == {}


def test_a_deadline_that_passes_as_the_answer_arrives_drops_the_connection(settings, monkeypatch):
    """The watchdog may shut the socket between the answer and the query's leaving: the connection is then of no
    use, and the request must not go on with it."""
    settings.DB_QUERY_TIMEOUT_SECONDS = 5
    leave = watchdog.end

    def end_after_the_watchdog_fired():
        with watchdog.lock:
            query = watchdog.running[threading.get_ident()]
            query.interrupted = True
            interrupt(query.fd)
        return leave()

    monkeypatch.setattr(watchdog, "end", end_after_the_watchdog_fired)

    outcome = run_in_a_thread("SELECT 1")

    assert isinstance(outcome["error"], OperationalError)
    assert outcome["dropped"]
