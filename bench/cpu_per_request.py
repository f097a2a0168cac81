"""Issue 11's "no throughput lost", measured as the gateway's own CPU time per request.

Requests per second move with everything else the machine runs; the CPU time the gateway process
spends (user + system from /proc/<pid>/stat, read before and after a batch) moves far less. This
compares the current tree with a baseline revision (default 611a741, the Starlette gateway before
the reshape), checked out in a throwaway git worktree. Both run with this venv's interpreter and
``PYTHONPATH=<checkout>/services`` (each child prints the ``ai_gateway`` it imported), latency
simulation off, in-process store.

Kinds: ``unoptimized`` plain requests; ``optimized`` misses (every prompt new) and exact hits (one
repeated prompt), team-a's limits too high to refuse. Each kind: a warm-up, then the measured
requests, ``--concurrency`` in flight from one httpx AsyncClient on 127.0.0.1. Rounds alternate
baseline and current, a fresh process per profile and round. Prints a markdown table of the median
over rounds (min-max); everything started is stopped and the worktree removed at the end.

    .venv/bin/python bench/cpu_per_request.py [--baseline 611a741] [--rounds 3] [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from compare import gateway_config
from compare_workload import API_KEY, PATH, REPEATED_PROMPT, chat_body, miss_prompt

from finops_common.arguments import at_least
from finops_common.process import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KINDS = {"unoptimized": ("plain",), "optimized": ("miss", "exact hit")}
# The child prints the package it imported, then runs that checkout's CLI.
LAUNCHER = (
    "import sys, ai_gateway; print('ai_gateway from', ai_gateway.__file__, flush=True); "
    "from ai_gateway.cli import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Checkout:
    label: str
    services: Path
    knows_metrics_port: bool  # the reshaped CLI serves /metrics apart; the old one has no flag


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process, all threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15


def child_env(checkout: Checkout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # in-process store
    env["PYTHONPATH"] = str(checkout.services)
    if (SHARED / "tiktoken").is_dir():
        env.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED / "tiktoken"))
    if (SHARED / "models" / "minilm-l6-m2v-256").is_dir():
        env.setdefault("GATEWAY_EMBEDDING_MODEL", str(SHARED / "models" / "minilm-l6-m2v-256"))
    return env


@contextmanager
def running_gateway(
    checkout: Checkout, profile: str, tmp: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """A gateway of ``checkout`` answering /readyz; stopped on leaving, whatever happens."""
    port = free_port()
    args = ["--profile", profile, "--config", str(gateway_config(tmp, profile))]
    args += ["--port", str(port), "--log-level", "warning"]
    if checkout.knows_metrics_port:
        args += ["--metrics-port", "0"]
    log_path = tmp / f"{checkout.label}-{profile}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, *args],
            env=child_env(checkout),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(process, f"http://127.0.0.1:{port}/readyz", 120, checkout.label, log_path)
            imported = log_path.read_text().splitlines()[0]
            if str(checkout.services) not in imported:
                raise RuntimeError(f"{checkout.label}: wrong code imported: {imported}")
            yield process, f"http://127.0.0.1:{port}", imported
        finally:
            stop(process)


async def send(base: str, prompts: list[str], concurrency: int) -> Counter[str]:
    """Every prompt once, ``concurrency`` in flight; counts of status and x-gateway-cache."""
    seen: Counter[str] = Counter()
    queue = iter(prompts)
    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def worker() -> None:
            for prompt in queue:
                response = await client.post(PATH, content=chat_body(prompt), timeout=30)
                seen[f"{response.status_code} {response.headers.get('x-gateway-cache', '-')}"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return seen


def prompts_for(kind: str, count: int, runs: Iterator[int]) -> list[str]:
    if kind == "exact hit":
        return [REPEATED_PROMPT] * count
    run = next(runs)
    return [miss_prompt(run, i) for i in range(count)]


def measure(
    process: subprocess.Popen[bytes],
    base: str,
    kind: str,
    args: argparse.Namespace,
    runs: Iterator[int],
) -> tuple[float, Counter[str]]:
    """Milliseconds of gateway CPU per request over the measured batch, after a warm-up."""
    asyncio.run(send(base, prompts_for(kind, args.warmup, runs), args.concurrency))
    prompts = prompts_for(kind, args.requests, runs)
    before = cpu_seconds(process.pid)
    seen = asyncio.run(send(base, prompts, args.concurrency))
    spent = cpu_seconds(process.pid) - before
    return 1000 * spent / args.requests, seen


@contextmanager
def baseline_checkout(rev: str, tmp: Path) -> Iterator[Path]:
    path = tmp / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=True
        )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def table(results: dict[tuple[str, str], list[float]], old: str, new: str) -> str:
    rows = [
        f"| kind | {old} ms CPU/request | {new} ms CPU/request | change |",
        "|---|---|---|---|",
    ]
    for profile, kinds in KINDS.items():
        for kind in kinds:
            name = f"{profile} {kind}"
            before, after = results[(old, name)], results[(new, name)]
            change = 100 * (statistics.median(after) / statistics.median(before) - 1)
            rows.append(f"| {name} | {spread(before)} | {spread(after)} | {change:+.1f}% |")
    return "\n".join(rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="611a741", help="git revision to compare against")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--warmup", type=at_least(0), default=100)
    parser.add_argument("--requests", type=at_least(1), default=1000)
    parser.add_argument("--concurrency", type=at_least(1), default=8)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    old_label, new_label = f"baseline {args.baseline}", "current"
    results: dict[tuple[str, str], list[float]] = {}
    runs = itertools.count(time.time_ns() % 10**9)  # prompts new to every process
    with tempfile.TemporaryDirectory(prefix="cpu-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with baseline_checkout(args.baseline, tmp) as baseline:
            checkouts = (
                Checkout(old_label, baseline / "services", knows_metrics_port=False),
                Checkout(new_label, ROOT / "services", knows_metrics_port=True),
            )
            for profile, kinds in KINDS.items():
                for round_no, checkout in itertools.product(range(args.rounds), checkouts):
                    with running_gateway(checkout, profile, tmp) as (process, base, imported):
                        if round_no == 0:
                            print(f"{checkout.label}: {imported}", flush=True)
                        for kind in kinds:
                            ms, seen = measure(process, base, kind, args, runs)
                            results.setdefault((checkout.label, f"{profile} {kind}"), []).append(ms)
                            print(
                                f"round {round_no + 1} {checkout.label} {profile} {kind}: "
                                f"{ms:.3f} ms CPU/request {dict(seen)}",
                                flush=True,
                            )
    print()
    print(table(results, old_label, new_label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
