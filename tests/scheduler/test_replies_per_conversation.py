"""Reply batches, one conversation at a time: its groups, when each is due and why, the exact content, idempotency
(real PostgreSQL, windows moved by aging rows). Batches across conversations: test_replies.py."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction

from chat.models import Conversation, Message
from chat.services import conversation_close, message_receive
from scheduler.replies import replies_write_batch
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory
from tests.helpers import age_rows, in_thread, replies_answer_due, run_in_parallel, wait_until

pytestmark = pytest.mark.django_db


def outbound(conversation) -> list[Message]:
    return list(Message.objects.filter(conversation=conversation, type=Message.Type.OUTBOUND))


def answered(reply: Message) -> set[str]:
    return {str(message_id) for message_id in reply.answers.values_list("id", flat=True)}


def test_single_due_message_gets_one_reply_with_the_exact_content(settings):
    message = MessageFactory(id=uuid.UUID("55ebb68a-a8ef-47d4-9a28-c97e0f0ec8f1"))
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    replies = replies_answer_due(message.conversation_id)

    assert len(replies) == 1
    reply = Message.objects.get(id=replies[0].id)
    assert reply.content == "Mensagens recebidas:\n55ebb68a-a8ef-47d4-9a28-c97e0f0ec8f1\n"
    assert (reply.type, reply.pending) == (Message.Type.OUTBOUND, False)
    message.refresh_from_db()
    assert (message.pending, message.reply_id) == (False, reply.id)


def test_reply_lists_ids_by_timestamp_then_arrival(settings):
    conversation = ConversationFactory()
    ids = [
        uuid.UUID("55ebb68a-a8ef-47d4-9a28-c97e0f0ec8f1"),
        uuid.UUID("8d41e347-da5f-4d03-8377-4378d86cfcf0"),
        uuid.UUID("1f9e918a-6d32-4a75-93a7-34b9e0faff22"),
    ]
    # Arrival order differs from timestamp order for the first two; the third ties on timestamp with the second.
    MessageFactory(id=ids[1], conversation=conversation, timestamp=EXAMPLE_TIME + timedelta(seconds=2))
    MessageFactory(id=ids[0], conversation=conversation, timestamp=EXAMPLE_TIME)
    MessageFactory(id=ids[2], conversation=conversation, timestamp=EXAMPLE_TIME + timedelta(seconds=2))
    age_rows(Message, ids, settings.GROUP_WINDOW_SECONDS + 0.1)

    [reply] = replies_answer_due(conversation.id)

    assert reply.content == "Mensagens recebidas:\n" + "".join(f"{i}\n" for i in ids)


def test_group_still_in_its_window_is_not_answered(settings):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - 0.5)

    assert replies_answer_due(message.conversation_id) == []
    assert outbound(message.conversation) == []
    message.refresh_from_db()
    assert message.pending is True


def test_a_new_message_extends_the_group(settings):
    window = settings.GROUP_WINDOW_SECONDS
    conversation = ConversationFactory()
    old = MessageFactory(conversation=conversation)
    newer = MessageFactory(conversation=conversation)
    # The first message alone would be due; the second came within the window after it and is not quiet yet.
    age_rows(Message, [old.id], 2 * window - 1.5)
    age_rows(Message, [newer.id], window - 1)

    assert replies_answer_due(conversation.id) == []


def test_running_the_job_twice_writes_one_reply(settings):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    replies_answer_due(message.conversation_id)
    assert replies_answer_due(message.conversation_id) == []

    assert len(outbound(message.conversation)) == 1


def test_groups_separated_by_more_than_the_window_get_one_reply_each(settings):
    window = settings.GROUP_WINDOW_SECONDS
    conversation = ConversationFactory()
    first = MessageFactory.create_batch(2, conversation=conversation)
    second = MessageFactory.create_batch(2, conversation=conversation)
    age_rows(Message, [m.id for m in first], 2 * window + 2)
    age_rows(Message, [m.id for m in second], window + 0.5)

    replies = replies_answer_due(conversation.id)

    assert [answered(r) for r in replies] == [{str(m.id) for m in first}, {str(m.id) for m in second}]
    assert len(outbound(conversation)) == 2


def test_only_the_due_groups_are_answered(settings):
    window = settings.GROUP_WINDOW_SECONDS
    conversation = ConversationFactory()
    old = MessageFactory(conversation=conversation)
    fresh = MessageFactory(conversation=conversation)
    age_rows(Message, [old.id], window + 3)

    [reply] = replies_answer_due(conversation.id)

    assert answered(reply) == {str(old.id)}
    fresh.refresh_from_db()
    assert fresh.pending is True


def test_a_message_attached_after_the_close_fell_due_at_its_arrival():
    conversation = ConversationFactory(status=Conversation.Status.CLOSED, closed_at=EXAMPLE_TIME)
    message = MessageFactory(conversation=conversation)  # received now, after the close

    [reply] = replies_answer_due(conversation.id)

    assert reply.send_reason == Message.SendReason.CLOSED
    assert reply.due_at == message.received_at > EXAMPLE_TIME


def test_a_close_answers_the_waiting_group_at_once_for_closed_and_it_fell_due_at_the_close():
    message = MessageFactory()
    conversation_close(conversation_id=message.conversation_id, event_at=EXAMPLE_TIME)
    closed_at = Conversation.objects.get(id=message.conversation_id).closed_at

    [reply] = replies_answer_due(message.conversation_id)

    assert reply.send_reason == Message.SendReason.CLOSED
    assert reply.due_at == closed_at < reply.timestamp


def test_a_batch_with_nothing_pending_claims_nothing():
    MessageFactory(pending=False)

    assert replies_write_batch(limit=10).claimed == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_jobs_for_one_group_write_exactly_one_reply(settings):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    results = run_in_parallel(lambda: len(replies_answer_due(message.conversation_id)), 8)

    assert sorted(results) == [0] * 7 + [1]
    assert len(outbound(message.conversation)) == 1


def waiting_on_a_lock(query_part: str) -> bool:
    """A session of this database waits for a row lock while running a statement that contains `query_part`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            ["%" + query_part + "%"],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_message_arriving_during_a_job_waits_and_starts_a_new_group(settings):
    """The job holds the conversation; a webhook's lock on it waits, so its arrival is stamped after the reply.

    To catch the job mid-transaction, another session holds a row lock on the pending message: the job locks
    the conversation, writes its reply and then waits to mark that message answered."""
    first = MessageFactory()
    age_rows(Message, [first.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    late_id = uuid.uuid4()
    release = threading.Event()
    locked = threading.Event()

    def hold_the_message():
        try:
            with transaction.atomic():
                Message.objects.select_for_update().get(id=first.id)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_message)
    holder.start()
    locked.wait(10)
    job = in_thread(lambda: replies_answer_due(first.conversation_id))
    wait_until(lambda: waiting_on_a_lock("UPDATE chat_message m SET pending = false"), 10, 0.02, "the job's wait")
    webhook = in_thread(
        lambda: message_receive(
            message_id=late_id, conversation_id=first.conversation_id, content="late", event_at=EXAMPLE_TIME
        )
    )
    wait_until(lambda: waiting_on_a_lock("WITH conversation AS"), 10, 0.02, "the webhook's wait")
    release.set()
    for thread in (holder, job, webhook):
        thread.join(10)

    [reply] = outbound(first.conversation)
    late = Message.objects.get(id=late_id)
    assert reply.content == f"Mensagens recebidas:\n{first.id}\n"
    assert late.pending is True
    assert late.received_at > reply.received_at


def test_a_quiet_group_is_sent_for_quiet(settings):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    [reply] = replies_answer_due(message.conversation_id)

    assert reply.send_reason == Message.SendReason.QUIET


def test_a_burst_larger_than_max_group_messages_splits_exactly_there(settings):
    settings.MAX_GROUP_MESSAGES = 3
    conversation = ConversationFactory()
    messages = [MessageFactory(conversation=conversation) for _ in range(7)]
    for n, message in enumerate(messages):  # arrivals 0.1 s apart, in creation order
        age_rows(Message, [message.id], 1 - n * 0.1)

    replies = replies_answer_due(conversation.id)

    assert [answered(r) for r in replies] == [{str(m.id) for m in messages[0:3]}, {str(m.id) for m in messages[3:6]}]
    assert [r.send_reason for r in replies] == [Message.SendReason.MAX_MESSAGES] * 2
    assert list(Message.objects.filter(pending=True).values_list("id", flat=True)) == [messages[6].id]


def test_a_group_that_keeps_growing_is_sent_when_its_first_message_waited_max_wait(settings):
    settings.MAX_GROUP_WAIT_SECONDS = 3
    conversation = ConversationFactory()
    first, second, third = (MessageFactory(conversation=conversation) for _ in range(3))
    age_rows(Message, [first.id], 4)  # gaps of 2 s and 1.5 s: never 5 s of quiet
    age_rows(Message, [second.id], 2)
    age_rows(Message, [third.id], 0.5)

    [reply] = replies_answer_due(conversation.id)

    # The third arrived 3.5 s after the first: past the cap, it starts the next group.
    assert answered(reply) == {str(first.id), str(second.id)}
    assert reply.send_reason == Message.SendReason.MAX_WAIT
    third.refresh_from_db()
    assert third.pending is True


def test_a_fresh_group_below_both_caps_waits(settings):
    conversation = ConversationFactory()
    MessageFactory.create_batch(2, conversation=conversation)

    assert replies_answer_due(conversation.id) == []
