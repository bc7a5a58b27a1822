"""OpenAPI documentation of the chat endpoints (drf-spectacular): event shapes, examples, error codes."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer

from api.errors import ERROR_CODES
from api.serializers import (
    AgentMessageEventSerializer,
    CloseConversationEventSerializer,
    ConversationDetailSerializer,
    ErrorSerializer,
    MessageReceiptSerializer,
    NewConversationEventSerializer,
    NewMessageEventSerializer,
    PauseBotEventSerializer,
    ResumeBotEventSerializer,
)

ERROR_CODES_MARKDOWN = "\n".join(f"- `{code}`: {meaning}" for code, meaning in ERROR_CODES.items())

WEBHOOK_DESCRIPTION = f"""Receives one event from the WhatsApp customer-service system.

- `NEW_CONVERSATION` → **201** with the conversation (and any messages that arrived before it, within 6 s).
- `NEW_MESSAGE` → **202** (`outcome`: `stored`, or `parked` when the conversation is not known yet);
  **200** (`duplicate`) for an exact redelivery. The reply comes later, as an OUTBOUND message, once the
  user has been quiet for 5 s.
- `CLOSE_CONVERSATION` → **200** with the closed conversation.
- `AGENT_MESSAGE` → **202** like NEW_MESSAGE: a person wrote to the user. Stored as an OUTBOUND with `author`
  `agent`; the bot pauses for BOT_PAUSE_SECONDS (30 min) after it, and the messages waiting for a reply are
  the person's (never answered by the service).
- `PAUSE_BOT` → **200** with the conversation: a person has it for `data.seconds` (BOT_PAUSE_SECONDS when left
  out) from now, without a message. `RESUME_BOT` → **200**: the bot answers again from now.
- `NEW_CONVERSATION` may carry `data.reply_rules` (`window_seconds` 1-60, `max_wait_seconds` 1-3600,
  `max_messages` 1-1000), that conversation's own rules.
- A NEW_MESSAGE with one of `HANDOFF_KEYWORDS` (whole words, any case and accents) has its group answered at the
  next sweep (`send_reason` `handoff`), and the bot then pauses as after an agent's message.

With `WEBHOOK_SECRET` set (one or more secrets), a request is signed by one of them, either the Standard Webhooks
way (`webhook-id`, `webhook-timestamp` within WEBHOOK_TOLERANCE_SECONDS of the server's clock,
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`) or with
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
Every error body is `{{"code", "detail", "errors"?}}`; the codes are:

{ERROR_CODES_MARKDOWN}
"""

WEBHOOK_EVENT = PolymorphicProxySerializer(
    component_name="WebhookEvent",
    serializers={
        "NEW_CONVERSATION": NewConversationEventSerializer,
        "NEW_MESSAGE": NewMessageEventSerializer,
        "CLOSE_CONVERSATION": CloseConversationEventSerializer,
        "AGENT_MESSAGE": AgentMessageEventSerializer,
        "PAUSE_BOT": PauseBotEventSerializer,
        "RESUME_BOT": ResumeBotEventSerializer,
    },
    resource_type_field_name="type",
)

WEBHOOK_EXAMPLES = [
    OpenApiExample(
        "NEW_CONVERSATION",
        value={
            "type": "NEW_CONVERSATION",
            "timestamp": "2025-06-04T14:20:00Z",
            "data": {"id": "6a41b347-8d80-4ce9-84ba-7af66f369f6a"},
        },
        request_only=True,
    ),
    OpenApiExample(
        "NEW_MESSAGE",
        value={
            "type": "NEW_MESSAGE",
            "timestamp": "2025-06-04T14:20:05Z",
            "data": {
                "id": "49108c71-4dca-4af3-9f32-61bc745926e2",
                "content": "Olá, quero informações sobre alugar um apartamento.",
                "conversation_id": "6a41b347-8d80-4ce9-84ba-7af66f369f6a",
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "CLOSE_CONVERSATION",
        value={
            "type": "CLOSE_CONVERSATION",
            "timestamp": "2025-06-04T14:25:00Z",
            "data": {"id": "6a41b347-8d80-4ce9-84ba-7af66f369f6a"},
        },
        request_only=True,
    ),
    OpenApiExample(
        "NEW_CONVERSATION with its own reply rules",
        value={
            "type": "NEW_CONVERSATION",
            "timestamp": "2025-06-04T14:20:00Z",
            "data": {"id": "6a41b347-8d80-4ce9-84ba-7af66f369f6a", "reply_rules": {"window_seconds": 2}},
        },
        request_only=True,
    ),
    OpenApiExample(
        "AGENT_MESSAGE",
        value={
            "type": "AGENT_MESSAGE",
            "timestamp": "2025-06-04T14:21:00Z",
            "data": {
                "id": "9b1c7d2e-0f4a-4b5c-8d6e-7f8091a2b3c4",
                "content": "Oi! Sou a Ana, vou te ajudar com o apartamento.",
                "conversation_id": "6a41b347-8d80-4ce9-84ba-7af66f369f6a",
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "PAUSE_BOT",
        value={
            "type": "PAUSE_BOT",
            "timestamp": "2025-06-04T14:21:00Z",
            "data": {"id": "6a41b347-8d80-4ce9-84ba-7af66f369f6a", "seconds": 600},
        },
        request_only=True,
    ),
    OpenApiExample(
        "RESUME_BOT",
        value={
            "type": "RESUME_BOT",
            "timestamp": "2025-06-04T14:40:00Z",
            "data": {"id": "6a41b347-8d80-4ce9-84ba-7af66f369f6a"},
        },
        request_only=True,
    ),
]

_error = OpenApiResponse(ErrorSerializer, description="See the error codes in the description.")

WEBHOOK_SCHEMA = {
    "summary": "Receive a webhook event",
    "description": WEBHOOK_DESCRIPTION,
    "request": {"application/json": WEBHOOK_EVENT},
    "examples": WEBHOOK_EXAMPLES,
    "parameters": [
        OpenApiParameter(
            "X-Hub-Signature-256",
            location=OpenApiParameter.HEADER,
            required=False,
            description="sha256=<hex HMAC-SHA256 of the raw body>, when WEBHOOK_SECRET is set and the request is "
            "not signed the Standard Webhooks way.",
        ),
        OpenApiParameter(
            "webhook-id", location=OpenApiParameter.HEADER, required=False, description="Standard Webhooks: the id."
        ),
        OpenApiParameter(
            "webhook-timestamp",
            location=OpenApiParameter.HEADER,
            required=False,
            description="Standard Webhooks: Unix seconds, within WEBHOOK_TOLERANCE_SECONDS (300) of the server's "
            "clock.",
        ),
        OpenApiParameter(
            "webhook-signature",
            location=OpenApiParameter.HEADER,
            required=False,
            description='Standard Webhooks: v1,<base64 HMAC-SHA256 of "id.timestamp.body">, several separated by '
            "spaces.",
        ),
    ],
    "responses": {
        201: OpenApiResponse(ConversationDetailSerializer, description="NEW_CONVERSATION: created."),
        202: OpenApiResponse(MessageReceiptSerializer, description="NEW_MESSAGE, AGENT_MESSAGE: stored or parked."),
        200: OpenApiResponse(
            PolymorphicProxySerializer(
                component_name="WebhookOk",
                serializers=[ConversationDetailSerializer, MessageReceiptSerializer],
                resource_type_field_name=None,
            ),
            description="CLOSE_CONVERSATION, PAUSE_BOT, RESUME_BOT: the conversation; or NEW_MESSAGE, AGENT_MESSAGE: "
            "an exact redelivery (outcome duplicate).",
        ),
        400: _error,
        401: _error,
        413: _error,
        503: _error,
    },
}

NOT_FOUND = OpenApiResponse(ErrorSerializer, description="`not_found`: unknown conversation or a non-UUID id.")
