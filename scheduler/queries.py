"""The reply engine's raw SQL, where the ORM cannot say it: a claim FOR NO KEY UPDATE SKIP LOCKED with the database
clock, INSERT ... SELECT FROM unnest(...), UPDATE ... FROM unnest(...).

Every read goes through the partial index of conversations with messages waiting (conversation_due_idx), compared
with statement_timestamp(): stable within a statement, so an index condition (the volatile clock_timestamp() would
be a filter on every row), and fresh for each statement. Its cost follows what is due, not what is stored or
waiting. The rows say when to look; which groups are due is decided in Python (scheduler.grouping), once.
"""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from django.db import connection

from chat.models import Message

if TYPE_CHECKING:
    from scheduler.replies import Reply


class Claimed(NamedTuple):
    """A claimed conversation: when it closed (None: it is open) and its own reply rules (None: the service's)."""

    closed_at: datetime | None
    window_seconds: float | None
    max_wait_seconds: float | None
    max_messages: int | None


# Claimed's fields, as Conversation's columns, in the same order.
CLAIMED_FIELDS = ("closed_at", "reply_window_seconds", "reply_max_wait_seconds", "reply_max_messages")

# Named so the benchmarks can print its plan. The conversations whose moment has come, longest due first, locked
# without waiting for those a webhook or another batch holds; the database clock read after the lock.
CLAIM_SQL = f"""
SELECT c.id, {", ".join(f"c.{column}" for column in CLAIMED_FIELDS)}, clock_timestamp()
FROM chat_conversation c
WHERE c.reply_due_at <= statement_timestamp()
ORDER BY c.reply_due_at
LIMIT %(limit)s
FOR NO KEY UPDATE SKIP LOCKED
"""


def conversations_claim(*, limit: int) -> tuple[dict[uuid.UUID, Claimed], datetime | None]:
    """Lock up to `limit` due conversations FOR NO KEY UPDATE SKIP LOCKED; their statuses and rules, and the
    database clock read after the lock (None when none was due). A NEW_MESSAGE holds its conversation until it
    commits, so every message of a claimed conversation has committed, and one arriving now waits for this
    transaction."""
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"limit": limit})
        rows = cursor.fetchall()
    return {id_: Claimed(*fields) for id_, *fields, _ in rows}, (rows[0][-1] if rows else None)


def wake_countdowns(*, horizon: float, step: float) -> list[float]:
    """When a reply batch should wake in the next `horizon` seconds: the moments conversations fall due, rounded up
    to `step` seconds (0 for what is due already). Reads the index entries due within the horizon only."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT greatest(0, ceil(extract(epoch FROM reply_due_at - statement_timestamp()) / %(step)s))
            FROM chat_conversation
            WHERE reply_due_at < statement_timestamp() + make_interval(secs => %(horizon)s)
            """,
            {"horizon": horizon, "step": step},
        )
        return sorted(float(slots) * step for (slots,) in cursor.fetchall())


def replies_insert(replies: "list[Reply]", traceparents: list[str]) -> None:
    """Insert OUTBOUND messages, one per reply (with its span's traceparent, pairwise; '' when untraced), in one
    statement. Through unnest(...), not bulk_create(): Django builds and binds every parameter of every row in
    Python, which cost more than the rest of a batch (bench/README.md, "Measured in-process")."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO chat_message
                (id, conversation_id, type, author, content, timestamp, received_at, pending, send_reason, due_at,
                 traceparent)
            SELECT r.id, r.conversation_id, %s, %s, r.content, r.generated_at, r.generated_at, false, r.send_reason,
                   r.due_at, r.traceparent
            FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::timestamptz[], %s::text[], %s::timestamptz[],
                        %s::text[])
                 AS r (id, conversation_id, content, generated_at, send_reason, due_at, traceparent)
            """,
            [
                Message.Type.OUTBOUND,
                Message.Author.BOT,
                [reply.id for reply in replies],
                [reply.conversation_id for reply in replies],
                [reply.content for reply in replies],
                [reply.generated_at for reply in replies],
                [reply.send_reason for reply in replies],
                [reply.due_at for reply in replies],
                traceparents,
            ],
        )


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


def conversations_settle(
    conversation_ids: list[uuid.UUID], due_at: list[datetime | None], replied: list[bool], *, now: datetime
) -> None:
    """For each claimed conversation, in one statement: its next moment (None: nothing waits any more), and
    updated_at moved to `now` when it got a reply."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE chat_conversation c
            SET reply_due_at = s.due_at,
                updated_at = CASE WHEN s.replied THEN %s ELSE c.updated_at END
            FROM unnest(%s::uuid[], %s::timestamptz[], %s::bool[]) AS s (id, due_at, replied)
            WHERE c.id = s.id
            """,
            [now, conversation_ids, due_at, replied],
        )


def conversations_postpone(conversation_ids: list[uuid.UUID], seconds: float) -> None:
    """Move the moment of conversations whose rows fail a batch back by `seconds`, so they stop heading every one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_conversation SET reply_due_at = clock_timestamp() + make_interval(secs => %s) "
            "WHERE id = ANY(%s) AND reply_due_at IS NOT NULL",
            [seconds, conversation_ids],
        )
