"""A deadline for each database query of a web request, so a webhook facing a stalled database answers 503.

TCP keepalives and tcp_user_timeout (the settings set them) cannot help when the path freezes while the kernel
still acknowledges what we send (a proxy or pooler that stops forwarding but keeps the connection open): the
query never reaches the server, so no server-side timeout starts, and the socket looks healthy. psycopg has no
client-side deadline, and a cancel request would take the same frozen path. So each web process runs one
watchdog thread that shuts down the socket of a query past DB_QUERY_TIMEOUT_SECONDS: psycopg's wait ends in
whichever thread runs the query (gunicorn's sync and threaded workers alike; a signal would only reach the main
thread), the connection is dropped, and the API answers 503 `database_unavailable`; the sender retries. The
server, if it ever got the query, notices the closed connection within a second (client_connection_check_interval)
and rolls back. COMMIT is not a query Django lets us wrap: a frozen COMMIT is bounded by tcp_user_timeout once
the kernel stops acknowledging, and by gunicorn's timeout under sync workers.
"""

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse

# How often the watchdog looks: a query is interrupted at most this late.
WATCH_INTERVAL_SECONDS = 0.1


@dataclass(eq=False)
class Query:
    deadline: float
    fd: int
    interrupted: bool = field(default=False)


class QueryWatchdog:
    """The queries running in this process, by thread (a thread runs one at a time). Under the lock, a socket is
    shut down only while its query is registered, and a query learns on leaving whether it was."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[int, Query] = {}
        self.thread: threading.Thread | None = None

    def start(self, query: Query) -> None:
        with self.lock:
            # Started in the process that serves requests, after gunicorn forked it: threads do not survive a fork.
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.watch, name="query-deadline", daemon=True)
                self.thread.start()
            self.running[threading.get_ident()] = query

    def end(self) -> Query | None:
        with self.lock:
            return self.running.pop(threading.get_ident(), None)

    def watch(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL_SECONDS)
            now = time.monotonic()
            with self.lock:
                for query in self.running.values():
                    if query.deadline <= now and not query.interrupted:
                        query.interrupted = True
                        interrupt(query.fd)


def interrupt(fd: int) -> None:
    """Shut the socket down without closing its descriptor, which stays psycopg's to close."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return  # no longer a socket: nothing to interrupt
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
    with database.wrap_database_errors:
        fd = database.connection.pgconn.socket
    watchdog.start(Query(time.monotonic() + seconds, fd))
    try:
        result = execute(sql, params, many, context)
    except OperationalError as exc:
        query = watchdog.end()
        if query is None or not query.interrupted:
            raise
        database.close()  # mid-query in an unknown state; the next request opens a fresh connection
        raise OperationalError(f"the database did not answer within {seconds:g} s") from exc
    except BaseException:
        watchdog.end()
        raise
    query = watchdog.end()
    if query is not None and query.interrupted:
        # The deadline passed as the answer arrived: the socket is shut, so the connection is of no further use.
        database.close()
        raise OperationalError(f"the database did not answer within {seconds:g} s")
    return result


class QueryDeadlineMiddleware:
    """Every query of a request runs under query_deadline."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with connection.execute_wrapper(query_deadline):
            return self.get_response(request)
