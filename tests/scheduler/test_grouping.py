"""The grouping rule alone (scheduler.grouping), no database: properties that hold for any arrivals and rules."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chat.reply_timing import GroupRules
from scheduler.grouping import group_due_at, message_groups_split, open_group_due, open_group_reason

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Arrival:
    id: uuid.UUID
    timestamp: datetime
    received_at: datetime
    handoff: bool = False


rules_strategy = st.builds(
    GroupRules,
    window=st.integers(1, 10).map(lambda s: timedelta(seconds=s)),
    max_wait=st.integers(1, 30).map(lambda s: timedelta(seconds=s)),
    max_messages=st.integers(1, 6),
)
# Gaps between arrivals in tenths of a second, and which messages ask for a person.
arrivals_strategy = st.lists(st.tuples(st.integers(0, 150), st.booleans()), min_size=1, max_size=25).map(
    lambda steps: arrivals(steps)
)


def arrivals(steps: list[tuple[int, bool]]) -> list[Arrival]:
    at, messages = START, []
    for tenths, handoff in steps:
        at += timedelta(seconds=tenths / 10)
        messages.append(Arrival(uuid.uuid4(), at, at, handoff and tenths % 7 == 0))
    return messages


@given(arrivals_strategy, rules_strategy)
def test_every_message_is_in_exactly_one_group_in_arrival_order(messages, rules):
    groups = message_groups_split(messages, rules)

    assert [m for group, _ in groups for m in group] == messages
    assert [reason is None for _, reason in groups] == [False] * (len(groups) - 1) + [True]


@given(arrivals_strategy, rules_strategy)
def test_no_group_breaks_its_rules(messages, rules):
    for group, _ in message_groups_split(messages, rules):
        assert len(group) <= rules.max_messages
        assert group[-1].received_at - group[0].received_at <= rules.max_wait
        gaps = [b.received_at - a.received_at for a, b in zip(group, group[1:], strict=False)]
        assert all(gap <= rules.window for gap in gaps)
        assert not any(m.handoff for m in group[:-1])  # a handoff ends its group


@given(arrivals_strategy, rules_strategy)
def test_an_ended_group_fell_due_no_later_than_the_arrival_that_ended_it(messages, rules):
    groups = message_groups_split(messages, rules)

    for (group, reason), (following, _) in zip(groups, groups[1:], strict=False):
        assert group[-1].received_at <= group_due_at(group, reason, None, rules) <= following[0].received_at


@given(arrivals_strategy, rules_strategy, st.one_of(st.none(), st.integers(-50, 400)))
def test_an_open_group_is_due_from_its_earliest_reason_and_not_a_moment_before(messages, rules, close_tenths):
    """Whichever comes first, the close included (from before the group's first message to well after its last),
    makes the group due, and names the reason; a microsecond earlier it waits, unless it was due on arrival."""
    group, _ = message_groups_split(messages, rules)[-1]
    closed_at = None if close_tenths is None else group[0].received_at + timedelta(seconds=close_tenths / 10)

    due, reason = open_group_due(group, closed_at, rules)

    assert open_group_reason(group, due, closed_at, rules) == reason
    assert group_due_at(group, reason, closed_at, rules) == due
    assert due >= group[-1].received_at
    before = due - timedelta(microseconds=1)
    assert open_group_reason(group, before, closed_at, rules) is None or due == group[-1].received_at


def test_a_close_before_the_quiet_came_is_the_reason_however_late_the_batch_runs():
    rules = GroupRules(window=timedelta(seconds=5), max_wait=timedelta(seconds=60), max_messages=10)
    group = arrivals([(0, False), (10, False)])  # the second message 1 s after the first
    closed_at = group[-1].received_at + timedelta(seconds=4)

    much_later = group[-1].received_at + timedelta(seconds=30)

    assert open_group_reason(group, much_later, closed_at, rules) == "closed"
    assert open_group_due(group, closed_at, rules) == (closed_at, "closed")
    assert open_group_reason(group, much_later, closed_at + timedelta(seconds=2), rules) == "quiet"
