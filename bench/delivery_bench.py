"""Reply delivery benchmark: the figures behind "Reply delivery" in docs/operations.md.

    python bench/delivery_bench.py [--part throughput|outage|rate|all] [--conversations 10000] [--waiting 2000]
                                   [--outage-seconds 60] [--modes fail,refused,hang] [--batch-sizes 100,1000]
                                   [--rates 20,80] [--rate-seconds 30]

throughput  10,000 conversations, each with a group of 2 messages due at once, answered by a worker of 2 processes
            (and beat) and delivered by a delivery worker of 2 processes to a fast local receiver (bench/receiver.py,
            a bare asyncio server in a process of its own, on the same cores). Prints delivered replies/s (first reply
            written to last delivery recorded, database clock) beside the same backlog with delivery off, and the
            ratio of each to the reference: the engine's set-based SQL alone on the same data, run first and last.
            --batch-sizes adds delivery runs at other REPLY_DELIVERY_BATCH values.
outage      2,000 replies written while the receiver fails, for 60 s, then answers 200 at once. Three ways of
            failing: `fail` (it answers 503), `refused` (its port is closed), `hang` (it never answers: timeouts).
            Prints the requests that reached it while it failed (none can when the port is closed), the failed
            attempts the deliveries recorded, the seconds from its return until every reply had arrived, and checks
            every reply arrived, signed, with its id as Idempotency-Key.
rate        REPLY_WEBHOOK_RATE at each of --rates against a backlog of --conversations replies (10,000), delivered by
            a delivery worker of 2 processes: for --rate-seconds from the first arrival, the achieved rate (arrivals
            over the time between the first and the last) against the set one, and its spread: the fewest and most
            arrivals in a whole second, their standard deviation, and the most in any sliding second. Not in `all`.

Everything shares this machine's two cores: read the figures as ratios between rows of one run. Needs a local
PostgreSQL and redis-server.
"""

import argparse
import bisect
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.capacity_bench import comma_separated_ints  # noqa: E402 (after the path is set)
from bench.shutdown import sigterm_exits  # noqa: E402

SECRET = "bench-reply-secret"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["throughput", "outage", "rate", "all"], default="all")
    parser.add_argument("--conversations", type=int, default=10000)
    parser.add_argument("--waiting", type=int, default=2000, help="outage part: replies waiting")
    parser.add_argument("--outage-seconds", type=float, default=60)
    parser.add_argument(
        "--batch-sizes",
        type=comma_separated_ints,
        default=[],
        help="throughput part: also deliver at each of these REPLY_DELIVERY_BATCH values (e.g. 100,1000)",
    )
    parser.add_argument("--modes", default="fail,refused,hang", help="outage part: ways the receiver fails")
    parser.add_argument("--rates", type=comma_separated_ints, default=[20, 80], help="rate part: messages/s")
    parser.add_argument("--rate-seconds", type=float, default=30, help="rate part: how long each rate is measured")
    args = parser.parse_args()
    sigterm_exits()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    if args.part in ("throughput", "all"):
        throughput(args)
    if args.part in ("outage", "all"):
        outage(args)
    if args.part == "rate":
        rate(args)


class ReceiverProcess:
    """bench/receiver.py in a process of its own."""

    def __init__(self) -> None:
        # Not tests.e2e.stack.free_port: client_bench.py starts this receiver without Django, which that module needs.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ReceiverProcess":
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "receiver.py"), "--port", str(self.port), "--secret", SECRET]
        )
        deadline = time.monotonic() + 20
        while not self._up():
            if time.monotonic() > deadline:
                raise RuntimeError("bench/receiver.py did not start")
            time.sleep(0.1)
        return self

    def _up(self) -> bool:
        try:
            return requests.get(f"{self.url}/stats", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def mode(self, mode: str) -> float:
        return requests.post(f"{self.url}/mode", params={"to": mode}, timeout=5).json()["switched_at"]

    def stats(self, expect: int = 0, *, times: bool = False) -> dict:
        params = {"expect": expect} | ({"times": 1} if times else {})
        return requests.get(f"{self.url}/stats", params=params, timeout=5).json()


def delivery_stack(name: str, receiver: ReceiverProcess | None, **env: str):
    from tests.e2e.stack import Stack

    settings = {"CELERY_CONCURRENCY": "2", "DELIVERY_CONCURRENCY": "2", "REPLY_WEBHOOK_SECRET": SECRET, **env}
    if receiver is not None:
        settings["REPLY_WEBHOOK_URL"] = f"{receiver.url}/replies"
    return Stack(name, env=settings, workers=0, beats=0).start()


# --- throughput
def throughput(args: argparse.Namespace) -> None:
    from bench.capacity_bench import reference_drain

    print(
        f"\nthroughput: {args.conversations} due groups answered by a worker of 2 processes, delivered by a delivery"
        " worker of 2 processes to a local receiver; the reference is the engine's set-based SQL in batches of 500"
        " on the same data, run first and last\n"
    )
    references = [reference_drain(args.conversations)]
    runs = [("delivery off: replies written", written_rate(args.conversations, deliver=False))]
    runs.append(("delivery on: replies delivered", written_rate(args.conversations, deliver=True)))
    for size in args.batch_sizes:
        label = f"delivery on, REPLY_DELIVERY_BATCH={size}"
        runs.append((label, written_rate(args.conversations, deliver=True, REPLY_DELIVERY_BATCH=str(size))))
    references.append(reference_drain(args.conversations))
    reference = statistics.mean(result["replies"] / result["seconds"] for result in references)
    print("| run | replies | seconds | replies/s | vs reference |")
    print("|---|---:|---:|---:|---:|")
    for result in references:
        print(
            f"| set-based SQL (reference) | {result['replies']} | {result['seconds']:.2f} | "
            f"{result['replies'] / result['seconds']:.0f} | - |"
        )
    for label, result in runs:
        rate = result["replies"] / result["seconds"]
        print(f"| {label} | {result['replies']} | {result['seconds']:.2f} | {rate:.0f} | {rate / reference:.3f} |")


def written_rate(groups: int, *, deliver: bool, **env: str) -> dict:
    """The backlog answered (and delivered, with `deliver`): replies, and seconds from the first reply written to
    the last reply written (or the last delivery recorded), on the database clock."""
    from bench.capacity_bench import backlog_seed
    from tests.helpers import wait_until

    receiver = ReceiverProcess().start() if deliver else None
    stack = delivery_stack("delivery-throughput", receiver, **env)
    try:
        backlog_seed(stack, groups)
        stack.start_role("worker", "worker0")
        stack.start_role("beat", "beat0")
        if deliver:
            stack.start_role("delivery", "delivery0")
        wait_until(stack.nothing_pending, timeout=1200, interval=1, what="every group answered")
        if deliver:
            wait_until(
                lambda: stack.sql("SELECT count(*) FROM delivery_replydelivery WHERE state <> 'delivered'")[0][0] == 0,
                timeout=1200,
                interval=1,
                what="every reply delivered",
            )
            [(replies, seconds)] = stack.sql(
                """SELECT count(*), extract(epoch FROM max(d.delivered_at) - min(m.timestamp))
                   FROM chat_message m JOIN delivery_replydelivery d ON d.message_id = m.id"""
            )
            stats = receiver.stats()
            assert stats["distinct"] == replies, stats
            assert stats["bad_signatures"] == stats["bad_keys"] == 0, stats
        else:
            [(replies, seconds)] = stack.sql(
                """SELECT count(*), extract(epoch FROM max(timestamp) - min(timestamp))
                   FROM chat_message WHERE type = 'OUTBOUND'"""
            )
    finally:
        stack.stop()
        if receiver is not None:
            receiver.stop()
    return {"replies": replies, "seconds": float(seconds)}


# --- outage
def outage(args: argparse.Namespace) -> None:
    print(
        f"\noutage: {args.waiting} replies written while the receiver fails for {args.outage_seconds:g} s, then"
        " answers 200; a delivery worker of 2 processes, the default settings (circuit: 5 failures, a probe every"
        " 5 s; timeout 5 s)\n"
    )
    print(
        "| receiver | requests while failing | failed attempts recorded | seconds from return to all delivered"
        " | delivered | repeats | bad signatures or keys |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode in args.modes.split(","):
        result = outage_run(mode, args.waiting, args.outage_seconds)
        print(
            f"| {mode} | {result['requests_failing']} | {result['failed_attempts']} | {result['recovery']:.1f} | "
            f"{result['delivered']} | {result['repeats']} | {result['bad_signatures']} |"
        )


def outage_run(mode: str, waiting: int, outage_seconds: float) -> dict:
    from bench.capacity_bench import backlog_seed
    from tests.helpers import wait_until

    receiver = ReceiverProcess().start()
    stack = delivery_stack(f"delivery-outage-{mode}", receiver)
    try:
        if mode == "refused":
            receiver.stop()
        else:
            receiver.mode(mode)
        failing_since = time.monotonic()
        backlog_seed(stack, waiting)
        stack.start_role("worker", "worker0")
        stack.start_role("beat", "beat0")
        stack.start_role("delivery", "delivery0")
        time.sleep(max(0.0, outage_seconds - (time.monotonic() - failing_since)))
        if mode == "refused":
            receiver.start()
            returned_at = time.time()
            requests_failing = 0
        else:
            requests_failing = receiver.stats()["requests"]
            returned_at = receiver.mode("ok")
        stats = wait_until(
            lambda: (s := receiver.stats(expect=waiting))["complete_at"] and s, 300, 0.2, "every reply delivered"
        )
        wait_until(
            lambda: stack.sql("SELECT count(*) FROM delivery_replydelivery WHERE state <> 'delivered'")[0][0] == 0,
            60,
            0.2,
            "every delivery recorded",
        )
        [(failed_attempts,)] = stack.sql(
            "SELECT coalesce(sum(attempts), 0) - count(*) FILTER (WHERE state = 'delivered') "
            "FROM delivery_replydelivery"
        )
    finally:
        stack.stop()
        receiver.stop()
    return {
        "requests_failing": requests_failing,
        "failed_attempts": failed_attempts,
        "recovery": stats["complete_at"] - returned_at,
        "delivered": stats["distinct"],
        "repeats": stats["repeats"],
        "bad_signatures": stats["bad_signatures"] + stats["bad_keys"],
    }


# --- rate
def rate(args: argparse.Namespace) -> None:
    print(
        f"\nrate: REPLY_WEBHOOK_RATE against a backlog of {args.conversations} replies, a delivery worker of 2"
        f" processes, measured for {args.rate_seconds:g} s from the first arrival\n"
    )
    print(
        "| set rate/s | arrivals | achieved rate/s | vs set | fewest in a second | most in a second | std dev"
        " | most in any sliding second |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for limit in args.rates:
        result = rate_run(limit, args.conversations, args.rate_seconds)
        print(
            f"| {limit} | {result['arrivals']} | {result['achieved']:.2f} | {result['achieved'] / limit:.3f} | "
            f"{result['fewest']} | {result['most']} | {result['stdev']:.2f} | {result['sliding']} |"
        )


def rate_run(limit: int, backlog: int, seconds: float) -> dict:
    from bench.capacity_bench import backlog_seed
    from tests.helpers import wait_until

    receiver = ReceiverProcess().start()
    stack = delivery_stack("delivery-rate", receiver, REPLY_WEBHOOK_RATE=str(limit))
    try:
        backlog_seed(stack, backlog)
        stack.start_role("worker", "worker0")
        stack.start_role("beat", "beat0")
        wait_until(stack.nothing_pending, timeout=600, interval=1, what="every group answered")
        stack.start_role("delivery", "delivery0")
        first = wait_until(lambda: receiver.stats(times=True)["times"][:1], 60, 0.05, "a first arrival")[0]
        time.sleep(max(0.0, first + seconds + 1 - time.time()))
        times = [t for t in receiver.stats(times=True)["times"] if t < first + seconds]
        [(waiting,)] = stack.sql("SELECT count(*) FROM delivery_replydelivery WHERE state = 'pending'")
    finally:
        stack.stop()
        receiver.stop()
    assert waiting > 0, "the backlog ran out while measuring: measure for less time or write more replies"
    per_second = [0] * int(seconds)
    for t in times:
        if int(t - first) < len(per_second):
            per_second[int(t - first)] += 1
    return {
        "arrivals": len(times),
        "achieved": (len(times) - 1) / (times[-1] - times[0]),
        "fewest": min(per_second),
        "most": max(per_second),
        "stdev": statistics.pstdev(per_second),
        "sliding": max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)),
    }


if __name__ == "__main__":
    main()
