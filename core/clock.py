"""The database clock: every window in this service is measured with it."""

from django.db import models


class ClockTimestamp(models.Func):
    """PostgreSQL's clock_timestamp(): the wall clock when the statement runs, not when the transaction began.

    now() would stamp a message with the start of its transaction, which is earlier than the moment the row
    became visible when the transaction had to wait for a lock.
    """

    template = "clock_timestamp()"
    output_field = models.DateTimeField()
