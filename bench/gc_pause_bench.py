"""What the garbage collector costs a replica as its semantic cache grows (issue 12's latency).

A full collection visits every object the collector tracks, while the event loop waits. The
script builds the gateway as the server does (``optimized`` profile, latency off, team-a's limits
too high to refuse, in-process store), starts it, moves start-up's objects out of the collector's
sight as the server does (``gc.freeze``), then serves ``--entries`` optimized misses (each a new
prompt of ``make bench-compare``'s workload, so each adds a semantic entry and extracts the guard's
terms of its prompt) straight through the pipeline, no HTTP. It prints:

- the automatic collections the fill set off, per generation (gen0 and gen1 young, gen2 full):
  how many, the median and the longest pause;
- the objects the collector tracks afterwards, per entry;
- the pause of one full collection at that size (the median of five).

    taskset -c 1 .venv/bin/python bench/gc_pause_bench.py [--entries 30000]

(``taskset`` keeps it on one core, as the README's figures were measured.)

``PYTHONPATH=<checkout>/services`` measures another revision with this script.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from compare import gateway_config, machine
from compare_workload import API_KEY, chat_body, miss_prompt

import ai_gateway
from ai_gateway.adapters.openai import OpenAIAdapter
from ai_gateway.settings import load_settings
from ai_gateway.wiring import build_gateway
from finops_common.arguments import at_least

RUN = 7  # the workload's prompt family; any fixed number


class PauseLog:
    """Every automatic collection's generation and pause, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses_ms: dict[int, list[float]] = defaultdict(list)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            elapsed_ms = (time.perf_counter() - self._started) * 1000
            self.pauses_ms[info["generation"]].append(elapsed_ms)


def full_collection_ms(rounds: int = 5) -> float:
    """The median pause of ``rounds`` explicit full collections, back to back."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        gc.collect()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def fill(entries: int, progress_every: int) -> dict[str, Any]:
    """Serve ``entries`` misses and measure; see the module docstring for the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings("optimized", gateway_config(Path(tmp), "optimized"))
    gateway = build_gateway(settings)
    team = gateway.identity.team(API_KEY)
    adapter = OpenAIAdapter()
    await gateway.start()
    gc.collect()
    gc.freeze()
    log = PauseLog()
    gc.callbacks.append(log)
    try:
        started = time.perf_counter()
        for n in range(entries):
            request = adapter.parse(json.loads(chat_body(miss_prompt(RUN, n))))
            completion = await gateway.complete(request, team)
            if completion.cache != "miss":
                raise RuntimeError(f"request {n} was a {completion.cache} hit, not a miss")
            if progress_every and (n + 1) % progress_every == 0:
                print(f"  {n + 1:,} entries", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - started
        gc.callbacks.remove(log)
        if gateway.semantic is not None:
            await gateway.semantic.sync()  # the last answer's entry, which no lookup has read yet
        gc.collect()
        return {
            "entries": entries,
            "semantic_entries": gateway.semantic.size if gateway.semantic else 0,
            "ms_per_miss": elapsed / entries * 1000,
            "collections": {
                f"gen{generation}": {
                    "count": len(pauses),
                    "median_ms": statistics.median(pauses),
                    "longest_ms": max(pauses),
                }
                for generation, pauses in sorted(log.pauses_ms.items())
            },
            "tracked_objects": len(gc.get_objects()),
            "full_collection_ms": full_collection_ms(),
        }
    finally:
        if log in gc.callbacks:
            gc.callbacks.remove(log)
        await gateway.close()
        gc.unfreeze()  # for a caller in the same process (the tests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=at_least(1), default=30_000, help="misses to serve")
    args = parser.parse_args(argv)
    print(f"ai_gateway from {Path(ai_gateway.__file__).parent}; {machine()}", flush=True)
    result = asyncio.run(fill(args.entries, progress_every=max(args.entries // 10, 1)))
    print(
        f"{result['semantic_entries']:,} semantic entries after {result['entries']:,} misses "
        f"({result['ms_per_miss']:.2f} ms each, in process, no HTTP)"
    )
    print("| generation | automatic collections | median pause ms | longest pause ms |")
    print("|---|---:|---:|---:|")
    for generation, figures in result["collections"].items():
        print(
            f"| {generation} | {figures['count']:,} | {figures['median_ms']:.1f} "
            f"| {figures['longest_ms']:.1f} |"
        )
    per_entry = result["tracked_objects"] / result["entries"]
    print(
        f"tracked objects afterwards: {result['tracked_objects']:,} ({per_entry:.2f} per entry); "
        f"one full collection: {result['full_collection_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
