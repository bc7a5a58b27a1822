"""Invalid payloads: always 400 with a stable code and the JSON error body, never a 500, nothing stored."""

import json
import uuid
from http import HTTPStatus

import pytest

from chat.models import Conversation, Message, ParkedMessage
from tests.factories import ConversationFactory
from tests.helpers import event, new_message

pytestmark = pytest.mark.django_db

CONVERSATION_ID = "6a41b347-8d80-4ce9-84ba-7af66f369f6a"
MESSAGE_ID = "49108c71-4dca-4af3-9f32-61bc745926e2"


def assert_error(response, code: str, field: str | None = None) -> dict:
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if field is not None:
        assert field in body["errors"], body
    return body


@pytest.fixture(autouse=True)
def _nothing_is_stored():
    yield
    assert Message.objects.count() == 0
    assert ParkedMessage.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{", b'{"type": "NEW_CONVERSATION",}', b"", b"\xff\xfe{}", b"NaN-ish"],
    ids=["text", "truncated", "trailing-comma", "empty", "not-utf8", "garbage"],
)
def test_body_that_is_not_json(webhook, body):
    assert_error(webhook.post(body), "invalid_json")


@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"NEW_CONVERSATION"', "42", "null", "true"])
def test_json_that_is_not_an_object(webhook, body):
    assert_error(webhook.post(body), "invalid_payload")


def test_missing_type(webhook):
    assert_error(
        webhook.post({"timestamp": "2025-06-04T14:20:00Z", "data": {"id": CONVERSATION_ID}}), "invalid_payload", "type"
    )


@pytest.mark.parametrize("event_type", ["NEW_CONVERSATIONS", "new_conversation", "", "DELETE_CONVERSATION"])
def test_unknown_type(webhook, event_type):
    body = assert_error(
        webhook.post(event(event_type, {"id": CONVERSATION_ID})),
        "unknown_event_type" if event_type else "invalid_payload",
    )
    assert "type" in body["errors"]


@pytest.mark.parametrize("event_type", [1, None, ["NEW_CONVERSATION"], {"name": "NEW_CONVERSATION"}, True])
def test_type_that_is_not_a_string(webhook, event_type):
    assert_error(webhook.post(event(event_type, {"id": CONVERSATION_ID})), "invalid_payload", "type")


def test_missing_timestamp(webhook):
    assert_error(
        webhook.post({"type": "NEW_CONVERSATION", "data": {"id": CONVERSATION_ID}}), "invalid_payload", "timestamp"
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-06-04T25:00:00Z",
        "",
        1717510800,
        None,
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_unparsable_timestamp(webhook, timestamp):
    assert_error(
        webhook.post(event("NEW_CONVERSATION", {"id": CONVERSATION_ID}, timestamp)), "invalid_payload", "timestamp"
    )
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("data", [None, [], "x", 1, [{"id": CONVERSATION_ID}]])
def test_data_that_is_not_an_object(webhook, data):
    assert_error(webhook.post(event("NEW_CONVERSATION", data)), "invalid_payload", "data")


def test_missing_data(webhook):
    assert_error(
        webhook.post({"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z"}), "invalid_payload", "data"
    )


@pytest.mark.parametrize("bad_id", ["abc", "", 42, None, "6a41b347-8d80-4ce9-84ba-7af66f369f6", {"id": 1}])
@pytest.mark.parametrize("event_type", ["NEW_CONVERSATION", "CLOSE_CONVERSATION"])
def test_conversation_id_that_is_not_a_uuid(webhook, event_type, bad_id):
    assert_error(webhook.post(event(event_type, {"id": bad_id})), "invalid_payload", "data.id")
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("field", ["id", "conversation_id"])
@pytest.mark.parametrize("bad_id", ["abc", 1234, None, ""])
def test_message_ids_that_are_not_uuids(webhook, field, bad_id):
    data = {"id": MESSAGE_ID, "content": "oi", "conversation_id": CONVERSATION_ID} | {field: bad_id}
    assert_error(webhook.post(event("NEW_MESSAGE", data)), "invalid_payload", f"data.{field}")


@pytest.mark.parametrize("field", ["id", "content", "conversation_id"])
def test_message_field_missing(webhook, field):
    data = {"id": MESSAGE_ID, "content": "oi", "conversation_id": CONVERSATION_ID}
    del data[field]
    assert_error(webhook.post(event("NEW_MESSAGE", data)), "invalid_payload", f"data.{field}")


@pytest.mark.parametrize("content", [123, 1.5, None, True, ["oi"], {"text": "oi"}])
def test_content_that_is_not_a_string(webhook, content):
    conversation = ConversationFactory()
    payload = new_message(MESSAGE_ID, conversation.id)
    payload["data"]["content"] = content
    assert_error(webhook.post(payload), "invalid_payload", "data.content")


@pytest.mark.parametrize(
    "content",
    ["", "x" * 65537, "nul \x00 byte", "lone surrogate \ud800"],
    ids=["empty", "too-long", "nul", "surrogate"],
)
def test_content_out_of_bounds(webhook, content):
    conversation = ConversationFactory()
    assert_error(webhook.post(new_message(MESSAGE_ID, conversation.id, content)), "invalid_payload", "data.content")


def test_content_at_the_maximum_length_is_accepted(webhook):
    conversation = ConversationFactory()
    response = webhook.post(new_message(uuid.uuid4(), conversation.id, "é" * 65536))
    assert response.status_code == HTTPStatus.ACCEPTED
    Message.objects.all().delete()  # the autouse check is about invalid payloads only


def test_body_over_the_size_limit_is_413(webhook, settings):
    conversation = ConversationFactory()
    payload = new_message(MESSAGE_ID, conversation.id, "x" * 100)
    payload["padding"] = "p" * settings.WEBHOOK_MAX_BODY_BYTES

    response = webhook.post(json.dumps(payload))

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.json()["code"] == "payload_too_large"


def test_get_on_webhook_is_405_json(api):
    response = api.get("/webhook/")
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_json_body_is_read_whatever_the_content_type(api, content_type):
    body = json.dumps(event("NEW_CONVERSATION", {"id": str(uuid.uuid4())}))
    response = api.generic("POST", "/webhook/", body, content_type=content_type)
    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("opening", ["[", '{"a":'], ids=["arrays", "objects"])
def test_json_nested_deeper_than_the_parser_goes_is_invalid_json_not_a_500(webhook, opening):
    closing = "]" if opening == "[" else "}"
    body = opening * 100_000 + "1" + closing * 100_000

    assert_error(webhook.post(body), "invalid_json")
