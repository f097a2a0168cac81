"""Reliability figures of issue 14, measured against real processes on 127.0.0.1. Not tests: the
figures depend on the machine and its load.

1. The largest number of concurrent requests one replica serves with no 503: bursts of distinct
   requests (latency simulation off, no budget reached) at doubling sizes up to --max-concurrency.
2. Overspend at --overspend-requests concurrent requests over two replicas sharing one Valkey, for a
   team whose budget is far smaller than the burst would cost.
3. Statuses during a Valkey outage (killed under steady load, restarted on the same port with its
   append-only file), and the time from the restart to the first answered request, per
   ``budgets.on_store_error`` mode.

    .venv/bin/python bench/reliability_probe.py [--max-concurrency 1600] [--overspend-requests 1000]

The scenarios are the reliability tests' own (tests/ai_gateway/reliability_support.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(REPO.parent / "shared" / "tiktoken"))

from finops_common.arguments import at_least  # noqa: E402
from finops_common.process import embedded_valkey  # noqa: E402
from tests.ai_gateway.reliability_support import (  # noqa: E402
    budget_row,
    burst,
    gateways,
    run_outage,
    served_cost,
    settings,
    statuses,
    team,
)

MODEL = "gpt-4"


def largest_concurrency_without_503(max_concurrency: int) -> None:
    print("1. Concurrent requests to one replica (one Valkey, latency off)")
    best, failed = 0, None
    with tempfile.TemporaryDirectory() as tmp, embedded_valkey() as url:
        config = settings(team("probe", usd=1_000_000.0))
        with gateways(Path(tmp), config, 1, url) as (gateway,):

            def serves_all(size: int) -> bool:
                counts = statuses(asyncio.run(burst([gateway.url], "probe", size, MODEL)))
                print(f"   {size:>5} at once: {dict(sorted(counts.items(), key=str))}")
                return set(counts) == {200}

            size = 25
            while size <= max_concurrency and failed is None:
                best, failed = (size, None) if serves_all(size) else (best, size)
                size *= 2
            for _ in range(3 if failed else 0):
                middle = (best + failed) // 2
                best, failed = (middle, failed) if serves_all(middle) else (best, middle)
    limit = f"(first failure at {failed})" if failed else f"(no failure up to {max_concurrency})"
    print(f"   largest burst served with no 503: {best} {limit}")


def overspend(requests: int) -> None:
    budget = 0.5
    print(f"2. Overspend at {requests} concurrent requests, two replicas, budget ${budget}")
    config = settings(team("probe", usd=budget))
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_valkey() as url,
        gateways(Path(tmp), config, 2, url) as replicas,
    ):
        responses = asyncio.run(burst([g.url for g in replicas], "probe", requests, MODEL))
        spent = budget_row(replicas[0], "probe")["spent_usd"]
    counts = dict(sorted(statuses(responses).items(), key=str))
    print(f"   statuses: {counts}")
    print(f"   sum of cost headers ${served_cost(responses):.6f}; ledger ${spent:.6f}")
    print(f"   overspend: ${max(spent - budget, 0):.6f}")


def outage() -> None:
    print("3. Valkey killed under steady load (8 clients) for 3 s, then restarted")
    for mode in ("closed", "open"):
        with tempfile.TemporaryDirectory() as tmp:
            seen = run_outage(Path(tmp), mode)
        during = dict(sorted(seen.statuses_during.items(), key=str))
        probe = seen.probe_during
        recovery = "none within 10 s" if seen.recovery_s is None else f"{seen.recovery_s:.2f} s"
        print(f"   on_store_error={mode}: statuses during the outage {during}")
        retry_after = probe.headers.get("retry-after")
        print(f"     readiness during it {sorted(seen.readyz_during)}; a request got "
              f"{probe.status_code} with retry-after {retry_after}")  # fmt: skip
        before, after = seen.spent_before_kill, seen.spent_after_restart
        print(f"     recovery after the restart: {recovery}; "
              f"spend before the kill ${before:.6f}, after ${after:.6f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-concurrency", type=at_least(1), default=1600)
    parser.add_argument("--overspend-requests", type=at_least(1), default=1000)
    args = parser.parse_args()
    largest_concurrency_without_503(args.max_concurrency)
    overspend(args.overspend_requests)
    outage()


if __name__ == "__main__":
    main()
