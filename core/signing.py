"""HMAC-SHA256 signatures of request bodies, as GitHub and Meta's webhooks sign them: the webhook checks the
senders' (WEBHOOK_SECRET), reply delivery signs its own (REPLY_WEBHOOK_SECRET)."""

import hashlib
import hmac
from http import HTTPStatus

from core.errors import ApplicationError

SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature_for(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 value of `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_verify(body: bytes, header: str, secret: str) -> None:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time; raises a 401 ApplicationError."""
    expected = signature_for(body, secret)
    if not hmac.compare_digest(expected.encode(), header.strip().lower().encode()):
        raise ApplicationError(
            "invalid_signature",
            f"Missing or wrong {SIGNATURE_HEADER} header.",
            status=HTTPStatus.UNAUTHORIZED,
        )
