"""The parameters of the group rule, read from the settings, and a conversation's own (NEW_CONVERSATION's
reply_rules) over them. scheduler.grouping applies the rule; chat needs only the earliest moment it can make a
conversation's newest messages due, to store it when they arrive."""

from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings


@dataclass(frozen=True)
class GroupRules:
    """When a group of pending messages ends: after `window` of quiet, at `max_messages`, or once its first
    message has waited `max_wait`."""

    window: timedelta
    max_wait: timedelta
    max_messages: int

    @property
    def first_due_after(self) -> timedelta:
        """No group falls due on time alone before its first message is this old: the lower bound a conversation's
        reply_due_at takes when a group starts (scheduler.grouping.open_group_due of a one-message group).
        chat.queries says it in SQL (OWN_FIRST_DUE_AFTER); tests hold the two equal."""
        return min(self.window, self.max_wait)

    def overridden(
        self, window_seconds: float | None, max_wait_seconds: float | None, max_messages: int | None
    ) -> "GroupRules":
        """These rules with a conversation's own values where it has them (None: the service's)."""
        if window_seconds is None and max_wait_seconds is None and max_messages is None:
            return self
        return replace(
            self,
            window=self.window if window_seconds is None else timedelta(seconds=window_seconds),
            max_wait=self.max_wait if max_wait_seconds is None else timedelta(seconds=max_wait_seconds),
            max_messages=self.max_messages if max_messages is None else max_messages,
        )


def group_rules() -> GroupRules:
    return GroupRules(
        window=timedelta(seconds=settings.GROUP_WINDOW_SECONDS),
        max_wait=timedelta(seconds=settings.MAX_GROUP_WAIT_SECONDS),
        max_messages=settings.MAX_GROUP_MESSAGES,
    )
