"""The asynchronous engine: the sweep (attach, expire, wake the reply batches) and the reply job.

Messages wait in PostgreSQL (Message.pending, ParkedMessage), and each conversation with messages waiting says
when the engine should look at it next (Conversation.reply_due_at, a lower bound). Nothing is enqueued by a
webhook, so webhooks keep working while Redis is down. A reply job carries nothing: it claims what is due and
answers a batch (scheduler.replies). Jobs are wake-ups, so a lost, duplicated or late one costs nothing: the rows
still say what waits, and the next job or sweep takes them.

Who wakes a reply job:
- the sweep, every SWEEP_INTERVAL_SECONDS: a job for each WAKE_STEP in which conversations fall due before the
  next sweep (at once for those due already): the moments messages set as they arrive;
- every batch that moved a conversation's moment, once it commits: a job at the earliest moment it set, when it
  comes before the next sweep;
- a full batch, as soon as it is claimed: the next batch, in another process if one is free.
So a reply comes at most WAKE_STEP after its group's deadline of quiet or max_wait, plus the job's own latency. A
group that a message fills, or a close, is due at once and answered at the next sweep (webhooks never enqueue).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from chat.parking import parked_messages_attach, parked_messages_expire
from chat.selectors import parked_messages_exist
from core import metrics
from core.clock import ClockTimestamp
from core.jobs import enqueue_safely
from delivery.services import DeliveryWake
from scheduler import queries
from scheduler.models import SweepHeartbeat
from scheduler.replies import ReplyBatchResult, replies_write_batch
from scheduler.selectors import sweep_interval_seconds

logger = logging.getLogger(__name__)

# Wake-ups in the coming interval are this far apart at most: conversations falling due within one step share a
# job, and a sweep asks for at most one job per step.
WAKE_STEP = 0.1
# A job woken for a moment runs this much after it, so a host whose clock is a hair behind the database's does
# not wake it early, to find nothing due.
WAKE_MARGIN = 0.005

# How a reply job is enqueued: after `countdown` seconds.
Wake = Callable[[float], None]


@dataclass(frozen=True)
class SweepResult:
    attached: int
    expired: int
    # The countdowns of the reply jobs the sweep asked for.
    wakes: list[float]
    duration_ms: float


def sweep_run(*, wake: Wake) -> SweepResult:
    """One sweep: attach parked messages, expire stale ones, wake reply jobs for what falls due before the next
    sweep, beat the heart. Idle, it is four statements. Reply delivery has a periodic step of its own
    (delivery.tasks)."""
    started = time.perf_counter()
    attached = expired = 0
    if parked_messages_exist():
        attached = parked_messages_attach()
        expired = parked_messages_expire()
    wakes = replies_wake_soon(wake=wake)
    result = SweepResult(attached, expired, wakes, (time.perf_counter() - started) * 1000)
    if not SweepHeartbeat.objects.filter(id=1).update(last_sweep_at=ClockTimestamp()):
        SweepHeartbeat.objects.get_or_create(id=1, defaults={"last_sweep_at": ClockTimestamp()})
    metrics.SWEEP_SECONDS.observe(result.duration_ms / 1000)
    if attached or expired:
        logger.info("sweep", extra=vars(result))
    return result


def replies_wake_soon(*, wake: Wake) -> list[float]:
    """Enqueue a reply job for each WAKE_STEP in which conversations fall due before the next sweep (by the interval
    in force), and one at once for what is due already. Returns the countdowns."""
    # The next sweep may come a step late; a moment in that step gets a job from both, the second finds nothing.
    horizon = sweep_interval_seconds() + WAKE_STEP
    countdowns = [_with_margin(c) for c in queries.wake_countdowns(horizon=horizon, step=WAKE_STEP)]
    return [countdown for countdown in countdowns if enqueue_safely(wake, countdown)]


def replies_answer(
    *, continue_now: Callable[[], None], wake: Wake, wake_delivery: DeliveryWake | None = None
) -> ReplyBatchResult:
    """One reply job: a batch of due conversations answered (scheduler.replies); a full batch wakes the next at
    once, and a job is asked for at the earliest moment the batch set (a group it saw still growing) when that
    comes before the next sweep."""
    result = replies_write_batch(
        limit=settings.REPLY_BATCH_SIZE, continue_now=continue_now, wake_delivery=wake_delivery
    )
    # Only what the next sweep may not see in time: a later moment is the sweep's to wake for.
    if result.next_due_in is not None and result.next_due_in <= settings.SWEEP_INTERVAL_SECONDS + WAKE_STEP:
        enqueue_safely(wake, _with_margin(max(0.0, result.next_due_in)))
    return result


def _with_margin(countdown: float) -> float:
    return countdown + WAKE_MARGIN if countdown > 0 else 0.0
