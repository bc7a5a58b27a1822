import base64
import hashlib
import hmac
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from standardwebhooks import Webhook

from chat.models import Conversation
from tests.factories import ConversationFactory
from tests.helpers import new_conversation, new_message

pytestmark = pytest.mark.django_db
SECRET = "s3cr3t-for-tests"


def chat_check_ids() -> list[str]:
    return [message.id for message in run_checks() if message.id.startswith("chat.")]


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def signed(settings):
    settings.WEBHOOK_SECRET = SECRET


def post(api, body: bytes, **headers):
    return api.generic("POST", "/webhook/", body, content_type="application/json", headers=headers)


def test_signed_request_is_accepted(api, signed):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()

    response = post(api, body, **{"X-Hub-Signature-256": signature(body)})

    assert response.status_code == HTTPStatus.CREATED


def test_uppercase_hex_signature_is_accepted(api, signed):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()

    response = post(api, body, **{"X-Hub-Signature-256": signature(body).upper().replace("SHA256=", "sha256=")})

    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", "sha256=deadbeef", "md5=abc", "sha256=" + "0" * 64],
    ids=["missing", "empty", "no-digest", "short", "other-algorithm", "wrong-digest"],
)
def test_unsigned_or_badly_signed_request_is_401(api, signed, header):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()
    headers = {} if header is None else {"X-Hub-Signature-256": header}

    response = post(api, body, **headers)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["code"] == "invalid_signature"
    assert not Conversation.objects.exists()


def test_signature_of_another_body_or_secret_is_401(api, signed):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()
    other = json.dumps(new_conversation(uuid.uuid4())).encode()

    assert post(api, body, **{"X-Hub-Signature-256": signature(other)}).status_code == HTTPStatus.UNAUTHORIZED
    assert post(api, body, **{"X-Hub-Signature-256": signature(body, "other")}).status_code == HTTPStatus.UNAUTHORIZED


def test_signature_is_checked_before_the_body_is_parsed(api, signed):
    response = post(api, b"not json", **{"X-Hub-Signature-256": "sha256=00"})

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_without_a_secret_unsigned_requests_pass_and_the_system_check_warns(api, settings):
    settings.WEBHOOK_SECRET = ""

    response = post(api, json.dumps(new_conversation(uuid.uuid4())).encode())

    assert response.status_code == HTTPStatus.CREATED
    assert chat_check_ids() == ["chat.W001"]


def test_with_a_secret_the_system_check_is_quiet(settings):
    settings.WEBHOOK_SECRET = SECRET

    assert chat_check_ids() == []


def test_migrate_prints_the_warning_once(settings):
    """The web role runs migrate once per start: that is where the warning is shown, once."""
    settings.WEBHOOK_SECRET = ""
    stderr = io.StringIO()

    call_command("migrate", "--check", skip_checks=False, stdout=io.StringIO(), stderr=stderr)

    assert stderr.getvalue().count("WEBHOOK_SECRET is not set") == 1


# --- Standard Webhooks (standardwebhooks.com), signed here by the reference package itself.
NEW_KEY, OLD_KEY = (
    "whsec_" + base64.b64encode(b"new key, 24 bytes long!!").decode(),
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
)


def standard(body: bytes, key: str = NEW_KEY, *, message_id: str = "msg_1", at: datetime | None = None) -> dict:
    at = at or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(key).sign(message_id, at, body),
    }


@pytest.fixture
def rotating(settings):
    settings.WEBHOOK_SECRET = f"{NEW_KEY} {OLD_KEY} {SECRET}"


@pytest.mark.parametrize("key", [NEW_KEY, OLD_KEY])
def test_a_standard_webhooks_request_signed_by_any_secret_is_accepted(api, rotating, key):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()

    response = post(api, body, **standard(body, key))

    assert response.status_code == HTTPStatus.CREATED


def test_x_hub_signature_keeps_working_with_any_of_several_secrets(api, rotating):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()

    assert post(api, body, **{"X-Hub-Signature-256": signature(body, SECRET)}).status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("seconds", [-301, 301, -3600])
def test_a_standard_webhooks_timestamp_outside_the_tolerance_is_401_and_changes_nothing(api, rotating, seconds):
    conversation_id = uuid.uuid4()
    body = json.dumps(new_conversation(conversation_id)).encode()

    response = post(api, body, **standard(body, at=datetime.now(UTC) + timedelta(seconds=seconds)))

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["code"] == "timestamp_out_of_tolerance"
    assert not Conversation.objects.filter(id=conversation_id).exists()


def test_the_tolerance_is_a_setting(api, rotating, settings):
    settings.WEBHOOK_TOLERANCE_SECONDS = 30
    body = json.dumps(new_conversation(uuid.uuid4())).encode()

    late = post(api, body, **standard(body, at=datetime.now(UTC) - timedelta(seconds=60)))

    assert late.json()["code"] == "timestamp_out_of_tolerance"


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1,AAAA"},
        {"webhook-signature": ""},
        {"webhook-timestamp": ""},
        {"webhook-timestamp": "12.5"},
        {"webhook-timestamp": "9" * 30},
        {"webhook-timestamp": "²"},
        {"webhook-id": ""},
        {"webhook-id": "another id"},
    ],
    ids=["wrong", "no-signature", "no-timestamp", "fraction", "huge", "unicode-digit", "no-id", "other-id"],
)
def test_a_standard_webhooks_request_with_a_header_missing_or_wrong_is_401(api, rotating, change):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()

    response = post(api, body, **(standard(body) | change))

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["code"] == "invalid_signature"


def test_a_standard_webhooks_request_is_not_accepted_by_a_signature_over_another_body(api, rotating):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()
    other = json.dumps(new_conversation(uuid.uuid4())).encode()

    assert post(api, body, **standard(other)).status_code == HTTPStatus.UNAUTHORIZED


def test_a_replay_within_the_tolerance_is_an_ordinary_redelivery(api, rotating):
    conversation_id, message_id = ConversationFactory().id, uuid.uuid4()
    body = json.dumps(new_message(message_id, conversation_id)).encode()
    headers = standard(body, message_id="evt_7")

    first, replay = post(api, body, **headers), post(api, body, **headers)

    assert (first.status_code, replay.status_code) == (HTTPStatus.ACCEPTED, HTTPStatus.OK)
    assert replay.json()["outcome"] == "duplicate"


@pytest.mark.parametrize("bad", ["whsec_not*base64", "whsec_ab*cd", "whsec_"])
def test_a_secret_that_is_not_a_key_stops_the_start_without_showing_it(settings, bad):
    settings.WEBHOOK_SECRET = f"{NEW_KEY} {bad}"

    [problem] = [message for message in run_checks() if message.id.startswith("chat.E")]

    assert problem.id == "chat.E002"
    assert "secret 2 of 2" in problem.msg
    assert not bad.removeprefix("whsec_") or bad.removeprefix("whsec_") not in problem.msg


@pytest.mark.parametrize("tolerance", [0, -5, float("nan"), float("inf")])
def test_a_tolerance_that_refuses_all_or_nothing_stops_the_start(settings, tolerance):
    settings.WEBHOOK_TOLERANCE_SECONDS = tolerance

    assert "chat.E003" in chat_check_ids()


def test_a_request_with_a_standard_signature_is_checked_that_way_even_with_a_good_x_hub(api, rotating):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()
    headers = standard(body) | {"webhook-signature": "v1,AAAA", "X-Hub-Signature-256": signature(body, SECRET)}

    assert post(api, body, **headers).status_code == HTTPStatus.UNAUTHORIZED


def test_a_plain_secret_signs_standard_webhooks_with_its_own_bytes(api, settings):
    settings.WEBHOOK_SECRET = SECRET
    body = json.dumps(new_conversation(uuid.uuid4())).encode()

    # The same key written the standard's way, as a sender's library holds it.
    as_standard_key = "whsec_" + base64.b64encode(SECRET.encode()).decode()

    response = post(api, body, **standard(body, as_standard_key))

    assert response.status_code == HTTPStatus.CREATED
