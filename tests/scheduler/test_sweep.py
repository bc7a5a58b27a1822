"""The sweep: attach, expire, wake the reply engine, heartbeat (real PostgreSQL; wake-ups collected in a list)."""

import pytest

from chat.models import Message, ParkedMessage
from chat.parking import parked_messages_purge
from chat.services import conversation_close
from scheduler.models import SweepHeartbeat
from scheduler.services import WAKE_MARGIN, WAKE_STEP, sweep_run
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory, ParkedMessageFactory
from tests.helpers import Woken, age_rows

pytestmark = pytest.mark.django_db

STEP = WAKE_STEP


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

    assert woken == [0]


def test_a_group_falling_due_before_the_next_sweep_wakes_a_job_at_its_moment_rounded_up_to_a_step(settings, woken):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - 0.55)

    sweep(woken)

    [countdown] = woken
    assert 0.55 - 0.1 < countdown <= 0.55 + STEP + WAKE_MARGIN
    assert round((countdown - WAKE_MARGIN) / STEP, 6).is_integer()


def test_a_group_due_after_the_next_sweep_is_left_to_it(settings, woken):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - settings.SWEEP_INTERVAL_SECONDS - 0.5)

    sweep(woken)

    assert woken == []


def test_groups_falling_due_within_one_step_share_a_job_and_the_others_get_one_each(settings, woken, monkeypatch):
    monkeypatch.setattr("scheduler.services.WAKE_STEP", 1.0)  # steps wide enough for this test's own time
    settings.SWEEP_INTERVAL_SECONDS = 5
    for before_due in (1.4, 1.45, 1.5, 3.5):
        message = MessageFactory()
        age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - before_due)

    sweep(woken)

    assert woken == [2.0 + WAKE_MARGIN, 4.0 + WAKE_MARGIN]


def test_a_lost_job_costs_nothing_the_next_sweep_wakes_one_again(settings, woken):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    sweep(woken)
    sweep(woken)

    assert woken == [0, 0]


def test_a_wake_up_that_cannot_be_enqueued_is_not_counted(settings):
    """Redis away: nothing is lost, the conversation stays due and the next sweep asks again."""

    def unreachable(countdown: float) -> None:
        raise ConnectionError("redis is away")

    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    assert sweep_run(wake=unreachable).wakes == []


def test_nothing_pending_wakes_nothing(woken):
    MessageFactory(pending=False)

    assert sweep(woken).wakes == []
    assert woken == []


def test_a_closed_conversation_with_a_fresh_group_wakes_a_job_now(woken):
    message = MessageFactory()
    conversation_close(conversation_id=message.conversation_id, event_at=EXAMPLE_TIME)

    sweep(woken)

    assert woken == [0]


def test_a_full_group_wakes_a_job_now(settings, woken):
    settings.MAX_GROUP_MESSAGES = 3
    MessageFactory.create_batch(3, conversation=ConversationFactory())

    sweep(woken)

    assert woken == [0]


def test_an_idle_sweep_is_four_statements(woken, django_assert_num_queries):
    """Anything parked? The interval in force, what falls due before the next sweep, the heartbeat."""
    sweep(woken)  # the heartbeat row exists from now on
    with django_assert_num_queries(4):
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
