"""Gateway benchmarks. Not tests: the figures depend on the machine and its load.

1. Throughput and added latency with simulated provider latency off (latency_scale=0): requests
   per second and client-observed p50/p99 for a cache miss and a cache hit, with the in-process
   store and with a real Valkey. Bounded in requests and time; only 127.0.0.1.
2. Semantic cache lookup p50/p99 with 1k, 10k and 100k entries in one scope, on a real Valkey:
   sync with the shared log, the look-up among the prompt's candidates (its block), guard, and
   the answer's GET.
3. Complexity classifier time per request on the labelled prompts.

    .venv/bin/python bench/gateway_bench.py [--requests 2000] [--concurrency 16]
        [--sizes 1000,10000,100000] [--skip-http]
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

from finops_common.arguments import at_least, counts_at_least, positive_number
from finops_common.process import GatewayProcess, embedded_valkey

SHARED_TIKTOKEN = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
SHARED_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "minilm-l6-m2v-256"
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

        # Warm up (connections, first cache entry, lazy imports); not measured.
        for i in range(concurrency * 4):
            prompt = f"Warm-up prompt {i}" if unique else "Benchmark prompt, repeated"
            await http.post(
                "/v1/chat/completions",
                json={
                    "model": "gpt-4o-mini",
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": prompt}],
                },
            )
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


def run_case(store: str, redis_url: str | None, args: argparse.Namespace, tmp: Path) -> list[str]:
    config = tmp / "bench.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "latency_scale": 0,
                "routing": {"enabled": False},
                "teams": {"team-a": {"keys": ["sk-demo-team-a"]}},
            }  # no limits: measure the pipeline, not a 429
        )
    )
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


def semantic_lookups(sizes: list[int], redis_url: str, lookups: int = 2000) -> list[str]:
    """Fill one scope with N entries through SemanticCache.add, then time lookups."""
    import numpy as np

    from ai_gateway.cache import CachedCompletion
    from ai_gateway.embeddings import LexicalEmbedder, Model2VecEmbedder
    from ai_gateway.semantic import SemanticCache
    from ai_gateway.store import RedisStore

    model = os.environ.get("GATEWAY_EMBEDDING_MODEL")
    embedder = Model2VecEmbedder(model) if model else LexicalEmbedder()
    topics = ["invoice", "refund", "cluster", "password", "shipment", "budget", "report", "alert"]
    verbs = ["cancel", "explain", "summarize", "update", "compare", "export", "review", "find"]
    answer = CachedCompletion("gpt-4", "cached answer", 20, 40, "stop", 0.003)
    rows = []

    async def run(size: int) -> str:
        import redis as redis_sync

        redis_sync.Redis.from_url(redis_url).flushall()
        store = RedisStore(redis_url)
        cache = SemanticCache(store, embedder.dimensions, 0.85, True, 3600, size + 10)
        prompts = [
            f"Please {verbs[i % 8]} the {topics[(i // 8) % 8]} number {i} for account {i * 7}"
            for i in range(size)
        ]
        vectors = np.stack([embedder.embed(p) for p in prompts])
        for prompt, vector in zip(prompts, vectors, strict=True):
            await cache.add("bench", prompt, vector, answer)
        started = time.perf_counter()
        await cache.sync()
        sync_s = time.perf_counter() - started
        latencies, hits = [], 0
        for i in range(lookups):
            j = (i * 7919) % size
            query = prompts[j] if i % 2 else prompts[j].replace("Please ", "Hi, please ")
            vector = embedder.embed(query)
            started = time.perf_counter()
            outcome = await cache.lookup("bench", query, vector)
            latencies.append(time.perf_counter() - started)
            hits += outcome.hit is not None
        await store.close()
        return (
            f"| {size:>7,} | {lookups} | {statistics.median(latencies) * 1000:.2f} | "
            f"{percentile(latencies, 99) * 1000:.2f} | {hits / lookups:.0%} | {sync_s:.1f} s |"
        )

    for size in sizes:
        rows.append(asyncio.run(run(size)))
    return [f"embedder: {embedder.name}", *rows]


def classifier_time() -> str:
    """The learned router's decision time on the held-out prompts (features head: the embedding
    is the semantic cache's work; bench/router_eval.py times the embedding head as well)."""
    from ai_gateway.pricing import default_price_table
    from ai_gateway.router import default_router
    from ai_gateway.router_evaluation import evaluate_learned_router, load_routing_set

    data = load_routing_set(Path(__file__).resolve().parent / "data" / "routing_heldout.yaml")
    card = default_price_table().resolve("gpt-5.4")
    best = min(
        evaluate_learned_router(data.prompts, card, default_router(), None).seconds_per_decision
        for _ in range(5)
    )
    return f"router: {best * 1e6:.0f} µs per decision (mean over {len(data.prompts)} prompts)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=at_least(1), default=2000)
    parser.add_argument("--concurrency", type=at_least(1), default=16)
    parser.add_argument(
        "--max-seconds", type=positive_number, default=60.0, help="time cap per case"
    )
    parser.add_argument(
        "--sizes",
        type=counts_at_least(1),
        default=[1_000, 10_000, 100_000],
        help="semantic cache sizes",
    )
    parser.add_argument("--skip-http", action="store_true", help="only the in-process benchmarks")
    args = parser.parse_args()
    if "TIKTOKEN_CACHE_DIR" not in os.environ and SHARED_TIKTOKEN.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED_TIKTOKEN)
    if "GATEWAY_EMBEDDING_MODEL" not in os.environ and SHARED_MODEL.is_dir():
        os.environ["GATEWAY_EMBEDDING_MODEL"] = str(SHARED_MODEL)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"python {platform.python_version()}; load generator and gateway share the machine\n")
    with embedded_valkey() as valkey_url:
        if not args.skip_http:
            print(f"{args.requests} requests per case, concurrency {args.concurrency}")
            print("| store  | case | requests | req/s | p50 ms | p99 ms | statuses |")
            print("|---|---|---:|---:|---:|---:|---|")
            with tempfile.TemporaryDirectory() as tmp:
                for row in run_case("memory", None, args, Path(tmp)):
                    print(row)
                for row in run_case("valkey", valkey_url, args, Path(tmp)):
                    print(row)
        lines = semantic_lookups(args.sizes, valkey_url)
        print(f"\nsemantic lookup, one scope, Valkey; {lines[0]}")
        print("| entries | lookups | p50 ms | p99 ms | hits | initial sync |")
        print("|---:|---:|---:|---:|---:|---:|")
        for row in lines[1:]:
            print(row)
        print("\n" + classifier_time())


if __name__ == "__main__":
    main()
