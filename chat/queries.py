"""The raw SQL of the chat app, each statement where the ORM cannot say it (a row lock in a CTE, an INSERT ... ON
CONFLICT ... RETURNING, an UPDATE ... RETURNING) or, once, where its figure is written beside it. Everything else
goes through the ORM; rows become model instances through Manager.raw().

The driver (psycopg 3 with server-side binding, see settings) prepares these statements by itself once a
connection has run them a few times, as it does the ORM's.
"""

import uuid
from datetime import datetime

from django.db import connection

from chat.models import MESSAGE_ORDER, Conversation, Message, ParkedMessage
from chat.reply_timing import GroupRules

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
    """Close the conversation if it is OPEN (else None), and make its waiting messages due now. The lock waits for
    every NEW_MESSAGE in flight (they hold it too): a message either commits before the close, and is listed by
    the next statement, or sees the conversation CLOSED. The row is locked in a subquery, so closed_at is read on
    the database clock after the wait: PostgreSQL computes an UPDATE's new row before it waits for a lock on the
    old one."""
    rows = Conversation.objects.raw(
        """
        UPDATE chat_conversation c
        SET status = %s, closed_at = locked.at, updated_at = locked.at, closed_event_at = %s,
            reply_due_at = CASE WHEN c.reply_due_at IS NOT NULL THEN least(c.reply_due_at, locked.at) END
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
    *, message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime, rules: GroupRules
) -> bool:
    """Insert a pending INBOUND message if its conversation exists and is OPEN and the id is new in both tables;
    True when it did. Brings the conversation's reply_due_at forward when this message can make a group due
    sooner: the first of a group, its arrival plus the shortest wait; the one that fills a group (by the count of
    waiting messages, at least the group's size), its arrival. Locks the conversation FOR NO KEY UPDATE until the
    transaction ends, so a reply batch (which skips it) and a close wait for the message and see it, and two
    messages of one conversation take turns. One round trip, one commit; the conversation row is written only
    when its moment moves (about once per group)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH conversation AS (
                SELECT id, reply_due_at FROM chat_conversation WHERE id = %(conversation)s AND status = %(open)s
                FOR NO KEY UPDATE
            ), inserted AS (
                INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
                SELECT %(id)s, conversation.id, %(inbound)s, %(content)s, %(event_at)s, clock_timestamp(), true
                FROM conversation
                WHERE NOT EXISTS (SELECT 1 FROM chat_parkedmessage p WHERE p.id = %(id)s AND p.state <> %(attached)s)
                ON CONFLICT (id) DO NOTHING
                RETURNING id, received_at
            ), due AS (
                -- CASE stops at the first true branch: the count runs only within a group not yet due, and reads
                -- at most the messages that fill one.
                SELECT c.id, CASE
                    WHEN c.reply_due_at IS NULL AND %(max_messages)s > 1 THEN i.received_at + %(first_due_after)s
                    WHEN c.reply_due_at IS NULL THEN i.received_at
                    WHEN c.reply_due_at <= i.received_at THEN NULL
                    WHEN (
                        SELECT count(*) FROM (
                            SELECT FROM chat_message m WHERE m.conversation_id = c.id AND m.pending
                            LIMIT %(max_messages)s
                        ) waiting
                    ) + 1 >= %(max_messages)s THEN i.received_at
                END AS at
                FROM conversation c, inserted i
            ), moved AS (
                UPDATE chat_conversation c SET reply_due_at = due.at FROM due WHERE c.id = due.id AND due.at IS NOT NULL
            )
            SELECT id FROM inserted
            """,
            {
                "conversation": conversation_id,
                "open": OPEN,
                "id": message_id,
                "inbound": Message.Type.INBOUND,
                "content": content,
                "event_at": event_at,
                "attached": ParkedMessage.State.ATTACHED,
                "max_messages": rules.max_messages,
                "first_due_after": rules.first_due_after,
            },
        )
        return cursor.fetchone() is not None


def conversation_status_for_share(conversation_id: uuid.UUID) -> str | None:
    """The conversation's status, locked FOR SHARE until the transaction ends (None when it does not exist): the
    careful path of a NEW_MESSAGE, which stores nothing, waits for what holds the conversation."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM chat_conversation WHERE id = %s FOR SHARE", [conversation_id])
        row = cursor.fetchone()
    return row[0] if row else None


def conversations_lock(conversation_ids: list[uuid.UUID]) -> None:
    """Lock several conversations as a NEW_MESSAGE locks its own (to attach parked messages to them); in id order,
    so two callers never deadlock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM chat_conversation WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", [conversation_ids]
        )


def conversations_due_from_pending(conversation_ids: list[uuid.UUID], rules: GroupRules) -> None:
    """Bring each conversation's reply_due_at forward to the bound its waiting messages give, read whole: the
    oldest arrival plus the shortest wait; the newest arrival once as many wait as fill a group; or now, for a
    CLOSED conversation. The same bound a NEW_MESSAGE keeps one message at a time (message_insert_if_open), for
    messages that arrive otherwise (attached parked messages). Run with the conversations locked."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE chat_conversation c SET reply_due_at = least(c.reply_due_at, CASE
                WHEN c.status = %(closed)s THEN clock_timestamp()
                WHEN w.waiting >= %(max_messages)s THEN w.newest
                ELSE w.oldest + %(first_due_after)s
            END)
            FROM (
                SELECT conversation_id, count(*) AS waiting, min(received_at) AS oldest, max(received_at) AS newest
                FROM chat_message WHERE pending AND conversation_id = ANY(%(ids)s) GROUP BY conversation_id
            ) w
            WHERE c.id = w.conversation_id
            """,
            {
                "closed": CLOSED,
                "max_messages": rules.max_messages,
                "first_due_after": rules.first_due_after,
                "ids": conversation_ids,
            },
        )


def conversations_lock_for_erasure(conversation_ids: list[uuid.UUID]) -> None:
    """Lock these conversations FOR UPDATE, the lock a DELETE takes: it waits for every NEW_MESSAGE, close and
    reply batch holding one, and makes the next ones wait, then find it gone. The messages parked for them first,
    in the order attaching takes them (parked rows, then conversations, each in id order), so the two never
    deadlock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM chat_parkedmessage WHERE conversation_id = ANY(%s) ORDER BY id FOR UPDATE",
            [conversation_ids],
        )
        cursor.execute("SELECT 1 FROM chat_conversation WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [conversation_ids])


def conversations_lock_inactive(*, days: float, limit: int) -> list[uuid.UUID]:
    """Lock up to `limit` conversations whose last activity (updated_at) is more than `days` old and with no
    message waiting for a reply (an INBOUND does not move updated_at), oldest first, skipping those in use:
    conversation_activity_idx serves it, compared with now(), not a volatile clock."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id FROM chat_conversation
            WHERE updated_at < now() - make_interval(secs => %s) AND reply_due_at IS NULL
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
