"""Reply batches: many conversations per transaction, full batches waking the next, disjoint parallel batches, a
poisoned conversation, the lost-job case, and each conversation's moment (reply_due_at): set as messages arrive,
moved by the batches that look (real PostgreSQL; windows moved by aging rows)."""

import uuid
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection, transaction

from chat.models import Conversation, Message
from chat.reply_timing import GroupRules, group_rules
from chat.services import conversation_close, message_receive
from core.clock import database_now
from scheduler.grouping import open_group_due, open_group_reason
from scheduler.replies import FAILING_POSTPONE_SECONDS, replies_write_batch
from scheduler.services import WAKE_MARGIN, WAKE_STEP, replies_answer, sweep_run
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory
from tests.helpers import Woken, age_rows, replies_answer_due, run_in_parallel

pytestmark = pytest.mark.django_db


def due_conversations(settings, count: int, age: float | None = None) -> list[Conversation]:
    """`count` conversations with one pending message each, due (arrivals `age` seconds ago, oldest first)."""
    conversations = ConversationFactory.create_batch(count)
    for n, conversation in enumerate(conversations):
        message = MessageFactory(conversation=conversation)
        age_rows(Message, [message.id], (age or settings.GROUP_WINDOW_SECONDS + 1) + (count - n) * 0.01)
    return conversations


def pending_ids() -> set:
    return set(Message.objects.filter(pending=True).values_list("conversation_id", flat=True))


def test_one_batch_answers_every_due_conversation_with_one_reply_each(settings):
    conversations = due_conversations(settings, 20)

    replies = replies_answer_due()

    assert sorted(reply.conversation_id for reply in replies) == sorted(c.id for c in conversations)
    assert pending_ids() == set()
    for conversation in conversations:
        [inbound] = Message.objects.filter(conversation=conversation, type=Message.Type.INBOUND)
        assert inbound.reply.content == f"Mensagens recebidas:\n{inbound.id}\n"


def test_a_batch_is_a_few_statements_whatever_its_size(settings, django_assert_max_num_queries):
    due_conversations(settings, 50)

    # Claim, read, INSERT replies, UPDATE messages, UPDATE conversations, and the savepoint around them.
    with django_assert_max_num_queries(7):
        replies_write_batch(limit=500)

    assert pending_ids() == set()


def test_a_full_batch_takes_the_longest_due_first_and_wakes_the_next(settings):
    conversations = due_conversations(settings, 5)
    continued = []

    first = replies_write_batch(limit=3, continue_now=lambda: continued.append(1))

    assert (first.full, first.replies, len(continued)) == (True, 3, 1)
    assert pending_ids() == {c.id for c in conversations[3:]}
    second = replies_write_batch(limit=3, continue_now=lambda: continued.append(1))
    assert (second.full, second.replies, len(continued)) == (False, 2, 1)
    assert pending_ids() == set()


@pytest.mark.django_db(transaction=True)
def test_parallel_batches_on_separate_connections_take_disjoint_conversations(settings):
    conversations = due_conversations(settings, 40)

    def batch() -> list:
        ids = replies_write_batch(limit=10, continue_now=lambda: None).reply_ids
        return list(Message.objects.filter(id__in=ids).values_list("conversation_id", flat=True))

    answered = [conversation for taken in run_in_parallel(batch, 4) for conversation in taken]
    while replies_write_batch(limit=10).replies:
        pass

    # Four batches side by side answered disjoint conversations (one that locked a conversation another had just
    # answered found nothing pending in it: the pending messages are read after the lock).
    assert len(answered) == len(set(answered))
    replies = Message.objects.filter(type=Message.Type.OUTBOUND).values_list("conversation_id", flat=True)
    assert sorted(replies) == sorted(c.id for c in conversations)


@pytest.mark.django_db(transaction=True)
def test_a_conversation_a_webhook_holds_is_skipped_and_answered_later(settings):
    held, free = due_conversations(settings, 2)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM chat_conversation WHERE id = %s FOR NO KEY UPDATE", [held.id])
        [reply] = run_in_parallel(lambda: replies_write_batch(limit=10).reply_ids, 1)[0:1]
    assert Message.objects.get(id=reply[0]).conversation_id == free.id

    assert [r.conversation_id for r in replies_answer_due()] == [held.id]


def test_the_lost_job_case_an_older_group_that_ended_is_answered_while_a_newer_one_grows(settings):
    """An older group ended (a gap over the window) while no job ran; a newer group keeps growing. The conversation's
    moment came with the older group: the next sweep wakes a job at once, and its batch answers the older group,
    leaving the newer one to grow, and moves the moment to the newer one's."""
    window = settings.GROUP_WINDOW_SECONDS
    conversation = ConversationFactory()
    older = MessageFactory.create_batch(2, conversation=conversation)
    growing = [MessageFactory(conversation=conversation) for _ in range(2)]
    age_rows(Message, [m.id for m in older], 3 * window)
    age_rows(Message, [growing[0].id], window - 1)
    age_rows(Message, [growing[1].id], 0.5)
    woken = Woken()

    sweep_run(wake=woken)
    [reply] = replies_answer_due(conversation.id)

    assert woken == [0]
    assert set(reply.answers.values_list("id", flat=True)) == {m.id for m in older}
    assert pending_ids() == {conversation.id}
    conversation.refresh_from_db()
    growing[1].refresh_from_db()
    assert conversation.reply_due_at == growing[1].received_at + timedelta(seconds=window)


def test_a_batch_that_finds_a_group_still_growing_moves_the_moment_to_when_it_can_turn(settings):
    """A user who keeps typing costs one claim per moment the rule can turn, not one per sweep or batch."""
    conversation = ConversationFactory()
    first = MessageFactory(conversation=conversation)
    second = MessageFactory(conversation=conversation)
    age_rows(Message, [first.id], settings.GROUP_WINDOW_SECONDS + 1)
    age_rows(Message, [second.id], 2)  # a gap under the window: one group, not due before `second` is quiet

    result = replies_write_batch(limit=10)

    second.refresh_from_db()
    conversation.refresh_from_db()
    assert (result.claimed, result.replies) == (1, 0)
    assert conversation.reply_due_at == second.received_at + timedelta(seconds=settings.GROUP_WINDOW_SECONDS)
    assert replies_write_batch(limit=10).claimed == 0


def test_a_message_sets_its_conversations_moment_when_it_starts_a_group_and_not_after(settings):
    conversation = ConversationFactory()
    rules = group_rules()

    first, second = (
        message_receive(message_id=uuid.uuid4(), conversation_id=conversation.id, content="oi", event_at=EXAMPLE_TIME)
        for _ in range(2)
    )

    arrivals = Message.objects.filter(conversation=conversation).order_by("received_at")
    conversation.refresh_from_db()
    assert conversation.reply_due_at == arrivals[0].received_at + rules.first_due_after
    assert conversation.reply_due_at < arrivals[1].received_at + rules.window


def test_the_moment_a_message_sets_is_the_rules_due_time_of_a_one_message_group(settings):
    """chat stores the lower bound the rule (scheduler.grouping) gives a group of one: the two never disagree."""
    for window, max_wait in [(5, 60), (5, 3), (0.5, 0.5)]:
        rules = GroupRules(timedelta(seconds=window), timedelta(seconds=max_wait), max_messages=50)
        one = [Message(received_at=EXAMPLE_TIME)]
        assert open_group_due(one, None, rules)[0] == EXAMPLE_TIME + rules.first_due_after


def test_a_message_after_its_conversations_moment_leaves_it_and_the_next_batch_answers_in_turn(settings):
    """The moment has come (a group ended by quiet): a new message leaves it; the batch answers the old group and
    sets the new one's moment."""
    conversation = ConversationFactory()
    receive = partial(message_receive, conversation_id=conversation.id, content="oi", event_at=EXAMPLE_TIME)
    old = receive(message_id=uuid.uuid4())
    age_rows(Message, [old.message_id], settings.GROUP_WINDOW_SECONDS + 1)
    conversation.refresh_from_db()
    moment = conversation.reply_due_at

    new = receive(message_id=uuid.uuid4())

    conversation.refresh_from_db()
    assert conversation.reply_due_at == moment
    [reply] = replies_answer_due(conversation.id)
    assert list(reply.answers.values_list("id", flat=True)) == [old.message_id]
    conversation.refresh_from_db()
    newest = Message.objects.get(id=new.message_id)
    assert conversation.reply_due_at == newest.received_at + timedelta(seconds=settings.GROUP_WINDOW_SECONDS)


def test_with_groups_of_one_every_message_is_due_on_arrival(settings):
    settings.MAX_GROUP_MESSAGES = 1
    conversation = ConversationFactory()

    receipt = message_receive(
        message_id=uuid.uuid4(), conversation_id=conversation.id, content="oi", event_at=EXAMPLE_TIME
    )

    conversation.refresh_from_db()
    assert conversation.reply_due_at == Message.objects.get(id=receipt.message_id).received_at


def test_a_message_that_fills_its_group_makes_it_due_now(settings):
    settings.MAX_GROUP_MESSAGES = 3
    conversation = ConversationFactory()

    for _ in range(3):
        message_receive(message_id=uuid.uuid4(), conversation_id=conversation.id, content="oi", event_at=EXAMPLE_TIME)

    conversation.refresh_from_db()
    newest = Message.objects.filter(conversation=conversation).latest("received_at")
    assert conversation.reply_due_at == newest.received_at
    [reply] = replies_answer_due(conversation.id)
    assert reply.send_reason == Message.SendReason.MAX_MESSAGES
    assert reply.due_at == newest.received_at  # the timeline's "fell due": when the third message came


def test_a_quiet_reply_fell_due_at_its_last_arrival_plus_the_window(settings):
    [conversation] = due_conversations(settings, 1)
    last = Message.objects.filter(conversation=conversation).latest("received_at")

    [reply] = replies_answer_due(conversation.id)

    assert reply.send_reason == Message.SendReason.QUIET
    assert reply.due_at == last.received_at + timedelta(seconds=settings.GROUP_WINDOW_SECONDS)
    assert reply.due_at <= reply.timestamp


def test_a_close_makes_waiting_messages_due_now_and_leaves_an_idle_conversation_idle():
    waiting, idle = MessageFactory().conversation, ConversationFactory()

    for conversation in (waiting, idle):
        conversation_close(conversation_id=conversation.id, event_at=EXAMPLE_TIME)

    waiting.refresh_from_db()
    idle.refresh_from_db()
    assert waiting.reply_due_at == waiting.closed_at
    assert idle.reply_due_at is None


def test_a_conversation_answered_in_full_waits_for_nothing(settings):
    [conversation] = due_conversations(settings, 1)

    replies_answer_due()

    conversation.refresh_from_db()
    assert conversation.reply_due_at is None


@pytest.mark.django_db(transaction=True)
def test_a_poisoned_conversation_costs_itself_not_the_rest_of_its_batch(settings):
    """Rows that fail (a trigger here) fail the batch; it is answered again one conversation at a time."""
    conversations = due_conversations(settings, 9)
    poisoned = conversations[4]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.type = 'OUTBOUND' AND NEW.conversation_id = '{poisoned.id}' THEN
                    RAISE EXCEPTION 'poisoned conversation';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_poison BEFORE INSERT ON chat_message FOR EACH ROW EXECUTE FUNCTION test_poison();
            """
        )
    try:
        result = replies_write_batch(limit=100)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_poison ON chat_message; DROP FUNCTION test_poison()")

    assert result.replies == 8
    assert pending_ids() == {poisoned.id}
    # Postponed, so it does not head every batch meanwhile; answered once its rows can be written.
    poisoned.refresh_from_db()
    assert (poisoned.reply_due_at - database_now()).total_seconds() > FAILING_POSTPONE_SECONDS - 5
    assert replies_write_batch(limit=100).claimed == 0
    Conversation.objects.filter(id=poisoned.id).update(reply_due_at=EXAMPLE_TIME)
    assert [r.conversation_id for r in replies_answer_due()] == [poisoned.id]


def test_a_full_reply_job_wakes_the_next_at_once(settings):
    settings.REPLY_BATCH_SIZE = 2
    due_conversations(settings, 3)
    continued = []

    result = replies_answer(continue_now=lambda: continued.append(1), wake=Woken())

    assert (result.full, result.replies, continued) == (True, 2, [1])


def test_a_reply_job_asks_for_a_job_at_the_earliest_moment_its_batch_set(settings):
    """Two quick messages: the batch at the first one's moment finds the group growing and sets the moment of its
    quiet, sooner than the next sweep may look; a job is asked for at that moment, a hair after it."""
    conversation = ConversationFactory()
    first, second = MessageFactory(conversation=conversation), MessageFactory(conversation=conversation)
    age_rows(Message, [first.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    age_rows(Message, [second.id], settings.GROUP_WINDOW_SECONDS - 0.3)
    woken = Woken()

    result = replies_answer(continue_now=lambda: None, wake=woken)

    [countdown] = woken
    assert result.replies == 0
    assert 0.3 - 0.1 < result.next_due_in <= 0.3
    assert countdown == pytest.approx(result.next_due_in + WAKE_MARGIN)


def test_a_moment_the_next_sweep_will_see_is_left_to_it(settings):
    conversation = ConversationFactory()
    first, second = MessageFactory(conversation=conversation), MessageFactory(conversation=conversation)
    age_rows(Message, [first.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    age_rows(Message, [second.id], settings.GROUP_WINDOW_SECONDS - settings.SWEEP_INTERVAL_SECONDS - 1)
    woken = Woken()

    result = replies_answer(continue_now=lambda: None, wake=woken)

    assert result.next_due_in > settings.SWEEP_INTERVAL_SECONDS + WAKE_STEP
    assert woken == []


def test_a_reply_job_that_answered_everything_asks_for_nothing(settings):
    due_conversations(settings, 2)
    woken = Woken()

    assert replies_answer(continue_now=lambda: None, wake=woken).next_due_in is None
    assert woken == []


@pytest.mark.parametrize("closed", [False, True])
@pytest.mark.parametrize("arrivals", [[0.0], [0.0, 2.0], [0.0, 3.0, 6.0, 9.0], [0.0, 0.1, 0.2, 0.3, 0.4]])
def test_the_due_time_is_where_the_rule_turns(arrivals, closed):
    rules = GroupRules(window=timedelta(seconds=5), max_wait=timedelta(seconds=10), max_messages=5)
    group = [Message(received_at=EXAMPLE_TIME + timedelta(seconds=s)) for s in arrivals]
    closed_at = group[-1].received_at + timedelta(seconds=1) if closed else None

    due_at, reason = open_group_due(group, closed_at, rules)

    assert open_group_reason(group, due_at, closed_at, rules) == reason
    assert (
        due_at == group[-1].received_at
        or open_group_reason(group, due_at - timedelta(microseconds=1), closed_at, rules) is None
    )
