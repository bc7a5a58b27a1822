"""Reads behind a token or a staff session when API_AUTH_REQUIRED is on; the console signs for staff only; a
browser on another origin cannot post webhooks. Off (the default), reads are open as the examples use them."""

import hashlib
import hmac
import json
import uuid
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import ConversationFactory
from tests.helpers import new_conversation

pytestmark = pytest.mark.django_db
SECRET = "console-test-secret"
READS = ["/conversations/", "/api/config/", "/metrics"]


@pytest.fixture
def auth_on(settings):
    settings.API_AUTH_REQUIRED = True
    settings.WEBHOOK_SECRET = SECRET


def staff_client(**kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(User.objects.create_user("ops", is_staff=True))
    return client


@pytest.mark.parametrize("path", READS)
def test_reads_are_open_when_auth_is_off(api, path):
    assert api.get(path).status_code == HTTPStatus.OK


@pytest.mark.usefixtures("auth_on")
@pytest.mark.parametrize("path", READS)
def test_reads_need_credentials_when_auth_is_on(api, path):
    response = api.get(path)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.usefixtures("auth_on")
def test_a_token_reads_a_conversation(api):
    conversation = ConversationFactory()
    token = Token.objects.create(user=User.objects.create_user("client"))

    response = api.get(f"/conversations/{conversation.id}/", HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == HTTPStatus.OK


@pytest.mark.usefixtures("auth_on")
def test_a_wrong_token_is_401(api):
    response = api.get("/conversations/", HTTP_AUTHORIZATION="Token not-a-token")

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.usefixtures("auth_on")
def test_a_staff_session_reads_and_a_plain_users_session_does_not():
    plain = Client()
    plain.force_login(User.objects.create_user("someone"))

    assert staff_client().get("/conversations/").status_code == HTTPStatus.OK
    assert plain.get("/conversations/").status_code == HTTPStatus.FORBIDDEN


@pytest.mark.usefixtures("auth_on")
def test_the_webhook_needs_no_credentials_only_its_signature(api):
    body = json.dumps(new_conversation(uuid.uuid4())).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    unsigned = api.generic("POST", "/webhook/", body, content_type="application/json")
    signed = api.generic("POST", "/webhook/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature)

    assert unsigned.status_code == HTTPStatus.UNAUTHORIZED
    assert signed.status_code == HTTPStatus.CREATED


def test_the_session_endpoint_tells_the_ui_what_it_may_do(api, settings):
    settings.WEBHOOK_SECRET = SECRET

    assert api.get("/api/session/").json() == {
        "auth_required": False,
        "authenticated": False,
        "staff": False,
        "webhook_signed": True,
    }
    assert staff_client().get("/api/session/").json()["staff"] is True


def test_the_console_builds_and_signs_events_for_a_staff_session_with_its_csrf_token(settings):
    settings.WEBHOOK_SECRET = SECRET
    client = staff_client(enforce_csrf_checks=True)
    csrf = client.get("/").cookies["csrftoken"].value
    ask = json.dumps({"type": "NEW_CONVERSATION", "data": {"id": str(uuid.uuid4())}})

    without_csrf = client.generic("POST", "/api/console/events/", ask, content_type="application/json")
    signed = client.generic("POST", "/api/console/events/", ask, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    event = signed.json()
    sent = Client().generic(
        "POST", "/webhook/", event["body"], content_type="application/json", HTTP_X_HUB_SIGNATURE_256=event["signature"]
    )

    assert without_csrf.status_code == HTTPStatus.FORBIDDEN
    assert signed.status_code == HTTPStatus.OK
    assert (
        event["signature"] == "sha256=" + hmac.new(SECRET.encode(), event["body"].encode(), hashlib.sha256).hexdigest()
    )
    assert sent.status_code == HTTPStatus.CREATED


def test_the_console_serves_nobody_else(api, settings):
    settings.WEBHOOK_SECRET = SECRET
    plain = Client()
    plain.force_login(User.objects.create_user("someone"))
    ask = {"type": "NEW_CONVERSATION", "data": {"id": str(uuid.uuid4())}}

    assert api.post("/api/console/events/", ask, format="json").status_code == HTTPStatus.UNAUTHORIZED
    assert plain.post("/api/console/events/", ask, content_type="application/json").status_code == HTTPStatus.FORBIDDEN


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example", HTTPStatus.FORBIDDEN),
        ("http://testserver", HTTPStatus.CREATED),
        (None, HTTPStatus.CREATED),
    ],
    ids=["other-origin", "same-origin", "server-to-server"],
)
def test_a_browser_on_another_origin_cannot_post_webhooks(api, origin, status):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    body = json.dumps(new_conversation(uuid.uuid4()))

    response = api.generic("POST", "/webhook/", body, content_type="text/plain", **headers)

    assert response.status_code == status
