"""The raw SQL of the chat app, each statement where the ORM cannot say it (a row lock in a CTE, an INSERT ... ON
CONFLICT ... RETURNING, an UPDATE ... RETURNING) or, once, where its figure is written beside it. Everything else
goes through the ORM; rows become model instances through Manager.raw().

The driver (psycopg 3 with server-side binding, see settings) prepares these statements by itself once a
connection has run them a few times, as it does the ORM's.
"""

import uuid
from datetime import datetime
from typing import NamedTuple

from django.db import connection

from chat.models import MESSAGE_ORDER, Conversation, Message, ParkedMessage
from chat.reply_timing import GroupRules

OPEN, CLOSED = Conversation.Status.OPEN, Conversation.Status.CLOSED


# A conversation's own rules over the service's, in SQL (GroupRules.overridden says the same in Python), for a
# conversation row aliased `c`; the parameters come from rules_params().
OWN_MAX_MESSAGES = "coalesce(c.reply_max_messages, %(max_messages)s)"
OWN_FIRST_DUE_AFTER = """make_interval(secs => least(coalesce(c.reply_window_seconds, %(window)s),
                                                   coalesce(c.reply_max_wait_seconds, %(max_wait)s)))"""


def rules_params(rules: GroupRules) -> dict[str, float | int]:
    return {
        "window": rules.window.total_seconds(),
        "max_wait": rules.max_wait.total_seconds(),
        "max_messages": rules.max_messages,
    }


# An OPEN conversation (parameters: its id, then OPEN) locked in a subquery, with the database clock read once the
# lock is granted: PostgreSQL computes an UPDATE's new row before it waits for a lock on the old one.
LOCKED_OPEN = """(
            SELECT id, clock_timestamp() AS at
            FROM (SELECT id FROM chat_conversation WHERE id = %s AND status = %s FOR NO KEY UPDATE) row_lock
        ) locked"""


class InsertedMessage(NamedTuple):
    """How an INBOUND message was stored: it asked for a person and paused the bot, or a person has it."""

    handoff: bool
    taken_over: bool


def conversation_insert(
    *, conversation_id: uuid.UUID, event_at: datetime, reply_rules: dict[str, float | int] | None = None
) -> Conversation | None:
    """Insert an OPEN conversation unless the id exists (then None): the primary key picks the one winner of
    concurrent duplicates. Both timestamps are the arrival time on the database clock; `reply_rules` are its own
    (window_seconds, max_wait_seconds, max_messages, each optional). The row comes back with `has_parked`: whether
    messages are parked for it, so the common case needs no second query."""
    rules = reply_rules or {}
    rows = Conversation.objects.raw(
        """
        INSERT INTO chat_conversation (id, status, opened_event_at, created_at, updated_at, reply_window_seconds,
                                       reply_max_wait_seconds, reply_max_messages)
        SELECT %s, %s, %s, arrival, arrival, %s, %s, %s FROM clock_timestamp() AS arrival
        ON CONFLICT (id) DO NOTHING
        RETURNING *, EXISTS (
            SELECT 1 FROM chat_parkedmessage p WHERE p.conversation_id = chat_conversation.id AND p.state = %s
        ) AS has_parked
        """,
        [
            conversation_id,
            OPEN,
            event_at,
            rules.get("window_seconds"),
            rules.get("max_wait_seconds"),
            rules.get("max_messages"),
            ParkedMessage.State.PARKED,
        ],
    )
    return next(iter(rows), None)


def conversation_close(*, conversation_id: uuid.UUID, event_at: datetime) -> Conversation | None:
    """Close the conversation if it is OPEN (else None), make its waiting messages due now, and end a takeover
    (nobody answers a closed conversation; what a person had stays theirs). The lock waits for
    every NEW_MESSAGE in flight (they hold it too): a message either commits before the close, and is listed by
    the next statement, or sees the conversation CLOSED. The row is locked in a subquery, so closed_at is read on
    the database clock after the wait: PostgreSQL computes an UPDATE's new row before it waits for a lock on the
    old one."""
    rows = Conversation.objects.raw(
        f"""
        UPDATE chat_conversation c
        SET status = %s, closed_at = locked.at, updated_at = locked.at, closed_event_at = %s,
            reply_due_at = CASE WHEN c.reply_due_at IS NOT NULL THEN least(c.reply_due_at, locked.at) END,
            bot_paused_until = NULL
        FROM {LOCKED_OPEN}
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
    the ORM's query spends most of its time compiling the same SQL again (bench/README.md, "Measured in-process"),
    on every CLOSE_CONVERSATION and every conversation read; and the cursor is a row comparison, which the ORM
    cannot say."""
    columns = ", ".join(connection.ops.quote_name(column) for column in MESSAGE_ORDER)
    newest_first = ", ".join(f"{connection.ops.quote_name(column)} DESC" for column in MESSAGE_ORDER)
    after_cursor = f"AND ({columns}) < (%s, %s, %s)" if before else ""
    sql = f"SELECT * FROM chat_message WHERE conversation_id = %s {after_cursor} ORDER BY {newest_first} LIMIT %s"
    return list(Message.objects.raw(sql, [conversation_id, *(before or ()), limit + 1]))[::-1]


def message_insert_if_open(
    *,
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    content: str,
    event_at: datetime,
    rules: GroupRules,
    handoff: bool = False,
    pause_seconds: float = 0,
    traceparent: str = "",
) -> "InsertedMessage | None":
    """Insert an INBOUND message if its conversation exists and is OPEN and the id is new in both tables (else
    None). Pending, unless a person has the conversation at its arrival (bot_paused_until after it): then taken
    over, never answered. Brings the conversation's reply_due_at forward when this message can make a group due
    sooner: the first of a group, its arrival plus the shortest wait; the one that fills a group (by the count of
    waiting messages, at least the group's size) or asks for a person (`handoff`), its arrival. A handoff also
    pauses the bot for `pause_seconds` from the arrival. The conversation's own rules come before `rules`.

    Locks the conversation FOR NO KEY UPDATE until the transaction ends, so a reply batch (which skips it) and a
    close wait for the message and see it, and two messages of one conversation take turns. One round trip, one
    commit; the conversation row is written only when its moment moves (about once per group)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH conversation AS (
                SELECT c.id, c.reply_due_at, c.bot_paused_until, {OWN_MAX_MESSAGES} AS max_messages,
                       {OWN_FIRST_DUE_AFTER} AS first_due_after
                FROM chat_conversation c WHERE c.id = %(conversation)s AND c.status = %(open)s
                FOR NO KEY UPDATE
            ), arrived AS (
                -- The clock read in the select list of the locked row, so after any wait for the lock (a volatile
                -- function keeps this CTE apart: a clock in FROM could be read before the lock is granted).
                SELECT c.*, clock_timestamp() AS at FROM conversation c
            ), inserted AS (
                INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending,
                                          taken_over, handoff, traceparent)
                SELECT %(id)s, a.id, %(inbound)s, %(content)s, %(event_at)s, a.at, NOT paused, paused,
                       %(handoff)s AND NOT paused, %(traceparent)s
                FROM arrived a, LATERAL (SELECT coalesce(a.bot_paused_until > a.at, false) AS paused) pause
                WHERE NOT EXISTS (SELECT 1 FROM chat_parkedmessage p WHERE p.id = %(id)s AND p.state <> %(attached)s)
                ON CONFLICT (id) DO NOTHING
                RETURNING id, received_at, pending, handoff
            ), due AS (
                -- CASE stops at the first true branch: the count runs only within a group not yet due, and reads
                -- at most the messages that fill one.
                SELECT c.id, CASE
                    WHEN NOT i.pending THEN NULL
                    WHEN c.reply_due_at <= i.received_at THEN NULL
                    WHEN i.handoff OR c.max_messages <= 1 THEN i.received_at
                    WHEN c.reply_due_at IS NULL THEN i.received_at + c.first_due_after
                    WHEN (
                        SELECT count(*) FROM (
                            SELECT FROM chat_message m WHERE m.conversation_id = c.id AND m.pending
                            LIMIT c.max_messages
                        ) waiting
                    ) + 1 >= c.max_messages THEN i.received_at
                END AS at,
                CASE WHEN i.handoff THEN i.received_at + make_interval(secs => %(pause_seconds)s) END AS paused_until,
                i.received_at AS paused_from
                FROM conversation c, inserted i
            ), moved AS (
                -- A handoff's pause is a takeover begun: a reader sees it, so updated_at moves with it.
                UPDATE chat_conversation c
                SET reply_due_at = coalesce(due.at, c.reply_due_at),
                    bot_paused_until = coalesce(due.paused_until, c.bot_paused_until),
                    updated_at = CASE WHEN due.paused_until IS NOT NULL THEN due.paused_from ELSE c.updated_at END
                FROM due WHERE c.id = due.id AND (due.at IS NOT NULL OR due.paused_until IS NOT NULL)
            )
            SELECT handoff, NOT pending FROM inserted
            """,
            {
                "conversation": conversation_id,
                "open": OPEN,
                "id": message_id,
                "inbound": Message.Type.INBOUND,
                "content": content,
                "event_at": event_at,
                "attached": ParkedMessage.State.ATTACHED,
                **rules_params(rules),
                "handoff": handoff,
                "pause_seconds": pause_seconds,
                "traceparent": traceparent,
            },
        )
        row = cursor.fetchone()
    return None if row is None else InsertedMessage(*row)


def agent_message_insert_if_open(
    *, message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime, traceparent: str = ""
) -> datetime | None:
    """Insert an agent's OUTBOUND message if its conversation exists and is OPEN and the id is new in both tables;
    its arrival (database clock) when it did, else None. Locks the conversation as a NEW_MESSAGE does, until the
    transaction ends: the caller pauses the bot in the same transaction (conversation_pause_set, messages_take_over)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH conversation AS (
                SELECT id FROM chat_conversation WHERE id = %(conversation)s AND status = %(open)s FOR NO KEY UPDATE
            )
            INSERT INTO chat_message (id, conversation_id, type, author, content, timestamp, received_at, pending,
                                      traceparent)
            SELECT %(id)s, c.id, %(outbound)s, %(agent)s, %(content)s, %(event_at)s, clock_timestamp(), false,
                   %(traceparent)s
            FROM conversation c
            WHERE NOT EXISTS (SELECT 1 FROM chat_parkedmessage p WHERE p.id = %(id)s AND p.state <> %(attached)s)
            ON CONFLICT (id) DO NOTHING
            RETURNING received_at
            """,
            {
                "conversation": conversation_id,
                "open": OPEN,
                "id": message_id,
                "outbound": Message.Type.OUTBOUND,
                "agent": Message.Author.AGENT,
                "content": content,
                "event_at": event_at,
                "attached": ParkedMessage.State.ATTACHED,
                "traceparent": traceparent,
            },
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def conversation_pause_set(
    *, conversation_id: uuid.UUID, seconds: float, since: datetime | None = None, extend: bool
) -> Conversation | None:
    """Pause the bot of an OPEN conversation (else None) until `seconds` after `since` (default: now, on the
    database clock); with `extend`, never earlier than a pause already in force. The row comes back with
    `paused_before`: bot_paused_until as it was. Locks the conversation in a subquery, like a close, so the pause
    is computed after any wait; the caller takes the waiting messages over in a statement of its own
    (messages_take_over), which sees every message committed before this lock was granted."""
    rows = Conversation.objects.raw(
        """
        UPDATE chat_conversation c
        SET bot_paused_until = CASE WHEN %(extend)s THEN greatest(locked.before, pause.until) ELSE pause.until END,
            updated_at = locked.at
        FROM (
            SELECT id, bot_paused_until AS before, clock_timestamp() AS at
            FROM (
                SELECT id, bot_paused_until FROM chat_conversation WHERE id = %(id)s AND status = %(open)s
                FOR NO KEY UPDATE
            ) row_lock
        ) locked,
        LATERAL (SELECT coalesce(%(since)s::timestamptz, locked.at) + make_interval(secs => %(seconds)s) AS until) pause
        WHERE c.id = locked.id
        RETURNING c.*, locked.before AS paused_before
        """,
        {"id": conversation_id, "open": OPEN, "seconds": seconds, "since": since, "extend": extend},
    )
    return next(iter(rows), None)


def messages_take_over(conversation_ids: list[uuid.UUID]) -> int:
    """Hand to a person the waiting messages of paused conversations: those that arrived before the pause ends,
    except a group a handoff word asked to be answered (up to its latest handoff message), which the bot answers.
    Their conversations keep their reply_due_at, a lower bound: the next batch that looks finds nothing and clears
    it. Returns how many. Run with the conversations locked, in a statement after the lock was granted."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE chat_message m SET pending = false, taken_over = true
            FROM chat_conversation c
            WHERE c.id = ANY(%(ids)s) AND m.conversation_id = c.id AND m.pending
              AND m.received_at < c.bot_paused_until
              AND m.received_at > coalesce((
                  SELECT max(h.received_at) FROM chat_message h
                  WHERE h.conversation_id = c.id AND h.pending AND h.handoff
              ), '-infinity')
            """,
            {"ids": conversation_ids},
        )
        return cursor.rowcount


def conversation_pause_end(conversation_id: uuid.UUID) -> Conversation | None:
    """End the pause of an OPEN conversation at once (else None); its messages taken over stay with the person.
    updated_at moves only when a pause was in force."""
    rows = Conversation.objects.raw(
        f"""
        UPDATE chat_conversation c
        SET bot_paused_until = NULL,
            updated_at = CASE WHEN c.bot_paused_until > locked.at THEN locked.at ELSE c.updated_at END
        FROM {LOCKED_OPEN}
        WHERE c.id = locked.id
        RETURNING c.*
        """,
        [conversation_id, OPEN],
    )
    return next(iter(rows), None)


def conversation_status_for_share(conversation_id: uuid.UUID) -> str | None:
    """The conversation's status, locked FOR SHARE until the transaction ends (None when it does not exist): the
    careful path of a NEW_MESSAGE, which stores nothing, waits for what holds the conversation."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM chat_conversation WHERE id = %s FOR SHARE", [conversation_id])
        row = cursor.fetchone()
    return row[0] if row else None


def conversations_lock(conversation_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, datetime | None]]:
    """Lock several conversations as a NEW_MESSAGE locks its own (to attach parked messages to them), in id order
    so two callers never deadlock; returns each one's status and bot_paused_until."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, status, bot_paused_until FROM chat_conversation WHERE id = ANY(%s) ORDER BY id"
            " FOR NO KEY UPDATE",
            [conversation_ids],
        )
        return {id_: (status, until) for id_, status, until in cursor.fetchall()}


def conversations_pause_extend(paused_until: dict[uuid.UUID, datetime]) -> None:
    """Pause the bot of OPEN conversations until the given moments, never earlier than a pause in force."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE chat_conversation c
            SET bot_paused_until = greatest(c.bot_paused_until, p.until), updated_at = clock_timestamp()
            FROM unnest(%s::uuid[], %s::timestamptz[]) AS p (id, until)
            WHERE c.id = p.id AND c.status = %s
            """,
            [list(paused_until), list(paused_until.values()), OPEN],
        )


def conversations_due_from_pending(conversation_ids: list[uuid.UUID], rules: GroupRules) -> None:
    """Bring each conversation's reply_due_at forward to the bound its waiting messages give, read whole: now, for
    a CLOSED conversation; the first handoff message's arrival; the newest arrival once as many wait as fill a
    group; or the oldest arrival plus the shortest wait. Each conversation's own rules come before `rules`. The
    same bound a NEW_MESSAGE keeps one message at a time (message_insert_if_open), for messages that arrive
    otherwise (attached parked messages). Run with the conversations locked."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE chat_conversation c SET reply_due_at = least(c.reply_due_at, CASE
                WHEN c.status = %(closed)s THEN clock_timestamp()
                WHEN w.handoff IS NOT NULL THEN w.handoff
                WHEN w.waiting >= {OWN_MAX_MESSAGES} THEN w.newest
                ELSE w.oldest + {OWN_FIRST_DUE_AFTER}
            END)
            FROM (
                SELECT conversation_id, count(*) AS waiting, min(received_at) AS oldest, max(received_at) AS newest,
                       min(received_at) FILTER (WHERE handoff) AS handoff
                FROM chat_message WHERE pending AND conversation_id = ANY(%(ids)s) GROUP BY conversation_id
            ) w
            WHERE c.id = w.conversation_id
            """,
            {"closed": CLOSED, **rules_params(rules), "ids": conversation_ids},
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
