"""REPLY_WEBHOOK_RATE: at most that many POSTs a second to the receiver, shared by every delivery process.

The rate is a booking of POST slots on the receiver's row (ReceiverCircuit.paced_until, the end of the slots booked
so far), the generic cell rate algorithm: a batch locks the row, sees how far ahead the slots are booked, claims
only the replies it can POST within its send window, books one slot for each (starting where the booking ends, or
now), and POSTs each at its slot (delivery.client). Rows it could not claim stay pending and unclaimed: waiting for
the rate costs no attempt. A batch that finds the slots booked further ahead than BOOK_AHEAD_SECONDS claims
nothing; delivery's periodic step wakes another within the second, before the booked slots run out.

PostgreSQL rather than a Redis counter: the booking commits with the claim, in one transaction, so a slot is never
booked for a reply no batch holds, nor a reply held without its slot; and the row is already the receiver's.
"""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

# A batch claims only while the booked slots end less than this far ahead (half the send window: the slots it
# books then end within it).
BOOK_AHEAD_SECONDS = 2.0


@dataclass(frozen=True)
class Booking:
    # The first slot (time.monotonic()), and seconds between slots.
    first: float
    interval: float
    # Seconds from the booking to the end of the slots booked so far (this batch's included).
    ends_in: float


def pace_rate() -> float | None:
    """POSTs a second, None: no limit."""
    return settings.REPLY_WEBHOOK_RATE


def pace_room(send_window: float) -> int | None:
    """Inside the batch's transaction: lock the receiver's row and say how many slots fit in the batch's send window
    after the ones booked; None when those are booked too far ahead to claim."""
    with connection.cursor() as cursor:
        # The row first, should it be missing: a lock on no row would let every batch book from now at once.
        cursor.execute(
            "INSERT INTO delivery_receivercircuit (id, failures, last_error) VALUES (1, 0, '') ON CONFLICT DO NOTHING"
        )
        cursor.execute(
            "SELECT greatest(extract(epoch FROM paced_until - clock_timestamp()), 0) "
            "FROM delivery_receivercircuit WHERE id = 1 FOR NO KEY UPDATE"
        )
        lead = float(cursor.fetchone()[0] or 0)
    if lead > BOOK_AHEAD_SECONDS:
        return None
    return max(1, math.floor(pace_rate() * (send_window - lead)))


def pace_book(count: int) -> Booking:
    """Inside pace_room's transaction, the row it made sure of locked: book `count` slots after the ones booked so
    far."""
    rate = pace_rate()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE delivery_receivercircuit
            SET paced_until = greatest(paced_until, clock_timestamp()) + make_interval(secs => %(seconds)s)
            WHERE id = 1
            RETURNING extract(epoch FROM paced_until - clock_timestamp())
            """,
            {"seconds": count / rate},
        )
        ends_in = float(cursor.fetchone()[0])
    # The slots count from the booking, not from when the batch gets to its POSTs (signing, enqueueing): the next
    # batch's slots start where these end.
    booked_at = time.monotonic()
    return Booking(booked_at + max(0.0, ends_in - count / rate), 1 / rate, ends_in)
