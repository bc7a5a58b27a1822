"""Erasure of one conversation (service, command, admin, API) and the retention purge: everything stored about a
conversation goes, nothing else does, and a webhook that comes later finds the conversation unknown."""

import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from rest_framework.authtoken.models import Token

from chat import erasure
from chat.erasure import conversations_erase, conversations_purge
from chat.models import Conversation, Message, ParkedMessage
from delivery.models import ReplyDelivery
from tests.factories import ConversationFactory, MessageFactory, ParkedMessageFactory
from tests.helpers import age_rows, new_conversation, new_message, replies_answer_due, run_in_parallel

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered(settings):
    """A conversation answered once, its reply's delivery open, and a message parked for its id earlier."""

    def make() -> Conversation:
        message = MessageFactory()
        age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)
        replies_answer_due(message.conversation_id)
        ParkedMessageFactory(conversation_id=message.conversation_id, state=ParkedMessage.State.ATTACHED)
        return message.conversation

    settings.REPLY_WEBHOOK_URL = "http://127.0.0.1:9/replies"
    return make


def stored_about(conversation_id) -> tuple[int, int, int, int]:
    return (
        Conversation.objects.filter(id=conversation_id).count(),
        Message.objects.filter(conversation_id=conversation_id).count(),
        ReplyDelivery.objects.filter(message__conversation_id=conversation_id).count(),
        ParkedMessage.objects.filter(conversation_id=conversation_id).count(),
    )


def test_erasing_deletes_the_conversation_and_everything_about_it_and_nothing_else(answered):
    gone, kept = answered(), answered()
    assert stored_about(gone.id) == (1, 2, 1, 1)

    erased = conversations_erase([gone.id, uuid.uuid4()])

    assert (erased.conversations, erased.messages, erased.parked) == (1, 2, 1)
    assert stored_about(gone.id) == (0, 0, 0, 0)
    assert stored_about(kept.id) == (1, 2, 1, 1)


def test_a_webhook_after_erasure_finds_the_conversation_unknown(answered, webhook):
    conversation = answered()
    conversations_erase([conversation.id])

    assert webhook.post(new_message(uuid.uuid4(), conversation.id)).json()["outcome"] == "parked"
    assert webhook.post(new_conversation(conversation.id)).status_code == HTTPStatus.CREATED


@pytest.mark.django_db(transaction=True)
def test_messages_arriving_while_a_conversation_is_erased_are_erased_or_parked_never_half_kept(webhook):
    """Parallel NEW_MESSAGEs and an erasure: each message lands before the erasure (and goes with it) or after
    (parked for an unknown conversation); none is left pointing at nothing, and none fails."""
    conversation = ConversationFactory()
    message_ids = iter([uuid.uuid4() for _ in range(8)])

    def act():
        message_id = next(message_ids, None)
        if message_id is None:
            return conversations_erase([conversation.id])
        return webhook.post(new_message(message_id, conversation.id)).status_code

    results = run_in_parallel(act, 9)

    assert [r for r in results if isinstance(r, int)] == [HTTPStatus.ACCEPTED] * 8
    assert not Message.objects.filter(conversation_id=conversation.id).exists()
    assert not Conversation.objects.filter(id=conversation.id).exists()


def test_the_purge_erases_what_is_past_retention_in_batches_and_stops_at_its_budget(answered, monkeypatch):
    monkeypatch.setattr(erasure, "PURGE_BATCH", 2)
    old = [inactive(answered(), days=31) for _ in range(5)]
    recent = answered()
    seen = []

    first = conversations_purge(days=30, budget_seconds=0, progress=lambda erased: seen.append(erased.conversations))
    assert (first.conversations, first.more) == (2, True)

    rest = conversations_purge(days=30, progress=lambda erased: seen.append(erased.conversations))
    assert (rest.conversations, rest.messages, rest.parked, rest.more) == (3, 6, 3, False)
    assert seen == [2, 2, 3]
    assert all(stored_about(c.id) == (0, 0, 0, 0) for c in old)
    assert stored_about(recent.id) == (1, 2, 1, 1)


def inactive(conversation: Conversation, days: float) -> Conversation:
    Conversation.objects.filter(id=conversation.id).update(updated_at=conversation.updated_at - timedelta(days=days))
    return conversation


def test_the_purge_leaves_a_conversation_whose_user_wrote_again_until_it_is_answered(answered, settings):
    """updated_at moves with replies, not with an INBOUND: an old conversation with a message waiting is in use."""
    conversation = inactive(answered(), days=40)
    MessageFactory(conversation=conversation)

    assert conversations_purge(days=30).nothing
    assert stored_about(conversation.id)[:2] == (1, 3)


@pytest.mark.parametrize("days", [0, -1])
def test_a_retention_of_no_days_is_refused_by_the_purge_and_by_the_checks(settings, days):
    with pytest.raises(ValueError, match="every conversation"):
        conversations_purge(days=days)
    settings.CONVERSATION_RETENTION_DAYS = days
    with pytest.raises(SystemCheckError, match="chat.E001"):
        call_command("check")


def test_the_daily_purge_does_nothing_without_a_retention(answered, settings):
    inactive(answered(), days=2)
    settings.CONVERSATION_RETENTION_DAYS = None
    assert erasure.conversations_purge_retention(budget_seconds=5).nothing
    settings.CONVERSATION_RETENTION_DAYS = 1
    assert erasure.conversations_purge_retention(budget_seconds=5).conversations == 1


def test_the_purge_command_refuses_without_a_retention_and_prints_its_totals(answered, settings, capsys):
    settings.CONVERSATION_RETENTION_DAYS = None
    with pytest.raises(CommandError, match="CONVERSATION_RETENTION_DAYS"):
        call_command("purge_conversations")
    inactive(answered(), days=2)

    call_command("purge_conversations", "--days", "1.5")

    assert "erased 1 conversations, 2 messages and 1 parked messages" in capsys.readouterr().out
    assert not Conversation.objects.exists()


def test_the_erase_command_erases_by_id_and_says_when_nothing_was_found(answered, capsys):
    conversation = answered()

    call_command("erase_conversation", str(conversation.id))

    assert "erased 1 conversations, 2 messages" in capsys.readouterr().out
    assert stored_about(conversation.id) == (0, 0, 0, 0)
    with pytest.raises(CommandError, match="Nothing found"):
        call_command("erase_conversation", str(conversation.id))
    with pytest.raises(CommandError, match="Not a conversation id"):
        call_command("erase_conversation", "nope")


def test_the_admin_erases_for_staff_allowed_to_delete_conversations_only(answered, client):
    conversation = answered()
    staff = User.objects.create_user("ops", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    client.force_login(staff)
    action = {"action": "erase_conversations", "_selected_action": [str(conversation.id)]}

    client.post("/admin/chat/conversation/", action)
    assert stored_about(conversation.id)[0] == 1

    staff.user_permissions.add(Permission.objects.get(codename="delete_conversation"))
    client.post("/admin/chat/conversation/", action)
    assert stored_about(conversation.id) == (0, 0, 0, 0)


def may_erase(user: User) -> User:
    user.user_permissions.add(Permission.objects.get(codename="delete_conversation"))
    return user


def test_the_api_erases_with_a_token_or_a_staff_session_even_when_reads_are_open(answered, api, settings):
    settings.API_AUTH_REQUIRED = False
    conversation = answered()
    url = f"/conversations/{conversation.id}/"

    refused = api.delete(url)
    assert (refused.status_code, refused.json()["code"]) == (HTTPStatus.UNAUTHORIZED, "not_authenticated")
    reader = Token.objects.create(user=User.objects.create_user("reader"))
    api.credentials(HTTP_AUTHORIZATION=f"Token {reader.key}")
    assert api.delete(url).json()["code"] == "permission_denied"
    assert stored_about(conversation.id)[0] == 1

    token = Token.objects.create(user=may_erase(User.objects.create_user("client")))
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.delete(url).status_code == HTTPStatus.NO_CONTENT
    assert stored_about(conversation.id) == (0, 0, 0, 0)
    assert api.delete(url).status_code == HTTPStatus.NOT_FOUND
    assert api.delete("/conversations/not-a-uuid/").status_code == HTTPStatus.NOT_FOUND

    other = answered()
    api.credentials()
    api.force_login(may_erase(User.objects.create_user("ops", is_staff=True)))
    assert api.delete(f"/conversations/{other.id}").status_code == HTTPStatus.NO_CONTENT


def test_a_deleted_message_takes_its_delivery_with_it_in_the_database(answered):
    """The cascade chat's set-based erasure relies on is the database's own, not the ORM's."""
    conversation = answered()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM chat_message WHERE conversation_id = %s", [conversation.id])
    assert not ReplyDelivery.objects.filter(message__conversation_id=conversation.id).exists()
