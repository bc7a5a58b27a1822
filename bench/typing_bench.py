"""Users who never pause: conversations whose group keeps growing beside ordinary ones, on the real stack at the
true windows (5 s / 6 s, sweep 1 s).

    python bench/typing_bench.py [--typists 300] [--every 2.5] [--ordinary 100] [--seconds 45] [--rounds 1]
                                 [--against GIT_REF]

Two runs of `seconds` each, on fresh stacks: the ordinary conversations alone (each opens at a random moment and
gets a burst of 1-3 messages 1 s apart), then the same beside `typists` conversations that get a message every
`every` seconds for the whole run (their groups never fall quiet). Prints, for each run: the reply batches, the
conversations they claimed and how many of those claims wrote no reply (a group still growing: a no-op claim),
the webhook's p50/p99 (client side, every request of the run), and the ordinary conversations' reply lag p50/p99
(newest answered arrival -> reply, database clock). With --against, GIT_REF's code runs the same two runs,
alternating, so the two are compared at the same moments.
"""

import argparse
import os
import random
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.shutdown import sigterm_exits  # noqa: E402 (after the path is set)

STAMP = "2025-06-04T14:20:00Z"


def event(kind: str, data: dict) -> dict:
    return {"type": kind, "timestamp": STAMP, "data": data}


def schedule(args: argparse.Namespace, typists: int, rng: random.Random) -> tuple[list, list[uuid.UUID]]:
    """The events to send (at, payload), and the ordinary conversations' ids."""
    events, ordinary = [], []
    for _ in range(args.ordinary):
        conversation_id, start = uuid.uuid4(), rng.uniform(0, args.seconds - 5)
        ordinary.append(conversation_id)
        events.append((start, event("NEW_CONVERSATION", {"id": str(conversation_id)})))
        for offset in range(rng.randint(1, 3)):
            data = {"id": str(uuid.uuid4()), "content": "oi", "conversation_id": str(conversation_id)}
            events.append((start + 0.05 + offset, event("NEW_MESSAGE", data)))
    for _ in range(typists):
        conversation_id, start = uuid.uuid4(), rng.uniform(0, args.every)
        events.append((start, event("NEW_CONVERSATION", {"id": str(conversation_id)})))
        at = start + 0.05
        while at < args.seconds:
            data = {"id": str(uuid.uuid4()), "content": "digitando", "conversation_id": str(conversation_id)}
            events.append((at, event("NEW_MESSAGE", data)))
            at += args.every
    events.sort(key=lambda item: item[0])
    return events, ordinary


def run(args: argparse.Namespace, root: Path, python: Path, typists: int) -> dict:
    from bench.capacity_bench import log_records
    from bench.purge_bench import phase
    from tests.e2e.stack import Stack
    from tests.helpers import wait_until

    events, ordinary = schedule(args, typists, random.Random(11))
    env = {"GROUP_WINDOW_SECONDS": "5", "ORPHAN_TTL_SECONDS": "6", "SWEEP_INTERVAL_SECONDS": "1"}
    stack = Stack("typing", env=env, workers=0, root=root, python=python)
    stack.start()
    try:
        # DEBUG: a batch that wrote nothing logs at DEBUG only.
        stack.start_role("worker", "worker0", LOG_LEVEL="DEBUG")
        wait_until(stack.sweeping, 60, 0.25, "sweeps running")
        traffic = phase(stack, events, ordinary)
        stack.sweeps_pass(2)
        batches = [r for r in log_records(stack.log("worker0")) if r.get("message") == "reply batch"]
    finally:
        stack.stop()
    return {
        **traffic,
        "batches": len(batches),
        "claimed": sum(r["claimed"] for r in batches),
        "no_op": sum(max(0, r["claimed"] - r["replies"]) for r in batches),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--typists", type=int, default=300)
    parser.add_argument("--every", type=float, default=2.5)
    parser.add_argument("--ordinary", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", metavar="GIT_REF", help="also run this commit's code, alternating")
    args = parser.parse_args()
    sigterm_exits()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    from bench.webhook_bench import Tree

    trees = [("this checkout", ROOT, Path(sys.executable))]
    if args.against:
        other = Tree.from_git(args.against, port=0)
        trees.append((other.label, other.root, other.python))
    results = []
    for round_number in range(args.rounds):
        for label, root, python in trees if round_number % 2 == 0 else trees[::-1]:
            for typists in (0, args.typists):
                results.append((label, typists, run(args, root, python, typists)))
                print(f"  {label}, {typists} typists: done", file=sys.stderr, flush=True)

    print(
        f"\nusers who never pause: {args.ordinary} ordinary conversations (a burst of 1-3 messages each) over "
        f"{args.seconds:g} s, alone and beside {args.typists} typists writing every {args.every:g} s; true windows\n"
    )
    print(
        "| code | typists | webhooks | failed | webhook p50 ms | p99 ms | batches | conversations claimed | "
        "no-op claims | ordinary replies | ordinary lag p50 s | p99 s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, typists, r in results:
        print(
            f"| {label} | {typists} | {r['requests']} | {r['failures']} | {r['p50']:.1f} | {r['p99']:.1f} | "
            f"{r['batches']} | {r['claimed']} | {r['no_op']} | {r['replies']} | {r['lag50']:.3f} | {r['lag99']:.3f} |"
        )


if __name__ == "__main__":
    main()
