"""The set-based SQL of reply delivery: claim a batch with what its POSTs need, settle it, expire and find due rows.
Each is one statement, whatever the batch's size (delivery.services holds the rules).

Due checks compare with statement_timestamp(): stable within a statement, so an index condition, where the volatile
clock_timestamp() is a filter PostgreSQL evaluates on every pending row, held ones included; and fresh for each
statement, where now() would stand still for a whole transaction."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

# Appended to last_error when a delivery gives up because it ran past give_up_at (by a retry or while held back).
GAVE_UP = " (gave up: past give_up_at)"

# The deliveries due longest, locked without waiting for the ones another batch holds, claimed (an attempt counted,
# the batch's token set, next_attempt_at pushed past the claim's end), and returned with the reply and the ids it
# answers, in the order they were written: everything the POSTs need in one round trip. Due longest first is
# oldest first for new replies, and it rotates the circuit's probes: a failed probe is due again at once, behind
# the replies that waited longer.
CLAIM_SQL = """
WITH claimed AS (
    UPDATE delivery_replydelivery d
    SET attempts = d.attempts + 1,
        claim_token = %(token)s,
        next_attempt_at = clock_timestamp() + make_interval(secs => %(claim_seconds)s)
    WHERE d.message_id = ANY(ARRAY(
        SELECT message_id FROM delivery_replydelivery
        WHERE state = 'pending' AND next_attempt_at <= statement_timestamp()
        ORDER BY next_attempt_at, message_id
        LIMIT %(limit)s
        FOR NO KEY UPDATE SKIP LOCKED
    ))
    RETURNING d.message_id, d.attempts, d.created_at
)
SELECT c.message_id, c.attempts, m.conversation_id, m.content, m.timestamp,
       ARRAY(
           SELECT a.id FROM chat_message a WHERE a.reply_id = c.message_id
           ORDER BY a.timestamp, a.received_at, a.id
       ),
       m.traceparent
FROM claimed c JOIN chat_message m ON m.id = c.message_id
ORDER BY c.created_at, c.message_id
"""

# Every outcome of a batch in one UPDATE. A success is recorded even when the claim has passed to another batch (the
# receiver has the reply); anything else only while the row is still this batch's. A retry that would start after
# give_up_at fails instead (`retry_at`, read once per row); a reply the batch did not send gives its attempt back
# and is due again at once.
SETTLE_SQL = """
WITH outcomes AS (
    SELECT u.*, clock_timestamp() + make_interval(secs => u.wait) AS retry_at
    FROM unnest(%(ids)s::uuid[], %(outcomes)s::text[], %(errors)s::text[], %(waits)s::float8[], %(numbers)s::int[],
                %(started)s::timestamptz[], %(durations)s::float8[], %(statuses)s::int[])
        AS u(message_id, outcome, error, wait, number, started_at, duration_ms, status)
), settled AS (
UPDATE delivery_replydelivery d
SET state = CASE
        WHEN o.outcome = 'delivered' THEN 'delivered'
        WHEN o.outcome = 'failed' OR (o.outcome = 'retry' AND o.retry_at > d.give_up_at) THEN 'failed'
        ELSE 'pending'
    END,
    last_error = CASE
        WHEN o.outcome = 'delivered' THEN ''
        WHEN o.outcome = 'unsent' THEN d.last_error
        WHEN o.outcome = 'retry' AND o.retry_at > d.give_up_at THEN left(o.error || %(gave_up)s, 500)
        ELSE left(o.error, 500)
    END,
    delivered_at = CASE WHEN o.outcome = 'delivered' THEN clock_timestamp() END,
    attempts = d.attempts - (o.outcome = 'unsent')::int,
    next_attempt_at = CASE
        WHEN o.outcome = 'unsent' THEN clock_timestamp()
        WHEN o.outcome = 'retry' AND o.retry_at <= d.give_up_at THEN o.retry_at
    END,
    claim_token = NULL
FROM outcomes o
WHERE d.message_id = o.message_id AND d.state = 'pending' AND (d.claim_token = %(token)s OR o.outcome = 'delivered')
RETURNING d.message_id, d.state
), logged AS (
    -- Only the rows this statement wrote, which it holds locked: an erasure cannot delete one under the insert.
    INSERT INTO delivery_deliveryattempt (delivery_id, number, started_at, duration_ms, status, outcome, error)
    SELECT o.message_id, o.number, o.started_at, o.duration_ms, o.status,
           CASE WHEN s.state = 'failed' THEN 'failed' ELSE o.outcome END, left(o.error, 500)
    FROM outcomes o JOIN settled s USING (message_id)
    WHERE o.outcome <> 'unsent'
    ON CONFLICT (delivery_id, number) DO NOTHING
)
SELECT message_id, state FROM settled
"""


@dataclass(frozen=True)
class Claimed:
    message_id: uuid.UUID
    # This attempt's number (X-Delivery-Attempt).
    attempt: int
    conversation_id: uuid.UUID
    content: str
    timestamp: datetime
    answers: list[uuid.UUID]
    # The reply's span, when it was traced (scheduler.reply_spans): its attempts' spans are its children.
    traceparent: str


@dataclass(frozen=True)
class Outcome:
    message_id: uuid.UUID
    # delivered, failed, retry (after `wait` seconds), or unsent (the batch stopped before its POST)
    outcome: str
    error: str = ""
    wait: float = 0.0
    # For the attempt log (a POST was made; None for `unsent`).
    number: int | None = None
    started_at: datetime | None = None
    duration_ms: float | None = None
    status: int | None = None


def deliveries_claim(*, token: uuid.UUID, limit: int, claim_seconds: float) -> list[Claimed]:
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"token": token, "limit": limit, "claim_seconds": claim_seconds})
        return [Claimed(*row) for row in cursor.fetchall()]


def deliveries_settle(*, token: uuid.UUID, outcomes: list[Outcome]) -> dict[uuid.UUID, str]:
    """Record every outcome; returns the state each row settled to (a row another batch holds by now is absent)."""
    with connection.cursor() as cursor:
        cursor.execute(
            SETTLE_SQL,
            {
                "token": token,
                "ids": [o.message_id for o in outcomes],
                "outcomes": [o.outcome for o in outcomes],
                "errors": [o.error for o in outcomes],
                "waits": [o.wait for o in outcomes],
                "numbers": [o.number for o in outcomes],
                "started": [o.started_at for o in outcomes],
                "durations": [o.duration_ms for o in outcomes],
                "statuses": [o.status for o in outcomes],
                "gave_up": GAVE_UP,
            },
        )
        return dict(cursor.fetchall())


def deliveries_expire() -> int:
    """Pending deliveries past give_up_at that no batch holds fail: replies held back by an open circuit (their
    retries are checked against give_up_at when they are settled)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE delivery_replydelivery
            SET state = 'failed', next_attempt_at = NULL, claim_token = NULL,
                last_error = left(ltrim(last_error || %s), 500)
            WHERE state = 'pending' AND give_up_at <= statement_timestamp() AND next_attempt_at <= statement_timestamp()
            """,
            [GAVE_UP],
        )
        return cursor.rowcount


def deliveries_due(*, book_ahead: float) -> bool:
    """Is a delivery due that a batch may send now: the receiver not disabled, its circuit closed or its next probe
    due, and its rate's slots (delivery.pace) booked no further than `book_ahead` seconds?"""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT EXISTS (
                SELECT FROM delivery_replydelivery WHERE state = 'pending' AND next_attempt_at <= statement_timestamp()
            ) AND NOT EXISTS (
                SELECT FROM delivery_receivercircuit
                WHERE id = 1 AND (
                    probe_at > statement_timestamp() OR disabled_at IS NOT NULL
                    OR paced_until > statement_timestamp() + make_interval(secs => %s)
                )
            )
            """,
            [book_ahead],
        )
        return cursor.fetchone()[0]


# A recovery's next step: its next `limit` deliveries in (created_at, message) order after its position and before
# `until` (read through delivery_created_idx), the delivered and failed among them due again now with a fresh
# allowance, the pending ones left to their own delivery. Returns how many were sent again, how many were looked
# at, and the last one's position.
RECOVER_STEP_SQL = """
WITH step AS (
    SELECT message_id, created_at FROM delivery_replydelivery
    WHERE (created_at, message_id) > (%(after_at)s, %(after_id)s) AND created_at < %(until)s
    ORDER BY created_at, message_id
    LIMIT %(limit)s
), requeued AS (
    UPDATE delivery_replydelivery d
    SET state = 'pending', delivered_at = NULL, claim_token = NULL, next_attempt_at = clock_timestamp(),
        give_up_at = clock_timestamp() + make_interval(secs => %(allowance)s)
    FROM step s
    WHERE d.message_id = s.message_id AND d.state <> 'pending'
    RETURNING 1
), last AS (
    SELECT created_at, message_id FROM step ORDER BY created_at DESC, message_id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM requeued), (SELECT count(*) FROM step), last.created_at, last.message_id
FROM (SELECT 1) one LEFT JOIN last ON true
"""

# Before `since` in that order: where a recovery starts.
START = uuid.UUID(int=0)


@dataclass(frozen=True)
class RecoverStep:
    requeued: int
    seen: int
    # The last delivery looked at (None when there was none).
    last_created_at: datetime | None
    last_message_id: uuid.UUID | None


def deliveries_recover_step(
    *, after_at: datetime, after_id: uuid.UUID, until: datetime, limit: int, allowance: float
) -> RecoverStep:
    with connection.cursor() as cursor:
        cursor.execute(
            RECOVER_STEP_SQL,
            {"after_at": after_at, "after_id": after_id, "until": until, "limit": limit, "allowance": allowance},
        )
        return RecoverStep(*cursor.fetchone())


def deliveries_in_range_count(*, since: datetime, until: datetime) -> int:
    """Deliveries opened in [since, until): an index-only range scan of delivery_created_idx."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM delivery_replydelivery WHERE created_at >= %s AND created_at < %s", [since, until]
        )
        return cursor.fetchone()[0]


def deliveries_due_count(*, at_most: int) -> int:
    """Due deliveries, counted up to `at_most` (the partial index of pending rows, no further)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM (
                SELECT FROM delivery_replydelivery
                WHERE state = 'pending' AND next_attempt_at <= statement_timestamp() LIMIT %s
            ) due
            """,
            [at_most],
        )
        return cursor.fetchone()[0]
