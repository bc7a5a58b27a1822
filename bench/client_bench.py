"""HTTP client benchmark: which client lets one delivery process POST the most replies (delivery.client).

    python bench/client_bench.py [--posts 5000] [--concurrency 16] [--rounds 3]

Each client POSTs `posts` signed reply bodies (as delivery.services builds them) to bench/receiver.py, a bare
asyncio receiver in a process of its own on the same cores, with `concurrency` requests in flight: aiohttp's
ClientSession and httpx's AsyncClient on one event loop; urllib3's pool and httpx's Client over as many threads.
The clients take turns, round after round, and the table shows each one's median requests/s and its ratio to
aiohttp's, measured in the same rounds.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import httpx
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.delivery_bench import SECRET, ReceiverProcess  # noqa: E402 (after the path is set)


def signed_posts(count: int) -> list[tuple[bytes, dict[str, str]]]:
    posts = []
    for _ in range(count):
        reply_id = str(uuid.uuid4())
        payload = {
            "type": "OUTBOUND_MESSAGE",
            "timestamp": "2025-06-04T14:20:05.123456Z",
            "data": {
                "id": reply_id,
                "conversation_id": str(uuid.uuid4()),
                "content": "Mensagens recebidas:\n" + "\n".join(str(uuid.uuid4()) for _ in range(2)),
                "answers": [str(uuid.uuid4()) for _ in range(2)],
            },
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": reply_id,
            "X-Delivery-Attempt": "1",
            "X-Hub-Signature-256": signature,
        }
        posts.append((body, headers))
    return posts


def with_aiohttp(url: str, posts, concurrency: int) -> None:
    async def run() -> None:
        slots = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def one(body, headers) -> None:
                async with slots, session.post(url, data=body, headers=headers) as response:
                    assert response.status == 200
                    await response.read()

            await asyncio.gather(*(one(body, headers) for body, headers in posts))

    asyncio.run(run())


def with_httpx_async(url: str, posts, concurrency: int) -> None:
    async def run() -> None:
        slots = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(limits=limits) as client:

            async def one(body, headers) -> None:
                async with slots:
                    assert (await client.post(url, content=body, headers=headers)).status_code == 200

            await asyncio.gather(*(one(body, headers) for body, headers in posts))

    asyncio.run(run())


def with_urllib3_threads(url: str, posts, concurrency: int) -> None:
    pool = urllib3.PoolManager(maxsize=concurrency, block=True)
    with ThreadPoolExecutor(concurrency) as threads:
        for response in threads.map(lambda post: pool.request("POST", url, body=post[0], headers=post[1]), posts):
            assert response.status == 200
    pool.clear()


def with_httpx_threads(url: str, posts, concurrency: int) -> None:
    with httpx.Client(limits=httpx.Limits(max_connections=concurrency)) as client:
        with ThreadPoolExecutor(concurrency) as threads:
            for response in threads.map(lambda post: client.post(url, content=post[0], headers=post[1]), posts):
                assert response.status_code == 200


CLIENTS = {
    "aiohttp ClientSession (one event loop)": with_aiohttp,
    "urllib3 PoolManager (threads)": with_urllib3_threads,
    "httpx Client (threads)": with_httpx_threads,
    "httpx AsyncClient (one event loop)": with_httpx_async,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    receiver = ReceiverProcess().start()
    rates: dict[str, list[float]] = {name: [] for name in CLIENTS}
    try:
        for _ in range(args.rounds):
            for name, client in CLIENTS.items():
                posts = signed_posts(args.posts)
                started = time.perf_counter()
                client(f"{receiver.url}/replies", posts, args.concurrency)
                rates[name].append(args.posts / (time.perf_counter() - started))
        stats = receiver.stats()
    finally:
        receiver.stop()
    assert stats["bad_signatures"] == stats["bad_keys"] == 0, stats
    baseline = statistics.median(rates[next(iter(CLIENTS))])
    print(f"\n{args.posts} signed POSTs per client and round, {args.concurrency} in flight, {args.rounds} rounds\n")
    print("| client | requests/s (median) | min - max | vs aiohttp |")
    print("|---|---:|---:|---:|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {min(values):.0f} - {max(values):.0f} | {median / baseline:.2f} |")


if __name__ == "__main__":
    main()
