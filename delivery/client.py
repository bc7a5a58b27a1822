"""One POST of a reply to the receiver, and what its answer means for the delivery (delivery.services)."""

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

USER_AGENT = "realmate-reply-delivery/1"
# 408 (the receiver timed out reading us), 429 (slow down) and 5xx (its own trouble) may pass; other answers
# would be the same next time.
RETRYABLE_STATUSES = frozenset({408, 429})

# One client per process: it keeps connections to the receiver open between deliveries.
_client = httpx.Client(follow_redirects=False, headers={"User-Agent": USER_AGENT})


@dataclass(frozen=True)
class ReceiverAnswer:
    delivered: bool
    retryable: bool
    error: str = ""
    # Seconds the receiver asked us to wait (Retry-After), when it did.
    retry_after: float | None = None


def reply_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> ReceiverAnswer:
    """POST `body`; never raises for the receiver's sake: a timeout or a connection error is a retryable answer."""
    try:
        response = _client.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return ReceiverAnswer(False, True, f"no answer within {timeout:g} s")
    except httpx.TransportError as exc:
        return ReceiverAnswer(False, True, f"{type(exc).__name__}: {exc}"[:500])
    if response.is_success:
        return ReceiverAnswer(True, False)
    error = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.is_redirect:
        error += f" (to {response.headers.get('Location', '?')}; redirects are not followed)"
    retryable = response.status_code in RETRYABLE_STATUSES or response.is_server_error
    return ReceiverAnswer(False, retryable, error[:500], retry_after_seconds(response.headers.get("Retry-After")))


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
