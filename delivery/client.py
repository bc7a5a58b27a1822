"""A batch of replies POSTed to the receiver, many in flight at once, and what each answer means (delivery.services).

aiohttp, because the client sets the ceiling of delivery: one event loop with many POSTs in flight does several
times what a pool of threads does with urllib3 or httpx (bench/client_bench.py). A batch runs its own event loop
(asyncio.run), so nothing of it outlives the batch or crosses a worker's fork.
"""

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime

import aiohttp

USER_AGENT = "realmate-reply-delivery/1"
# 408 (the receiver timed out reading us), 429 (slow down) and 5xx (its own trouble) may pass; other answers
# would be the same next time.
RETRYABLE_STATUSES = frozenset({408, 429})
# Of the receiver's answer only this much is read, within the request's timeout (its first 200 characters go into
# last_error): a receiver that answers megabytes, or drips them, must not hold a delivery batch. Leaving the rest
# unread closes the connection.
ANSWER_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ReceiverAnswer:
    delivered: bool
    # A timeout, a connection error, 408, 429 or a 5xx: the receiver's trouble, not the reply's. These are the
    # failures that open the circuit (delivery.circuit).
    retryable: bool
    error: str = ""
    # Seconds the receiver asked us to wait (Retry-After), when it did.
    retry_after: float | None = None
    # For the attempt log: the HTTP status (None: no answer), when the POST started (Unix time) and how long it took.
    status: int | None = None
    started_at: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class Post:
    """One reply to POST: its body and headers, and the conversation it belongs to (its order key)."""

    conversation_id: uuid.UUID
    body: bytes
    headers: dict[str, str]


def replies_post(
    url: str,
    posts: list[Post],
    *,
    concurrency: int,
    opening: int,
    timeout: float,
    send_for: float,
    keep_sending: Callable[[ReceiverAnswer], bool],
    slots: "Slots | None" = None,
) -> list[ReceiverAnswer | None]:
    """POST every reply, `opening` in flight at first, up to `concurrency` as answers come (Window); a
    conversation's replies one after another, in the given order; with `slots` (a rate), each at its slot. No POST
    starts once `keep_sending` has said False for an answer, or after `send_for` seconds: those replies come back as
    None (not sent). Never raises for the receiver's sake."""
    send_until = time.monotonic() + send_for
    return asyncio.run(_posts_send(url, posts, concurrency, opening, timeout, send_until, keep_sending, slots))


async def _posts_send(
    url: str,
    posts: list[Post],
    concurrency: int,
    opening: int,
    timeout: float,
    send_until: float,
    keep_sending: Callable[[ReceiverAnswer], bool],
    slots: "Slots | None",
) -> list[ReceiverAnswer | None]:
    answers: list[ReceiverAnswer | None] = [None] * len(posts)
    chains: dict[uuid.UUID, list[int]] = {}
    for index, post in enumerate(posts):
        chains.setdefault(post.conversation_id, []).append(index)
    window = Window(opening, concurrency)
    stopped = False

    async def chain_send(indexes: list[int]) -> None:
        nonlocal stopped
        for index in indexes:
            await window.slots.acquire()
            if slots is not None:
                await slots.turn()
            if stopped or time.monotonic() > send_until:
                window.slots.release()
                return
            answers[index] = answer = await _post(session, url, posts[index], timeout)
            if not keep_sending(answer):
                stopped = True
            window.answered(answer)

    connector = aiohttp.TCPConnector(limit=concurrency)
    # Timeouts are the request's own (_post); aiohttp's default (5 minutes in all) would only get in the way.
    async with aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": USER_AGENT}, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        await asyncio.gather(*(chain_send(indexes) for indexes in chains.values()))
    return answers


class Window:
    """How many POSTs of a batch may be in flight. A batch does not know yet whether the receiver is up: it opens
    with `opening`, takes one more after each answer (up to `ceiling`) and one fewer after each receiver failure
    (down to one), so a receiver that is down gets `opening` requests from it, not `ceiling`."""

    def __init__(self, opening: int, ceiling: int) -> None:
        self.size = max(1, min(opening, ceiling))
        self.ceiling = ceiling
        self.slots = asyncio.Semaphore(self.size)

    def answered(self, answer: ReceiverAnswer) -> None:
        """In place of releasing the slot the POST held."""
        if answer.retryable and self.size > 1:
            self.size -= 1
            return  # the slot is given up
        if not answer.retryable and self.size < self.ceiling:
            self.size += 1
            self.slots.release()
        self.slots.release()


class Slots:
    """The moments a paced batch may start its POSTs (REPLY_WEBHOOK_RATE, delivery.pace): one every `interval`
    seconds from `first` (time.monotonic()), taken in the order asked. A slot missed (every POST in flight was slow)
    is not made up with a burst: the next is `interval` after the moment it was asked for."""

    def __init__(self, first: float, interval: float) -> None:
        self.next = first
        self.interval = interval

    async def turn(self) -> None:
        at = max(self.next, time.monotonic())
        self.next = at + self.interval
        await asyncio.sleep(at - time.monotonic())


async def _post(session: aiohttp.ClientSession, url: str, post: Post, timeout: float) -> ReceiverAnswer:
    """One POST and what its answer means; anything the receiver does is an answer, never an exception."""
    started_at, started = time.time(), time.monotonic()
    try:
        answer = await _post_answer(session, url, post, timeout)
    except Exception as exc:  # a malformed answer aiohttp does not wrap: the receiver's trouble, retried
        answer = ReceiverAnswer(False, True, _exception_error(exc))
    return replace(answer, started_at=started_at, seconds=time.monotonic() - started)


async def _post_answer(session: aiohttp.ClientSession, url: str, post: Post, timeout: float) -> ReceiverAnswer:
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            response = await session.post(url, data=post.body, headers=post.headers, allow_redirects=False)
    except TimeoutError:
        return ReceiverAnswer(False, True, f"no answer within {timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return ReceiverAnswer(False, True, _exception_error(exc))
    async with response:
        if 200 <= response.status < 300:
            return ReceiverAnswer(True, False, status=response.status)
        head = await _answer_head(response, deadline)
    error = f"HTTP {response.status}: {head.decode(errors='replace')[:200]}"
    if 300 <= response.status < 400:
        error += f" (to {response.headers.get('Location', '?')}; redirects are not followed)"
    retryable = response.status in RETRYABLE_STATUSES or response.status >= 500
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return ReceiverAnswer(False, retryable, _printable(error), retry_after, status=response.status)


def _exception_error(exc: BaseException) -> str:
    return _printable(f"{type(exc).__name__}: {exc}")


def _printable(error: str) -> str:
    """The receiver writes part of last_error: without NUL characters, which PostgreSQL text cannot hold."""
    return error.replace("\x00", "")[:500]


async def _answer_head(response: aiohttp.ClientResponse, deadline: float) -> bytes:
    """Up to ANSWER_READ_LIMIT bytes of the answer's body, as much as came by `deadline`; the rest is left unread.
    The status has arrived by now and decides the delivery, so a body cut short by the receiver is not an error."""
    head = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            while len(head) < ANSWER_READ_LIMIT and (chunk := await response.content.readany()):
                head += chunk
    except (TimeoutError, aiohttp.ClientError, OSError):  # too slow, the connection broke, or a bad gzip
        pass
    return bytes(head[:ANSWER_READ_LIMIT])


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,10}", value):
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
