"""The asynchronous engine: the sweep (attach, expire, dispatch) and the reply to a group of messages.

Messages wait in PostgreSQL (Message.pending, PendingMessage); nothing is enqueued by a webhook, so webhooks
keep working while Redis is down. Each sweep dispatches one job per due group and records a lease on the
conversation so the group is not dispatched again while its job is queued; a lost job is re-dispatched when
the lease runs out. The job locks the conversation and re-checks everything, so running it twice is harmless.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from chat import queries
from chat.db import ClockTimestamp
from chat.models import Conversation, Message, message_order_key
from chat.parking import parked_messages_attach, parked_messages_expire
from delivery.services import DeliveryJob, deliveries_dispatch, reply_delivery_open
from realmate import metrics
from scheduler.models import SweepHeartbeat

logger = logging.getLogger(__name__)

REPLY_HEADER = "Mensagens recebidas:\n"


@dataclass(frozen=True)
class SweepResult:
    attached: int
    expired: int
    dispatched: int
    # Reply deliveries whose job was lost, dispatched again (delivery.services).
    redelivered: int
    duration_ms: float


@dataclass(frozen=True)
class DueGroup:
    conversation_id: uuid.UUID
    # Seconds until the group's window closes; the job is dispatched with this countdown.
    due_in: float


@dataclass(frozen=True)
class GroupRules:
    """When a group of pending messages ends: after `window` of quiet, at `max_messages`, or once its first
    message has waited `max_wait`."""

    window: timedelta
    max_wait: timedelta
    max_messages: int


def group_rules() -> GroupRules:
    return GroupRules(
        window=timedelta(seconds=settings.GROUP_WINDOW_SECONDS),
        max_wait=timedelta(seconds=settings.MAX_GROUP_WAIT_SECONDS),
        max_messages=settings.MAX_GROUP_MESSAGES,
    )


def dispatch_lookahead() -> timedelta:
    """How far ahead a sweep dispatches groups (with a countdown): two intervals, so a sweep that runs late
    (beat and worker share two cores with everything else) still dispatches a group before it falls due."""
    return 2 * timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS)


def sweep_run(
    *,
    dispatch: Callable[[DueGroup], None],
    dispatch_delivery: Callable[[DeliveryJob], None],
    reply_backlog: Callable[[], int] = lambda: 0,
) -> SweepResult:
    """One sweep: attach parked messages, expire stale ones, dispatch due groups and lost deliveries, beat the
    heart. `reply_backlog` tells how many reply jobs wait in the broker (see reply_groups_dispatch)."""
    started = time.perf_counter()
    attached = parked_messages_attach()
    expired = parked_messages_expire()
    dispatched = reply_groups_dispatch(dispatch=dispatch, reply_backlog=reply_backlog)
    redelivered = deliveries_dispatch(dispatch=dispatch_delivery)
    result = SweepResult(attached, expired, dispatched, redelivered, (time.perf_counter() - started) * 1000)
    SweepHeartbeat.objects.update_or_create(
        id=1,
        defaults={
            "last_sweep_at": ClockTimestamp(),
            "last_duration_ms": result.duration_ms,
            "last_dispatched": result.dispatched,
        },
    )
    metrics.SWEEP_SECONDS.observe(result.duration_ms / 1000)
    metrics.SWEEP_GROUPS_DISPATCHED.inc(dispatched)
    if attached or expired or dispatched or redelivered:
        logger.info("sweep", extra=vars(result))
    return result


def reply_groups_dispatch(*, dispatch: Callable[[DueGroup], None], reply_backlog: Callable[[], int] = lambda: 0) -> int:
    """Lease and dispatch one job per conversation whose pending group is due, or due within two sweeps.

    Due: the newest pending arrival is GROUP_WINDOW old, the oldest MAX_GROUP_WAIT_SECONDS old, MAX_GROUP_MESSAGES
    are waiting, or the conversation is CLOSED (chat.queries). Groups
    due before the next sweeps are dispatched now with a countdown, so a reply is not late by up to a whole
    sweep interval. Conversations locked by a webhook or a job are skipped; the next sweep sees them.

    A group whose lease lapsed is dispatched again only while no reply job waits in the broker: with jobs
    waiting, its job is most likely among them (a backlog), and a second one would only add work. A job lost
    with Redis or with a killed worker is dispatched again once the queue has drained.
    """
    lookahead = dispatch_lookahead()
    rules = group_rules()
    with transaction.atomic():
        due = [
            DueGroup(*row)
            for row in queries.due_groups_lease(
                window=rules.window,
                max_wait=rules.max_wait,
                max_messages=rules.max_messages,
                lookahead=lookahead,
                lease=timedelta(seconds=settings.REPLY_LEASE_SECONDS) + lookahead,
                lapsed=reply_backlog() == 0,
            )
        ]
        # Enqueue only once the leases are committed; a failed enqueue is retried when its lease runs out.
        if due:
            transaction.on_commit(lambda: _dispatch_all(due, dispatch))
    return len(due)


def _dispatch_all(due: list[DueGroup], dispatch: Callable[[DueGroup], None]) -> None:
    for group in due:
        try:
            dispatch(group)
        except Exception:
            logger.exception("reply job not enqueued", extra={"conversation_id": str(group.conversation_id)})


def reply_group_process(
    *, conversation_id: uuid.UUID, dispatch_delivery: Callable[[DeliveryJob], None] | None = None
) -> list[Message]:
    """Answer every due pending group of a conversation with exactly one OUTBOUND each; idempotent.

    Locks the conversation (FOR NO KEY UPDATE: waits for in-flight messages, which hold FOR SHARE), reads its
    pending messages, splits them into groups (message_groups_split), and answers the groups that are due: every
    group that has ended, and the newest once it is due (open_group_reason). Each reply records why it was sent,
    and, when reply delivery is on, its pending delivery, dispatched once the transaction commits (without
    `dispatch_delivery`, by the sweep once the delivery's first lease runs out).
    A second run finds nothing pending and writes nothing.
    """
    rules = group_rules()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update(no_key=True).filter(id=conversation_id).first()
        if conversation is None:
            return []
        # The database clock comes with the rows, read after the lock: no message stamped before it is missed.
        pending = list(
            Message.objects.filter(conversation=conversation, pending=True)
            .annotate(db_now=ClockTimestamp())
            .order_by("received_at", "id")
        )
        now = max((message.db_now for message in pending), default=None)
        groups = message_groups_split(pending, rules)
        if groups:
            newest, _ = groups.pop()
            reason = open_group_reason(newest, now, conversation.status == Conversation.Status.CLOSED, rules)
            if reason is not None:
                groups.append((newest, reason))
            elif not groups:
                logger.info("group not due yet", extra={"conversation_id": str(conversation_id)})
        replies = [
            _reply_write(conversation, group, reason, now + timedelta(microseconds=n))
            for n, (group, reason) in enumerate(groups)
        ]
        for reply in replies:
            reply_delivery_open(reply, dispatch=dispatch_delivery)
        conversation.reply_lease_until = None
        conversation.reply_dispatches = 0
        update_fields = ["reply_lease_until", "reply_dispatches"]
        if replies:
            conversation.updated_at = now
            update_fields.append("updated_at")
        conversation.save(update_fields=update_fields)
    return replies


def message_groups_split(messages: list[Message], rules: GroupRules) -> list[tuple[list[Message], str | None]]:
    """Split messages (in arrival order) into groups, each with why it ended: a gap of more than the window
    (quiet), a group full at max_messages, or a message arriving more than max_wait after the group's first. The
    last group is still open: its reason is None."""
    groups: list[list[Message]] = []
    ended: list[str] = []
    for message in messages:
        if groups:
            group = groups[-1]
            if message.received_at - group[-1].received_at > rules.window:
                ended.append(Message.SendReason.QUIET)
            elif len(group) >= rules.max_messages:
                ended.append(Message.SendReason.MAX_MESSAGES)
            elif message.received_at - group[0].received_at > rules.max_wait:
                ended.append(Message.SendReason.MAX_WAIT)
            else:
                group.append(message)
                continue
        groups.append([message])
    return list(zip(groups, [*ended, None], strict=True)) if groups else []


def open_group_reason(group: list[Message], now: datetime, closed: bool, rules: GroupRules) -> str | None:
    """Why the newest group is answered now, or None when it must wait: full, quiet for the window, its first
    message waited max_wait, or its conversation closed."""
    if len(group) >= rules.max_messages:
        return Message.SendReason.MAX_MESSAGES
    if now - group[-1].received_at >= rules.window:
        return Message.SendReason.QUIET
    if now - group[0].received_at >= rules.max_wait:
        return Message.SendReason.MAX_WAIT
    if closed:
        return Message.SendReason.CLOSED
    return None


def reply_content(group: list[Message]) -> str:
    """The header, then one id per line in timestamp-then-arrival order, and a trailing newline."""
    ordered = sorted(group, key=message_order_key)
    return REPLY_HEADER + "".join(f"{message.id}\n" for message in ordered)


def _reply_write(conversation: Conversation, group: list[Message], reason: str, generated_at: datetime) -> Message:
    reply = Message.objects.create(
        id=uuid.uuid4(),
        conversation=conversation,
        type=Message.Type.OUTBOUND,
        content=reply_content(group),
        timestamp=generated_at,
        received_at=generated_at,
        pending=False,
        send_reason=reason,
    )
    answered_ids = [message.id for message in group]
    Message.objects.filter(id__in=answered_ids).update(pending=False, reply=reply)
    lag = (generated_at - max(message.received_at for message in group)).total_seconds()
    transaction.on_commit(lambda: _reply_metrics(reason, lag, len(group)))
    logger.info(
        "reply written",
        extra={
            "conversation_id": str(conversation.id),
            "message_id": str(reply.id),
            "send_reason": reason,
            "answered": [str(message_id) for message_id in answered_ids],
        },
    )
    return reply


def _reply_metrics(reason: str, lag_seconds: float, messages: int) -> None:
    """Counted once the reply is committed: a job that rolls back answered nobody."""
    metrics.REPLIES.labels(reason).inc()
    metrics.REPLY_LAG_SECONDS.observe(lag_seconds)
    metrics.REPLY_MESSAGES.observe(messages)
