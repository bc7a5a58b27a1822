"""Reply delivery: every OUTBOUND POSTed to REPLY_WEBHOOK_URL, at least once, nothing lost.

The state lives in PostgreSQL (ReplyDelivery), written in the reply's own transaction; Celery only carries jobs.
A job holds a lease (a token and a time): it attempts only while its token is the row's, and every attempt and
every retry replaces the token, so a job that Redis lost, a worker dropped or Celery delivered twice does
nothing, and the sweep dispatches a new job for each pending row whose lease ran out (deliveries_dispatch).
A receiver may still get a reply twice (a worker killed after the POST, before recording it): each POST carries
the reply's id as its Idempotency-Key, so it can drop repeats.

Outcomes of one attempt: a 2xx is `delivered`; a timeout, a connection error, 408, 429 or a 5xx is retried after
an exponential backoff with full jitter (or the receiver's Retry-After, when longer) until give_up_at, then
`failed`; any other answer is `failed` at once.
"""

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.contrib.postgres.functions import RandomUUID
from django.db import transaction
from django.db.models import F

from chat.db import ClockTimestamp
from chat.fields import UTCDateTimeField
from chat.models import MESSAGE_ORDER, Message
from chat.webhook import signature_for
from delivery import client
from delivery.models import ReplyDelivery
from realmate import metrics

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Pending deliveries the sweep dispatches at most at once; the next sweep takes the rest.
DISPATCH_BATCH = 500


@dataclass(frozen=True)
class DeliveryJob:
    """What a delivery job carries: the reply and the lease token that allows it to attempt."""

    message_id: uuid.UUID
    lease_token: uuid.UUID


@dataclass(frozen=True)
class AttemptResult:
    """What one job did: the delivery's state after it (None: the job no longer held the lease and did nothing),
    and when it must try again (`retry`: the next job, `retry_in`: after how many seconds)."""

    state: str | None
    retry: DeliveryJob | None = None
    retry_in: float | None = None


def delivery_enabled() -> bool:
    return bool(settings.REPLY_WEBHOOK_URL)


def reply_deliveries_open(
    reply_ids: list[uuid.UUID], *, now: datetime, dispatch: Callable[[DeliveryJob], None] | None
) -> list[ReplyDelivery]:
    """Inside the replies' transaction (`now` is its database clock): record their deliveries as pending with one
    INSERT (when delivery is on), and dispatch the first jobs once the transaction commits. If a job is lost, the
    sweep dispatches another when its lease runs out."""
    if not delivery_enabled() or not reply_ids:
        return []
    deliveries = ReplyDelivery.objects.bulk_create(
        [
            ReplyDelivery(
                message_id=reply_id,
                give_up_at=now + timedelta(seconds=settings.REPLY_DELIVERY_MAX_SECONDS),
                lease_token=uuid.uuid4(),
                lease_until=now + _lease(),
            )
            for reply_id in reply_ids
        ],
        # Eight parameters a row: a batch with many replies stays under PostgreSQL's 65,535 per statement.
        batch_size=1000,
    )
    if dispatch is not None:
        jobs = [DeliveryJob(delivery.message_id, delivery.lease_token) for delivery in deliveries]
        transaction.on_commit(lambda: _dispatch_all(jobs, dispatch))
    return deliveries


def deliveries_dispatch(*, dispatch: Callable[[DeliveryJob], None]) -> int:
    """The sweep's step: a new job for each pending delivery whose lease ran out (its job was lost, or its
    worker died), with a new token so the old job, should it come back, does nothing."""
    if not delivery_enabled():
        return 0
    with transaction.atomic():
        due = list(
            ReplyDelivery.objects.select_for_update(skip_locked=True)
            .filter(state=ReplyDelivery.State.PENDING, lease_until__lt=ClockTimestamp())
            .order_by("lease_until")
            .values_list("pk", flat=True)[:DISPATCH_BATCH]
        )
        if not due:
            return 0
        jobs = _leases_renewed(due, dispatch=dispatch)
    logger.info("deliveries dispatched again", extra={"count": len(jobs)})
    return len(jobs)


def deliveries_retry(message_ids: list[uuid.UUID], *, dispatch: Callable[[DeliveryJob], None]) -> int:
    """An operator's retry (the admin's action): failed or pending deliveries start again now, with a fresh
    REPLY_DELIVERY_MAX_SECONDS; delivered ones are left alone. Returns how many were restarted."""
    with transaction.atomic():
        restarted = list(
            ReplyDelivery.objects.select_for_update()
            .filter(pk__in=message_ids)
            .exclude(state=ReplyDelivery.State.DELIVERED)
            .values_list("pk", flat=True)
        )
        jobs = _leases_renewed(
            restarted,
            dispatch=dispatch,
            state=ReplyDelivery.State.PENDING,
            give_up_at=ClockTimestamp() + timedelta(seconds=settings.REPLY_DELIVERY_MAX_SECONDS),
        )
    return len(jobs)


def reply_deliver(job: DeliveryJob) -> AttemptResult:
    """One attempt: claim the lease, POST the reply, record the answer. Safe to run twice: the claim needs the
    job's token, which the claim itself replaces. With REPLY_WEBHOOK_URL emptied since the job was queued, it
    does nothing: the delivery stays pending, and the sweep takes it up again once a URL is set."""
    if not delivery_enabled():
        return AttemptResult(state=None)
    claimed = _attempt_claim(job)
    if claimed is None:
        return AttemptResult(state=None)
    delivery, attempt_token = claimed
    body = reply_body(delivery.message)
    answer = client.reply_post(
        settings.REPLY_WEBHOOK_URL,
        body,
        reply_headers(delivery.message, body, attempt=delivery.attempts),
        timeout=settings.REPLY_WEBHOOK_TIMEOUT_SECONDS,
    )
    return _attempt_record(job.message_id, attempt_token, answer)


def reply_body(reply: Message) -> bytes:
    """The POSTed JSON: the same bytes on every attempt."""
    answers = Message.objects.filter(reply=reply).order_by(*MESSAGE_ORDER).values_list("id", flat=True)
    payload = {
        "type": "OUTBOUND_MESSAGE",
        "timestamp": UTCDateTimeField().to_representation(reply.timestamp),
        "data": {
            "id": str(reply.id),
            "conversation_id": str(reply.conversation_id),
            "content": reply.content,
            "answers": [str(message_id) for message_id in answers],
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def reply_headers(reply: Message, body: bytes, *, attempt: int) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: str(reply.id),
        "X-Delivery-Attempt": str(attempt),
    }
    if settings.REPLY_WEBHOOK_SECRET:
        headers["X-Hub-Signature-256"] = signature_for(body, settings.REPLY_WEBHOOK_SECRET)
    return headers


def retry_wait(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: Celery's exponential backoff with full jitter (BACKOFF x 2^(attempts-1),
    capped at BACKOFF_MAX), or the receiver's Retry-After when it asks for longer."""
    backoff = get_exponential_backoff_interval(
        factor=settings.REPLY_DELIVERY_BACKOFF_SECONDS,
        retries=max(0, attempts - 1),
        maximum=settings.REPLY_DELIVERY_BACKOFF_MAX_SECONDS,
        full_jitter=True,
    )
    return max(float(backoff), retry_after or 0.0)


def _attempt_claim(job: DeliveryJob) -> tuple[ReplyDelivery, uuid.UUID] | None:
    """Take the lease for one POST (its time covers the request's timeout), counting the attempt; None when the
    job's token is no longer the row's (another job took over, or the delivery is settled)."""
    attempt_token = uuid.uuid4()
    # One UPDATE is atomic on its own: of parallel runs of one job, one matches the token and replaces it.
    claimed = ReplyDelivery.objects.filter(
        pk=job.message_id, state=ReplyDelivery.State.PENDING, lease_token=job.lease_token
    ).update(
        attempts=F("attempts") + 1,
        lease_token=attempt_token,
        lease_until=ClockTimestamp() + _lease(settings.REPLY_WEBHOOK_TIMEOUT_SECONDS),
    )
    if not claimed:
        logger.info("delivery job without its lease: nothing to do", extra={"message_id": str(job.message_id)})
        return None
    return ReplyDelivery.objects.select_related("message").get(pk=job.message_id), attempt_token


def _attempt_record(message_id: uuid.UUID, attempt_token: uuid.UUID, answer: client.ReceiverAnswer) -> AttemptResult:
    log = {"message_id": str(message_id)}
    with transaction.atomic():
        # The database clock comes with the row: the retry's wait and give_up_at are on the same clock.
        delivery = ReplyDelivery.objects.select_for_update().annotate(db_now=ClockTimestamp()).get(pk=message_id)
        if delivery.state != ReplyDelivery.State.PENDING:
            return AttemptResult(state=delivery.state)
        if answer.delivered:
            # Recorded even when another job holds the lease by now: the receiver has the reply.
            _settle(delivery, ReplyDelivery.State.DELIVERED, "", delivered_at=ClockTimestamp())
            metrics.DELIVERY_ATTEMPTS.labels("delivered").inc()
            logger.info("reply delivered", extra={**log, "attempts": delivery.attempts})
            return AttemptResult(state=delivery.state)
        if delivery.lease_token != attempt_token:
            # Our lease ran out during the POST and a newer job owns the delivery now: leave it to that job.
            return AttemptResult(state=None)
        wait = retry_wait(delivery.attempts, answer.retry_after)
        now = delivery.db_now
        if not answer.retryable or now + timedelta(seconds=wait) > delivery.give_up_at:
            reason = answer.error if not answer.retryable else f"{answer.error} (gave up: past give_up_at)"
            _settle(delivery, ReplyDelivery.State.FAILED, reason[:500])
            metrics.DELIVERY_ATTEMPTS.labels("failed").inc()
            logger.warning("reply delivery failed", extra={**log, "attempts": delivery.attempts, "error": reason})
            return AttemptResult(state=delivery.state)
        delivery.last_error = answer.error
        delivery.lease_token = uuid.uuid4()
        delivery.lease_until = now + _lease(wait)
        delivery.save(update_fields=["last_error", "lease_token", "lease_until"])
    metrics.DELIVERY_ATTEMPTS.labels("retry").inc()
    logger.info("reply delivery retried", extra={**log, "attempts": delivery.attempts, "error": answer.error})
    job = DeliveryJob(message_id, delivery.lease_token)
    # A wait longer than the backoff's cap (a Retry-After asked for it) is left to the sweep: a Celery job held
    # back for hours would outlive Redis' visibility timeout and come back early.
    if wait > settings.REPLY_DELIVERY_BACKOFF_MAX_SECONDS:
        return AttemptResult(state=delivery.state)
    return AttemptResult(state=delivery.state, retry=job, retry_in=wait)


def _settle(delivery: ReplyDelivery, state: str, error: str, delivered_at=None) -> None:
    delivery.state = state
    delivery.last_error = error
    delivery.delivered_at = delivered_at
    delivery.lease_token = None
    delivery.lease_until = None
    delivery.save(update_fields=["state", "last_error", "delivered_at", "lease_token", "lease_until"])


def _lease(seconds: float = 0.0) -> timedelta:
    """A lease lasts what the job needs (`seconds`) plus REPLY_LEASE_SECONDS for it to start: when it runs out
    with the delivery still pending, the job is presumed lost."""
    return timedelta(seconds=seconds + settings.REPLY_LEASE_SECONDS)


def _leases_renewed(pks: list[uuid.UUID], *, dispatch: Callable[[DeliveryJob], None], **changes) -> list[DeliveryJob]:
    """Inside the caller's transaction, with the rows locked: give each delivery a new lease token (voiding any
    job still about) and a fresh lease, apply `changes`, and dispatch a job each once the transaction commits."""
    ReplyDelivery.objects.filter(pk__in=pks).update(
        lease_token=RandomUUID(), lease_until=ClockTimestamp() + _lease(), **changes
    )
    jobs = [DeliveryJob(*row) for row in ReplyDelivery.objects.filter(pk__in=pks).values_list("pk", "lease_token")]
    transaction.on_commit(lambda: _dispatch_all(jobs, dispatch))
    return jobs


def _dispatch_all(jobs: list[DeliveryJob], dispatch: Callable[[DeliveryJob], None]) -> None:
    """Enqueue the jobs, stopping at the first that fails: Redis is away, and each further try would cost a
    failed connection (hundreds of them would outlast the job's time limit). The leases of the rest run out and
    the sweep dispatches them again."""
    for sent, job in enumerate(jobs):
        try:
            dispatch(job)
        except Exception:
            logger.exception(
                "delivery jobs not enqueued", extra={"message_id": str(job.message_id), "left": len(jobs) - sent}
            )
            return
