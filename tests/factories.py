import uuid
from datetime import UTC, datetime

import factory

from chat.models import Conversation, Message, ParkedMessage

EXAMPLE_TIME = datetime(2025, 6, 4, 14, 20, tzinfo=UTC)


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    id = factory.LazyFunction(uuid.uuid4)
    opened_event_at = EXAMPLE_TIME


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    id = factory.LazyFunction(uuid.uuid4)
    conversation = factory.SubFactory(ConversationFactory)
    type = Message.Type.INBOUND
    content = factory.Sequence(lambda n: f"message {n}")
    timestamp = EXAMPLE_TIME
    pending = True


class ParkedMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ParkedMessage

    id = factory.LazyFunction(uuid.uuid4)
    conversation_id = factory.LazyFunction(uuid.uuid4)
    content = factory.Sequence(lambda n: f"parked {n}")
    timestamp = EXAMPLE_TIME
