"""The sweep: attach, expire, lease-and-dispatch, heartbeat (real PostgreSQL; dispatch collected in a list)."""

import threading
import uuid

import pytest
from django.db.models import F

from chat.db import ClockTimestamp
from chat.models import Conversation, Message, PendingMessage
from chat.parking import parked_messages_purge
from scheduler.models import SweepHeartbeat
from scheduler.services import DueGroup, reply_group_process, reply_groups_dispatch, sweep_run
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory, PendingMessageFactory
from tests.helpers import age_rows, run_in_parallel

pytestmark = pytest.mark.django_db


class Dispatched(list):
    def __call__(self, group: DueGroup) -> None:
        self.append(group)

    @property
    def conversation_ids(self) -> set[uuid.UUID]:
        return {group.conversation_id for group in self}


@pytest.fixture
def dispatched() -> Dispatched:
    return Dispatched()


def sweep(dispatched: Dispatched):
    # on_commit callbacks run at once inside the test transaction only when captured; run the sweep for real.
    return sweep_run(dispatch=dispatched, dispatch_delivery=lambda job: None)


def test_due_group_is_dispatched_once_while_its_lease_holds(settings, dispatched, django_capture_on_commit_callbacks):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    with django_capture_on_commit_callbacks(execute=True):
        first = sweep(dispatched)
    with django_capture_on_commit_callbacks(execute=True):
        second = sweep(dispatched)

    assert (first.dispatched, second.dispatched) == (1, 0)
    assert [(group.conversation_id, group.due_in) for group in dispatched] == [(message.conversation_id, 0.0)]


def lease_left(conversation_id) -> float:
    """Seconds until the conversation's reply lease runs out, on the database clock."""
    left = F("reply_lease_until") - ClockTimestamp()
    return Conversation.objects.filter(id=conversation_id).values_list(left, flat=True).get().total_seconds()


def lapsed_lease(message, dispatched, capture) -> float:
    """A sweep dispatches `message`'s due group, then the lease lapses with the job still somewhere; returns the
    seconds the lease was given."""
    with capture(execute=True):
        sweep(dispatched)
    given = lease_left(message.conversation_id)
    Conversation.objects.filter(id=message.conversation_id).update(reply_lease_until=EXAMPLE_TIME)
    return given


def test_group_is_dispatched_again_when_its_lease_ran_out(settings, dispatched, django_capture_on_commit_callbacks):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    lapsed_lease(message, dispatched, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        sweep(dispatched)

    assert len(dispatched) == 2


def test_each_lease_that_lapses_before_its_job_ran_doubles_and_a_job_resets_it(
    settings, dispatched, django_capture_on_commit_callbacks
):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    leases = [lapsed_lease(message, dispatched, django_capture_on_commit_callbacks) for _ in range(3)]
    first = settings.REPLY_LEASE_SECONDS + 2 * settings.SWEEP_INTERVAL_SECONDS  # the lease and the lookahead

    assert [round(lease) for lease in leases] == [round(first), round(2 * first), round(4 * first)]

    reply_group_process(conversation_id=message.conversation_id)
    MessageFactory(conversation=message.conversation)
    age_rows(
        Message, Message.objects.filter(pending=True).values_list("id", flat=True), settings.GROUP_WINDOW_SECONDS + 1
    )
    with django_capture_on_commit_callbacks(execute=True):
        sweep(dispatched)
    assert round(lease_left(message.conversation_id)) == round(first)


def test_group_due_before_the_next_sweep_is_dispatched_with_a_countdown(
    settings, dispatched, django_capture_on_commit_callbacks
):
    settings.SWEEP_INTERVAL_SECONDS = 1.0
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - 0.4)

    with django_capture_on_commit_callbacks(execute=True):
        sweep(dispatched)

    [group] = dispatched
    assert 0.2 < group.due_in <= 0.4


def test_group_not_due_before_the_next_sweep_is_left_alone(settings, dispatched, django_capture_on_commit_callbacks):
    settings.SWEEP_INTERVAL_SECONDS = 1.0
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS - 2.5)  # due in 2.5 s: beyond two sweeps

    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(dispatched).dispatched == 0
    assert dispatched == []


def test_closed_conversation_with_pending_group_is_dispatched_at_once(dispatched, django_capture_on_commit_callbacks):
    message = MessageFactory()
    Conversation.objects.filter(id=message.conversation_id).update(
        status=Conversation.Status.CLOSED, closed_at=EXAMPLE_TIME
    )

    with django_capture_on_commit_callbacks(execute=True):
        sweep(dispatched)

    assert [(group.conversation_id, group.due_in) for group in dispatched] == [(message.conversation_id, 0.0)]


def test_answered_messages_are_not_dispatched(settings, dispatched, django_capture_on_commit_callbacks):
    message = MessageFactory(pending=False)
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 5)

    with django_capture_on_commit_callbacks(execute=True):
        sweep(dispatched)

    assert dispatched == []


def test_sweep_attaches_a_parked_message_whose_conversation_now_exists(dispatched):
    """The race: the message was parked while its conversation was being created, so create missed it."""
    parked = PendingMessageFactory()
    ConversationFactory(id=parked.conversation_id)

    result = sweep(dispatched)

    assert result.attached == 1
    message = Message.objects.get(id=parked.id)
    assert (message.conversation_id, message.pending, message.received_at) == (
        parked.conversation_id,
        True,
        parked.received_at,
    )
    assert PendingMessage.objects.get(id=parked.id).state == PendingMessage.State.ATTACHED


def test_sweep_does_not_attach_to_a_conversation_created_after_the_ttl(settings, dispatched):
    parked = PendingMessageFactory()
    age_rows(PendingMessage, [parked.id], settings.ORPHAN_TTL_SECONDS + 2)
    ConversationFactory(id=parked.conversation_id)

    result = sweep(dispatched)

    assert (result.attached, result.expired) == (0, 1)
    assert not Message.objects.filter(id=parked.id).exists()
    assert PendingMessage.objects.get(id=parked.id).state == PendingMessage.State.EXPIRED


def test_sweep_expires_parked_messages_past_the_ttl_and_grace(settings, dispatched):
    stale, fresh = PendingMessageFactory(), PendingMessageFactory()
    age_rows(PendingMessage, [stale.id], settings.ORPHAN_TTL_SECONDS + 1.5)

    assert sweep(dispatched).expired == 1

    states = dict(PendingMessage.objects.values_list("id", "state"))
    assert states == {stale.id: PendingMessage.State.EXPIRED, fresh.id: PendingMessage.State.PARKED}


def test_sweep_records_its_heartbeat(dispatched):
    sweep(dispatched)
    first = SweepHeartbeat.objects.get().last_sweep_at
    sweep(dispatched)

    assert SweepHeartbeat.objects.get().last_sweep_at > first


def test_purge_deletes_old_resolved_parked_messages_only(settings):
    old_expired = PendingMessageFactory(state=PendingMessage.State.EXPIRED, resolved_at=EXAMPLE_TIME)
    old_attached = PendingMessageFactory(state=PendingMessage.State.ATTACHED, resolved_at=EXAMPLE_TIME)
    recent = PendingMessageFactory(state=PendingMessage.State.EXPIRED)
    PendingMessage.objects.filter(id=recent.id).update(resolved_at=recent.received_at)
    parked = PendingMessageFactory()

    assert parked_messages_purge() == 2

    assert set(PendingMessage.objects.values_list("id", flat=True)) == {recent.id, parked.id}
    assert not PendingMessage.objects.filter(id__in=[old_expired.id, old_attached.id]).exists()


@pytest.mark.django_db(transaction=True)
def test_parallel_sweeps_dispatch_each_group_once(settings):
    conversations = ConversationFactory.create_batch(30)
    messages = [MessageFactory(conversation=c) for c in conversations]
    age_rows(Message, [m.id for m in messages], settings.GROUP_WINDOW_SECONDS + 0.1)
    dispatched = Dispatched()
    lock = threading.Lock()

    def collect(group):
        with lock:
            dispatched.append(group)

    run_in_parallel(lambda: reply_groups_dispatch(dispatch=collect), 4)

    assert sorted(g.conversation_id for g in dispatched) == sorted(c.id for c in conversations)


def test_a_full_group_is_dispatched_at_once_and_a_long_waiting_one_when_due(
    settings, dispatched, django_capture_on_commit_callbacks
):
    settings.MAX_GROUP_MESSAGES = 3
    settings.MAX_GROUP_WAIT_SECONDS = 10
    full, growing, fresh = ConversationFactory.create_batch(3)
    MessageFactory.create_batch(3, conversation=full)
    old = MessageFactory(conversation=growing)
    MessageFactory(conversation=growing)
    age_rows(Message, [old.id], 10.1)
    MessageFactory(conversation=fresh)

    with django_capture_on_commit_callbacks(execute=True):
        sweep(dispatched)

    assert dispatched.conversation_ids == {full.id, growing.id}
    assert {group.due_in for group in dispatched} == {0.0}


def test_a_lapsed_lease_waits_while_reply_jobs_are_queued(settings, dispatched, django_capture_on_commit_callbacks):
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    lapsed_lease(message, dispatched, django_capture_on_commit_callbacks)
    fresh = MessageFactory()
    age_rows(Message, [fresh.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    with django_capture_on_commit_callbacks(execute=True):
        sweep_run(dispatch=dispatched, dispatch_delivery=lambda job: None, reply_backlog=lambda: 3)

    # The new group goes out; the lapsed one's job is presumably among the three queued.
    assert [group.conversation_id for group in dispatched] == [message.conversation_id, fresh.conversation_id]
    with django_capture_on_commit_callbacks(execute=True):
        sweep_run(dispatch=dispatched, dispatch_delivery=lambda job: None, reply_backlog=lambda: 0)
    assert dispatched[-1].conversation_id == message.conversation_id
