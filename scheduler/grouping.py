"""The one rule that decides replies: how pending messages split into groups, when a group is due, what its
reply says. A conversation's reply_due_at only says when to look again (a lower bound: chat stores it as messages
arrive, a batch from open_group_due_at); every decision is made here, in Python."""

import uuid
from datetime import datetime
from typing import Protocol

from chat.models import Message, message_order_key
from chat.reply_timing import GroupRules

REPLY_HEADER = "Mensagens recebidas:\n"


class Arrival(Protocol):
    """What the rule reads of a message: a Message, or a row of values_list(..., named=True)."""

    id: uuid.UUID
    timestamp: datetime
    received_at: datetime
    # It asked for a person (HANDOFF_KEYWORDS): its group ends with it and is answered at once.
    handoff: bool


def message_groups_split(messages: list[Arrival], rules: GroupRules) -> list[tuple[list[Arrival], str | None]]:
    """Split messages (in arrival order) into groups, each with why it ended: a handoff message, a gap of more than
    the window (quiet), a group full at max_messages, or a message arriving more than max_wait after the group's
    first. The last group is still open: its reason is None."""
    groups: list[list[Arrival]] = []
    ended: list[str] = []
    for message in messages:
        if groups:
            group = groups[-1]
            if group[-1].handoff:
                ended.append(Message.SendReason.HANDOFF)
            elif message.received_at - group[-1].received_at > rules.window:
                ended.append(Message.SendReason.QUIET)
            elif len(group) >= rules.max_messages:
                ended.append(Message.SendReason.MAX_MESSAGES)
            elif message.received_at - group[0].received_at > rules.max_wait:
                ended.append(Message.SendReason.MAX_WAIT)
            else:
                group.append(message)
                continue
        groups.append([message])
    return list(zip(groups, [*ended, None], strict=True)) if groups else []


def open_group_reason(group: list[Arrival], now: datetime, closed: bool, rules: GroupRules) -> str | None:
    """Why the newest group is answered now, or None when it must wait: it asked for a person, full, quiet for the
    window, its first message waited max_wait, or its conversation closed."""
    if group[-1].handoff:
        return Message.SendReason.HANDOFF
    if len(group) >= rules.max_messages:
        return Message.SendReason.MAX_MESSAGES
    if now - group[-1].received_at >= rules.window:
        return Message.SendReason.QUIET
    if now - group[0].received_at >= rules.max_wait:
        return Message.SendReason.MAX_WAIT
    if closed:
        return Message.SendReason.CLOSED
    return None


def open_group_due_at(group: list[Arrival], closed: bool, rules: GroupRules) -> datetime:
    """When open_group_reason stops being None: derived from it, so the wake-up and the decision cannot disagree.
    The reason can only change at the group's last arrival, at the end of its window or at its max_wait."""
    instants = sorted(
        [group[-1].received_at, group[-1].received_at + rules.window, group[0].received_at + rules.max_wait]
    )
    return next(instant for instant in instants if open_group_reason(group, instant, closed, rules) is not None)


def group_due_at(
    group: list[Arrival], reason: str, rules: GroupRules, answered_at: datetime, closed_at: datetime | None = None
) -> datetime:
    """When an answered group fell due by the reason its reply carries, for the message's timeline: the message
    that asked for a person or filled it, the end of its window of quiet, its first message's max_wait; for a
    conversation that closed, the close (`closed_at`), or the group's last arrival when that came later (a parked
    message attached after the close). Never after `answered_at`."""
    due = {
        Message.SendReason.HANDOFF: group[-1].received_at,
        Message.SendReason.MAX_MESSAGES: group[-1].received_at,
        Message.SendReason.QUIET: group[-1].received_at + rules.window,
        Message.SendReason.MAX_WAIT: group[0].received_at + rules.max_wait,
        Message.SendReason.CLOSED: max(closed_at or answered_at, group[-1].received_at),
    }[reason]
    return min(due, answered_at)


def reply_content(group: list[Arrival]) -> str:
    """The header, then one id per line in timestamp-then-arrival order, and a trailing newline."""
    ordered = sorted(group, key=message_order_key)
    return REPLY_HEADER + "".join(f"{message.id}\n" for message in ordered)
