"""The raw SQL of the service, each statement where the ORM cannot say it (a row lock FOR SHARE, an INSERT ... ON
CONFLICT ... RETURNING, an UPDATE ... RETURNING) or, once, where its figure is written beside it. Everything else
goes through the ORM; rows become model instances through Manager.raw().

The driver (psycopg 3 with server-side binding, see settings) prepares these statements by itself once a
connection has run them a few times, as it does the ORM's.
"""

import uuid
from datetime import datetime

from django.db import connection

from chat.models import MESSAGE_ORDER, Conversation, Message, ParkedMessage

OPEN, CLOSED = Conversation.Status.OPEN, Conversation.Status.CLOSED


def conversation_insert(*, conversation_id: uuid.UUID, event_at: datetime) -> Conversation | None:
    """Insert an OPEN conversation unless the id exists (then None): the primary key picks the one winner of
    concurrent duplicates. Both timestamps are the arrival time on the database clock. The row comes back with
    `has_parked`: whether messages are parked for it, so the common case needs no second query."""
    rows = Conversation.objects.raw(
        """
        INSERT INTO chat_conversation (id, status, opened_event_at, created_at, updated_at)
        SELECT %s, %s, %s, arrival, arrival FROM clock_timestamp() AS arrival
        ON CONFLICT (id) DO NOTHING
        RETURNING *, EXISTS (
            SELECT 1 FROM chat_parkedmessage p WHERE p.conversation_id = chat_conversation.id AND p.state = %s
        ) AS has_parked
        """,
        [conversation_id, OPEN, event_at, ParkedMessage.State.PARKED],
    )
    return next(iter(rows), None)


def conversation_close(*, conversation_id: uuid.UUID, event_at: datetime) -> Conversation | None:
    """Close the conversation if it is OPEN (else None). The lock waits for every NEW_MESSAGE in flight (they
    hold FOR SHARE): a message either commits before the close, and is listed by the next statement, or sees the
    conversation CLOSED. The row is locked in a subquery, so closed_at is read on the database clock after the
    wait: PostgreSQL computes an UPDATE's new row before it waits for a lock on the old one."""
    rows = Conversation.objects.raw(
        """
        UPDATE chat_conversation c
        SET status = %s, closed_at = locked.at, updated_at = locked.at, closed_event_at = %s
        FROM (
            SELECT id, clock_timestamp() AS at
            FROM (SELECT id FROM chat_conversation WHERE id = %s AND status = %s FOR NO KEY UPDATE) row_lock
        ) locked
        WHERE c.id = locked.id
        RETURNING c.*
        """,
        [CLOSED, event_at, conversation_id, OPEN],
    )
    return next(iter(rows), None)


def conversation_messages(
    conversation_id: uuid.UUID, *, limit: int, before: tuple[datetime, datetime, uuid.UUID] | None = None
) -> list[Message]:
    """The newest `limit` messages of a conversation (those before `before`, a MESSAGE_ORDER key, if given), in
    MESSAGE_ORDER; one more when there are older ones, which tells the caller so. Through Manager.raw() because
    the ORM's query spends most of its time compiling the same SQL again (340 us a call against 140 us here,
    measured in-process on this machine), on every CLOSE_CONVERSATION and every conversation read; and the
    cursor is a row comparison, which the ORM cannot say."""
    columns = ", ".join(connection.ops.quote_name(column) for column in MESSAGE_ORDER)
    newest_first = ", ".join(f"{connection.ops.quote_name(column)} DESC" for column in MESSAGE_ORDER)
    after_cursor = f"AND ({columns}) < (%s, %s, %s)" if before else ""
    sql = f"SELECT * FROM chat_message WHERE conversation_id = %s {after_cursor} ORDER BY {newest_first} LIMIT %s"
    return list(Message.objects.raw(sql, [conversation_id, *(before or ()), limit + 1]))[::-1]


def message_insert_if_open(
    *, message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime
) -> bool:
    """Insert a pending INBOUND message if its conversation exists and is OPEN and the id is new in both tables;
    True when it did. Holds FOR SHARE on the conversation until the transaction ends, so a reply job (FOR NO KEY
    UPDATE) waits for the message and sees it, and a close waits for it too. One round trip, one commit."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH conversation AS (SELECT id FROM chat_conversation WHERE id = %s AND status = %s FOR SHARE)
            INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
            SELECT %s, conversation.id, %s, %s, %s, clock_timestamp(), true
            FROM conversation
            WHERE NOT EXISTS (SELECT 1 FROM chat_parkedmessage p WHERE p.id = %s AND p.state <> %s)
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """,
            [
                conversation_id,
                OPEN,
                message_id,
                Message.Type.INBOUND,
                content,
                event_at,
                message_id,
                ParkedMessage.State.ATTACHED,
            ],
        )
        return cursor.fetchone() is not None


def conversation_status_for_share(conversation_id: uuid.UUID) -> str | None:
    """The conversation's status, locked FOR SHARE until the transaction ends (None when it does not exist):
    the careful path of a NEW_MESSAGE holds the same lock as the fast one."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM chat_conversation WHERE id = %s FOR SHARE", [conversation_id])
        row = cursor.fetchone()
    return row[0] if row else None


def conversations_lock_for_share(conversation_ids: list[uuid.UUID]) -> None:
    """FOR SHARE on several conversations, as a NEW_MESSAGE holds on its own (attaching parked messages)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM chat_conversation WHERE id = ANY(%s) FOR SHARE", [conversation_ids])


def conversations_lock_for_erasure(conversation_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Lock these conversations FOR UPDATE, the lock a DELETE takes: it waits for every NEW_MESSAGE (FOR SHARE) and
    reply batch (FOR NO KEY UPDATE) holding one, and makes the next ones wait, then find it gone. Returns the ids
    that exist."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM chat_conversation WHERE id = ANY(%s) FOR UPDATE", [conversation_ids])
        return [row[0] for row in cursor.fetchall()]


def conversations_lock_inactive(*, days: float, limit: int) -> list[uuid.UUID]:
    """Lock up to `limit` conversations whose last activity (updated_at) is more than `days` old, oldest first,
    skipping those in use: conversation_activity_idx serves it, compared with now(), not a volatile clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id FROM chat_conversation
            WHERE updated_at < now() - make_interval(secs => %s)
            ORDER BY updated_at, id
            LIMIT %s
            FOR UPDATE SKIP LOCKED
            """,
            [days * 86400, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def conversations_delete(conversation_ids: list[uuid.UUID]) -> tuple[int, int, int]:
    """Delete conversations with their messages and parked messages in one statement; the database cascades to the
    replies' deliveries (delivery's foreign key). Returns (conversations, messages, parked messages) deleted. A
    conversation's messages go together, so the replies they point at go in the same statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH messages AS (DELETE FROM chat_message WHERE conversation_id = ANY(%(ids)s) RETURNING 1),
                 parked AS (DELETE FROM chat_parkedmessage WHERE conversation_id = ANY(%(ids)s) RETURNING 1),
                 conversations AS (DELETE FROM chat_conversation WHERE id = ANY(%(ids)s) RETURNING 1)
            SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages), (SELECT count(*) FROM parked)
            """,
            {"ids": conversation_ids},
        )
        return cursor.fetchone()
