import hashlib
import hmac
import io
import json
import uuid
from http import HTTPStatus

import pytest
from django.core.checks import run_checks
from django.core.management import call_command

from chat.models import Conversation
from tests.helpers import new_conversation

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
