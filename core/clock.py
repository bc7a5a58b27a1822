"""The database clock: every window in this service is measured with it."""

from datetime import datetime

from django.db import connection, models


class ClockTimestamp(models.Func):
    """PostgreSQL's clock_timestamp(): the wall clock when the statement runs, not when the transaction began.

    now() would stamp a message with the start of its transaction, which is earlier than the moment the row
    became visible when the transaction had to wait for a lock.
    """

    template = "clock_timestamp()"
    output_field = models.DateTimeField()


def database_now() -> datetime:
    """The database clock, clock_timestamp(): the one every window is measured on."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]
