"""The asynchronous engine: the sweep (attach, expire, wake the replies) and the wake-ups of reply batches.

Messages wait in PostgreSQL (Message.pending, ParkedMessage); nothing is enqueued by a webhook, so webhooks keep
working while Redis is down. A reply job carries nothing but where to start: it asks PostgreSQL what is due and
answers a batch (scheduler.replies). Jobs are wake-ups, so a lost, duplicated or late one costs nothing: the rows
still say what waits, and the next job or sweep takes them.

Who wakes a reply job:
- the sweep, every SWEEP_INTERVAL_SECONDS: now when a conversation is a candidate, else when the next one becomes
  one (so a lost job is made good within a sweep);
- a full batch, as soon as it is claimed: the next batch, in another process if one is free;
- every batch, after it: the earliest due time of the open groups it saw (a group's deadline is known only
  to the Python rule once its messages are read).
Future wake-ups go through one row (ReplyWakeup): a wake-up already scheduled at or before the one asked for
stands, so the jobs do not multiply however many batches and sweeps ask. The sweep's "now" goes straight to the
queue: there is at most one a sweep.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from chat.parking import parked_messages_attach, parked_messages_expire
from chat.selectors import parked_messages_exist
from core import metrics
from core.clock import ClockTimestamp
from core.jobs import enqueue_safely
from delivery.services import DeliveryWake
from scheduler import queries
from scheduler.grouping import group_rules
from scheduler.models import SweepHeartbeat
from scheduler.replies import BatchResult, earliest, replies_write_batch

logger = logging.getLogger(__name__)

# Wake-ups are rounded up to this grid: groups falling due within it share one job, and a reply is at most this
# much later than its group's deadline (plus the job's own latency).
WAKE_GRANULARITY = timedelta(milliseconds=50)
# A batch whose transaction took longer than this halves the next batch of its process (its locks make webhooks
# for those conversations wait); a quick one doubles it back, up to REPLY_BATCH_SIZE.
BATCH_TIME_BUDGET = 0.25


@dataclass(frozen=True)
class SweepResult:
    attached: int
    expired: int
    # When the sweep asked a reply job to wake (None: nothing waits).
    wake_at: datetime | None
    duration_ms: float


class BatchSize:
    """The size of this process's next batch: REPLY_BATCH_SIZE, halved after a batch over BATCH_TIME_BUDGET."""

    def __init__(self) -> None:
        self.limit: int | None = None

    def next(self) -> int:
        return min(self.limit or settings.REPLY_BATCH_SIZE, settings.REPLY_BATCH_SIZE)

    def record(self, result: BatchResult) -> None:
        if result.split:
            return
        limit = self.next()
        if result.duration > BATCH_TIME_BUDGET:
            self.limit = max(1, limit // 2)
        elif result.duration < BATCH_TIME_BUDGET / 4:
            self.limit = min(2 * limit, settings.REPLY_BATCH_SIZE)


# Per process on purpose: each worker process adapts to the batches it runs itself.
batch_size = BatchSize()


# How a reply job is enqueued: after `countdown` seconds, knowing the recorded wake-up it answers (None: at once).
Wake = Callable[[float, datetime | None], None]


def sweep_run(*, wake: Wake) -> SweepResult:
    """One sweep: attach parked messages, expire stale ones, wake a reply job when one is or becomes due, beat the
    heart. Idle, it is three statements. Reply delivery has a periodic step of its own (delivery.tasks)."""
    started = time.perf_counter()
    attached = expired = 0
    if parked_messages_exist():
        attached = parked_messages_attach()
        expired = parked_messages_expire()
    wake_at = replies_wake_next(wake=wake, due_now=True)
    result = SweepResult(attached, expired, wake_at, (time.perf_counter() - started) * 1000)
    beat = {"last_sweep_at": ClockTimestamp(), "last_duration_ms": result.duration_ms}
    if not SweepHeartbeat.objects.filter(id=1).update(**beat):
        SweepHeartbeat.objects.get_or_create(id=1, defaults=beat)
    metrics.SWEEP_SECONDS.observe(result.duration_ms / 1000)
    if attached or expired:
        logger.info("sweep", extra=vars(result))
    return result


def replies_answer(
    *,
    after: datetime | None,
    continue_after: Callable[[datetime], None],
    wake: Wake,
    woken_for: datetime | None = None,
    wake_delivery: DeliveryWake | None = None,
) -> BatchResult:
    """One reply job: a batch of due groups answered (scheduler.replies), then the next wake-up asked for: the
    earliest deadline among the open groups it saw, and, at the end of a chain of full batches, the moment the
    next conversation becomes a candidate."""
    result = replies_write_batch(
        limit=batch_size.next(), after=after, continue_after=continue_after, wake_delivery=wake_delivery
    )
    batch_size.record(result)
    if result.full:
        if result.next_due_at is not None:
            replies_wake(result.next_due_at, wake=wake, woken_for=woken_for)
    else:
        replies_wake_next(wake=wake, due_now=False, due_at=result.next_due_at, since=result.since, woken_for=woken_for)
    return result


def replies_wake_next(
    *,
    wake: Wake,
    due_now: bool,
    due_at: datetime | None = None,
    since: datetime | None = None,
    woken_for: datetime | None = None,
) -> datetime | None:
    """Ask for a reply job at the earliest of `due_at`, the moment the next conversation becomes a candidate, and
    (with `due_now`, the sweep's case) now if one is a candidate already. Returns the moment asked for."""
    rules = group_rules()
    candidate_now, next_candidate_at, now = queries.candidates_outlook(
        candidate_age=rules.candidate_age, max_messages=rules.max_messages, since=since
    )
    if due_now and candidate_now:
        # At once, not through the wake-up row: at most one a sweep, and the job asks for what comes next itself.
        enqueue_safely(wake, 0.0, None)
        return now
    at = earliest(due_at, next_candidate_at)
    if at is not None:
        replies_wake(at, wake=wake, woken_for=woken_for)
    return at


def replies_wake(at: datetime, *, wake: Wake, woken_for: datetime | None = None) -> bool:
    """Schedule a reply job at `at` (rounded up to WAKE_GRANULARITY) unless one is scheduled at or before it
    already; True when this call scheduled it. `woken_for`: the wake-up the asking job was enqueued for."""
    slot = _round_up(at, WAKE_GRANULARITY)
    countdown = queries.wakeup_record(at=slot, woken_for=woken_for)
    if countdown is None:
        return False
    if not enqueue_safely(wake, countdown, slot):
        # Forgotten, so the next request (the next sweep's, at the latest) is not held back by a job that never was.
        queries.wakeup_forget(slot)
        return False
    return True


def _round_up(moment: datetime, step: timedelta) -> datetime:
    remainder = (moment - datetime.min.replace(tzinfo=moment.tzinfo)) % step
    return moment + (step - remainder) % step
