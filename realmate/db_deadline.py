"""A deadline for each database query of a web request, so a webhook facing a stalled database answers 503.

PostgreSQL's statement_timeout, TCP keepalives and tcp_user_timeout (the settings set them) cannot help when the
path freezes while the kernel still acknowledges what we send (a proxy or pooler that stops forwarding but keeps
the connection open): the query never reaches the server and the socket looks healthy. psycopg has no client-side
deadline, and a cancel request would take the same frozen path. So each web process runs one watchdog thread
that shuts down the socket of a query past DB_QUERY_TIMEOUT_SECONDS: psycopg's wait ends in whichever thread runs
the query (gunicorn's sync and threaded workers alike; a signal would only reach the main thread), the query
raises OperationalError, and the API answers 503 `database_unavailable`; the sender retries. The server, if it
ever got the query, notices the closed connection within a second (client_connection_check_interval) and rolls
back.
"""

import socket
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse

# How often the watchdog looks: a query is interrupted at most this late.
WATCH_INTERVAL_SECONDS = 0.1


class QueryWatchdog:
    """The queries running in this process, by thread (a thread runs one at a time): their deadline and socket.
    The lock makes sure a socket is shut down only while its query still runs, never under the next one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[int, tuple[float, int]] = {}
        self.interrupted: set[tuple[float, int]] = set()
        self.thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        # Started in the process that serves requests, after gunicorn forked it: threads do not survive a fork.
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self.watch, name="query-deadline", daemon=True)
            self.thread.start()

    def watch(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL_SECONDS)
            now = time.monotonic()
            with self.lock:
                for query in self.running.values():
                    if query[0] <= now and query not in self.interrupted:
                        self.interrupted.add(query)
                        interrupt(query[1])

    def start(self, query: tuple[float, int]) -> None:
        with self.lock:
            self.running[threading.get_ident()] = query

    def end(self, query: tuple[float, int]) -> None:
        with self.lock:
            del self.running[threading.get_ident()]
            self.interrupted.discard(query)


def interrupt(fd: int) -> None:
    """Shut the socket down without closing its descriptor, which stays psycopg's to close."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side
    finally:
        sock.detach()


watchdog = QueryWatchdog()


def query_deadline(execute, sql, params, many, context):
    """A Django execute wrapper: the query gets DB_QUERY_TIMEOUT_SECONDS of wall time."""
    seconds = settings.DB_QUERY_TIMEOUT_SECONDS
    if seconds <= 0:
        return execute(sql, params, many, context)
    database = context["connection"]
    watchdog.ensure_started()
    query = (time.monotonic() + seconds, database.connection.pgconn.socket)
    watchdog.start(query)
    try:
        return execute(sql, params, many, context)
    except OperationalError as exc:
        if query not in watchdog.interrupted:
            raise
        # The connection is mid-query in an unknown state: drop it; the next request opens a fresh one.
        database.close()
        raise OperationalError(f"the database did not answer within {seconds:g} s") from exc
    finally:
        watchdog.end(query)


class QueryDeadlineMiddleware:
    """Every query of a request runs under query_deadline."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with connection.execute_wrapper(query_deadline):
            return self.get_response(request)
