"""Reading a webhook request body: size limit, optional HMAC signature, JSON."""

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from rest_framework.request import Request

from core.errors import ApplicationError
from core.signing import SIGNATURE_HEADER, STANDARD_SIGNATURE_HEADER, secrets_list, signature_verify, standard_verify


def webhook_body_read(request: Request) -> Any:
    """The request's JSON, after the size limit and (when WEBHOOK_SECRET is set) the signature check: Standard
    Webhooks when the request carries a webhook-signature (with its timestamp's tolerance), X-Hub-Signature-256
    otherwise."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _too_large(limit)
    try:
        body = _chunked_body(request, limit) if _is_chunked(request) else request.body
    except RequestDataTooBig as exc:
        raise _too_large(limit) from exc
    if len(body) > limit:
        raise _too_large(limit)
    if secrets := secrets_list(settings.WEBHOOK_SECRET):
        if STANDARD_SIGNATURE_HEADER in request.headers:
            standard_verify(
                body, request.headers, secrets, tolerance=settings.WEBHOOK_TOLERANCE_SECONDS, now=timezone.now()
            )
        else:
            signature_verify(body, request.headers.get(SIGNATURE_HEADER, ""), secrets)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApplicationError("invalid_json", "The body is not valid UTF-8 JSON.") from exc
    except RecursionError as exc:
        # A body of a few kilobytes can nest arrays deeper than the parser's recursion limit.
        raise ApplicationError("invalid_json", "The body's JSON is nested too deeply.") from exc


def _is_chunked(request: Request) -> bool:
    """A body sent with Transfer-Encoding: chunked has no Content-Length; Django then reads it as empty. gunicorn
    decodes the chunks and marks the stream as ending by itself (wsgi.input_terminated)."""
    meta = request.META
    return (
        not meta.get("CONTENT_LENGTH")
        and bool(meta.get("wsgi.input_terminated"))
        and "chunked" in (meta.get("HTTP_TRANSFER_ENCODING", "").lower())
    )


def _chunked_body(request: Request, limit: int) -> bytes:
    """Django reads Content-Length bytes and has no setting for a body without one, so the stream gunicorn already
    de-chunked is read here, at most limit + 1 bytes (tests/e2e/test_exactly_once.py sends one through gunicorn)."""
    body = request.META["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise RequestDataTooBig
    return body


def webhook_origin_check(request: Request) -> None:
    """Senders are servers, which send no Origin header; a browser always does. A web page on another site that
    posts here (a cross-site form or fetch) is refused, signed or not."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.get_host():
        raise ApplicationError(
            "permission_denied",
            "Webhooks are not accepted from web pages of other origins.",
            status=HTTPStatus.FORBIDDEN,
        )


def _too_large(limit: int) -> ApplicationError:
    return ApplicationError(
        "payload_too_large",
        f"The body is larger than {limit} bytes.",
        status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )
