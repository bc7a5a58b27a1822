"""One POST of a reply to the receiver, and what its answer means for the delivery (delivery.services)."""

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

USER_AGENT = "realmate-reply-delivery/1"
# 408 (the receiver timed out reading us), 429 (slow down) and 5xx (its own trouble) may pass; other answers
# would be the same next time.
RETRYABLE_STATUSES = frozenset({408, 429})
# Of the receiver's answer only this much is read, within the request's timeout (its first 200 characters go into
# last_error): a receiver that answers megabytes, or drips them, must not hold a delivery worker. Leaving the rest
# unread closes the connection.
ANSWER_READ_LIMIT = 64 * 1024

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
        with _client.stream("POST", url, content=body, headers=headers, timeout=timeout) as response:
            answer = _answer_head(response, deadline=time.monotonic() + timeout)
    except httpx.TimeoutException:
        return ReceiverAnswer(False, True, f"no answer within {timeout:g} s")
    except httpx.TransportError as exc:
        return ReceiverAnswer(False, True, f"{type(exc).__name__}: {exc}"[:500])
    if response.is_success:
        return ReceiverAnswer(True, False)
    error = f"HTTP {response.status_code}: {answer.decode(errors='replace')[:200]}"
    if response.is_redirect:
        error += f" (to {response.headers.get('Location', '?')}; redirects are not followed)"
    retryable = response.status_code in RETRYABLE_STATUSES or response.is_server_error
    return ReceiverAnswer(False, retryable, error[:500], retry_after_seconds(response.headers.get("Retry-After")))


def _answer_head(response: httpx.Response, deadline: float) -> bytes:
    """Up to ANSWER_READ_LIMIT bytes of the answer's body, as much as came by `deadline`; the rest is left unread.
    The status has arrived by now and decides the delivery, so a body cut short by the receiver is not an error."""
    head = bytearray()
    try:
        for chunk in response.iter_bytes():
            head += chunk
            if len(head) >= ANSWER_READ_LIMIT or time.monotonic() > deadline:
                break
    except httpx.RequestError:  # the connection broke, or the body does not decode (a bad gzip)
        pass
    return bytes(head[:ANSWER_READ_LIMIT])


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
