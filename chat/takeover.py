"""A person takes a conversation over: the bot goes quiet while a human answers.

The pause is one column, Conversation.bot_paused_until, so it lives in PostgreSQL: restarts, a lost Redis and any
number of workers change nothing, and it ends by time alone. Its rules, in one place:
- An AGENT_MESSAGE (chat.services.agent_message_receive) or PAUSE_BOT begins or extends a pause, and hands the
  messages waiting for a reply to the person (Message.taken_over): that group is never answered.
- A NEW_MESSAGE that arrives while a pause is in force is stored taken over (chat.queries.message_insert_if_open):
  nothing the engine reads, so the reply engine needs no notion of a pause.
- A NEW_MESSAGE with a handoff word (chat.handoff) makes its group due at once (send_reason `handoff`) and pauses
  the bot from its arrival; only what arrives after it is taken over.
- RESUME_BOT, or the time passing, ends it; messages taken over stay with the person.

Races are settled by the conversation's row lock, which the webhook's writes and the reply batches all take: an
agent's message and a batch that answers the same group take turns, so the group is answered by the bot (the
batch locked first, and its reply is stored before the agent's message) or taken over (the agent's message locked
first, and the batch finds nothing waiting), never both, never twice.
"""

import logging
import uuid
from datetime import datetime
from typing import NoReturn

from django.conf import settings
from django.db import transaction

from chat import queries
from chat.models import Conversation
from chat.selectors import ConversationDetail, conversation_detail
from core import metrics
from core.errors import ApplicationError

logger = logging.getLogger(__name__)


class TakeoverSource:
    """What began a pause, for the takeovers metric."""

    AGENT_MESSAGE = "agent_message"
    PAUSE_BOT = "pause_bot"
    HANDOFF = "handoff"


def bot_pause(
    *, conversation_id: uuid.UUID, seconds: float, since: datetime | None, extend: bool, source: str
) -> Conversation | None:
    """Pause the bot of an OPEN conversation (None when it is not one) and hand its waiting messages to the person,
    in one transaction. Counts a takeover when no pause was in force."""
    with transaction.atomic():
        conversation = queries.conversation_pause_set(
            conversation_id=conversation_id, seconds=seconds, since=since, extend=extend
        )
        if conversation is None:
            return None
        taken = queries.messages_take_over([conversation_id])
        if conversation.paused_before is None or conversation.paused_before <= conversation.updated_at:
            transaction.on_commit(lambda: metrics.TAKEOVERS.labels(source).inc())
    logger.info(
        "bot paused",
        extra={
            "conversation_id": str(conversation_id),
            "until": conversation.bot_paused_until.isoformat(),
            "taken_over": taken,
            "source": source,
        },
    )
    return conversation


def conversation_pause(*, conversation_id: uuid.UUID, seconds: float | None, event_at: datetime) -> ConversationDetail:
    """PAUSE_BOT: a person has the conversation for `seconds` from now (BOT_PAUSE_SECONDS when None), without a
    message; a pause already in force is replaced, so it may also shorten one. The event's time is not stored (the
    pause counts on the database clock). Raises ApplicationError when the conversation does not exist or is
    CLOSED."""
    conversation = bot_pause(
        conversation_id=conversation_id,
        seconds=settings.BOT_PAUSE_SECONDS if seconds is None else seconds,
        since=None,
        extend=False,
        source=TakeoverSource.PAUSE_BOT,
    )
    if conversation is None:
        _raise_not_open(conversation_id)
    return conversation_detail(conversation)


def conversation_resume(*, conversation_id: uuid.UUID, event_at: datetime) -> ConversationDetail:
    """RESUME_BOT: the bot answers again from now; a conversation not paused is left as it is. The event's time is
    not stored. Raises ApplicationError when the conversation does not exist or is CLOSED."""
    conversation = queries.conversation_pause_end(conversation_id)
    if conversation is None:
        _raise_not_open(conversation_id)
    logger.info("bot resumed", extra={"conversation_id": str(conversation_id)})
    return conversation_detail(conversation)


def _raise_not_open(conversation_id: uuid.UUID) -> NoReturn:
    if Conversation.objects.filter(id=conversation_id).exists():
        raise ApplicationError("conversation_closed", f"Conversation {conversation_id} is closed.")
    raise ApplicationError("conversation_not_found", f"Conversation {conversation_id} does not exist.")
