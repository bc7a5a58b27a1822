"""An agent's message racing the reply engine, on the real database with concurrent sessions: the conversation's row
lock orders them, so a waiting group is answered by the bot exactly once or taken over by the person, never both."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from chat.models import Message
from chat.services import agent_message_receive, message_receive
from chat.takeover import conversation_pause, conversation_resume
from scheduler.replies import replies_write_batch
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory
from tests.helpers import age_rows, in_thread, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def a_backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def due_group(settings, conversation=None) -> list[Message]:
    conversation = conversation or ConversationFactory()
    group = [MessageFactory(conversation=conversation) for _ in range(2)]
    age_rows(Message, [m.id for m in group], settings.GROUP_WINDOW_SECONDS + 1)
    return group


def agent_writes(conversation_id, message_id=None) -> None:
    agent_message_receive(
        message_id=message_id or uuid.uuid4(), conversation_id=conversation_id, content="Ana", event_at=EXAMPLE_TIME
    )


def test_a_batch_that_locked_first_answers_the_group_and_the_agents_message_comes_after(settings):
    group = due_group(settings)
    conversation_id = group[0].conversation_id
    agent_id = uuid.uuid4()
    claimed, release = threading.Event(), threading.Event()

    def batch_holding_its_lock():
        with transaction.atomic():
            assert replies_write_batch(limit=10).replies == 1
            claimed.set()
            release.wait(10)

    batch = in_thread(batch_holding_its_lock)
    assert claimed.wait(10)
    agent = in_thread(lambda: agent_writes(conversation_id, agent_id))
    wait_until(a_backend_waits_on_a_lock, 10, 0.02, "the agent's message waiting for the batch")
    release.set()
    batch.join()
    agent.join()

    for message in group:
        message.refresh_from_db()
        assert (message.taken_over, message.reply_id is not None) == (False, True)
    reply = group[0].reply
    assert Message.objects.get(id=agent_id).received_at > reply.received_at


def test_an_agent_message_that_locked_first_takes_the_group_and_the_batch_finds_nothing(settings):
    group = due_group(settings)
    conversation_id = group[0].conversation_id
    stored, release = threading.Event(), threading.Event()

    def agent_holding_its_lock():
        with transaction.atomic():
            agent_writes(conversation_id)
            stored.set()
            release.wait(10)

    agent = in_thread(agent_holding_its_lock)
    assert stored.wait(10)
    skipped = replies_write_batch(limit=10)
    release.set()
    agent.join()
    after = replies_write_batch(limit=10)

    assert (skipped.claimed, skipped.replies, after.replies) == (0, 0, 0)
    assert all(m.taken_over for m in Message.objects.filter(id__in=[m.id for m in group]))


def test_many_agent_messages_racing_several_batches_leave_each_group_answered_once_or_taken(settings):
    groups = [due_group(settings) for _ in range(60)]
    conversation_ids = [group[0].conversation_id for group in groups]
    start = threading.Barrier(4)

    def batches():
        start.wait()
        while replies_write_batch(limit=5).claimed:
            pass

    def agents():
        start.wait()
        for conversation_id in conversation_ids:
            agent_writes(conversation_id)

    def run(function):
        try:
            function()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(run, f) for f in (batches, batches, batches, agents)]:
            future.result()

    outcomes = {"answered": 0, "taken": 0}
    for group in groups:
        messages = list(Message.objects.filter(id__in=[m.id for m in group]))
        replies = {m.reply_id for m in messages}
        taken = {m.taken_over for m in messages}
        assert not any(m.pending for m in messages)
        if taken == {True}:
            assert replies == {None}
            outcomes["taken"] += 1
        else:
            assert taken == {False}
            assert len(replies) == 1
            assert None not in replies
            outcomes["answered"] += 1
    replies_per_conversation = Message.objects.filter(author="bot").values_list("conversation_id", flat=True)
    assert len(replies_per_conversation) == len(set(replies_per_conversation)) == outcomes["answered"]
    assert Message.objects.filter(author="agent").count() == sum(outcomes.values()) == len(groups)


def message_blocked_behind(holder) -> Message:
    """A NEW_MESSAGE sent while another session, in a transaction, has run `holder(conversation_id)` and holds the
    conversation's lock: the message waits, and is stored once the holder commits."""
    conversation = ConversationFactory()
    message_id = uuid.uuid4()
    held, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            holder(conversation.id)
            held.set()
            release.wait(10)

    holder_thread = in_thread(hold)
    assert held.wait(10)
    sender = in_thread(
        lambda: message_receive(
            message_id=message_id, conversation_id=conversation.id, content="oi", event_at=EXAMPLE_TIME
        )
    )
    wait_until(a_backend_waits_on_a_lock, 10, 0.02, "the message waiting for the holder")
    release.set()
    holder_thread.join()
    sender.join()
    return Message.objects.get(id=message_id)


def test_a_message_that_waited_for_a_pause_to_commit_is_the_persons():
    message = message_blocked_behind(
        lambda conversation_id: conversation_pause(conversation_id=conversation_id, seconds=60, event_at=EXAMPLE_TIME)
    )

    assert (message.pending, message.taken_over) == (False, True)


def test_a_message_that_waited_for_a_resume_to_commit_is_the_bots():
    def paused_then_resumed(conversation_id):
        conversation_pause(conversation_id=conversation_id, seconds=60, event_at=EXAMPLE_TIME)
        conversation_resume(conversation_id=conversation_id, event_at=EXAMPLE_TIME)

    message = message_blocked_behind(paused_then_resumed)

    assert (message.pending, message.taken_over) == (True, False)
