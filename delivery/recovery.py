"""Recovery: every reply whose delivery was opened in a time range sent again, delivered or failed (Svix's
"recover since"), for a receiver that lost what it had been sent, or refused it for a while.

An operator starts one (the admin, `manage.py recover_replies`, POST /api/deliveries/recoveries/); it is a row
(ReplyRecovery), and delivery's periodic step advances it (recoveries_advance): a batch's worth of its replies at a
time, each due again at once with a fresh REPLY_DELIVERY_MAX_SECONDS, and only while less than a batch is due. Live
replies are claimed due longest first, so one written meanwhile waits behind at most one step of the recovery: the
recovery takes what the receiver's rate (REPLY_WEBHOOK_RATE) leaves, it does not slow live deliveries past it.
Replies that are pending anyway are left to their own delivery, and counted as skipped. A reply sent again keeps
its id (webhook-id, Idempotency-Key), so a receiver that still has it drops the repeat.
"""

import logging
import math
from datetime import UTC, datetime
from http import HTTPStatus

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import metrics
from core.clock import database_now
from core.errors import ApplicationError
from delivery import pace
from delivery.models import ReplyRecovery
from delivery.queries import START, deliveries_due_count, deliveries_in_range_count, deliveries_recover_step

logger = logging.getLogger(__name__)

# Who may start, read and cancel recoveries (the admin, the API).
RECOVER_PERMISSION = "delivery.add_replyrecovery"


def recovery_range(*, since: datetime, until: datetime | None = None) -> tuple[datetime, datetime]:
    """The range a recovery may start with, in UTC, or ApplicationError. `until` is now (the database clock) when
    empty or later: a range reaching into the future would end before replies opened later came into it."""
    if not settings.REPLY_WEBHOOK_URL:
        raise ApplicationError(
            "delivery_off",
            "Reply delivery is off (REPLY_WEBHOOK_URL is empty): nothing to send.",
            status=HTTPStatus.CONFLICT,
        )
    now = database_now()
    try:
        since, until = since.astimezone(UTC), min(until.astimezone(UTC), now) if until else now
    except OverflowError as exc:  # a time at the edge of the calendar, which UTC moves past it
        raise ApplicationError("invalid_range", "`since` or `until` is out of range.") from exc
    if since >= until:
        raise ApplicationError("invalid_range", "`since` must come before `until` (which is at most now).")
    return since, until


def recovery_start(*, since: datetime, until: datetime | None = None, requested_by: str) -> ReplyRecovery:
    """A recovery of the replies opened in [since, until) (until: now), advanced in the background."""
    since, until = recovery_range(since=since, until=until)
    recovery = ReplyRecovery.objects.create(since=since, until=until, requested_by=requested_by[:150])
    logger.info(
        "reply recovery started",
        extra={"recovery": recovery.id, "since": since.isoformat(), "until": until.isoformat(), "by": requested_by},
    )
    return recovery


def recovery_cancel(recovery_id: int) -> bool:
    """Stop a running recovery where it stands (what it queued goes out). False when it was not running."""
    return bool(
        ReplyRecovery.objects.filter(id=recovery_id, state=ReplyRecovery.State.RUNNING).update(
            state=ReplyRecovery.State.CANCELLED, finished_at=timezone.now()
        )
    )


def recovery_step_size() -> int:
    """Replies a step queues: one delivery batch, or what one paced batch sends (delivery.pace)."""
    rate = pace.pace_rate()
    batch = settings.REPLY_DELIVERY_BATCH
    return batch if not rate else max(1, min(batch, math.floor(rate * pace.BOOK_AHEAD_SECONDS)))


def recoveries_advance() -> int:
    """Delivery's periodic step: the oldest running recovery queues its next step, when less than a step's worth
    is due (the step then wakes a delivery job for them). One recovery at a time: a second periodic step (a second
    beat) waits for the first's lock, then finds its step due and queues nothing. Returns how many replies were
    sent again."""
    size = recovery_step_size()
    with transaction.atomic():
        recovery = (
            ReplyRecovery.objects.select_for_update(no_key=True)
            .filter(state=ReplyRecovery.State.RUNNING)
            .order_by("id")
            .first()
        )
        if recovery is None:
            return 0
        if recovery.total is None:
            recovery.total = deliveries_in_range_count(since=recovery.since, until=recovery.until)
        if deliveries_due_count(at_most=size) >= size:
            recovery.save(update_fields=["total"])
            return 0  # live replies (or the previous step) first
        step = deliveries_recover_step(
            after_at=recovery.after_created_at or recovery.since,
            after_id=recovery.after_message_id or START,
            until=recovery.until,
            limit=size,
            allowance=settings.REPLY_DELIVERY_MAX_SECONDS,
        )
        recovery.requeued += step.requeued
        recovery.skipped += step.seen - step.requeued
        if step.last_message_id is not None:
            recovery.after_created_at, recovery.after_message_id = step.last_created_at, step.last_message_id
        if step.seen < size:
            recovery.state, recovery.finished_at = ReplyRecovery.State.DONE, timezone.now()
            # What it found, erasures since its count left out.
            recovery.total = recovery.requeued + recovery.skipped
        recovery.save()
        if step.requeued:
            transaction.on_commit(lambda: metrics.REPLIES_RECOVERED.inc(step.requeued))
    if recovery.state == ReplyRecovery.State.DONE:
        logger.info(
            "reply recovery done",
            extra={"recovery": recovery.id, "requeued": recovery.requeued, "skipped": recovery.skipped},
        )
    return step.requeued
