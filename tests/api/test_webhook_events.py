"""Every success row and every business-rule 400 of the contract (docs/contract.md), through the full Django stack."""

import threading
import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection, transaction

from chat import parking
from chat import services as chat_services
from chat.models import Conversation, Message, ParkedMessage
from chat.services import message_receive
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory, ParkedMessageFactory
from tests.helpers import age_rows, close_conversation, new_conversation, new_message, wait_until

pytestmark = pytest.mark.django_db


def test_new_conversation_creates_open_conversation(webhook):
    conversation_id = uuid.uuid4()

    response = webhook.post(new_conversation(conversation_id))

    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert body["id"] == str(conversation_id)
    assert body["status"] == "OPEN"
    assert body["messages"] == []
    assert {"created_at", "updated_at"} <= body.keys()
    assert Conversation.objects.get(id=conversation_id).status == Conversation.Status.OPEN


def test_new_conversation_with_existing_id_is_400(webhook):
    conversation = ConversationFactory()

    response = webhook.post(new_conversation(conversation.id))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "conversation_exists"
    assert Conversation.objects.count() == 1


def test_new_message_is_accepted_and_stored_pending(webhook):
    conversation = ConversationFactory()
    message_id = uuid.uuid4()

    response = webhook.post(new_message(message_id, conversation.id, "Oi!"))

    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json() == {"id": str(message_id), "conversation_id": str(conversation.id), "outcome": "stored"}
    message = Message.objects.get(id=message_id)
    assert (message.type, message.content, message.pending) == (Message.Type.INBOUND, "Oi!", True)
    assert message.timestamp.isoformat() == "2025-06-04T14:20:00+00:00"


def test_new_message_keeps_content_exactly_as_sent(webhook):
    conversation = ConversationFactory()
    message_id = uuid.uuid4()
    content = "  espaços, acentos e emoji 🏠\n"

    webhook.post(new_message(message_id, conversation.id, content))

    assert Message.objects.get(id=message_id).content == content


def test_new_message_for_unknown_conversation_is_parked(webhook):
    message_id, conversation_id = uuid.uuid4(), uuid.uuid4()

    response = webhook.post(new_message(message_id, conversation_id))

    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json()["outcome"] == "parked"
    parked = ParkedMessage.objects.get(id=message_id)
    assert (parked.conversation_id, parked.state) == (conversation_id, ParkedMessage.State.PARKED)
    assert not Message.objects.filter(id=message_id).exists()


def test_new_message_to_closed_conversation_is_400(webhook):
    conversation = ConversationFactory(status=Conversation.Status.CLOSED, closed_at="2025-06-04T14:25:00Z")

    response = webhook.post(new_message(uuid.uuid4(), conversation.id))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "conversation_closed"
    assert Message.objects.count() == 0


def test_exact_redelivery_is_200_without_effect(webhook):
    conversation = ConversationFactory()
    message_id = uuid.uuid4()
    webhook.post(new_message(message_id, conversation.id, "Oi"))

    response = webhook.post(new_message(message_id, conversation.id, "Oi"))

    assert response.status_code == HTTPStatus.OK
    assert response.json()["outcome"] == "duplicate"
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_redelivery_of_answered_message_after_close_is_still_200(webhook):
    message = MessageFactory(pending=False)
    webhook.post(close_conversation(message.conversation_id))

    response = webhook.post(new_message(message.id, message.conversation_id, message.content))

    assert response.status_code == HTTPStatus.OK
    assert response.json()["outcome"] == "duplicate"


def test_redelivery_of_parked_message_is_200(webhook):
    message_id, conversation_id = uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(message_id, conversation_id, "cedo"))

    response = webhook.post(new_message(message_id, conversation_id, "cedo"))

    assert response.status_code == HTTPStatus.OK
    assert ParkedMessage.objects.count() == 1


def test_message_id_reused_with_other_content_is_400(webhook):
    message = MessageFactory(content="original")

    response = webhook.post(new_message(message.id, message.conversation_id, "outro"))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "message_id_conflict"
    message.refresh_from_db()
    assert message.content == "original"


def test_message_id_reused_in_another_conversation_is_400(webhook):
    message = MessageFactory()
    other = ConversationFactory()

    response = webhook.post(new_message(message.id, other.id, message.content))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "message_id_conflict"
    assert not Message.objects.filter(conversation=other).exists()


def test_message_id_used_by_stored_message_cannot_be_parked(webhook):
    message = MessageFactory()

    response = webhook.post(new_message(message.id, uuid.uuid4(), message.content))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "message_id_conflict"
    assert ParkedMessage.objects.count() == 0


def test_message_id_parked_elsewhere_cannot_be_stored(webhook):
    parked = ParkedMessageFactory()
    conversation = ConversationFactory()

    response = webhook.post(new_message(parked.id, conversation.id, parked.content))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "message_id_conflict"
    assert not Message.objects.filter(id=parked.id).exists()


def test_expired_id_redelivered_after_its_conversation_arrived_is_buffer_expired(webhook):
    parked = ParkedMessageFactory(state=ParkedMessage.State.EXPIRED)
    ConversationFactory(id=parked.conversation_id)

    response = webhook.post(new_message(parked.id, parked.conversation_id, parked.content))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "buffer_expired"
    assert not Message.objects.filter(id=parked.id).exists()


def test_parked_id_redelivered_with_other_content_is_400(webhook):
    parked = ParkedMessageFactory(content="a")

    response = webhook.post(new_message(parked.id, parked.conversation_id, "b"))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "message_id_conflict"


def test_redelivery_of_expired_parked_message_is_buffer_expired(webhook):
    parked = ParkedMessageFactory(state=ParkedMessage.State.EXPIRED)

    response = webhook.post(new_message(parked.id, parked.conversation_id, parked.content))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "buffer_expired"


def test_redelivery_of_parked_message_past_ttl_is_buffer_expired_before_the_sweep_marks_it(webhook, settings):
    parked = ParkedMessageFactory()
    age_rows(ParkedMessage, [parked.id], settings.ORPHAN_TTL_SECONDS + 0.5)

    response = webhook.post(new_message(parked.id, parked.conversation_id, parked.content))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "buffer_expired"


def test_parked_message_is_attached_when_conversation_arrives_within_ttl(webhook, settings):
    conversation_id = uuid.uuid4()
    early, late = uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(early, conversation_id, "primeira"))
    webhook.post(new_message(late, conversation_id, "segunda"))
    age_rows(ParkedMessage, [early], settings.ORPHAN_TTL_SECONDS - 0.5)

    response = webhook.post(new_conversation(conversation_id))

    assert response.status_code == HTTPStatus.CREATED
    assert [m["id"] for m in response.json()["messages"]] == [str(early), str(late)]
    assert all(m["pending"] for m in response.json()["messages"])
    assert set(ParkedMessage.objects.values_list("state", flat=True)) == {ParkedMessage.State.ATTACHED}


def test_the_201_shows_messages_a_sweep_attached_between_the_commit_and_the_adopt(webhook, monkeypatch):
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(message_id, conversation_id))
    adopt = chat_services.parked_messages_adopt

    def sweep_first(conversation):
        parking.parked_messages_attach()  # the sweep takes them first: the adopt finds none left
        return adopt(conversation)

    monkeypatch.setattr(chat_services, "parked_messages_adopt", sweep_first)
    response = webhook.post(new_conversation(conversation_id))

    assert response.status_code == HTTPStatus.CREATED
    assert [m["id"] for m in response.json()["messages"]] == [str(message_id)]


def test_attached_message_keeps_its_own_arrival_time(webhook):
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(message_id, conversation_id))
    parked_at = ParkedMessage.objects.get(id=message_id).received_at

    webhook.post(new_conversation(conversation_id))

    assert Message.objects.get(id=message_id).received_at == parked_at


def test_parked_message_older_than_ttl_is_not_attached(webhook, settings):
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(message_id, conversation_id))
    age_rows(ParkedMessage, [message_id], settings.ORPHAN_TTL_SECONDS + 0.1)

    response = webhook.post(new_conversation(conversation_id))

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["messages"] == []
    assert not Message.objects.filter(id=message_id).exists()
    assert ParkedMessage.objects.get(id=message_id).state == ParkedMessage.State.PARKED


def test_close_conversation_closes_it(webhook):
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation)

    response = webhook.post(close_conversation(conversation.id))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["status"] == "CLOSED"
    assert body["closed_at"] is not None
    assert len(body["messages"]) == 1
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED


def test_close_lists_messages_in_conversation_order_like_the_detail(webhook, api):
    conversation = ConversationFactory()
    for seconds in (30, 10, 20):
        MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME + timedelta(seconds=seconds))
    MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME + timedelta(seconds=10))
    expected = api.get(f"/conversations/{conversation.id}/").json()["messages"]

    body = webhook.post(close_conversation(conversation.id)).json()

    assert body["messages"] == expected
    assert [m["timestamp"] for m in body["messages"]] == sorted(m["timestamp"] for m in expected)


def close_while_held(webhook, conversation, holder):
    """POST CLOSE_CONVERSATION while another session, in a transaction, runs `holder(pause)`: `pause()` returns once
    the close waits on a lock, so the holder does its work around the close's wait. Returns the close's answer."""
    held, release = threading.Event(), threading.Event()
    responses = []

    def pause() -> None:
        held.set()
        release.wait(10)

    def hold() -> None:
        try:
            with transaction.atomic():
                holder(pause)
        finally:
            connection.close()

    def close() -> None:
        try:
            responses.append(webhook.post(close_conversation(conversation.id)))
        finally:
            connection.close()

    holder_thread = threading.Thread(target=hold)
    holder_thread.start()
    assert held.wait(10)
    close_thread = threading.Thread(target=close)
    close_thread.start()
    try:
        wait_until(_a_backend_waits_on_a_lock, 10, 0.02, "the close waiting for the holder's lock")
    finally:
        release.set()
        holder_thread.join()
        close_thread.join()
    [response] = responses
    return response


@pytest.mark.django_db(transaction=True)
def test_a_close_that_waited_is_stamped_after_the_message_it_waited_for(webhook):
    """closed_at is when the close took effect, on the database clock: after every message accepted before it,
    even one written while the close waited for its lock."""
    conversation = ConversationFactory()
    message_id = uuid.uuid4()

    def message_written_while_the_close_waits(pause) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM chat_conversation WHERE id = %s FOR NO KEY UPDATE", [conversation.id])
        pause()
        message_receive(message_id=message_id, conversation_id=conversation.id, content="hi", event_at=EXAMPLE_TIME)

    assert close_while_held(webhook, conversation, message_written_while_the_close_waits).status_code == HTTPStatus.OK

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED
    assert conversation.closed_at > Message.objects.get(id=message_id).received_at


@pytest.mark.django_db(transaction=True)
def test_close_lists_a_message_that_committed_while_the_close_waited(webhook):
    """A NEW_MESSAGE in flight holds its conversation locked; the close waits for it, and its response must
    list the message, which was accepted before the close."""
    conversation = ConversationFactory()
    message_id = uuid.uuid4()

    def message_in_flight(pause) -> None:
        message_receive(message_id=message_id, conversation_id=conversation.id, content="hi", event_at=EXAMPLE_TIME)
        pause()

    response = close_while_held(webhook, conversation, message_in_flight)
    assert response.status_code == HTTPStatus.OK
    assert [m["id"] for m in response.json()["messages"]] == [str(message_id)]


def _a_backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_close_keeps_pending_messages_pending(webhook):
    message = MessageFactory()

    webhook.post(close_conversation(message.conversation_id))

    message.refresh_from_db()
    assert message.pending is True


def test_close_unknown_conversation_is_400(webhook):
    response = webhook.post(close_conversation(uuid.uuid4()))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "conversation_not_found"


def test_close_already_closed_conversation_is_400(webhook):
    conversation = ConversationFactory()
    webhook.post(close_conversation(conversation.id))

    response = webhook.post(close_conversation(conversation.id))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "conversation_already_closed"


@pytest.mark.parametrize("path", ["/webhook/", "/webhook"])
def test_webhook_answers_with_and_without_trailing_slash(webhook, path):
    response = webhook.post(new_conversation(uuid.uuid4()), path=path)

    assert response.status_code == HTTPStatus.CREATED


def test_unknown_extra_fields_are_ignored(webhook):
    conversation_id = uuid.uuid4()
    payload = new_conversation(conversation_id) | {"source": "whatsapp"}
    payload["data"]["channel"] = "store-1"

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.parametrize(
    ("timestamp", "stored"),
    [
        ("2025-06-04T14:20:05", "2025-06-04T14:20:05+00:00"),
        ("2025-06-04T11:20:05-03:00", "2025-06-04T14:20:05+00:00"),
        ("2025-06-04T14:20:05.123456Z", "2025-06-04T14:20:05.123456+00:00"),
    ],
)
def test_timestamp_is_stored_in_utc_and_naive_means_utc(webhook, timestamp, stored):
    conversation = ConversationFactory()
    message_id = uuid.uuid4()
    payload = new_message(message_id, conversation.id) | {"timestamp": timestamp}

    webhook.post(payload)

    assert Message.objects.get(id=message_id).timestamp.isoformat() == stored
