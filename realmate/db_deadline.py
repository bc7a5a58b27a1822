"""A deadline for each database query of a web request, so a webhook facing a stalled database answers 503.

PostgreSQL's statement_timeout and TCP keepalives cannot help when the network path freezes (a proxy or a NAT
that stops forwarding but keeps the connection open): the query never reaches the server and the socket looks
healthy. So the web process gives each query DB_QUERY_TIMEOUT_SECONDS of wall time (an interval timer whose
signal interrupts psycopg's wait), then drops the connection and raises OperationalError, which the API answers
with 503 `database_unavailable`; the sender retries. The server, if it ever got the query, notices the closed
connection within a second (client_connection_check_interval) and rolls back.

Interval timers belong to the main thread: gunicorn's sync workers run requests there. Elsewhere (threaded
workers) queries run without this deadline and gunicorn's own timeout is the bound.
"""

import signal
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse


class _DeadlinePassed(Exception):
    pass


def _expire(signum, frame) -> None:
    raise _DeadlinePassed


def query_deadline(execute, sql, params, many, context):
    """A Django execute wrapper: the query gets DB_QUERY_TIMEOUT_SECONDS of wall time."""
    seconds = settings.DB_QUERY_TIMEOUT_SECONDS
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return execute(sql, params, many, context)
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return execute(sql, params, many, context)
    except _DeadlinePassed as exc:
        # The connection is mid-query in an unknown state: drop it; the next request opens a fresh one.
        context["connection"].close()
        raise OperationalError(f"the database did not answer within {seconds:g} s") from exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class QueryDeadlineMiddleware:
    """Every query of a request runs under query_deadline."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with connection.execute_wrapper(query_deadline):
            return self.get_response(request)
