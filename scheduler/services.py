"""The asynchronous engine: the sweep (attach, expire, dispatch) and the reply to a group of messages.

Messages wait in PostgreSQL (Message.pending, PendingMessage); nothing is enqueued by a webhook, so webhooks
keep working while Redis is down. Each sweep dispatches one job per due group and records a lease on the
conversation so the group is not dispatched again while its job is queued; a lost job is re-dispatched when
the lease runs out. The job locks the conversation and re-checks everything, so running it twice is harmless.
"""

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from chat.db import ClockTimestamp
from chat.models import Conversation, Message, PendingMessage, message_order_key
from chat.services import conversation_created_in_time, orphan_ttl, parked_messages_attach
from scheduler.models import SweepHeartbeat

logger = logging.getLogger(__name__)

# A parked message is marked EXPIRED this long after its TTL, not at once: a conversation created within the
# TTL whose transaction has not committed yet must still find it PARKED. The attach rule itself is exact.
EXPIRY_GRACE = timedelta(seconds=1)
REPLY_HEADER = "Mensagens recebidas:\n"


@dataclass(frozen=True)
class SweepResult:
    attached: int
    expired: int
    dispatched: int
    duration_ms: float


@dataclass(frozen=True)
class DueGroup:
    conversation_id: uuid.UUID
    # Seconds until the group's window closes; the job is dispatched with this countdown.
    due_in: float


def group_window() -> timedelta:
    return timedelta(seconds=settings.GROUP_WINDOW_SECONDS)


def sweep_run(*, dispatch: Callable[[DueGroup], None] | None = None) -> SweepResult:
    """One sweep: attach parked messages, expire stale ones, dispatch due groups, beat the heart."""
    started = time.perf_counter()
    attached = parked_messages_attach()
    expired = parked_messages_expire()
    dispatched = reply_groups_dispatch(dispatch=reply_job_enqueue if dispatch is None else dispatch)
    result = SweepResult(attached, expired, dispatched, (time.perf_counter() - started) * 1000)
    SweepHeartbeat.objects.update_or_create(
        id=1,
        defaults={
            "last_sweep_at": ClockTimestamp(),
            "last_duration_ms": result.duration_ms,
            "last_dispatched": result.dispatched,
        },
    )
    if attached or expired or dispatched:
        logger.info("sweep", extra=vars(result))
    return result


def parked_messages_expire() -> int:
    """Mark EXPIRED the parked messages whose conversation did not arrive within ORPHAN_TTL."""
    return (
        PendingMessage.objects.filter(
            state=PendingMessage.State.PARKED,
            received_at__lt=ClockTimestamp() - orphan_ttl() - EXPIRY_GRACE,
        )
        .exclude(conversation_created_in_time())
        .update(state=PendingMessage.State.EXPIRED, resolved_at=ClockTimestamp())
    )


# Pending groups due within `lookahead`, or whose conversation is CLOSED (see reply_groups_dispatch).
DUE_GROUPS_SQL = """
WITH pending_groups AS MATERIALIZED (
    SELECT conversation_id, max(received_at) AS last_arrival
    FROM chat_message
    WHERE pending
    GROUP BY conversation_id
)
SELECT g.conversation_id, g.last_arrival
FROM pending_groups g
CROSS JOIN LATERAL (
    SELECT c.status FROM chat_conversation c WHERE c.id = g.conversation_id LIMIT 1
) c
WHERE g.last_arrival <= clock_timestamp() - %(window)s + %(lookahead)s OR c.status = %(closed)s
"""


def dispatch_lookahead() -> timedelta:
    """How far ahead a sweep dispatches groups (with a countdown): two intervals, so a sweep that runs late
    (beat and worker share two cores with everything else) still dispatches a group before it falls due."""
    return 2 * timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS)


def due_groups_params() -> dict:
    return {
        "closed": Conversation.Status.CLOSED,
        "window": group_window(),
        "lookahead": dispatch_lookahead(),
    }


def reply_groups_dispatch(*, dispatch: Callable[[DueGroup], None]) -> int:
    """Lease and dispatch one job per conversation whose pending group is due, or due within two sweeps.

    Due: the newest pending arrival is GROUP_WINDOW old, or the conversation is CLOSED. Groups due before the
    next sweeps are dispatched now with a countdown, so a reply is not late by up to a whole sweep interval.
    Conversations locked by a webhook or a job are skipped; the next sweep sees them.
    """
    params = due_groups_params()
    lease = timedelta(seconds=settings.REPLY_LEASE_SECONDS)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Two steps so each reads an index. The aggregate reads only the partial index of pending messages
            # (its cost follows the number of waiting messages, not the size of the table); each group's
            # conversation is then probed by primary key (LATERAL ... LIMIT 1 keeps the planner from hashing the
            # whole conversation table) to keep the groups due soon or CLOSED. Only those are locked and leased.
            cursor.execute(DUE_GROUPS_SQL, params)
            groups = cursor.fetchall()
            if not groups:
                return 0
            cursor.execute(
                """
                SELECT c.id,
                       CASE WHEN c.status = %(closed)s THEN 0
                            ELSE greatest(0, extract(epoch FROM g.last_arrival + %(window)s - clock_timestamp()))
                       END
                FROM unnest(%(ids)s::uuid[], %(arrivals)s::timestamptz[]) AS g (conversation_id, last_arrival)
                JOIN chat_conversation c ON c.id = g.conversation_id
                WHERE (g.last_arrival <= clock_timestamp() - %(window)s + %(lookahead)s OR c.status = %(closed)s)
                  AND (c.reply_lease_until IS NULL OR c.reply_lease_until < clock_timestamp())
                FOR NO KEY UPDATE OF c SKIP LOCKED
                """,
                {
                    **params,
                    "ids": [conversation_id for conversation_id, _ in groups],
                    "arrivals": [last_arrival for _, last_arrival in groups],
                },
            )
            due = [DueGroup(conversation_id, float(due_in)) for conversation_id, due_in in cursor.fetchall()]
            if not due:
                return 0
            cursor.execute(
                "UPDATE chat_conversation SET reply_lease_until = clock_timestamp() + %s WHERE id = ANY(%s)",
                [lease + params["lookahead"], [group.conversation_id for group in due]],
            )
        # Enqueue only once the leases are committed; a failed enqueue is retried when its lease runs out.
        transaction.on_commit(lambda: _dispatch_all(due, dispatch))
    return len(due)


def _dispatch_all(due: list[DueGroup], dispatch: Callable[[DueGroup], None]) -> None:
    for group in due:
        try:
            dispatch(group)
        except Exception:
            logger.exception("reply job not enqueued", extra={"conversation_id": str(group.conversation_id)})


def reply_job_enqueue(group: DueGroup) -> None:
    from scheduler.tasks import reply_group_process  # the tasks module imports this one

    # A few milliseconds past the window so the job never finds its group a hair short of due.
    countdown = math.ceil(group.due_in * 1000) / 1000 + 0.005 if group.due_in > 0 else None
    logger.debug("reply job enqueued", extra={"conversation_id": str(group.conversation_id), "due_in": group.due_in})
    reply_group_process.apply_async(
        args=[str(group.conversation_id)], countdown=countdown, expires=settings.REPLY_LEASE_SECONDS * 2
    )


def reply_group_process(*, conversation_id: uuid.UUID) -> list[Message]:
    """Answer every due pending group of a conversation with exactly one OUTBOUND each; idempotent.

    Locks the conversation (FOR NO KEY UPDATE: waits for in-flight messages, which hold FOR SHARE), reads
    its pending messages, splits them into groups (arrival gaps of at most GROUP_WINDOW), and answers the
    groups that are due: all but the newest, and the newest once GROUP_WINDOW has passed or the
    conversation is CLOSED. A second run finds nothing pending and writes nothing.
    """
    window = group_window()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update(no_key=True).filter(id=conversation_id).first()
        if conversation is None:
            return []
        if settings.REPLY_JOB_DRILL_DELAY_SECONDS:
            _drill_delay(settings.REPLY_JOB_DRILL_DELAY_SECONDS)
        # The database clock comes with the rows, read after the lock: no message stamped before it is missed.
        pending = list(
            Message.objects.filter(conversation=conversation, pending=True)
            .annotate(db_now=ClockTimestamp())
            .order_by("received_at", "id")
        )
        now = max((message.db_now for message in pending), default=None)
        groups = message_groups_split(pending, window)
        if groups and conversation.status == Conversation.Status.OPEN and groups[-1][-1].received_at > now - window:
            groups.pop()
        if pending and not groups:
            logger.info("group not due yet", extra={"conversation_id": str(conversation_id)})
        replies = [_reply_write(conversation, group, now + timedelta(microseconds=n)) for n, group in enumerate(groups)]
        conversation.reply_lease_until = None
        update_fields = ["reply_lease_until"]
        if replies:
            conversation.updated_at = now
            update_fields.append("updated_at")
        conversation.save(update_fields=update_fields)
    for reply in replies:
        logger.info(
            "reply written",
            extra={
                "conversation_id": str(conversation_id),
                "message_id": str(reply.id),
                "answered": reply.answered_ids,
            },
        )
    return replies


def message_groups_split(messages: list[Message], window: timedelta) -> list[list[Message]]:
    """Split messages (in arrival order) where the gap between two arrivals is more than `window`."""
    groups: list[list[Message]] = []
    for message in messages:
        if groups and message.received_at - groups[-1][-1].received_at <= window:
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def reply_content(group: list[Message]) -> str:
    """SPEC section 3: the header, then one id per line in timestamp-then-arrival order, trailing newline."""
    ordered = sorted(group, key=message_order_key)
    return REPLY_HEADER + "".join(f"{message.id}\n" for message in ordered)


def _reply_write(conversation: Conversation, group: list[Message], generated_at: datetime) -> Message:
    reply = Message.objects.create(
        id=uuid.uuid4(),
        conversation=conversation,
        type=Message.Type.OUTBOUND,
        content=reply_content(group),
        timestamp=generated_at,
        received_at=generated_at,
        pending=False,
    )
    answered_ids = [message.id for message in group]
    Message.objects.filter(id__in=answered_ids).update(pending=False, reply=reply)
    reply.answered_ids = [str(message_id) for message_id in answered_ids]
    return reply


def parked_messages_purge() -> int:
    """Delete attached and expired parked messages older than PARKED_RETENTION_DAYS; returns the count."""
    cutoff = ClockTimestamp() - timedelta(days=settings.PARKED_RETENTION_DAYS)
    deleted, _ = (
        PendingMessage.objects.exclude(state=PendingMessage.State.PARKED).filter(resolved_at__lt=cutoff).delete()
    )
    return deleted


def _drill_delay(seconds: float) -> None:
    # Failure drills only (REPLY_JOB_DRILL_DELAY_SECONDS): hold the job open so a test can kill its worker.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
