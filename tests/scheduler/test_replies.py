"""Reply batches: many conversations per transaction, chains of full batches, disjoint parallel batches, a poisoned
conversation, the lost-job case (real PostgreSQL; windows moved by aging rows)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction

from chat.models import Conversation, Message
from scheduler.grouping import GroupRules, open_group_due_at, open_group_reason
from scheduler.models import ReplyWakeup
from scheduler.queries import database_now
from scheduler.replies import replies_write_batch
from scheduler.services import BATCH_TIME_BUDGET, WAKE_GRANULARITY, BatchSize, replies_answer, replies_wake, sweep_run
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

    # Lock, read, the clock, INSERT replies, UPDATE messages, UPDATE conversations, and the savepoint around them.
    with django_assert_max_num_queries(8):
        replies_write_batch(limit=500)

    assert pending_ids() == set()


def test_a_full_batch_takes_the_oldest_first_and_asks_for_the_next_at_its_cursor(settings):
    conversations = due_conversations(settings, 5)
    cursors = []

    first = replies_write_batch(limit=3, continue_after=cursors.append)

    assert (first.full, first.replies) == (True, 3)
    assert pending_ids() == {c.id for c in conversations[3:]}
    [cursor] = cursors
    second = replies_write_batch(limit=3, after=cursor, continue_after=cursors.append)
    assert (second.full, second.replies, len(cursors)) == (False, 2, 1)
    assert pending_ids() == set()


@pytest.mark.django_db(transaction=True)
def test_parallel_batches_on_separate_connections_take_disjoint_conversations(settings):
    conversations = due_conversations(settings, 40)

    def batch() -> list:
        ids = replies_write_batch(limit=10, continue_after=lambda _: None).reply_ids
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
            cursor.execute("SELECT 1 FROM chat_conversation WHERE id = %s FOR SHARE", [held.id])
        [reply] = run_in_parallel(lambda: replies_write_batch(limit=10).reply_ids, 1)[0:1]
    assert Message.objects.get(id=reply[0]).conversation_id == free.id

    assert [r.conversation_id for r in replies_answer_due()] == [held.id]


def test_the_lost_job_case_an_older_group_that_ended_is_answered_while_a_newer_one_grows(settings):
    """An older group ended (a gap over the window) while no job ran; a newer group keeps growing. The conversation
    is a candidate by its oldest arrival: the next sweep wakes a job at once, and its batch answers the older
    group, leaving the newer one to grow."""
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

    assert len(woken) == 1
    assert woken[0] <= WAKE_GRANULARITY.total_seconds()
    assert set(reply.answers.values_list("id", flat=True)) == {m.id for m in older}
    assert pending_ids() == {conversation.id}


def test_a_batch_reports_when_the_open_groups_it_saw_fall_due(settings):
    conversation = ConversationFactory()
    first = MessageFactory(conversation=conversation)
    second = MessageFactory(conversation=conversation)
    age_rows(Message, [first.id], settings.GROUP_WINDOW_SECONDS + 1)
    age_rows(Message, [second.id], 2)  # a gap under the window: one group, not due before `second` is quiet

    result = replies_write_batch(limit=10)

    second.refresh_from_db()
    assert result.replies == 0
    assert result.next_due_at == second.received_at + timedelta(seconds=settings.GROUP_WINDOW_SECONDS)


@pytest.mark.django_db(transaction=True)
def test_a_poisoned_conversation_costs_itself_not_the_rest_of_its_batch(settings):
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
    assert [r.conversation_id for r in replies_answer_due()] == [poisoned.id]


def test_a_closed_conversation_is_answered_at_once_for_closed():
    conversation = ConversationFactory(status=Conversation.Status.CLOSED, closed_at=EXAMPLE_TIME)
    MessageFactory(conversation=conversation)

    [reply] = replies_answer_due()

    assert reply.send_reason == Message.SendReason.CLOSED


def test_a_reply_job_asks_to_wake_when_the_next_group_falls_due(settings):
    MessageFactory()  # fresh: becomes a candidate a window from now
    woken = Woken()

    replies_answer(after=None, continue_after=lambda _: None, wake=woken)

    [countdown] = woken
    assert settings.GROUP_WINDOW_SECONDS - 1 < countdown <= settings.GROUP_WINDOW_SECONDS + 0.1


def test_a_full_reply_job_wakes_the_next_batch_at_its_cursor_and_asks_for_its_next_deadline(settings):
    settings.REPLY_BATCH_SIZE = 2
    due_conversations(settings, 3)
    growing = ConversationFactory()
    first, second = MessageFactory(conversation=growing), MessageFactory(conversation=growing)
    age_rows(Message, [first.id], settings.GROUP_WINDOW_SECONDS + 1.5)  # the oldest candidate, not due for 2 s
    age_rows(Message, [second.id], settings.GROUP_WINDOW_SECONDS - 2)
    continued, woken = [], Woken()

    result = replies_answer(after=None, continue_after=continued.append, wake=woken)

    assert (result.full, result.replies) == (True, 1)
    assert continued == [result.cursor]
    [countdown] = woken
    assert 1.5 < countdown <= 2 + WAKE_GRANULARITY.total_seconds()


def test_a_wake_up_that_cannot_be_enqueued_is_forgotten():
    """Redis away: the recorded wake-up would otherwise hold back every later request until its time passed."""

    def unreachable(countdown: float, woken_for=None) -> None:
        raise ConnectionError("redis is away")

    now = database_now()
    woken = Woken()

    assert replies_wake(now + timedelta(seconds=3), wake=unreachable) is False
    assert not ReplyWakeup.objects.exists()
    assert replies_wake(now + timedelta(seconds=4), wake=woken) is True
    assert len(woken) == 1


def test_batch_size_halves_after_a_slow_batch_and_grows_back_after_quick_ones(settings):
    settings.REPLY_BATCH_SIZE = 400
    size = BatchSize()
    slow = replies_write_batch(limit=1)

    size.record(type(slow)(**{**vars(slow), "duration": BATCH_TIME_BUDGET * 2}))
    assert size.next() == 200
    size.record(type(slow)(**{**vars(slow), "duration": 0}))
    size.record(type(slow)(**{**vars(slow), "duration": 0}))
    assert size.next() == 400


@pytest.mark.parametrize("closed", [False, True])
@pytest.mark.parametrize("arrivals", [[0.0], [0.0, 2.0], [0.0, 3.0, 6.0, 9.0], [0.0, 0.1, 0.2, 0.3, 0.4]])
def test_the_due_time_is_where_the_rule_turns(arrivals, closed):
    rules = GroupRules(window=timedelta(seconds=5), max_wait=timedelta(seconds=10), max_messages=5)
    group = [Message(received_at=EXAMPLE_TIME + timedelta(seconds=s)) for s in arrivals]

    due_at = open_group_due_at(group, closed, rules)

    assert open_group_reason(group, due_at, closed, rules) is not None
    assert (
        due_at == group[-1].received_at
        or open_group_reason(group, due_at - timedelta(microseconds=1), closed, rules) is None
    )
