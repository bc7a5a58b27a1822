"""Webhook throughput benchmark: gunicorn started like production, wrk driving it from a separate process.

    python bench/webhook_bench.py [--duration 8] [--rounds 3] [--connections 32] [--web-concurrency 2]
                                  [--log-level INFO] [--against GIT_REF]

With --tracing, the run serves this checkout three times instead, each on its own port and database: traces off,
and traces on (OTEL_EXPORTER_OTLP_ENDPOINT, a local OTLP receiver that drops what it gets) sampling 100 % and 10 %;
it prints each traced server's requests/s and CPU per request against the untraced one's in the same round.

With --against, the same run also serves GIT_REF's code (exported from git, with a virtualenv of its own
requirements) on a second port and database, and the rounds alternate between the two trees, so each tree's
ratios to its own baseline are measured side by side at the same moments.

Prints, per event type and for a baseline (a bare DRF view doing one INSERT): requests/s, p50 and p99
latency and the count of non-2xx answers. The rows run in rounds (baseline, then each event, again and again)
and the table shows each row's median over the rounds: this machine's speed drifts by tens of percent over a
minute, and interleaving puts each event next to a baseline measured at the same moment. Needs `wrk`
(apt-get install wrk) and a local PostgreSQL.
"""

import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = {"host": os.environ.get("PGHOST", "127.0.0.1"), "port": 5432, "user": "postgres"}


def sql(dbname: str, *statements: str) -> None:
    connection = psycopg.connect(dbname=dbname, **PG)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.close()


def prepare_database(name: str) -> None:
    sql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')


def seed(database: str, threads: int, close_per_thread: int, pool: int) -> None:
    sql(
        database,
        "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, body text NOT NULL)",
        # Conversations that NEW_MESSAGE posts to, and conversations that CLOSE_CONVERSATION closes one by one.
        f"""INSERT INTO chat_conversation (id, status, created_at, updated_at)
            SELECT ('aaaaaaaa-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'OPEN', now(), now()
            FROM generate_series(0, {pool - 1}) AS n""",
        f"""INSERT INTO chat_conversation (id, status, created_at, updated_at)
            SELECT ('cccccccc-0000-4000-8000-' || lpad((t * {close_per_thread} + n)::text, 12, '0'))::uuid,
                   'OPEN', now(), now()
            FROM generate_series(0, {threads - 1}) AS t, generate_series(0, {close_per_thread - 1}) AS n""",
        "VACUUM ANALYZE",
    )


class Tree:
    """One version of the code, served by its own gunicorn on its own database."""

    def __init__(self, label: str, root: Path, python: Path, port: int, database: str, env: dict | None = None) -> None:
        self.label, self.root, self.python, self.port, self.database = label, root, python, port, database
        # What this server's environment adds (--tracing: the OpenTelemetry variables)
        self.env = env or {}
        self.web: subprocess.Popen | None = None

    @classmethod
    def from_git(cls, ref: str, port: int) -> "Tree":
        """GIT_REF's files (git archive) and a virtualenv with its pinned requirements, in a temporary folder."""
        commit = subprocess.run(
            ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        root = Path(tempfile.mkdtemp(prefix=f"bench-{commit}-"))
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True)
        pip = [str(root / ".venv" / "bin" / "pip"), "install", "--quiet", "-r", str(root / "requirements.txt")]
        subprocess.run(pip, check=True, capture_output=True)
        return cls(commit, root, root / ".venv" / "bin" / "python", port, f"realmate_bench_{commit}")

    def start(self, web_concurrency: int, log_level: str) -> None:
        prepare_database(self.database)
        workdir = tempfile.mkdtemp(prefix="bench-")
        self.web = start_web(self, web_concurrency, workdir, log_level)

    def stop(self) -> None:
        if self.web is not None:
            os.killpg(self.web.pid, signal.SIGTERM)
            self.web.wait(20)


def start_web(tree: Tree, web_concurrency: int, static_root: str, log_level: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PATH": f"{tree.python.parent}:{os.environ['PATH']}",
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"postgres://postgres@{PG['host']}:5432/{tree.database}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
        "STATIC_ROOT": static_root,
        "BIND": f"127.0.0.1:{tree.port}",
        "WEB_CONCURRENCY": str(web_concurrency),
        "LOG_LEVEL": log_level,
        **tree.env,
    }
    process = subprocess.Popen(
        [str(tree.root / "bin" / "entrypoint.sh"), "web"],
        cwd=tree.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(Path(static_root) / "web.log", "w"),
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{tree.port}/conversations/", timeout=1)
            return process
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not come up; see " + static_root + "/web.log")


def run_wrk(url: str, event: str, duration: int, connections: int, threads: int, env: dict) -> dict:
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "webhook.lua"),
            url,
        ],
        env={**os.environ, **env, "EVENT": event},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(output)


def server_cpu_seconds(web_pgid: int) -> tuple[float, float]:
    """CPU time used so far by gunicorn (its process group) and by every PostgreSQL process, in that order.

    CPU per request is steadier than requests/s on a machine whose speed drifts, and it counts the database's
    share of the work, which requests/s alone hides.
    """
    web = database = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        command = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        # After the command: state, ppid, pgrp, ...; utime and stime are fields 14 and 15 of the whole line,
        # cutime and cstime (children that ended and were reaped) 16 and 17.
        if int(fields[2]) == web_pgid:
            web += int(fields[11]) + int(fields[12])
        elif command == "postgres":
            database += int(fields[11]) + int(fields[12])
            # The postmaster also counts its backends that ended: a connection closed mid-run keeps its CPU.
            database += int(fields[13]) + int(fields[14])
    return web / os.sysconf("SC_CLK_TCK"), database / os.sysconf("SC_CLK_TCK")


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def parse_wrk(output: str) -> dict:
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": to_ms(latency["50"]),
        "p99": to_ms(latency["99"]),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "socket_errors": errors.group(1) if errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per row and round (at most 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--web-concurrency", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the servers (INFO: the shipped default)")
    trees = parser.add_mutually_exclusive_group()
    trees.add_argument("--against", metavar="GIT_REF", help="also serve this commit's code, rounds alternating")
    parser.add_argument("--port", type=int, default=8765)
    trees.add_argument("--tracing", action="store_true", help="traces off, sampled 100 %% and 10 %%, side by side")
    args = parser.parse_args()
    from bench.shutdown import sigterm_exits

    sigterm_exits()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    if args.duration > 10:
        raise SystemExit("--duration is at most 10: each round has 10,000 conversations per wrk thread to close")

    close_per_round = 10000
    close_per_thread = close_per_round * args.rounds
    pool = 1000
    collector = None
    if args.tracing:
        from tests.otlp_receiver import OtlpReceiver

        collector = OtlpReceiver(keep=False).start()
        trees = tracing_trees(args.port, collector.endpoint)
    else:
        trees = [Tree("this checkout", ROOT, Path(sys.executable), args.port, "realmate_bench")]
        if args.against:
            trees.append(Tree.from_git(args.against, args.port + 1))
    results = {tree.label: {label: [] for label, _, _ in ROWS} for tree in trees}
    try:
        for tree in trees:
            tree.start(args.web_concurrency, args.log_level)
            seed(tree.database, args.threads, close_per_thread, pool)
        env = {"MESSAGE_POOL": str(pool), "CLOSE_PER_THREAD": str(close_per_thread)}
        for tree in trees:  # warm-up
            url = f"http://127.0.0.1:{tree.port}/webhook/"
            run_wrk(url, "NEW_CONVERSATION", 3, args.connections, args.threads, env)
        for round_number in range(args.rounds):
            env["CLOSE_OFFSET"] = str(round_number * close_per_round)
            # Alternate which tree goes first, so neither always meets the machine in the same phase.
            for tree in trees if round_number % 2 == 0 else trees[::-1]:
                for label, path, event in ROWS:
                    web_before, database_before = server_cpu_seconds(tree.web.pid)
                    url = f"http://127.0.0.1:{tree.port}{path}"
                    result = run_wrk(url, event, args.duration, args.connections, args.threads, env)
                    web_after, database_after = server_cpu_seconds(tree.web.pid)
                    result["web_ms"] = (web_after - web_before) * 1000 / result["requests"]
                    result["db_ms"] = (database_after - database_before) * 1000 / result["requests"]
                    results[tree.label][label].append(result)
    finally:
        for tree in trees:
            tree.stop()
        if collector is not None:
            collector.stop()
    for tree in trees:
        print_table(tree.label, results[tree.label], args)
    if args.tracing:
        print_tracing_comparison(results, trees)
        print(f"\nspans received by the OTLP receiver: {collector.count:,}")
    elif len(trees) == 2:
        print_comparison(results, trees)


def tracing_trees(port: int, endpoint: str) -> list[Tree]:
    """This checkout three times: traces off, then on at 100 % and at 10 % (the SDK's own sampler variables)."""
    python = Path(sys.executable)
    trees = [Tree("traces off", ROOT, python, port, "realmate_bench")]
    for offset, share in ((1, "1.0"), (2, "0.1")):
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": share,
        }
        label = f"traces sampled {float(share):.0%}"
        trees.append(Tree(label, ROOT, python, port + offset, f"realmate_bench_traces_{offset}", env))
    return trees


ROWS = [
    ("baseline (bare DRF view, one INSERT)", "/bench/baseline/", "baseline"),
    ("NEW_CONVERSATION", "/webhook/", "NEW_CONVERSATION"),
    ("NEW_MESSAGE", "/webhook/", "NEW_MESSAGE"),
    ("CLOSE_CONVERSATION", "/webhook/", "CLOSE_CONVERSATION"),
]


def ratios(rounds: dict[str, list[dict]], label: str) -> list[float]:
    """Each round's requests/s of `label` over the same round's baseline."""
    baselines = [r["rps"] for r in rounds[ROWS[0][0]]]
    return [r["rps"] / b for r, b in zip(rounds[label], baselines, strict=True)]


def print_table(tree: str, results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    """Medians over the rounds; `vs baseline` is the median of each round's ratio to that round's baseline.

    CPU ms/req is the CPU gunicorn (web) and PostgreSQL (db) spent per request; wrk's is not counted.
    """
    print(
        f"\n{tree}: {args.connections} connections, {args.rounds} rounds of {args.duration} s per row, "
        f"gunicorn {args.web_concurrency} {os.environ.get('GUNICORN_WORKER_CLASS', 'sync')} workers, "
        f"LOG_LEVEL={args.log_level}, wrk on the same {os.cpu_count()}-core machine\n"
    )
    print(
        f"| {'endpoint':38} | {'req/s':>7} | {'range':>11} | {'vs baseline':>11} | {'p50 ms':>7} | {'p99 ms':>7} "
        f"| {'non-2xx':>7} | {'CPU ms/req web + db':>22} |"
    )
    print(f"|{'-' * 40}|{'-' * 9}|{'-' * 13}|{'-' * 13}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 24}|")
    for label, rounds in results.items():
        rps = [r["rps"] for r in rounds]
        ratio = statistics.median(ratios(results, label))
        errors = "; ".join(r["socket_errors"] for r in rounds if r["socket_errors"])
        p50 = statistics.median(r["p50"] for r in rounds)
        p99 = statistics.median(r["p99"] for r in rounds)
        web_ms = statistics.median(r["web_ms"] for r in rounds)
        db_ms = statistics.median(r["db_ms"] for r in rounds)
        print(
            f"| {label:38} | {statistics.median(rps):7.0f} | {min(rps):5.0f}-{max(rps):<5.0f} | {ratio:10.0%} "
            f"| {p50:7.1f} | {p99:7.1f} "
            f"| {sum(r['non_2xx'] for r in rounds):7d} | {web_ms:8.2f} + {db_ms:4.2f} = {web_ms + db_ms:4.2f} |"
            + (f" socket errors: {errors}" if errors else "")
        )


def print_comparison(results: dict[str, dict[str, list[dict]]], trees: list[Tree]) -> None:
    """Each event's ratio to its own tree's baseline, this checkout against the other tree, in points."""
    new, old = trees[0].label, trees[1].label
    print(f"\n| event | {new} vs baseline | {old} vs baseline | change, points |")
    print("|---|---:|---:|---:|")
    for label, _, _ in ROWS[1:]:
        ours, theirs = statistics.median(ratios(results[new], label)), statistics.median(ratios(results[old], label))
        print(f"| {label} | {ours:.0%} | {theirs:.0%} | {100 * (ours - theirs):+.0f} |")


def print_tracing_comparison(results: dict[str, dict[str, list[dict]]], trees: list[Tree]) -> None:
    """Each traced server against the untraced one, row by row: requests/s as the median of each round's ratio (the
    rows ran side by side), and the CPU gunicorn spent per request, the medians' difference."""
    off = results[trees[0].label]
    print(f"\n| endpoint | {' | '.join(f'{t.label}: req/s vs off | web CPU ms/req vs off' for t in trees[1:])} |")
    print("|---|" + "---:|---:|" * (len(trees) - 1))
    for label, _, _ in ROWS:
        cells = []
        for tree in trees[1:]:
            on = results[tree.label][label]
            ratio = statistics.median(a["rps"] / b["rps"] for a, b in zip(on, off[label], strict=True))
            cpu = statistics.median(r["web_ms"] for r in on) - statistics.median(r["web_ms"] for r in off[label])
            cells += [f"{ratio:.1%}", f"{cpu:+.3f}"]
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
