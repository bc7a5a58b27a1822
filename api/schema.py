"""OpenAPI documentation of the chat endpoints (drf-spectacular): event shapes, examples, error codes."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer

from api.errors import ERROR_CODES
from api.serializers import (
    CloseConversationEventSerializer,
    ConversationDetailSerializer,
    ErrorSerializer,
    MessageReceiptSerializer,
    NewConversationEventSerializer,
    NewMessageEventSerializer,
)

ERROR_CODES_MARKDOWN = "\n".join(f"- `{code}`: {meaning}" for code, meaning in ERROR_CODES.items())

WEBHOOK_DESCRIPTION = f"""Receives one event from the WhatsApp customer-service system.

- `NEW_CONVERSATION` → **201** with the conversation (and any messages that arrived before it, within 6 s).
- `NEW_MESSAGE` → **202** (`outcome`: `stored`, or `parked` when the conversation is not known yet);
  **200** (`duplicate`) for an exact redelivery. The reply comes later, as an OUTBOUND message, once the
  user has been quiet for 5 s.
- `CLOSE_CONVERSATION` → **200** with the closed conversation.

With `WEBHOOK_SECRET` set, the header `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` is
required. Every error body is `{{"code", "detail", "errors"?}}`; the codes are:

{ERROR_CODES_MARKDOWN}
"""

WEBHOOK_EVENT = PolymorphicProxySerializer(
    component_name="WebhookEvent",
    serializers={
        "NEW_CONVERSATION": NewConversationEventSerializer,
        "NEW_MESSAGE": NewMessageEventSerializer,
        "CLOSE_CONVERSATION": CloseConversationEventSerializer,
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
            description="sha256=<hex HMAC-SHA256 of the raw body>; required when WEBHOOK_SECRET is set.",
        )
    ],
    "responses": {
        201: OpenApiResponse(ConversationDetailSerializer, description="NEW_CONVERSATION: created."),
        202: OpenApiResponse(MessageReceiptSerializer, description="NEW_MESSAGE: stored or parked."),
        200: OpenApiResponse(
            PolymorphicProxySerializer(
                component_name="WebhookOk",
                serializers=[ConversationDetailSerializer, MessageReceiptSerializer],
                resource_type_field_name=None,
            ),
            description="CLOSE_CONVERSATION: closed; or NEW_MESSAGE: an exact redelivery (outcome duplicate).",
        ),
        400: _error,
        401: _error,
        413: _error,
        503: _error,
    },
}

NOT_FOUND = OpenApiResponse(ErrorSerializer, description="`not_found`: unknown conversation or a non-UUID id.")
