"""Replies signed the Standard Webhooks way, verified by the reference package (`standardwebhooks`) as a receiver
would; a secret rotated with no failed delivery."""

import base64
import hashlib
import hmac

import pytest
from django.core.checks import run_checks
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from delivery.models import ReplyDelivery
from tests.delivery.batches import delivery_of, replies_due, send
from tests.receiver import Received

pytestmark = pytest.mark.django_db

NEW_KEY = "whsec_" + base64.b64encode(b"the new key, 32 bytes, random..").decode()
OLD_KEY = "whsec_" + base64.b64encode(b"the old key, 32 bytes, random..").decode()


def verified_by(key: str):
    def verify(request: Received) -> bool:
        try:
            Webhook(key).verify(request.body, request.headers)
        except WebhookVerificationError:
            return False
        return True

    return verify


def test_a_reply_verifies_with_the_standard_webhooks_package(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_WEBHOOK_SECRET = NEW_KEY
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)

    assert send().outcomes["delivered"] == 1

    [request] = receiver.received
    payload = Webhook(NEW_KEY).verify(request.body, request.headers)
    assert payload["data"]["id"] == str(reply.id)
    assert request.headers["webhook-id"] == request.headers["Idempotency-Key"] == str(reply.id)
    assert (
        request.headers["X-Hub-Signature-256"]
        == "sha256=" + hmac.new(NEW_KEY.encode(), request.body, hashlib.sha256).hexdigest()
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_KEY).verify(request.body, request.headers)


def test_a_secret_is_rotated_with_no_failed_delivery(delivery_on, receiver, django_capture_on_commit_callbacks):
    """The receiver knows the old key; the sender adds the new one first; the receiver moves to the new key; the
    sender drops the old one. Every reply is delivered at its first attempt."""
    steps = [
        (OLD_KEY, OLD_KEY, 1),
        (f"{NEW_KEY} {OLD_KEY}", OLD_KEY, 2),
        (f"{NEW_KEY} {OLD_KEY}", NEW_KEY, 2),
        (NEW_KEY, NEW_KEY, 1),
    ]
    for sender_secrets, receiver_key, signatures in steps:
        delivery_on.REPLY_WEBHOOK_SECRET = sender_secrets
        receiver.verifier = verified_by(receiver_key)
        [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)

        assert send().outcomes["delivered"] == 1, (sender_secrets, receiver_key)
        assert (delivery_of(reply).state, delivery_of(reply).attempts) == (ReplyDelivery.State.DELIVERED, 1)
        assert len(receiver.received[-1].headers["webhook-signature"].split()) == signatures


def test_the_receiver_refuses_a_reply_signed_only_by_a_secret_it_no_longer_has(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    delivery_on.REPLY_WEBHOOK_SECRET = OLD_KEY
    receiver.verifier = verified_by(NEW_KEY)
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)

    assert send().outcomes["failed"] == 1
    assert delivery_of(reply).last_error == "HTTP 401: bad signature"


def test_a_reply_secret_that_is_not_a_key_stops_the_start(settings):
    settings.REPLY_WEBHOOK_URL = "http://127.0.0.1:9/replies"
    settings.REPLY_WEBHOOK_SECRET = f"{NEW_KEY} whsec_%%%"

    assert [message.id for message in run_checks() if message.id.startswith("delivery.E")] == ["delivery.E004"]
