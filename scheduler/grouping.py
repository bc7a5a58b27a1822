"""The one rule that decides replies: how pending messages split into groups, when a group is due, what its
reply says. A conversation's reply_due_at only says when to look again (a lower bound: chat stores it as messages
arrive, a batch from open_group_due); every decision is made here, in Python."""

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


def reason_moments(group: list[Arrival], closed_at: datetime | None, rules: GroupRules) -> dict[str, datetime]:
    """When each reason that applies would make `group` due: the message that asked for a person or filled it (its
    arrival), the window of quiet after its last message, its first message's max_wait, its conversation's close
    (`closed_at`; a message attached after the close, at its arrival). In the order that breaks ties."""
    last = group[-1].received_at
    moments = {}
    if group[-1].handoff:
        moments[Message.SendReason.HANDOFF] = last
    if len(group) >= rules.max_messages:
        moments[Message.SendReason.MAX_MESSAGES] = last
    moments[Message.SendReason.QUIET] = last + rules.window
    moments[Message.SendReason.MAX_WAIT] = group[0].received_at + rules.max_wait
    if closed_at is not None:
        moments[Message.SendReason.CLOSED] = max(closed_at, last)
    return moments


def open_group_due(group: list[Arrival], closed_at: datetime | None, rules: GroupRules) -> tuple[datetime, str]:
    """When the newest group falls due, and why: the reason whose moment comes first (None for `closed_at`: its
    conversation is open). A reply batch decides by it, and sets the conversation's next moment from it, so the
    wake-up and the decision cannot disagree."""
    reason, due = min(reason_moments(group, closed_at, rules).items(), key=lambda item: item[1])
    return due, reason


def open_group_reason(group: list[Arrival], now: datetime, closed_at: datetime | None, rules: GroupRules) -> str | None:
    """Why the newest group is answered at `now`, or None when it must wait."""
    due, reason = open_group_due(group, closed_at, rules)
    return reason if due <= now else None


def group_due_at(group: list[Arrival], reason: str, closed_at: datetime | None, rules: GroupRules) -> datetime:
    """When an answered group fell due by the reason its reply carries, for the message's timeline."""
    return reason_moments(group, closed_at, rules)[reason]


def reply_content(group: list[Arrival]) -> str:
    """The header, then one id per line in timestamp-then-arrival order, and a trailing newline."""
    ordered = sorted(group, key=message_order_key)
    return REPLY_HEADER + "".join(f"{message.id}\n" for message in ordered)
