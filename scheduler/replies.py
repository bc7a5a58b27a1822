"""Reply batches: answer the due groups of many conversations in one short transaction, with a few set-based
statements, whatever the number of conversations.

One batch: claim up to `limit` conversations whose reply_due_at has come (FOR NO KEY UPDATE SKIP LOCKED, longest
due first), read their pending messages in one query, decide every group in Python (scheduler.grouping), then
write every reply with one multi-row INSERT, mark the answered messages with one UPDATE ... FROM unnest(...), open
the deliveries with one more INSERT, set each conversation's next moment (and updated_at) with one UPDATE, and
commit once. A conversation whose group is still growing costs one claim per moment it was given, not one per
sweep: the batch moves its moment to when the rule can next turn.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter

from django.db import DatabaseError, transaction

from chat.models import Conversation, Message
from chat.reply_timing import GroupRules, group_rules
from core import metrics, tracing
from core.clock import database_now
from core.jobs import enqueue_safely
from delivery.services import DeliveryWake, reply_deliveries_open
from scheduler import queries
from scheduler.grouping import Arrival, group_due_at, message_groups_split, open_group_due, reply_content
from scheduler.reply_spans import ReplySpans

logger = logging.getLogger(__name__)

# SQLSTATE classes that come from the rows a batch writes (data exception, integrity constraint violation,
# transaction rollback such as a deadlock, an exception raised by a trigger). Any other error (the connection, the
# server) fails the whole job, which is retried.
ROW_ERROR_CLASSES = ("22", "23", "40", "P0")
# A conversation whose rows fail is looked at again this much later, so it does not head every batch meanwhile.
FAILING_POSTPONE_SECONDS = 60.0


@dataclass(frozen=True)
class Reply:
    """An OUTBOUND to write: its content, why, when, and the INBOUND messages it answers."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    content: str
    generated_at: datetime
    send_reason: str
    # When its group fell due (the message's timeline).
    due_at: datetime
    answers: tuple[uuid.UUID, ...]
    # Seconds from the group's last arrival to the reply (the lag metric).
    lag: float

    @classmethod
    def answering(
        cls,
        group: list[Arrival],
        conversation_id: uuid.UUID,
        reason: str,
        generated_at: datetime,
        rules: GroupRules,
        closed_at: datetime | None,
    ) -> "Reply":
        return cls(
            id=uuid.uuid4(),
            conversation_id=conversation_id,
            content=reply_content(group),
            generated_at=generated_at,
            send_reason=reason,
            due_at=group_due_at(group, reason, closed_at, rules),
            answers=tuple(message.id for message in group),
            lag=(generated_at - group[-1].received_at).total_seconds(),
        )


@dataclass
class Written:
    """What a batch (or part of one) wrote, and how soon the earliest moment it set comes."""

    replies: list[Reply] = field(default_factory=list)
    answered: int = 0
    next_due_in: float | None = None

    def add(self, other: "Written") -> None:
        self.replies += other.replies
        self.answered += other.answered
        soonest = [d for d in (self.next_due_in, other.next_due_in) if d is not None]
        self.next_due_in = min(soonest, default=None)


@dataclass(frozen=True)
class ReplyBatchResult:
    claimed: int
    reply_ids: tuple[uuid.UUID, ...]
    answered: int
    # The batch took `limit` conversations: more may be due.
    full: bool
    # Seconds from the batch's end to the earliest moment it set (None: it set none).
    next_due_in: float | None
    duration: float

    @property
    def replies(self) -> int:
        return len(self.reply_ids)


# With traces on, the batch's span: its replies' spans link to it (scheduler.reply_spans).
@tracing.tracer.start_as_current_span("reply batch")
def replies_write_batch(
    *,
    limit: int,
    continue_now: Callable[[], None] | None = None,
    wake_delivery: DeliveryWake | None = None,
) -> ReplyBatchResult:
    """Answer the due groups of up to `limit` due conversations with exactly one OUTBOUND each, in one transaction;
    idempotent, and safe to run in any number of processes at once (SKIP LOCKED gives each a disjoint batch).

    When the batch is full, `continue_now()` is called as soon as it is claimed, so another process can take the
    next batch while this one writes. Never answers a group before it is due on the database clock, read as the
    rows are locked. When reply delivery is on, each reply's delivery is opened in the same transaction, and
    `wake_delivery` wakes a delivery job once it commits. A batch whose rows fail is answered again one
    conversation at a time: the one that fails is logged and postponed, the others are answered.
    """
    rules = group_rules()
    started = claimed_at = time.perf_counter()
    claimed: dict[uuid.UUID, queries.Claimed] = {}
    try:
        with transaction.atomic():
            claimed, now = queries.conversations_claim(limit=limit)
            claimed_at = time.perf_counter()
            if len(claimed) == limit and continue_now is not None:
                # Enqueued now, not on commit, so another process takes the next batch while this one writes.
                enqueue_safely(continue_now)
            written = _groups_answer(claimed, now, rules, wake_delivery) if claimed else Written()
    except DatabaseError as error:
        if not claimed or not _caused_by_rows(error):
            raise
        logger.warning("reply batch failed: answering its conversations one by one", extra={"error": str(error)})
        written = _groups_answer_one_by_one(list(claimed), rules, wake_delivery)
    # The earliest moment set, from now: the job asking for it runs after this batch.
    since_claim = time.perf_counter() - claimed_at
    result = ReplyBatchResult(
        claimed=len(claimed),
        reply_ids=tuple(reply.id for reply in written.replies),
        answered=written.answered,
        full=len(claimed) == limit,
        next_due_in=None if written.next_due_in is None else written.next_due_in - since_claim,
        duration=time.perf_counter() - started,
    )
    _batch_report(result, written.replies)
    return result


def _groups_answer(
    claimed: dict[uuid.UUID, queries.Claimed], now: datetime, defaults: GroupRules, wake_delivery: DeliveryWake | None
) -> Written:
    """Inside the caller's transaction, with the conversations claimed: read their pending messages, decide (each
    conversation by its own rules), write every reply, and give each conversation its next moment."""
    # Rows, not model instances: a batch reads thousands, and the rule needs five fields of each (and the trace).
    pending = list(
        Message.objects.filter(conversation_id__in=list(claimed), pending=True)
        .order_by("conversation_id", "received_at", "id")
        .values_list("id", "conversation_id", "timestamp", "received_at", "handoff", "traceparent", named=True)
    )
    written = Written()
    due_at: dict[uuid.UUID, datetime | None] = dict.fromkeys(claimed)
    for conversation_id, messages in groupby(pending, key=attrgetter("conversation_id")):
        conversation = claimed[conversation_id]
        rules = defaults.overridden(
            conversation.window_seconds, conversation.max_wait_seconds, conversation.max_messages
        )
        groups = message_groups_split(list(messages), rules)
        newest, _ = groups.pop()
        due, reason = open_group_due(newest, conversation.closed_at, rules)
        if due > now:
            due_at[conversation_id] = due
        else:
            groups.append((newest, reason))
        for n, (group, reason) in enumerate(groups):
            # Replies of one conversation a microsecond apart, so they keep their order.
            generated_at = now + timedelta(microseconds=n)
            written.replies.append(
                Reply.answering(group, conversation_id, reason, generated_at, rules, conversation.closed_at)
            )
    if written.replies:
        spans = ReplySpans.start(written.replies, {m.id: m.traceparent for m in pending if m.traceparent})
        queries.replies_insert(written.replies, [spans.traceparent(reply.id) for reply in written.replies])
        written.answered = queries.messages_mark_answered(
            [message_id for reply in written.replies for message_id in reply.answers],
            [reply.id for reply in written.replies for _ in reply.answers],
        )
        reply_deliveries_open([reply.id for reply in written.replies], now=now, wake=wake_delivery)
        replies = written.replies
        transaction.on_commit(lambda: _replies_metrics(replies))
        transaction.on_commit(spans.end, robust=True)  # traces never fail a committed batch
    replied = {reply.conversation_id for reply in written.replies}
    queries.conversations_settle(list(due_at), list(due_at.values()), [c in replied for c in due_at], now=now)
    if moments := [moment for moment in due_at.values() if moment is not None]:
        written.next_due_in = (min(moments) - now).total_seconds()
    return written


def _groups_answer_one_by_one(
    conversation_ids: list[uuid.UUID], rules: GroupRules, wake_delivery: DeliveryWake | None
) -> Written:
    """Answer the conversations of a failed batch each in its own transaction; one whose rows fail again is logged
    and postponed (FAILING_POSTPONE_SECONDS), its messages left pending."""
    written = Written()
    for conversation_id in conversation_ids:
        try:
            with transaction.atomic():
                claimed = {
                    id_: queries.Claimed(*fields)
                    for id_, *fields in Conversation.objects.select_for_update(no_key=True, skip_locked=True)
                    .filter(id=conversation_id)
                    .values_list("id", *queries.CLAIMED_FIELDS)
                }
                part = _groups_answer(claimed, database_now(), rules, wake_delivery)
        except DatabaseError as error:
            if not _caused_by_rows(error):
                raise
            logger.exception(
                "reply not written: its conversation's rows fail", extra={"conversation_id": str(conversation_id)}
            )
            queries.conversations_postpone([conversation_id], FAILING_POSTPONE_SECONDS)
            continue
        written.add(part)
    return written


def _caused_by_rows(error: DatabaseError) -> bool:
    sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
    return sqlstate.startswith(ROW_ERROR_CLASSES)


def _batch_report(result: ReplyBatchResult, replies: list[Reply]) -> None:
    metrics.REPLY_BATCH_SECONDS.observe(result.duration)
    metrics.REPLY_BATCH_REPLIES.observe(result.replies)
    log = {
        "claimed": result.claimed,
        "replies": result.replies,
        "answered": result.answered,
        "duration_ms": round(result.duration * 1000, 1),
    }
    logger.log(logging.INFO if result.replies else logging.DEBUG, "reply batch", extra=log)
    tracing.attributes_set({f"realmate.batch.{name}": value for name, value in log.items()})
    if replies and logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "replies written",
            extra={"replies": [{"conversation_id": str(r.conversation_id), "message_id": str(r.id)} for r in replies]},
        )


def _replies_metrics(replies: list[Reply]) -> None:
    """Counted once the batch is committed: a batch that rolls back answered nobody."""
    for reply in replies:
        metrics.REPLIES.labels(reply.send_reason).inc()
        metrics.REPLY_LAG_SECONDS.observe(reply.lag)
        metrics.REPLY_MESSAGES.observe(len(reply.answers))
