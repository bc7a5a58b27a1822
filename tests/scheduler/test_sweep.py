"""The sweep: attach, expire, wake the reply engine, heartbeat (real PostgreSQL; wake-ups collected in a list)."""

from datetime import timedelta

import pytest

from chat.models import Conversation, Message, ParkedMessage
from chat.parking import parked_messages_purge
from scheduler.models import ReplyWakeup, SweepHeartbeat
from scheduler.queries import database_now
from scheduler.services import WAKE_GRANULARITY, replies_wake, sweep_run
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory, ParkedMessageFactory
from tests.helpers import Woken, age_rows

pytestmark = pytest.mark.django_db

GRANULARITY = WAKE_GRANULARITY.total_seconds()


@pytest.fixture
def woken() -> Woken:
    """The countdowns of the reply jobs asked for."""
    return Woken()


def sweep(woken: Woken):
    return sweep_run(wake=woken)


def test_a_due_group_wakes_a_reply_job_now(settings, woken):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    sweep(woken)

    [countdown] = woken
    assert 0 <= countdown <= GRANULARITY


def test_a_fresh_group_wakes_a_reply_job_when_it_falls_due(settings, woken):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - 2)

    result = sweep(woken)

    [countdown] = woken
    assert 2 - 0.5 < countdown <= 2 + GRANULARITY
    assert result.wake_at is not None


def test_a_second_sweep_does_not_schedule_the_same_wake_up_again(settings, woken):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - 2)

    sweep(woken)
    sweep(woken)

    assert len(woken) == 1


def test_an_earlier_wake_up_replaces_a_later_one_and_a_later_one_waits(settings, woken):
    later = MessageFactory()
    age_rows(Message, [later.id], settings.GROUP_WINDOW_SECONDS - 3)
    sweep(woken)
    earlier = MessageFactory()
    age_rows(Message, [earlier.id], settings.GROUP_WINDOW_SECONDS - 1)
    sweep(woken)
    wake_at = ReplyWakeup.objects.get().wake_at

    assert len(woken) == 2
    assert woken[1] < woken[0]
    assert replies_wake(wake_at + 2 * WAKE_GRANULARITY, wake=woken) is False
    assert len(woken) == 2


def test_a_wake_up_whose_time_has_passed_is_spent_so_the_next_is_scheduled(settings, woken):
    """A lost job costs nothing: its recorded wake-up lapses, and the next sweep schedules another."""
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - 2)
    sweep(woken)
    assert ReplyWakeup.objects.update(wake_at=EXAMPLE_TIME) == 1

    sweep(woken)

    assert len(woken) == 2


def test_two_requests_for_the_same_slot_just_ahead_schedule_one_job(woken):
    now = database_now()

    replies_wake(now + WAKE_GRANULARITY / 5, wake=woken)
    replies_wake(now + WAKE_GRANULARITY / 5, wake=woken)

    assert len(woken) == 1


def test_the_job_woken_for_a_slot_may_ask_for_that_slot_again(woken):
    """Its host's clock ran a hair ahead: the group is not due yet by the database's, and must not wait a sweep."""
    now = database_now()
    replies_wake(now + timedelta(seconds=1), wake=woken)
    slot = ReplyWakeup.objects.get().wake_at

    assert replies_wake(slot, wake=woken) is False
    assert replies_wake(slot, wake=woken, woken_for=slot) is True
    assert len(woken) == 2


def test_nothing_pending_wakes_nothing(woken):
    MessageFactory(pending=False)

    assert sweep(woken).wake_at is None
    assert woken == []


def test_a_closed_conversation_with_a_fresh_group_wakes_a_job_now(woken):
    message = MessageFactory()
    Conversation.objects.filter(id=message.conversation_id).update(
        status=Conversation.Status.CLOSED, closed_at=EXAMPLE_TIME
    )

    sweep(woken)

    assert len(woken) == 1
    assert woken[0] <= GRANULARITY


def test_a_full_group_wakes_a_job_now(settings, woken):
    settings.MAX_GROUP_MESSAGES = 3
    MessageFactory.create_batch(3, conversation=ConversationFactory())

    sweep(woken)

    assert len(woken) == 1
    assert woken[0] <= GRANULARITY


def test_an_idle_sweep_is_three_statements(woken, django_assert_num_queries):
    sweep(woken)  # the heartbeat row exists from now on
    with django_assert_num_queries(3):
        sweep(woken)


def test_sweep_attaches_a_parked_message_whose_conversation_now_exists(woken):
    """The race: the message was parked while its conversation was being created, so create missed it."""
    parked = ParkedMessageFactory()
    ConversationFactory(id=parked.conversation_id)

    result = sweep(woken)

    assert result.attached == 1
    message = Message.objects.get(id=parked.id)
    assert (message.conversation_id, message.pending, message.received_at) == (
        parked.conversation_id,
        True,
        parked.received_at,
    )
    assert ParkedMessage.objects.get(id=parked.id).state == ParkedMessage.State.ATTACHED


def test_sweep_does_not_attach_to_a_conversation_created_after_the_ttl(settings, woken):
    parked = ParkedMessageFactory()
    age_rows(ParkedMessage, [parked.id], settings.ORPHAN_TTL_SECONDS + 2)
    ConversationFactory(id=parked.conversation_id)

    result = sweep(woken)

    assert (result.attached, result.expired) == (0, 1)
    assert not Message.objects.filter(id=parked.id).exists()
    assert ParkedMessage.objects.get(id=parked.id).state == ParkedMessage.State.EXPIRED


def test_sweep_expires_parked_messages_past_the_ttl_and_grace(settings, woken):
    stale, fresh = ParkedMessageFactory(), ParkedMessageFactory()
    age_rows(ParkedMessage, [stale.id], settings.ORPHAN_TTL_SECONDS + 1.5)

    assert sweep(woken).expired == 1

    states = dict(ParkedMessage.objects.values_list("id", "state"))
    assert states == {stale.id: ParkedMessage.State.EXPIRED, fresh.id: ParkedMessage.State.PARKED}


def test_sweep_records_its_heartbeat(woken):
    sweep(woken)
    first = SweepHeartbeat.objects.get().last_sweep_at
    sweep(woken)

    assert SweepHeartbeat.objects.get().last_sweep_at > first


def test_purge_deletes_old_resolved_parked_messages_only(settings):
    old_expired = ParkedMessageFactory(state=ParkedMessage.State.EXPIRED, resolved_at=EXAMPLE_TIME)
    old_attached = ParkedMessageFactory(state=ParkedMessage.State.ATTACHED, resolved_at=EXAMPLE_TIME)
    recent = ParkedMessageFactory(state=ParkedMessage.State.EXPIRED)
    ParkedMessage.objects.filter(id=recent.id).update(resolved_at=recent.received_at)
    parked = ParkedMessageFactory()

    assert parked_messages_purge() == 2

    assert set(ParkedMessage.objects.values_list("id", flat=True)) == {recent.id, parked.id}
    assert not ParkedMessage.objects.filter(id__in=[old_expired.id, old_attached.id]).exists()
