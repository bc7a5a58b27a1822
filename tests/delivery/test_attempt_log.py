"""The attempt log (DeliveryAttempt): every POST recorded with its outcome, shown newest first by the API, erased
with its conversation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.erasure import conversations_erase
from delivery.models import DeliveryAttempt, ReplyDelivery
from delivery.selectors import ATTEMPT_LOG_SHOWN
from tests.delivery.batches import delivery_of, replies_due, send

pytestmark = pytest.mark.django_db


def test_every_attempt_is_logged_and_erased_with_its_conversation(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [503, 400]
    send()
    ReplyDelivery.objects.filter(pk=reply.pk).update(next_attempt_at=reply.timestamp)  # the retry is due now
    send()

    log = list(DeliveryAttempt.objects.filter(delivery=reply.pk).order_by("number"))
    assert [(a.number, a.status, a.outcome) for a in log] == [(1, 503, "retry"), (2, 400, "failed")]
    assert all(a.duration_ms >= 0 and a.started_at <= timezone.now() for a in log)
    assert log[1].error == delivery_of(reply).last_error

    conversations_erase([reply.conversation_id])

    assert not DeliveryAttempt.objects.exists()


def test_a_timeout_is_logged_without_a_status(delivery_on, receiver, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.hold = 1.5  # past REPLY_WEBHOOK_TIMEOUT_SECONDS (1 s here)

    send()

    [attempt] = DeliveryAttempt.objects.filter(delivery=reply.pk)
    assert (attempt.status, attempt.outcome, attempt.error) == (None, "retry", "no answer within 1 s")
    assert attempt.duration_ms >= 1000


def test_the_api_shows_a_replys_newest_attempts_only(delivery_on, receiver, api, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery_id=reply.pk, number=n, started_at=reply.timestamp, duration_ms=5, status=503, outcome="retry"
        )
        for n in range(1, ATTEMPT_LOG_SHOWN + 6)
    )

    [delivery] = [
        m["delivery"] for m in api.get(f"/conversations/{reply.conversation_id}/").json()["messages"] if m["delivery"]
    ]

    assert [attempt["number"] for attempt in delivery["log"]] == list(range(ATTEMPT_LOG_SHOWN + 5, 5, -1))


def test_a_retry_past_give_up_at_is_logged_as_failed(delivery_on, receiver, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    ReplyDelivery.objects.filter(pk=reply.pk).update(give_up_at=timezone.now() - timedelta(seconds=1))
    receiver.answers = [503]

    send()

    [attempt] = DeliveryAttempt.objects.filter(delivery=reply.pk)
    assert (attempt.status, attempt.outcome, delivery_of(reply).state) == (503, "failed", "failed")
