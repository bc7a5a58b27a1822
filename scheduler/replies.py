"""Reply batches: answer the due groups of many conversations in one short transaction, with a few set-based
statements, whatever the number of conversations.

One batch: lock up to `limit` candidate conversations (FOR NO KEY UPDATE SKIP LOCKED, oldest waiting message
first), read their pending messages in one query with the database clock, decide every group in Python
(scheduler.grouping), then write every reply with one multi-row INSERT, mark the answered messages with one
UPDATE ... FROM unnest(...), open the deliveries with one more INSERT, touch the conversations with one UPDATE, and
commit once. A batch whose statements fail because of one conversation's rows is retried in halves, so one
poisoned conversation costs itself, not the rest.
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
from core import metrics
from core.jobs import enqueue_safely
from delivery.services import DeliveryWake, reply_deliveries_open
from scheduler import queries
from scheduler.grouping import (
    Arrival,
    GroupRules,
    group_rules,
    message_groups_split,
    open_group_due_at,
    open_group_reason,
    reply_content,
)

logger = logging.getLogger(__name__)

# SQLSTATE classes that come from the rows a batch writes (data exception, integrity constraint violation,
# transaction rollback such as a deadlock, an exception raised by a trigger): retrying the batch in halves
# isolates them. Any other error (the connection, the server) fails the whole job, which is retried.
ROW_ERROR_CLASSES = ("22", "23", "40", "P0")


@dataclass(frozen=True)
class Reply:
    """An OUTBOUND to write: its content, why, when, and the INBOUND messages it answers."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    content: str
    generated_at: datetime
    send_reason: str
    answers: tuple[uuid.UUID, ...]
    # Seconds from the group's last arrival to the reply (the lag metric).
    lag: float

    @classmethod
    def answering(
        cls, group: list[Arrival], conversation_id: uuid.UUID, reason: str, generated_at: datetime
    ) -> "Reply":
        return cls(
            id=uuid.uuid4(),
            conversation_id=conversation_id,
            content=reply_content(group),
            generated_at=generated_at,
            send_reason=reason,
            answers=tuple(message.id for message in group),
            lag=(generated_at - group[-1].received_at).total_seconds(),
        )


@dataclass
class Written:
    """What a batch (or part of one) wrote, and the earliest due time of the open groups it saw but left."""

    replies: list[Reply] = field(default_factory=list)
    answered: int = 0
    next_due_at: datetime | None = None
    # When its transaction started (database clock): a conversation may have become a candidate after it, unseen.
    since: datetime | None = None

    def add(self, other: "Written") -> None:
        self.replies += other.replies
        self.answered += other.answered
        self.next_due_at = earliest(self.next_due_at, other.next_due_at)
        self.since = earliest(self.since, other.since)


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    reply_ids: tuple[uuid.UUID, ...]
    answered: int
    # The batch took `limit` conversations: more candidates may follow `cursor` (the last one's oldest arrival;
    # another conversation with that very arrival, to the microsecond, waits for the next wake-up).
    full: bool
    # Part of the batch failed on its rows and was retried in halves (its duration says nothing of its size).
    split: bool
    cursor: datetime | None
    next_due_at: datetime | None
    # When the batch's transaction started (None: it claimed nothing); see Written.since.
    since: datetime | None
    duration: float

    @property
    def replies(self) -> int:
        return len(self.reply_ids)


def earliest(*moments: datetime | None) -> datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


def replies_write_batch(
    *,
    limit: int,
    after: datetime | None = None,
    continue_after: Callable[[datetime], None] | None = None,
    wake_delivery: DeliveryWake | None = None,
) -> BatchResult:
    """Answer the due groups of up to `limit` candidate conversations (those whose oldest waiting message arrived
    after `after`, when given) with exactly one OUTBOUND each, in one transaction; idempotent, and safe to run in
    any number of processes at once (SKIP LOCKED gives each a disjoint batch).

    When the batch is full, `continue_after(cursor)` is called as soon as it is claimed, so another process can
    take the next batch while this one writes. Never answers a group before it is due on the database clock,
    read after the lock. When reply delivery is on, each reply's delivery is opened in the same transaction, and
    `wake_delivery` wakes a delivery job once it commits.
    """
    rules = group_rules()
    started = time.perf_counter()
    claimed: list[tuple[uuid.UUID, str, datetime]] = []
    split = False
    try:
        with transaction.atomic():
            claimed = queries.candidates_lock(
                limit=limit, after=after, candidate_age=rules.candidate_age, max_messages=rules.max_messages
            )
            if claimed and len(claimed) == limit and continue_after is not None:
                # Enqueued now, not on commit, so another process takes the next batch while this one writes. With
                # Redis away this holds the locks for one failed connection attempt (the enqueue does not retry).
                enqueue_safely(continue_after, claimed[-1][2])
            written = _groups_answer({id_: status for id_, status, _ in claimed}, rules, wake_delivery)
    except DatabaseError as error:
        if not claimed or not _caused_by_rows(error):
            raise
        logger.warning("reply batch failed: retrying it in halves", extra={"error": str(error)})
        split = True
        written = _groups_answer_in_halves([id_ for id_, _, _ in claimed], rules, wake_delivery)
    result = BatchResult(
        claimed=len(claimed),
        reply_ids=tuple(reply.id for reply in written.replies),
        answered=written.answered,
        full=len(claimed) == limit,
        split=split,
        cursor=claimed[-1][2] if claimed else None,
        next_due_at=written.next_due_at,
        since=written.since,
        duration=time.perf_counter() - started,
    )
    _batch_report(result, written.replies)
    return result


def _groups_answer(statuses: dict[uuid.UUID, str], rules: GroupRules, wake_delivery: DeliveryWake | None) -> Written:
    """Inside the caller's transaction, with the conversations locked: read their pending messages, decide, and
    write every reply with a few set-based statements."""
    if not statuses:
        return Written()
    # Rows, not model instances: a batch reads thousands, and the rule needs four fields of each.
    pending = list(
        Message.objects.filter(conversation_id__in=list(statuses), pending=True)
        .order_by("conversation_id", "received_at", "id")
        .values_list("id", "conversation_id", "timestamp", "received_at", named=True)
    )
    if not pending:
        return Written()
    # The database clock, read after the lock: no message stamped before it is missed (a NEW_MESSAGE for these
    # conversations waits for this transaction's commit).
    now, started = queries.database_clock()
    written = Written(since=started)
    for conversation_id, messages in groupby(pending, key=attrgetter("conversation_id")):
        closed = statuses[conversation_id] == Conversation.Status.CLOSED
        groups = message_groups_split(list(messages), rules)
        newest, _ = groups.pop()
        reason = open_group_reason(newest, now, closed, rules)
        if reason is None:
            written.next_due_at = earliest(written.next_due_at, open_group_due_at(newest, closed, rules))
        else:
            groups.append((newest, reason))
        for n, (group, reason) in enumerate(groups):
            # Replies of one conversation a microsecond apart, so they keep their order.
            written.replies.append(Reply.answering(group, conversation_id, reason, now + timedelta(microseconds=n)))
    if written.replies:
        queries.replies_insert(written.replies)
        written.answered = queries.messages_mark_answered(
            [message_id for reply in written.replies for message_id in reply.answers],
            [reply.id for reply in written.replies for _ in reply.answers],
        )
        Conversation.objects.filter(id__in={reply.conversation_id for reply in written.replies}).update(updated_at=now)
        reply_deliveries_open([reply.id for reply in written.replies], now=now, wake=wake_delivery)
        replies = written.replies
        transaction.on_commit(lambda: _replies_metrics(replies))
    return written


def _groups_answer_in_halves(
    conversation_ids: list[uuid.UUID], rules: GroupRules, wake_delivery: DeliveryWake | None
) -> Written:
    """Answer the conversations of a failed batch in two halves, each in its own transaction, and split a half
    that fails again, down to the one conversation whose rows fail: it is logged and left pending."""
    written = Written()
    middle = len(conversation_ids) // 2
    for part in (conversation_ids[:middle], conversation_ids[middle:]):
        if not part:
            continue
        try:
            with transaction.atomic():
                statuses = dict(
                    Conversation.objects.select_for_update(no_key=True, skip_locked=True)
                    .filter(id__in=part)
                    .values_list("id", "status")
                )
                written.add(_groups_answer(statuses, rules, wake_delivery))
        except DatabaseError as error:
            if not _caused_by_rows(error):
                raise
            if len(part) > 1:
                written.add(_groups_answer_in_halves(part, rules, wake_delivery))
            else:
                logger.exception(
                    "reply not written: its conversation's rows fail", extra={"conversation_id": str(part[0])}
                )
    return written


def _caused_by_rows(error: DatabaseError) -> bool:
    sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
    return sqlstate.startswith(ROW_ERROR_CLASSES)


def _batch_report(result: BatchResult, replies: list[Reply]) -> None:
    metrics.REPLY_BATCH_SECONDS.observe(result.duration)
    metrics.REPLY_BATCH_REPLIES.observe(result.replies)
    log = {
        "claimed": result.claimed,
        "replies": result.replies,
        "answered": result.answered,
        "duration_ms": round(result.duration * 1000, 1),
    }
    logger.log(logging.INFO if result.replies else logging.DEBUG, "reply batch", extra=log)
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
