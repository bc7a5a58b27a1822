"""A message keeps its webhook request's traceparent (core.tracing), live or parked and attached later, so the reply
batch in another process can continue its trace; one whose request was not sampled keeps nothing."""

import uuid
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from chat import services
from chat.models import Message
from chat.parking import parked_messages_attach
from core import tracing
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

EVENT_AT = datetime(2025, 6, 4, 14, 20, tzinfo=UTC)


def receive(conversation_id: uuid.UUID) -> uuid.UUID:
    message_id = uuid.uuid4()
    services.message_receive(message_id=message_id, conversation_id=conversation_id, content="oi", event_at=EVENT_AT)
    return message_id


def traced(function, *args, sampler=ALWAYS_ON):
    """Call function in a span, as the Django instrumentation runs a request; returns its result and the span's
    traceparent ('' when the sampler dropped it)."""
    span = TracerProvider(sampler=sampler).get_tracer("test").start_span("POST webhook/")
    with trace.use_span(span, end_on_exit=True):
        return function(*args), tracing.traceparent()


def test_a_stored_message_keeps_its_request_traceparent():
    conversation = ConversationFactory()

    message_id, traceparent = traced(receive, conversation.id)

    assert traceparent
    assert Message.objects.get(id=message_id).traceparent == traceparent


def test_a_parked_message_carries_its_traceparent_to_the_message_it_becomes():
    conversation_id = uuid.uuid4()
    message_id, traceparent = traced(receive, conversation_id)
    ConversationFactory(id=conversation_id)

    parked_messages_attach()

    assert Message.objects.get(id=message_id).traceparent == traceparent


def test_a_message_whose_request_was_not_sampled_keeps_no_traceparent():
    conversation = ConversationFactory()

    message_id, traceparent = traced(receive, conversation.id, sampler=ALWAYS_OFF)

    assert traceparent == ""
    assert Message.objects.get(id=message_id).traceparent == ""
