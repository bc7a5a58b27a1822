"""The reply engine's raw SQL, where the ORM cannot say it: an aggregate locked FOR NO KEY UPDATE SKIP LOCKED in
one statement, INSERT ... SELECT FROM unnest(...), UPDATE ... FROM unnest(...), an upsert RETURNING on the wake-up
row.

SQL here only nominates candidates, a superset of the conversations with a due group; which groups are due is
decided in Python (scheduler.grouping), once.
"""

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connection

from chat.models import Conversation, Message

if TYPE_CHECKING:
    from scheduler.replies import Reply

CLOSED = Conversation.Status.CLOSED

# Conversations with pending messages, their oldest arrival and how many wait: read from the partial index of
# pending messages, so its cost follows the number of waiting messages, not the size of the table.
_WAITING = """
WITH waiting AS MATERIALIZED (
    SELECT conversation_id, min(received_at) AS first_arrival, count(*) AS pending_count
    FROM chat_message WHERE pending GROUP BY conversation_id
)"""

# A conversation may have a due group only if its oldest pending message is `candidate_age` old (every group that
# ends by time ends after that), it holds max_messages pending, or it is CLOSED. An older group that ended while a
# newer one keeps growing is a candidate too, which a test of the lost-job case holds.
_CANDIDATE = """(
    w.first_arrival <= clock_timestamp() - %(candidate_age)s
    OR w.pending_count >= %(max_messages)s
    OR c.status = %(closed)s
)"""


# Named so bench/sweep_bench.py can print its plan. `c.id = ANY(ARRAY(...))` makes the planner probe the
# conversations by primary key: with a plain join it hashed the whole table (45 ms with 100,000 conversations,
# against 4 ms), and a LATERAL probe would lock every candidate instead of the batch.
CANDIDATES_LOCK_SQL = f"""{_WAITING}
SELECT c.id, c.status, w.first_arrival
FROM waiting w JOIN chat_conversation c ON c.id = w.conversation_id
WHERE c.id = ANY(ARRAY(SELECT conversation_id FROM waiting)) AND {_CANDIDATE}
  AND (%(after)s::timestamptz IS NULL OR w.first_arrival > %(after)s::timestamptz)
ORDER BY w.first_arrival
LIMIT %(limit)s
FOR NO KEY UPDATE OF c SKIP LOCKED
"""


def candidates_lock(
    *, limit: int, after: datetime | None, candidate_age: timedelta, max_messages: int
) -> list[tuple[uuid.UUID, str, datetime]]:
    """Lock up to `limit` candidate conversations FOR NO KEY UPDATE, oldest waiting message first, skipping those a
    webhook or another batch holds; only those whose oldest pending arrival is after `after`, when given (where
    the previous batch of a chain ended). Returns (id, status, oldest pending arrival) for each, in that order.

    A conversation a NEW_MESSAGE holds FOR SHARE is skipped, so every message of a locked conversation has
    committed, and a message arriving now waits for this transaction's commit."""
    with connection.cursor() as cursor:
        cursor.execute(
            CANDIDATES_LOCK_SQL,
            {
                "candidate_age": candidate_age,
                "max_messages": max_messages,
                "closed": CLOSED,
                "after": after,
                "limit": limit,
            },
        )
        return cursor.fetchall()


def candidates_outlook(
    *, candidate_age: timedelta, max_messages: int, since: datetime | None = None
) -> tuple[bool, datetime | None, datetime]:
    """Without locking: whether any conversation is a candidate now; when the next one becomes one by time after
    `since` (default: now), its oldest pending arrival plus `candidate_age`, None when none does; and the database
    clock. A batch passes its transaction's start, so a conversation that became a candidate while it ran (after
    its claim) is woken for at once."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""{_WAITING}
            SELECT coalesce(bool_or({_CANDIDATE}), false),
                   min(w.first_arrival) FILTER (
                       WHERE w.first_arrival > coalesce(%(since)s::timestamptz, clock_timestamp()) - %(candidate_age)s
                       AND NOT (w.pending_count >= %(max_messages)s OR c.status = %(closed)s)
                   ) + %(candidate_age)s,
                   clock_timestamp()
            FROM waiting w JOIN chat_conversation c ON c.id = w.conversation_id
            WHERE c.id = ANY(ARRAY(SELECT conversation_id FROM waiting))
            """,
            {"candidate_age": candidate_age, "max_messages": max_messages, "closed": CLOSED, "since": since},
        )
        return cursor.fetchone()


def database_now() -> datetime:
    """The database clock, clock_timestamp(): the one every window is measured on."""
    return database_clock()[0]


def database_clock() -> tuple[datetime, datetime]:
    """The database clock, and when the current transaction started on it (now())."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp(), now()")
        return cursor.fetchone()


def replies_insert(replies: "list[Reply]") -> None:
    """Insert OUTBOUND messages, one per reply, in one statement. Through unnest(...), not bulk_create(): Django
    builds and binds nine parameters per row, 80 ms of Python for 500 replies against 5 ms here (measured
    in-process with bench/capacity_bench.py's backlog), the largest part of a batch."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending, send_reason)
            SELECT r.id, r.conversation_id, %s, r.content, r.generated_at, r.generated_at, false, r.send_reason
            FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::timestamptz[], %s::text[])
                 AS r (id, conversation_id, content, generated_at, send_reason)
            """,
            [
                Message.Type.OUTBOUND,
                [reply.id for reply in replies],
                [reply.conversation_id for reply in replies],
                [reply.content for reply in replies],
                [reply.generated_at for reply in replies],
                [reply.send_reason for reply in replies],
            ],
        )


def wakeup_forget(at: datetime) -> None:
    """Forget the recorded wake-up `at` (its job could not be enqueued), so the next request is not held back."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scheduler_replywakeup WHERE wake_at = %s", [at])


def messages_mark_answered(message_ids: list[uuid.UUID], reply_ids: list[uuid.UUID]) -> int:
    """Clear `pending` and set `reply_id` on each message, pairwise, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE chat_message m SET pending = false, reply_id = answered.reply_id
            FROM unnest(%s::uuid[], %s::uuid[]) AS answered (id, reply_id)
            WHERE m.id = answered.id
            """,
            [message_ids, reply_ids],
        )
        return cursor.rowcount


def wakeup_record(*, at: datetime, woken_for: datetime | None) -> float | None:
    """Record `at` as the next wake-up of the reply engine unless one is already scheduled at or before it; returns
    the seconds until `at` (0 when past) when the caller must schedule it, None when an earlier one stands. A
    recorded wake-up that has passed is spent, and so is `woken_for`, the one whose job is asking (it may have
    fired a hair early by another host's clock). One statement (an upsert, so the row needs no seeding)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO scheduler_replywakeup AS w (id, wake_at) VALUES (1, %(at)s)
            ON CONFLICT (id) DO UPDATE SET wake_at = excluded.wake_at
            WHERE w.wake_at <= clock_timestamp() OR w.wake_at > excluded.wake_at OR w.wake_at = %(woken_for)s
            RETURNING greatest(0, extract(epoch FROM %(at)s - clock_timestamp()))
            """,
            {"at": at, "woken_for": woken_for},
        )
        row = cursor.fetchone()
    return None if row is None else float(row[0])
