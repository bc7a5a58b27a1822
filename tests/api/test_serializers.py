"""The shapes the contract fixes: strict input types, UTC output, the message order and fields."""

import uuid
from datetime import timedelta

import pytest

from api.serializers import (
    ConversationDetailSerializer,
    MessageReceiptSerializer,
    NewMessageDataSerializer,
    WebhookEnvelopeSerializer,
)
from chat.models import Conversation, Message
from chat.selectors import conversation_detail
from chat.services import MessageReceipt
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

ID_1, ID_2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def test_conversation_with_messages_renders_in_utc_in_conversation_order():
    conversation = ConversationFactory(status=Conversation.Status.CLOSED, closed_at=EXAMPLE_TIME)
    reply = MessageFactory(
        conversation=conversation,
        type=Message.Type.OUTBOUND,
        timestamp=EXAMPLE_TIME + timedelta(seconds=5),
        pending=False,
    )
    inbound = MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME, pending=False, reply=reply)

    rendered = ConversationDetailSerializer(conversation_detail(Conversation.objects.get(id=conversation.id))).data

    assert [m["id"] for m in rendered["messages"]] == [str(inbound.id), str(reply.id)]
    assert rendered["messages"][0]["reply_id"] == str(reply.id)
    assert rendered["messages"][1]["reply_id"] is None
    assert rendered["messages"][0]["timestamp"] == "2025-06-04T14:20:00Z"
    assert rendered["closed_at"] == "2025-06-04T14:20:00Z"
    assert rendered["status"] == "CLOSED"


def test_open_conversation_without_messages_renders_nulls_and_an_empty_list():
    rendered = ConversationDetailSerializer(conversation_detail(ConversationFactory())).data

    assert rendered["closed_at"] is None
    assert rendered["messages"] == []


def test_receipt_renders_the_message_id_as_id():
    receipt = MessageReceipt(uuid.UUID(ID_1), uuid.UUID(ID_2), MessageReceipt.PARKED)

    assert MessageReceiptSerializer(receipt).data == {"id": ID_1, "conversation_id": ID_2, "outcome": "parked"}


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"id": ID_1, "content": "Oi", "conversation_id": ID_2}, set()),
        ({"id": ID_1, "content": " spaces kept ", "conversation_id": ID_2}, set()),
        ({"id": "nope", "content": 7}, {"id", "content", "conversation_id"}),
        ({"id": 1, "content": "Oi", "conversation_id": ID_2}, {"id"}),
        ({"id": ID_1, "content": "", "conversation_id": 5}, {"content", "conversation_id"}),
        ({"id": ID_1, "content": "x" * 65537, "conversation_id": ID_2}, {"content"}),
        ({"id": ID_1, "content": "a\x00b", "conversation_id": ID_2}, {"content"}),
        ({"id": ID_1, "content": "lone \ud800 surrogate", "conversation_id": ID_2}, {"content"}),
    ],
    ids=["valid", "whitespace-kept", "all-wrong", "int-id", "empty-and-int", "too-long", "nul", "surrogate"],
)
def test_new_message_data_is_strict(data, errors):
    serializer = NewMessageDataSerializer(data=data)

    assert serializer.is_valid() is (not errors)
    assert set(serializer.errors) == errors
    if not errors:
        assert serializer.validated_data["content"] == data["content"]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"type": "NEW_MESSAGE", "timestamp": "2025-06-04T14:20:00", "data": {"id": 1}}, set()),
        ({"type": 5, "timestamp": "yesterday", "data": []}, {"type", "timestamp", "data"}),
        ({"timestamp": "2025-06-04T14:20:00+03:00", "data": {}}, {"type"}),
        ({"type": "NEW_MESSAGE", "timestamp": 1717510800, "data": {}}, {"timestamp"}),
        ({"type": "NEW_MESSAGE", "timestamp": "9999-12-31T23:59:59-05:00", "data": {}}, {"timestamp"}),
    ],
    ids=["valid", "all-wrong", "no-type", "number-timestamp", "beyond-utc-range"],
)
def test_envelope_is_strict(data, errors):
    serializer = WebhookEnvelopeSerializer(data=data)

    assert serializer.is_valid() is (not errors)
    assert set(serializer.errors) == errors


def test_naive_timestamp_is_read_as_utc():
    serializer = WebhookEnvelopeSerializer(data={"type": "X", "timestamp": "2025-06-04T14:20:00", "data": {}})

    assert serializer.is_valid()
    assert serializer.validated_data["timestamp"] == EXAMPLE_TIME


@pytest.mark.parametrize(
    "timestamp",
    ["2025-06-04", "2025-W23-3T14:20:00", "20250604T142000Z", "2025-06-04T14:20:00Z\n", "2025-06-04T14:20Z", "now"],
    ids=["date-only", "iso-week", "basic-format", "trailing-newline", "no-seconds", "word"],
)
def test_timestamps_other_than_rfc3339_are_refused(timestamp):
    serializer = WebhookEnvelopeSerializer(data={"type": "X", "timestamp": timestamp, "data": {}})

    assert not serializer.is_valid()
    assert set(serializer.errors) == {"timestamp"}


@pytest.mark.parametrize(
    "timestamp",
    ["2025-06-04T14:20:00Z", "2025-06-04T11:20:00-03:00", "2025-06-04T14:20:00.000000+00:00", "2025-06-04 14:20:00"],
)
def test_rfc3339_timestamps_are_accepted(timestamp):
    serializer = WebhookEnvelopeSerializer(data={"type": "X", "timestamp": timestamp, "data": {}})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["timestamp"] == EXAMPLE_TIME
