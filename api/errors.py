"""Every API error as the stable JSON body (core.errors.error_body): the codes, and DRF's EXCEPTION_HANDLER."""

from http import HTTPStatus
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings

from chat.services import MESSAGE_ATTEMPTS
from core.errors import ApplicationError, error_body

# Every `code` an error body can carry, with what it means. The OpenAPI schema and docs list them from here.
ERROR_CODES: dict[str, str] = {
    "invalid_json": "400: the body is not valid UTF-8 JSON (or nests deeper than the parser goes).",
    "bad_request": "400: the request could not be understood (a Host not in ALLOWED_HOSTS, for one).",
    "invalid_payload": "400: the JSON does not have the event's shape; `errors` names each field.",
    "unknown_event_type": "400: `type` is not one of NEW_CONVERSATION, NEW_MESSAGE, CLOSE_CONVERSATION, "
    "AGENT_MESSAGE, PAUSE_BOT, RESUME_BOT.",
    "conversation_exists": "400: NEW_CONVERSATION with an id that already exists.",
    "conversation_not_found": "400: CLOSE_CONVERSATION, PAUSE_BOT or RESUME_BOT for a conversation that does not "
    "exist.",
    "conversation_already_closed": "400: CLOSE_CONVERSATION for a conversation already CLOSED.",
    "conversation_closed": "400: NEW_MESSAGE, AGENT_MESSAGE, PAUSE_BOT or RESUME_BOT for a CLOSED conversation.",
    "message_id_conflict": "400: NEW_MESSAGE or AGENT_MESSAGE whose id is used in another conversation, with other "
    "content, or by the other author.",
    "buffer_expired": "400: NEW_MESSAGE or AGENT_MESSAGE whose id was parked and waited longer than ORPHAN_TTL; "
    "never processed.",
    "invalid_cursor": "400: `before` on a conversation's detail is not a cursor the API gave out.",
    "invalid_range": "400: a recovery whose `since` is not before its `until` (at most now), or off the calendar.",
    "invalid_signature": "401: WEBHOOK_SECRET is set and the signature (webhook-signature with webhook-id and "
    "webhook-timestamp, or X-Hub-Signature-256) is missing or matches no secret.",
    "timestamp_out_of_tolerance": "401: a Standard Webhooks request whose webhook-timestamp is further than "
    "WEBHOOK_TOLERANCE_SECONDS (300 by default) from the server's clock: a replay, or a clock far off.",
    "not_authenticated": "401: no valid token or session, for a read while API_AUTH_REQUIRED is on or an erasure.",
    "permission_denied": "403: the request is not allowed (a session that is not staff's, a cross-origin "
    "webhook from a browser).",
    "not_found": "404: no such conversation (also for an id that is not a UUID) or recovery, or a list cursor not "
    "given out.",
    "method_not_allowed": "405: the method is not allowed on this path.",
    "not_acceptable": "406: the Accept header asks for a format other than JSON.",
    "delivery_off": "409: a recovery while reply delivery is off (REPLY_WEBHOOK_URL is empty).",
    "try_again": f"409: NEW_MESSAGE or AGENT_MESSAGE raced with concurrent changes {MESSAGE_ATTEMPTS} times; send it "
    "again.",
    "payload_too_large": "413: the body is larger than WEBHOOK_MAX_BODY_BYTES.",
    "unsupported_media_type": "415: the body's Content-Type is not JSON (endpoints other than the webhook).",
    "throttled": "429: too many requests.",
    "error": "4xx/5xx: any other error the API framework raises.",
    "database_unavailable": "503: PostgreSQL is unreachable; nothing was written, retry later.",
    "overloaded": "503 (the proxy, deploy/nginx.conf): the webhook's bounded queue is full or no web container is "
    "up (nothing was written), or a web worker died under the request; retry after Retry-After seconds.",
}


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error dict as `{"data.id": ["..."]}`: one level, dotted paths."""
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            # A nested object that is not one (`"reply_rules": 5`) is an error of the object's own path.
            nested_non_field = prefix and key == api_settings.NON_FIELD_ERRORS_KEY
            flat.update(
                flatten_errors(value, prefix if nested_non_field else f"{prefix}.{key}" if prefix else str(key))
            )
        return flat
    if isinstance(errors, list) and errors and all(isinstance(item, str) for item in errors):
        return {prefix or "non_field_errors": [str(item) for item in errors]}
    if isinstance(errors, list):
        flat = {}
        for index, value in enumerate(errors):
            flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "non_field_errors": [str(errors)]}


# DRF exceptions that reach the handler, with the code each one gets.
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "invalid_json",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.NotFound: "not_found",
    exceptions.Throttled: "throttled",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error leaves as the stable JSON body; unknown ones stay 500s."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.detail, exc.errors), status=exc.status)
    if isinstance(exc, OperationalError | InterfaceError):
        # The sender retries on 503; the transaction was rolled back, so nothing is half-written.
        return Response(
            error_body("database_unavailable", "The database is unreachable; retry later."),
            status=HTTPStatus.SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=HTTPStatus.NOT_FOUND)
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            error_body("invalid_payload", "The payload is invalid.", flatten_errors(exc.detail)),
            status=HTTPStatus.BAD_REQUEST,
        )
    if isinstance(exc, exceptions.APIException):
        code = _DRF_CODES.get(type(exc), "error")
        return Response(error_body(code, str(exc.detail)), status=exc.status_code)
    return None
