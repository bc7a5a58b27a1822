"""Webhook signatures, both ways: the webhook checks the senders' (WEBHOOK_SECRET), reply delivery signs its own
(REPLY_WEBHOOK_SECRET).

Two schemes:
- Standard Webhooks (standardwebhooks.com): headers `webhook-id`, `webhook-timestamp` (Unix seconds) and
  `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one signature per secret separated by spaces.
  The timestamp lets a receiver refuse a replay; several signatures let a secret be rotated with no failed request.
  Signing and the key format are the `standardwebhooks` package's own, the reference implementation receivers use.
- X-Hub-Signature-256 (GitHub, Meta): `sha256=<hex HMAC-SHA256 of the body>`, with no timestamp.

A setting holds one or more secrets separated by spaces (so a secret has none), newest first. For Standard Webhooks a
`whsec_<base64>` secret is the decoded key and any other string its own UTF-8 bytes; X-Hub-Signature-256 always
uses the secret's text as it is written, prefix included.
"""

import base64
import binascii
import hashlib
import hmac
import math
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus

from standardwebhooks import Webhook

from core.errors import ApplicationError

SIGNATURE_HEADER = "X-Hub-Signature-256"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
STANDARD_KEY_PREFIX = "whsec_"


def secrets_list(setting: str) -> list[str]:
    """A setting's secrets, newest first (separated by whitespace); [] when it is empty."""
    return setting.split()


def secrets_problems(setting: str) -> list[str]:
    """Why some of a setting's secrets cannot sign: a `whsec_` key that is not base64 (strictly: the package's own
    decoder skips stray characters) or is empty. Named by position, never by content."""
    secrets = secrets_list(setting)
    problems = []
    for position, secret in enumerate(secrets, start=1):
        if not secret.startswith(STANDARD_KEY_PREFIX):
            continue
        try:
            key = base64.b64decode(secret.removeprefix(STANDARD_KEY_PREFIX), validate=True)
        except binascii.Error:
            key = b""
        if not key:
            problems.append(
                f"secret {position} of {len(secrets)} is not {STANDARD_KEY_PREFIX} followed by a base64 key"
            )
    return problems


@cache
def _standard(secret: str) -> Webhook:
    """The package's signer for a secret: decoded once, not for every reply of every batch."""
    return Webhook(secret if secret.startswith(STANDARD_KEY_PREFIX) else secret.encode())


def signature_for(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 value of `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_verify(body: bytes, header: str, secrets: list[str]) -> None:
    """X-Hub-Signature-256 by any of the secrets, compared in constant time; raises a 401 ApplicationError."""
    given = header.strip().lower().encode()
    if not any(hmac.compare_digest(signature_for(body, secret).encode(), given) for secret in secrets):
        raise _invalid(f"Missing or wrong {SIGNATURE_HEADER} header.")


def standard_headers(message_id: str, body: bytes, secrets: list[str], at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of a message sent at `at`: one signature per secret, in the secrets' order."""
    return {
        STANDARD_ID_HEADER: message_id,
        STANDARD_TIMESTAMP_HEADER: str(math.floor(at.timestamp())),
        STANDARD_SIGNATURE_HEADER: " ".join(_standard(secret).sign(message_id, at, body) for secret in secrets),
    }


def standard_verify(body: bytes, headers, secrets: list[str], *, tolerance: float, now: datetime) -> None:
    """A Standard Webhooks request: its three headers, a timestamp within `tolerance` seconds of `now` (else 401
    timestamp_out_of_tolerance: a replay, or a clock far off), and a `v1` signature by any of the secrets (else 401
    invalid_signature). The package's own verify() has a fixed tolerance and one secret; this is the same check
    with ours."""
    message_id = headers.get(STANDARD_ID_HEADER, "")
    timestamp = headers.get(STANDARD_TIMESTAMP_HEADER, "")
    given = headers.get(STANDARD_SIGNATURE_HEADER, "").split()
    try:
        at = datetime.fromtimestamp(int(timestamp), UTC) if timestamp.isascii() and timestamp.isdigit() else None
    except (OverflowError, OSError, ValueError):  # digits, but no time Python can hold
        at = None
    if not (message_id and at and given):
        raise _invalid(
            f"{STANDARD_ID_HEADER}, {STANDARD_TIMESTAMP_HEADER} (Unix seconds) and {STANDARD_SIGNATURE_HEADER} "
            "are all needed."
        )
    if abs((now - at).total_seconds()) > tolerance:
        raise ApplicationError(
            "timestamp_out_of_tolerance",
            f"{STANDARD_TIMESTAMP_HEADER} is more than {tolerance:g} s from the server's clock: a replay is refused.",
            status=HTTPStatus.UNAUTHORIZED,
        )
    expected = [_standard(secret).sign(message_id, at, body).encode() for secret in secrets]
    if not any(hmac.compare_digest(mine, theirs.encode()) for mine in expected for theirs in given):
        raise _invalid(f"No {STANDARD_SIGNATURE_HEADER} matches a secret.")


def _invalid(detail: str) -> ApplicationError:
    return ApplicationError("invalid_signature", detail, status=HTTPStatus.UNAUTHORIZED)
