"""HTTP views of the API: validate with a serializer, call one service, render the result."""

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.access import EraseAccess, ReceiverAccess, StaffSession, is_staff_session
from api.schema import NOT_FOUND, WEBHOOK_SCHEMA
from api.serializers import (
    AgentMessageDataSerializer,
    CloseConversationDataSerializer,
    ConsoleEventSerializer,
    ConversationDetailSerializer,
    ConversationListItemSerializer,
    ConversationListQuerySerializer,
    ConversationPageSerializer,
    ErrorSerializer,
    MessageReceiptSerializer,
    NewConversationDataSerializer,
    NewMessageDataSerializer,
    PauseBotDataSerializer,
    ResumeBotDataSerializer,
    ServiceConfigSerializer,
    WebhookEnvelopeSerializer,
)
from api.webhook import webhook_body_read, webhook_origin_check
from chat import erasure, selectors, services, takeover
from chat.models import CONVERSATION_ORDER
from chat.selectors import ConversationDetail
from chat.services import MessageReceipt
from core import metrics, tracing
from core.errors import ApplicationError
from core.signing import secrets_list, signature_for
from delivery.selectors import replies_deliveries_load
from delivery.services import receiver_enable
from delivery.tasks import deliveries_send_enqueue
from scheduler.selectors import sweep_interval_seconds

WebhookService = Callable[..., "ConversationDetail | MessageReceipt"]


@dataclass(frozen=True)
class WebhookEvent:
    """An event type: the serializer of its `data`, the service it calls, its success status, and the outcome the
    metrics give a success that returns a conversation."""

    data: type[serializers.Serializer]
    service: WebhookService
    status: HTTPStatus
    outcome: str = ""


WEBHOOK_EVENTS: dict[str, WebhookEvent] = {
    "NEW_CONVERSATION": WebhookEvent(
        NewConversationDataSerializer, services.conversation_create, HTTPStatus.CREATED, "created"
    ),
    "NEW_MESSAGE": WebhookEvent(NewMessageDataSerializer, services.message_receive, HTTPStatus.ACCEPTED),
    "CLOSE_CONVERSATION": WebhookEvent(
        CloseConversationDataSerializer, services.conversation_close, HTTPStatus.OK, "closed"
    ),
    "AGENT_MESSAGE": WebhookEvent(AgentMessageDataSerializer, services.agent_message_receive, HTTPStatus.ACCEPTED),
    "PAUSE_BOT": WebhookEvent(PauseBotDataSerializer, takeover.conversation_pause, HTTPStatus.OK, "paused"),
    "RESUME_BOT": WebhookEvent(ResumeBotDataSerializer, takeover.conversation_resume, HTTPStatus.OK, "resumed"),
}


class WebhookApi(APIView):
    # The body is read raw: the signature covers the exact bytes, and a missing Content-Type is not an error.
    parser_classes = []
    # Its guard is the HMAC signature (WEBHOOK_SECRET), not a session: no CSRF, whoever the browser is.
    authentication_classes = []
    permission_classes = [AllowAny]
    # What the metrics call the request until its envelope is read: a body that is no event at all.
    event_type = "unknown"

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = super().dispatch(request, *args, **kwargs)
        metrics.WEBHOOK_SECONDS.labels(self.event_type).observe(time.perf_counter() - started)
        outcome = webhook_outcome(self.event_type, response)
        metrics.WEBHOOK_REQUESTS.labels(self.event_type, outcome).inc()
        tracing.attributes_set({tracing.ATTRIBUTE_EVENT: self.event_type, tracing.ATTRIBUTE_OUTCOME: outcome})
        return response

    @extend_schema(**WEBHOOK_SCHEMA)
    def post(self, request: Request) -> Response:
        webhook_origin_check(request)
        payload = webhook_body_read(request)
        if not isinstance(payload, dict):
            raise ApplicationError("invalid_payload", "The body must be a JSON object.")
        envelope = WebhookEnvelopeSerializer(data=payload)
        envelope.is_valid(raise_exception=True)
        event_type = envelope.validated_data["type"]
        if event_type not in WEBHOOK_EVENTS:
            raise ApplicationError(
                "unknown_event_type",
                f"Unknown event type {event_type!r}; expected one of {', '.join(WEBHOOK_EVENTS)}.",
                errors={"type": [f"Unknown event type {event_type!r}."]},
            )
        self.event_type = event_type
        event = WEBHOOK_EVENTS[event_type]
        data = event.data(data=envelope.validated_data["data"])
        if not data.is_valid():
            raise serializers.ValidationError({"data": data.errors})
        tracing.ids_set(
            conversation_id=data.validated_data["conversation_id"], message_id=data.validated_data.get("message_id")
        )
        result = event.service(**data.validated_data, event_at=envelope.validated_data["timestamp"])

        if isinstance(result, MessageReceipt):
            status = HTTPStatus.OK if result.outcome == MessageReceipt.DUPLICATE else event.status
            return Response(MessageReceiptSerializer(result).data, status=status)
        return Response(conversation_detail_data(result), status=event.status)


def conversation_detail_data(detail: ConversationDetail) -> dict:
    """A conversation's detail as the API shows it: its replies with their delivery state and newest attempts,
    loaded in two queries."""
    replies_deliveries_load(detail.messages)
    return ConversationDetailSerializer(detail).data


def webhook_outcome(event_type: str, response) -> str:
    """A bounded label: a receipt's outcome, the event's own for the conversation events (created, closed, paused,
    resumed), `ok` for a success with no event (OPTIONS), or the error's stable code."""
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    if response.status_code >= HTTPStatus.BAD_REQUEST:
        return data.get("code", "error")
    if "outcome" in data:
        return data["outcome"]
    event = WEBHOOK_EVENTS.get(event_type)
    return event.outcome if event else "ok"  # a success before any event was read (OPTIONS)


def conversation_id_parse(value: str) -> uuid.UUID:
    """The id in a conversation's path; 404 when it is not a UUID (no conversation can have it)."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ApplicationError("not_found", "Conversation not found.", status=HTTPStatus.NOT_FOUND) from exc


class ConversationDetailApi(APIView):
    def get_permissions(self):
        # Erasing always needs a token or a staff session with the permission, even when reads are open.
        return [EraseAccess()] if self.request.method == "DELETE" else super().get_permissions()

    @extend_schema(
        summary="A conversation with its messages",
        description="Messages are ordered by timestamp, then arrival. OUTBOUND replies appear once written. A "
        "conversation with more than MESSAGES_PER_PAGE messages shows the newest; `older` links to the ones before.",
        parameters=[OpenApiParameter("before", str, required=False, description="A cursor from `older`.")],
        responses={200: ConversationDetailSerializer, 400: ErrorSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        parsed_id = conversation_id_parse(conversation_id)
        try:
            detail = selectors.conversation_get(conversation_id=parsed_id, before=request.query_params.get("before"))
        except ValueError as exc:
            raise ApplicationError("invalid_cursor", "`before` is not a cursor this API gave out.") from exc
        if detail is None:
            raise ApplicationError("not_found", "Conversation not found.", status=HTTPStatus.NOT_FOUND)
        return Response(conversation_detail_data(detail))

    @extend_schema(
        summary="Erase a conversation and everything about it",
        description="Deletes the conversation, its messages, its replies' deliveries and any message parked for its "
        "id. Always needs a token or a staff session whose user may delete conversations. A webhook that comes "
        "later for this id finds it unknown.",
        responses={204: None, 401: ErrorSerializer, 403: ErrorSerializer, 404: NOT_FOUND},
    )
    def delete(self, request: Request, conversation_id: str) -> Response:
        if erasure.conversations_erase([conversation_id_parse(conversation_id)]).nothing:
            raise ApplicationError("not_found", "Conversation not found.", status=HTTPStatus.NOT_FOUND)
        return Response(status=HTTPStatus.NO_CONTENT)


class ReceiverEnableApi(APIView):
    """The reply receiver answered 410 Gone and was disabled: an operator enables it again, and the replies that
    waited go out at once."""

    permission_classes = [ReceiverAccess]

    @extend_schema(
        summary="Enable the reply receiver after a 410 Gone",
        request=None,
        responses={
            200: inline_serializer(
                "ReceiverEnabled",
                {"was_disabled": serializers.BooleanField(help_text="false: it was not disabled, nothing changed.")},
            ),
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        return Response({"was_disabled": receiver_enable(wake=deliveries_send_enqueue)})


class ServiceConfigApi(APIView):
    """The timing rules in force, so a client (the web UI) can show when a pending message will be answered."""

    @extend_schema(summary="Timing rules in force", responses=ServiceConfigSerializer)
    def get(self, request: Request) -> Response:
        return Response(ServiceConfigSerializer(service_config()).data)


def service_config() -> dict:
    """The settings of the timing rules, and the sweep's interval in force (the admin's, when it set one)."""
    return {
        "group_window_seconds": settings.GROUP_WINDOW_SECONDS,
        "orphan_ttl_seconds": settings.ORPHAN_TTL_SECONDS,
        "sweep_interval_seconds": sweep_interval_seconds(),
        "max_group_wait_seconds": settings.MAX_GROUP_WAIT_SECONDS,
        "max_group_messages": settings.MAX_GROUP_MESSAGES,
        "bot_pause_seconds": settings.BOT_PAUSE_SECONDS,
    }


class ConversationPagination(CursorPagination):
    """Pages by key: each page reads its own rows from an index, however many conversations are stored. No total:
    counting them all is the cost this avoids."""

    ordering = CONVERSATION_ORDER
    page_size = 50
    # DRF places a cursor on updated_at and steps over its ties by offset: one reply batch stamps up to
    # REPLY_BATCH_SIZE conversations alike, so the offset must reach that far.
    offset_cutoff = max(1000, settings.REPLY_BATCH_SIZE)
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        """DRF's cursor, whose position must be a time: a cursor crafted with another would reach the query."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                position = parse_datetime(cursor.position)
            except ValueError:  # the shape of a time, but no such time
                position = None
            if position is None:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class ConversationListApi(APIView):
    @extend_schema(
        summary="Conversations, newest activity first",
        operation_id="conversations_list",
        parameters=[
            OpenApiParameter("status", enum=["OPEN", "CLOSED"], required=False),
            OpenApiParameter("q", str, required=False, description="The start of a conversation id."),
            OpenApiParameter("cursor", str, required=False, description="From `next` or `previous` of a page."),
            OpenApiParameter("page_size", int, required=False, description="At most 200; 50 by default."),
        ],
        responses={200: ConversationPageSerializer, 400: ErrorSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        query = ConversationListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        conversations = selectors.conversation_list(
            status=query.validated_data.get("status"), id_prefix=query.validated_data.get("q")
        )
        paginator = ConversationPagination()
        page = paginator.paginate_queryset(conversations, request, view=self)
        return paginator.get_paginated_response(ConversationListItemSerializer(page, many=True).data)


class SessionApi(APIView):
    """What the web UI may do for this visitor: read (auth off, a token, or a staff session), use the console."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary="The visitor's access, for the web UI",
        responses=inline_serializer(
            "Session",
            {
                "auth_required": serializers.BooleanField(),
                "authenticated": serializers.BooleanField(),
                "staff": serializers.BooleanField(),
                "webhook_signed": serializers.BooleanField(help_text="WEBHOOK_SECRET is set: events must be signed."),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "auth_required": settings.API_AUTH_REQUIRED,
                "authenticated": bool(user and user.is_authenticated),
                "staff": is_staff_session(request),
                "webhook_signed": bool(settings.WEBHOOK_SECRET),
            }
        )


class ConsoleEventApi(APIView):
    """The web console's events are built and signed here, so WEBHOOK_SECRET never reaches a browser: for a staff
    session only (with its CSRF token). Returns the exact body to POST to /webhook/ and its X-Hub-Signature-256
    (null when no secret is set); the webhook then treats it like any sender's event."""

    permission_classes = [StaffSession]

    @extend_schema(
        summary="Build and sign a webhook event for the web console (staff session)",
        request=inline_serializer("ConsoleEvent", {"type": serializers.CharField(), "data": serializers.DictField()}),
        responses=inline_serializer(
            "ConsoleSignedEvent",
            {
                "body": serializers.CharField(help_text="The event as JSON text, to send as it is."),
                "signature": serializers.CharField(allow_null=True, help_text="null: no secret is set."),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        event = ConsoleEventSerializer(data=request.data)
        event.is_valid(raise_exception=True)
        body = json.dumps({**event.validated_data, "timestamp": timezone.now().isoformat()})
        secrets = secrets_list(settings.WEBHOOK_SECRET)
        return Response({"body": body, "signature": signature_for(body.encode(), secrets[0]) if secrets else None})
