"""A person takes a conversation over (chat.takeover): AGENT_MESSAGE, PAUSE_BOT, RESUME_BOT and handoff words,
through the full Django stack and the reply engine on the real database. Windows and pauses are moved by aging
rows; tests/e2e/test_takeover.py runs the same on real processes and clocks."""

import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection

from chat.models import Conversation, Message, ParkedMessage
from chat.parking import parked_messages_attach
from chat.reply_timing import group_rules
from scheduler.replies import _groups_answer_one_by_one
from tests.factories import ConversationFactory, MessageFactory, ParkedMessageFactory
from tests.helpers import (
    age_rows,
    agent_message,
    close_conversation,
    new_conversation,
    new_message,
    pause_bot,
    replies_answer_due,
    resume_bot,
)

pytestmark = pytest.mark.django_db


def pause_age(conversation_id, seconds: float) -> None:
    """Move a conversation's pause back in time, as if it had begun `seconds` earlier."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_conversation SET bot_paused_until = bot_paused_until - %s WHERE id = %s",
            [timedelta(seconds=seconds), conversation_id],
        )


def waiting_group(conversation, size: int = 2) -> list[Message]:
    return [MessageFactory(conversation=conversation) for _ in range(size)]


def test_agent_message_is_stored_as_the_agents_outbound(webhook, api):
    conversation = ConversationFactory()
    message_id = uuid.uuid4()

    response = webhook.post(agent_message(message_id, conversation.id, "Sou a Ana."))

    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json() == {"id": str(message_id), "conversation_id": str(conversation.id), "outcome": "stored"}
    message = Message.objects.get(id=message_id)
    assert (message.type, message.author, message.pending, message.send_reason) == ("OUTBOUND", "agent", False, "")
    [shown] = api.get(f"/conversations/{conversation.id}/").json()["messages"]
    assert (shown["author"], shown["type"], shown["delivery"], shown["handled_by"]) == ("agent", "OUTBOUND", None, None)


def test_agent_message_takes_the_waiting_group_over_and_pauses_the_bot(webhook, api, settings):
    conversation = ConversationFactory()
    group = waiting_group(conversation)
    message_id = uuid.uuid4()

    webhook.post(agent_message(message_id, conversation.id))

    conversation.refresh_from_db()
    agent = Message.objects.get(id=message_id)
    assert conversation.bot_paused_until == agent.received_at + timedelta(seconds=settings.BOT_PAUSE_SECONDS)
    for message in group:
        message.refresh_from_db()
        assert (message.pending, message.taken_over, message.reply_id) == (False, True, None)
    age_rows(Message, [m.id for m in group], settings.MAX_GROUP_WAIT_SECONDS + 1)
    assert replies_answer_due() == []
    detail = api.get(f"/conversations/{conversation.id}/").json()
    assert detail["bot_paused_until"] is not None
    assert [m["handled_by"] for m in detail["messages"] if m["type"] == "INBOUND"] == ["agent", "agent"]


def test_messages_that_arrive_while_a_person_has_the_conversation_are_never_answered(webhook, settings):
    conversation = ConversationFactory()
    webhook.post(agent_message(uuid.uuid4(), conversation.id))
    message_id = uuid.uuid4()

    response = webhook.post(new_message(message_id, conversation.id))

    assert response.status_code == HTTPStatus.ACCEPTED
    message = Message.objects.get(id=message_id)
    assert (message.pending, message.taken_over) == (False, True)
    conversation.refresh_from_db()
    assert conversation.reply_due_at is None
    age_rows(Message, [message_id], settings.MAX_GROUP_WAIT_SECONDS + 1)
    assert replies_answer_due() == []


def test_the_pause_ends_by_time_alone_and_the_next_burst_is_answered(webhook, api, settings):
    conversation = ConversationFactory()
    webhook.post(agent_message(uuid.uuid4(), conversation.id))
    during = uuid.uuid4()
    webhook.post(new_message(during, conversation.id))
    pause_age(conversation.id, settings.BOT_PAUSE_SECONDS + 1)

    assert api.get(f"/conversations/{conversation.id}/").json()["bot_paused_until"] is None
    after = uuid.uuid4()
    webhook.post(new_message(after, conversation.id))
    age_rows(Message, [after], settings.GROUP_WINDOW_SECONDS + 1)

    [reply] = replies_answer_due()
    assert reply.content == f"Mensagens recebidas:\n{after}\n"
    assert Message.objects.get(id=during).taken_over


def test_a_later_agent_message_extends_the_pause(webhook, settings):
    conversation = ConversationFactory()
    webhook.post(agent_message(uuid.uuid4(), conversation.id))
    pause_age(conversation.id, 60)
    second = uuid.uuid4()

    webhook.post(agent_message(second, conversation.id))

    conversation.refresh_from_db()
    expected = Message.objects.get(id=second).received_at + timedelta(seconds=settings.BOT_PAUSE_SECONDS)
    assert conversation.bot_paused_until == expected


def test_agent_message_redelivery_and_conflicts(webhook):
    conversation = ConversationFactory()
    message_id = uuid.uuid4()
    webhook.post(agent_message(message_id, conversation.id, "Sou a Ana."))

    again = webhook.post(agent_message(message_id, conversation.id, "Sou a Ana."))
    other_content = webhook.post(agent_message(message_id, conversation.id, "Sou o Rui."))
    as_user = webhook.post(new_message(message_id, conversation.id, "Sou a Ana."))

    assert (again.status_code, again.json()["outcome"]) == (HTTPStatus.OK, "duplicate")
    assert other_content.json()["code"] == as_user.json()["code"] == "message_id_conflict"
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_agent_message_to_a_closed_conversation_is_400(webhook):
    conversation = ConversationFactory()
    webhook.post(close_conversation(conversation.id))

    response = webhook.post(agent_message(uuid.uuid4(), conversation.id))

    assert (response.status_code, response.json()["code"]) == (HTTPStatus.BAD_REQUEST, "conversation_closed")


def test_agent_message_before_its_conversation_is_parked_then_attached_and_pauses(webhook, settings):
    conversation_id, user_id, agent_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(user_id, conversation_id))

    response = webhook.post(agent_message(agent_id, conversation_id))
    assert response.json()["outcome"] == "parked"
    assert ParkedMessage.objects.get(id=agent_id).author == "agent"

    created = webhook.post(new_conversation(conversation_id)).json()

    assert [(m["id"], m["author"], m["handled_by"]) for m in created["messages"]] == [
        (str(user_id), "user", "agent"),
        (str(agent_id), "agent", None),
    ]
    assert created["bot_paused_until"] is not None
    age_rows(Message, [user_id], settings.MAX_GROUP_WAIT_SECONDS + 1)
    assert replies_answer_due() == []


def test_a_parked_user_message_that_arrived_after_the_pause_ended_is_answered(webhook, settings):
    settings.BOT_PAUSE_SECONDS = 1
    conversation_id, agent_id, user_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    webhook.post(agent_message(agent_id, conversation_id))
    age_rows(ParkedMessage, [agent_id], 3)
    webhook.post(new_message(user_id, conversation_id))

    webhook.post(new_conversation(conversation_id))

    message = Message.objects.get(id=user_id)
    assert (message.pending, message.taken_over) == (True, False)


def test_pause_bot_pauses_without_a_message_and_takes_the_waiting_group(webhook, settings):
    conversation = ConversationFactory()
    group = waiting_group(conversation)

    response = webhook.post(pause_bot(conversation.id, seconds=600))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["id"] == str(conversation.id)
    assert [m["handled_by"] for m in body["messages"]] == ["agent", "agent"]
    conversation.refresh_from_db()
    assert conversation.bot_paused_until - conversation.updated_at == timedelta(seconds=600)
    age_rows(Message, [m.id for m in group], settings.MAX_GROUP_WAIT_SECONDS + 1)
    assert replies_answer_due() == []


def test_pause_bot_without_seconds_pauses_for_bot_pause_seconds_and_replaces_a_longer_pause(webhook, settings):
    conversation = ConversationFactory()
    webhook.post(pause_bot(conversation.id, seconds=7 * 24 * 3600))

    webhook.post(pause_bot(conversation.id))

    conversation.refresh_from_db()
    assert conversation.bot_paused_until - conversation.updated_at == timedelta(seconds=settings.BOT_PAUSE_SECONDS)


@pytest.mark.parametrize("seconds", [0, 0.5, 7 * 24 * 3600 + 1, "60", True, None, [60]])
def test_pause_bot_with_seconds_out_of_range_or_not_a_number_is_400(webhook, seconds):
    conversation = ConversationFactory()
    payload = pause_bot(conversation.id)
    payload["data"]["seconds"] = seconds

    response = webhook.post(payload)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "invalid_payload"
    assert "data.seconds" in response.json()["errors"]
    conversation.refresh_from_db()
    assert conversation.bot_paused_until is None


@pytest.mark.parametrize("payload", [pause_bot, resume_bot])
def test_pause_and_resume_of_an_unknown_or_closed_conversation_are_400(webhook, payload):
    closed = ConversationFactory()
    webhook.post(close_conversation(closed.id))

    unknown = webhook.post(payload(uuid.uuid4()))
    closed_response = webhook.post(payload(closed.id))

    assert (unknown.status_code, unknown.json()["code"]) == (HTTPStatus.BAD_REQUEST, "conversation_not_found")
    assert (closed_response.status_code, closed_response.json()["code"]) == (
        HTTPStatus.BAD_REQUEST,
        "conversation_closed",
    )


def test_resume_bot_answers_what_comes_next_and_leaves_the_persons_messages_with_them(webhook, settings):
    conversation = ConversationFactory()
    webhook.post(agent_message(uuid.uuid4(), conversation.id))
    during = uuid.uuid4()
    webhook.post(new_message(during, conversation.id))

    response = webhook.post(resume_bot(conversation.id))

    assert (response.status_code, response.json()["bot_paused_until"]) == (HTTPStatus.OK, None)
    after = uuid.uuid4()
    webhook.post(new_message(after, conversation.id))
    age_rows(Message, [during, after], settings.GROUP_WINDOW_SECONDS + 1)
    [reply] = replies_answer_due()
    assert reply.content == f"Mensagens recebidas:\n{after}\n"


def test_resume_bot_on_a_conversation_not_paused_changes_nothing(webhook):
    conversation = ConversationFactory()
    before = Conversation.objects.get(id=conversation.id).updated_at

    response = webhook.post(resume_bot(conversation.id))

    assert response.status_code == HTTPStatus.OK
    assert Conversation.objects.get(id=conversation.id).updated_at == before


def test_a_handoff_word_answers_its_group_at_once_and_then_pauses(webhook, settings):
    settings.HANDOFF_KEYWORDS = ["atendente", "falar com humano"]
    conversation = ConversationFactory()
    group = waiting_group(conversation)
    handoff = uuid.uuid4()

    webhook.post(new_message(handoff, conversation.id, "Quero um ATENDÊNTE, por favor!"))

    [reply] = replies_answer_due()
    assert reply.send_reason == Message.SendReason.HANDOFF
    assert set(reply.content.splitlines()[1:]) == {str(m.id) for m in group} | {str(handoff)}
    conversation.refresh_from_db()
    arrival = Message.objects.get(id=handoff).received_at
    assert conversation.bot_paused_until == arrival + timedelta(seconds=settings.BOT_PAUSE_SECONDS)
    later = uuid.uuid4()
    webhook.post(new_message(later, conversation.id))
    assert Message.objects.get(id=later).taken_over


def test_an_agent_message_leaves_a_group_a_handoff_word_asked_to_answer(webhook, settings):
    settings.HANDOFF_KEYWORDS = ["atendente"]
    conversation = ConversationFactory()
    handoff = uuid.uuid4()
    webhook.post(new_message(handoff, conversation.id, "atendente"))

    webhook.post(agent_message(uuid.uuid4(), conversation.id))

    [reply] = replies_answer_due()
    assert (reply.send_reason, reply.content) == ("handoff", f"Mensagens recebidas:\n{handoff}\n")


def test_a_handoff_word_while_a_person_has_the_conversation_changes_nothing(webhook, settings):
    settings.HANDOFF_KEYWORDS = ["atendente"]
    conversation = ConversationFactory()
    webhook.post(pause_bot(conversation.id, seconds=60))
    message_id = uuid.uuid4()

    webhook.post(new_message(message_id, conversation.id, "atendente"))

    message = Message.objects.get(id=message_id)
    assert (message.handoff, message.taken_over) == (False, True)
    conversation.refresh_from_db()
    assert conversation.bot_paused_until - conversation.updated_at == timedelta(seconds=60)


def test_a_parked_handoff_message_is_answered_at_once_when_attached(webhook, settings):
    settings.HANDOFF_KEYWORDS = ["atendente"]
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(message_id, conversation_id, "atendente!"))

    created = webhook.post(new_conversation(conversation_id)).json()

    assert created["bot_paused_until"] is not None
    [reply] = replies_answer_due()
    assert (reply.send_reason, reply.content) == ("handoff", f"Mensagens recebidas:\n{message_id}\n")


def test_a_conversations_reply_rules_are_stored_and_shown(webhook, api):
    conversation_id = uuid.uuid4()

    response = webhook.post(
        {
            **new_conversation(conversation_id),
            "data": {"id": str(conversation_id), "reply_rules": {"window_seconds": 2}},
        }
    )

    assert response.json()["reply_rules"] == {"window_seconds": 2.0, "max_wait_seconds": None, "max_messages": None}
    assert api.get(f"/conversations/{conversation_id}/").json()["reply_rules"]["window_seconds"] == 2.0
    [listed] = api.get("/conversations/").json()["results"]
    assert listed["reply_rules"]["window_seconds"] == 2.0


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"window_seconds": 0.5}, "window_seconds"),
        ({"window_seconds": 61}, "window_seconds"),
        ({"window_seconds": "5"}, "window_seconds"),
        ({"window_seconds": True}, "window_seconds"),
        ({"max_wait_seconds": 0}, "max_wait_seconds"),
        ({"max_wait_seconds": 3601}, "max_wait_seconds"),
        ({"max_messages": 0}, "max_messages"),
        ({"max_messages": 2.5}, "max_messages"),
        ({"max_messages": 1001}, "max_messages"),
        ({"max_messages": "3"}, "max_messages"),
    ],
)
def test_reply_rules_out_of_range_or_not_numbers_are_400_with_field_errors(webhook, rules, field):
    conversation_id = uuid.uuid4()

    response = webhook.post(
        {**new_conversation(conversation_id), "data": {"id": str(conversation_id), "reply_rules": rules}}
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "invalid_payload"
    assert list(response.json()["errors"]) == [f"data.reply_rules.{field}"]
    assert not Conversation.objects.filter(id=conversation_id).exists()


def test_reply_rules_that_are_not_an_object_are_400(webhook):
    conversation_id = uuid.uuid4()

    response = webhook.post(
        {**new_conversation(conversation_id), "data": {"id": str(conversation_id), "reply_rules": 5}}
    )

    assert (response.status_code, list(response.json()["errors"])) == (HTTPStatus.BAD_REQUEST, ["data.reply_rules"])


def conversation_with_rules(webhook, **rules) -> uuid.UUID:
    conversation_id = uuid.uuid4()
    webhook.post({**new_conversation(conversation_id), "data": {"id": str(conversation_id), "reply_rules": rules}})
    return conversation_id


def test_each_conversation_is_answered_at_its_own_window_and_never_before(webhook, settings):
    short, long = (
        conversation_with_rules(webhook, window_seconds=2),
        conversation_with_rules(webhook, window_seconds=10),
    )
    messages = {short: uuid.uuid4(), long: uuid.uuid4()}
    for conversation_id, message_id in messages.items():
        webhook.post(new_message(message_id, conversation_id))

    age_rows(Message, [messages[short]], 1.5)
    assert replies_answer_due() == []
    age_rows(Message, list(messages.values()), 1)  # short: 2.5 s of quiet; long: 1 s
    assert [r.conversation_id for r in replies_answer_due()] == [short]
    age_rows(Message, [messages[long]], 8.5)  # long: 9.5 s, past the service's 5 s
    assert replies_answer_due() == []
    age_rows(Message, [messages[long]], 1)
    [reply] = replies_answer_due()
    assert (reply.conversation_id, reply.send_reason) == (long, "quiet")


def test_a_conversations_max_messages_answers_its_group_as_soon_as_it_is_full(webhook):
    conversation_id = conversation_with_rules(webhook, max_messages=2)
    webhook.post(new_message(uuid.uuid4(), conversation_id))
    assert replies_answer_due() == []

    webhook.post(new_message(uuid.uuid4(), conversation_id))

    [reply] = replies_answer_due()
    assert reply.send_reason == "max_messages"


def test_a_conversations_max_wait_answers_a_group_that_keeps_growing(webhook):
    conversation_id = conversation_with_rules(webhook, window_seconds=10, max_wait_seconds=3)
    first = uuid.uuid4()
    webhook.post(new_message(first, conversation_id))
    age_rows(Message, [first], 2)
    webhook.post(new_message(uuid.uuid4(), conversation_id))
    assert replies_answer_due() == []

    age_rows(Message, list(Message.objects.filter(conversation_id=conversation_id).values_list("id", flat=True)), 1)

    [reply] = replies_answer_due()
    assert reply.send_reason == "max_wait"


def test_closing_a_conversation_ends_its_pause(webhook):
    conversation = ConversationFactory()
    webhook.post(pause_bot(conversation.id, seconds=600))

    closed = webhook.post(close_conversation(conversation.id)).json()

    assert closed["bot_paused_until"] is None
    conversation.refresh_from_db()
    assert conversation.bot_paused_until is None


def test_a_handoff_pause_moves_updated_at(webhook, settings):
    settings.HANDOFF_KEYWORDS = ["atendente"]
    conversation = ConversationFactory()
    message_id = uuid.uuid4()

    webhook.post(new_message(message_id, conversation.id, "atendente"))

    conversation.refresh_from_db()
    assert conversation.updated_at == Message.objects.get(id=message_id).received_at


def test_a_parked_message_attached_follows_its_conversations_own_window(webhook):
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    webhook.post(new_message(message_id, conversation_id))

    webhook.post(
        {
            **new_conversation(conversation_id),
            "data": {"id": str(conversation_id), "reply_rules": {"window_seconds": 10}},
        }
    )

    conversation = Conversation.objects.get(id=conversation_id)
    assert conversation.reply_due_at == Message.objects.get(id=message_id).received_at + timedelta(seconds=10)
    age_rows(Message, [message_id], 6)
    assert replies_answer_due() == []
    age_rows(Message, [message_id], 4.5)
    assert [reply.conversation_id for reply in replies_answer_due()] == [conversation_id]


def test_a_conversation_whose_groups_hold_one_message_answers_each_at_once(webhook):
    conversation_id = conversation_with_rules(webhook, max_messages=1)
    message_id = uuid.uuid4()

    webhook.post(new_message(message_id, conversation_id))

    assert Conversation.objects.get(id=conversation_id).reply_due_at == Message.objects.get(id=message_id).received_at
    [reply] = replies_answer_due()
    assert reply.send_reason == "max_messages"


def test_a_conversation_answered_one_by_one_after_a_failed_batch_keeps_its_own_rules(webhook):
    conversation_id = conversation_with_rules(webhook, window_seconds=2)
    message_id = uuid.uuid4()
    webhook.post(new_message(message_id, conversation_id))
    age_rows(Message, [message_id], 2.5)

    written = _groups_answer_one_by_one([conversation_id], group_rules(), None)

    assert [reply.send_reason for reply in written.replies] == ["quiet"]


def test_a_parked_agent_message_attached_to_a_closed_conversation_pauses_nothing():
    conversation = ConversationFactory()
    agent = ParkedMessageFactory(conversation_id=conversation.id, author=Message.Author.AGENT)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_conversation SET status = 'CLOSED', closed_at = clock_timestamp() WHERE id = %s",
            [conversation.id],
        )

    assert parked_messages_attach() == 1

    assert Message.objects.get(id=agent.id).author == Message.Author.AGENT
    conversation.refresh_from_db()
    assert conversation.bot_paused_until is None
