"""Reply delivery: every OUTBOUND POSTed to REPLY_WEBHOOK_URL, at least once, nothing lost.

PostgreSQL is the queue of record (ReplyDelivery, written in the reply's own transaction); a Celery job is only a
wake-up call, sent after each reply batch commits and by the sweep while anything is due. A job is one batch:
it claims up to REPLY_DELIVERY_BATCH due deliveries, due longest first, in one statement, POSTs them with up to
REPLY_WEBHOOK_CONCURRENCY in flight, and settles every outcome in one more. A full batch first wakes another job,
so every delivery process works on the backlog at once. A lost job costs nothing (the rows are there), and a
batch that dies leaves its rows to fall due again when its claim ends (queries.CLAIM_SQL). A receiver may
still get a reply twice (a process killed after the POST, before the settle): each POST carries the reply's id as
its Idempotency-Key, so it can drop repeats.

Outcomes of one attempt: a 2xx is `delivered`; a timeout, a connection error, 408, 429 or a 5xx is retried after
an exponential backoff with full jitter (or the receiver's Retry-After, when longer) until give_up_at, then
`failed`; any other answer is `failed` at once. Receiver failures in a row open the circuit (delivery.circuit).
"""

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import metrics
from core.clock import ClockTimestamp
from core.jobs import enqueue_safely
from core.serializer_fields import UTCDateTimeField
from core.signing import SIGNATURE_HEADER, secrets_list, signature_for, standard_headers
from delivery import circuit, client, pace
from delivery.attempt_spans import attempt_spans_record
from delivery.circuit import Admission, FailureRun, circuit_pass, circuit_record
from delivery.models import ReplyDelivery
from delivery.queries import Claimed, Outcome, deliveries_claim, deliveries_due, deliveries_expire, deliveries_settle
from delivery.recovery import recoveries_advance

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# A batch starts POSTs for this long, then waits for those in flight and settles (a fuller batch waits its turn).
SEND_WINDOW_SECONDS = 4.0
# From the job's soft time limit to its hard one: a batch interrupted at the soft limit still settles.
SETTLE_MARGIN_SECONDS = 5.0

# How a delivery job is enqueued (delivery.tasks): a wake-up call, carrying nothing.
DeliveryWake = Callable[[], None]


@dataclass(frozen=True)
class DeliveryBatchResult:
    """What one delivery job did. `outcomes` counts the settled rows by outcome (delivered, retry, failed, unsent)."""

    admission: Admission
    claimed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    duration: float = 0.0


def delivery_enabled() -> bool:
    return bool(settings.REPLY_WEBHOOK_URL)


def reply_deliveries_open(reply_ids: list[uuid.UUID], *, now: datetime, wake: DeliveryWake | None) -> None:
    """Inside the replies' transaction (`now` is its database clock): record their deliveries as pending and due
    with one INSERT (when delivery is on), and wake a delivery job once the transaction commits."""
    if not delivery_enabled() or not reply_ids:
        return
    give_up_at = now + timedelta(seconds=settings.REPLY_DELIVERY_MAX_SECONDS)
    ReplyDelivery.objects.bulk_create(
        # next_attempt_at is the database default, the insert's clock: due at once, in the order written.
        [ReplyDelivery(message_id=reply_id, give_up_at=give_up_at) for reply_id in reply_ids],
        # Eight parameters a row: a batch with many replies stays under PostgreSQL's 65,535 per statement.
        batch_size=1000,
    )
    if wake is not None:
        transaction.on_commit(lambda: enqueue_safely(wake))


def deliveries_wake_due(*, wake: DeliveryWake) -> int:
    """Delivery's periodic step, on its own queue: fail the deliveries past give_up_at that nothing holds, advance a
    running recovery (delivery.recovery), and wake a delivery job when a delivery is due and the circuit and the
    rate let a batch or a probe out (retries and recovered replies come due this way). Returns how many failed.
    Each reads through a partial index (pending rows, running recoveries), as conditions of the index (see
    delivery.queries): the cost follows what is due, not what is held."""
    if not delivery_enabled():
        return 0
    expired = deliveries_expire()
    if expired:
        metrics.DELIVERY_ATTEMPTS.labels("failed").inc(expired)
        logger.warning("reply deliveries gave up: past give_up_at", extra={"count": expired})
    if deliveries_due(book_ahead=pace.BOOK_AHEAD_SECONDS):
        enqueue_safely(wake)
    # After the wake-up: a recovery's trouble does not hold back retries (what it queues is woken a second later).
    recoveries_advance()
    return expired


def deliveries_retry(message_ids: list[uuid.UUID], *, wake: DeliveryWake) -> int:
    """An operator's retry (the admin's action): failed or pending deliveries are due again now, with a fresh
    REPLY_DELIVERY_MAX_SECONDS; delivered ones are left alone. A batch holding one of them settles nothing for it
    but a success. Returns how many were restarted."""
    restarted = (
        ReplyDelivery.objects.filter(pk__in=message_ids)
        .exclude(state=ReplyDelivery.State.DELIVERED)
        .update(
            state=ReplyDelivery.State.PENDING,
            claim_token=None,
            next_attempt_at=ClockTimestamp(),
            give_up_at=ClockTimestamp() + timedelta(seconds=settings.REPLY_DELIVERY_MAX_SECONDS),
        )
    )
    if restarted:
        transaction.on_commit(lambda: enqueue_safely(wake))
    return restarted


def receiver_enable(*, wake: DeliveryWake) -> bool:
    """An operator enables the receiver that answered 410 Gone (the admin, the API): the replies that waited go out
    at once. False when it was not disabled."""
    with transaction.atomic():
        enabled = circuit.receiver_enable()
        if enabled:
            transaction.on_commit(lambda: enqueue_safely(wake))
    return enabled


def deliveries_send(*, wake_next: DeliveryWake) -> DeliveryBatchResult:
    """One delivery job: claim a batch (or the circuit's probe), POST it, settle it. With REPLY_WEBHOOK_URL emptied
    since the job was queued it does nothing: the deliveries stay pending until a URL is set."""
    if not delivery_enabled():
        return DeliveryBatchResult(Admission.NONE)
    started = time.perf_counter()
    gate = circuit_pass()
    if gate.admission is Admission.NONE:
        return DeliveryBatchResult(gate.admission)
    probing = gate.admission is Admission.PROBE
    limit = 1 if probing else settings.REPLY_DELIVERY_BATCH
    claim = _paced_claim if pace.pace_rate() else _claim
    token = uuid.uuid4()
    claimed, booking, more = claim(token=token, limit=limit)
    if not claimed:
        return DeliveryBatchResult(gate.admission)
    if more and not probing:
        enqueue_safely(wake_next)  # the next batch, for another delivery process, while this one POSTs
    run = FailureRun(gate.failures)
    answers = client.replies_post(
        settings.REPLY_WEBHOOK_URL,
        [_post(reply) for reply in claimed],
        concurrency=settings.REPLY_WEBHOOK_CONCURRENCY,
        # No more at first than the failures that open the circuit: all a dead receiver gets from a batch.
        opening=circuit.CIRCUIT_FAILURES,
        timeout=settings.REPLY_WEBHOOK_TIMEOUT_SECONDS,
        send_for=SEND_WINDOW_SECONDS,
        keep_sending=run.keep_sending,
        slots=booking and client.Slots(booking.first, booking.interval),
    )
    outcomes = [_outcome(reply, answer, probing=probing) for reply, answer in zip(claimed, answers, strict=True)]
    with transaction.atomic():
        settled = deliveries_settle(token=token, outcomes=outcomes)
        circuit_record(answered=run.answered, failures_since=run.since, error=run.last_error)
        if run.gone is not None:
            circuit.receiver_disable(run.gone)
    if probing and run.answered:
        enqueue_safely(wake_next)  # the probe closed the circuit: the backlog goes out now, at full speed
    attempt_spans_record(claimed, answers)  # after the settle: nothing of tracing stands before it
    result = DeliveryBatchResult(gate.admission, len(claimed), _tally(outcomes, settled), time.perf_counter() - started)
    _batch_report(result, outcomes, settled)
    return result


def _claim(*, token: uuid.UUID, limit: int) -> tuple[list[Claimed], None, bool]:
    """Without a rate: up to `limit` due replies. The third value: whether more may be due for another batch now
    (this one is full)."""
    claimed = deliveries_claim(token=token, limit=limit, claim_seconds=claim_seconds())
    return claimed, None, len(claimed) == limit


def _paced_claim(*, token: uuid.UUID, limit: int) -> tuple[list[Claimed], pace.Booking | None, bool]:
    """With REPLY_WEBHOOK_RATE (delivery.pace): only the replies whose slots fit in the send window, and a slot
    booked for each, in one transaction. The third value: whether more may be due and another batch could book
    slots now (otherwise delivery's periodic step wakes the next one)."""
    with transaction.atomic():
        room = pace.pace_room(SEND_WINDOW_SECONDS)
        if room is None:
            return [], None, False
        limit = min(limit, room)
        claimed = deliveries_claim(token=token, limit=limit, claim_seconds=claim_seconds())
        if not claimed:
            return [], None, False
        booking = pace.pace_book(len(claimed))
    return claimed, booking, len(claimed) == limit and booking.ends_in <= pace.BOOK_AHEAD_SECONDS


def reply_body(reply: Claimed) -> bytes:
    """The POSTed JSON: the same bytes on every attempt."""
    payload = {
        "type": "OUTBOUND_MESSAGE",
        "timestamp": UTCDateTimeField().to_representation(reply.timestamp),
        "data": {
            "id": str(reply.message_id),
            "conversation_id": str(reply.conversation_id),
            "content": reply.content,
            "answers": [str(message_id) for message_id in reply.answers],
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def reply_headers(reply_id: uuid.UUID, body: bytes, *, attempt: int, traceparent: str) -> dict[str, str]:
    """An attempt's headers. Signed the Standard Webhooks way with every secret (webhook-id is the reply's id, the
    timestamp the attempt's), and with X-Hub-Signature-256 by the newest secret for receivers that check that. A
    traced reply's traceparent goes too (W3C Trace Context): a receiver's own spans become children of the reply,
    beside the attempts' spans, which are recorded only after the POST (delivery.attempt_spans)."""
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: str(reply_id),
        "X-Delivery-Attempt": str(attempt),
    }
    if traceparent:
        headers["traceparent"] = traceparent
    if secrets := secrets_list(settings.REPLY_WEBHOOK_SECRET):
        headers.update(standard_headers(str(reply_id), body, secrets, timezone.now()))
        headers[SIGNATURE_HEADER] = signature_for(body, secrets[0])
    return headers


def retry_wait(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: Celery's exponential backoff with full jitter (BACKOFF x 2^(attempts-1),
    capped at BACKOFF_MAX), or the receiver's Retry-After when it asks for longer, up to REPLY_DELIVERY_MAX_SECONDS
    (a longer wait gives up all the same)."""
    backoff = get_exponential_backoff_interval(
        factor=settings.REPLY_DELIVERY_BACKOFF_SECONDS,
        retries=max(0, attempts - 1),
        maximum=settings.REPLY_DELIVERY_BACKOFF_MAX_SECONDS,
        full_jitter=True,
    )
    return min(max(float(backoff), retry_after or 0.0), settings.REPLY_DELIVERY_MAX_SECONDS)


def time_limits() -> tuple[float, float]:
    """The delivery job's own (soft, hard) time limits, not the reply jobs': the send window, then the last POST's
    timeout and a second for the settle; the hard limit SETTLE_MARGIN_SECONDS later."""
    soft = SEND_WINDOW_SECONDS + settings.REPLY_WEBHOOK_TIMEOUT_SECONDS + 1
    return soft, soft + SETTLE_MARGIN_SECONDS


def claim_seconds() -> float:
    """How long a batch holds its rows: a second past its job's hard time limit, so no live batch loses them (the
    claim starts after the job did). A batch whose process died leaves them due again at the end."""
    return time_limits()[1] + 1


def _post(reply: Claimed) -> client.Post:
    body = reply_body(reply)
    headers = reply_headers(reply.message_id, body, attempt=reply.attempt, traceparent=reply.traceparent)
    return client.Post(reply.conversation_id, body, headers)


def _outcome(reply: Claimed, answer: client.ReceiverAnswer | None, *, probing: bool) -> Outcome:
    if answer is None:
        return Outcome(reply.message_id, "unsent")
    logged = {
        "number": reply.attempt,
        "started_at": datetime.fromtimestamp(answer.started_at, UTC),
        "duration_ms": round(answer.seconds * 1000, 1),
        "status": answer.status,
    }
    if answer.delivered:
        return Outcome(reply.message_id, "delivered", **logged)
    if answer.status == circuit.GONE:
        # Not the reply's failure: the receiver is gone, and the reply waits for it to be enabled again.
        return Outcome(reply.message_id, "retry", answer.error, 0.0, **logged)
    if not answer.retryable:
        return Outcome(reply.message_id, "failed", answer.error, **logged)
    # A failed probe stays due: while the circuit is open, its probes set the pace, not the reply's own backoff (and
    # the next probe takes another reply: queries.CLAIM_SQL).
    wait = 0.0 if probing else retry_wait(reply.attempt, answer.retry_after)
    return Outcome(reply.message_id, "retry", answer.error, wait, **logged)


def _tally(outcomes: list[Outcome], settled: dict[uuid.UUID, str]) -> Counter:
    """Settled rows by what became of them; a row another batch holds by now is `overtaken`."""
    tally = Counter()
    for outcome in outcomes:
        state = settled.get(outcome.message_id)
        if state is None:
            tally["overtaken"] += 1
        elif outcome.outcome in ("retry", "unsent") and state == ReplyDelivery.State.PENDING:
            tally[outcome.outcome] += 1
        else:
            tally[state] += 1
    return tally


def _batch_report(result: DeliveryBatchResult, outcomes: list[Outcome], settled: dict[uuid.UUID, str]) -> None:
    for outcome in ("delivered", "retry", "failed"):
        if result.outcomes[outcome]:
            metrics.DELIVERY_ATTEMPTS.labels(outcome).inc(result.outcomes[outcome])
    metrics.DELIVERY_BATCH_SECONDS.observe(result.duration)
    for outcome in outcomes:
        if settled.get(outcome.message_id) == ReplyDelivery.State.FAILED:
            logger.warning(
                "reply delivery failed", extra={"message_id": str(outcome.message_id), "error": outcome.error}
            )
    logger.info(
        "delivery batch",
        extra={
            "admission": result.admission.value,
            "claimed": result.claimed,
            **result.outcomes,
            "duration_ms": round(result.duration * 1000, 1),
        },
    )
