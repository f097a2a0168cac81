"""A new replica's warm-up at N semantic entries (issue 12), with the store filled directly.

Filling 100k entries through HTTP takes longer than this machine allows, so the script writes them
straight into a throwaway Valkey in the store's own format: each answer under its key, each
(scope, vector, prompt, ref) on the semantic log, vectors from the gateway's embedder and the scope
the gateway computes for the benchmark's request. A first in-process replica then mirrors the log
(building the HNSW graph) and saves the snapshot, as a running replica does. Then ``--tail`` more
entries are written, by default the longest log tail the snapshot policy lets a new replica find
(``semantic.SnapshotPolicy``), the worst case. Then a new gateway process is timed from start to
``/readyz`` 200 and to a semantic hit on a light rephrasing of a known entry, and its resident
memory is read from /proc.

    .venv/bin/python bench/warmup_bench.py [--entries 100000] [--tail N] [--record]

``--record`` writes the figures to services/finops_sim/rightsize/gateway_memory.json, the file the
rightsizing rule reads for the gateway's memory request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
from compare import gateway_config, machine, time_new_replica
from compare_workload import chat_body, miss_prompt

from ai_gateway.adapters.openai import OpenAIAdapter
from ai_gateway.cache import CachedCompletion
from ai_gateway.catalog import Catalog
from ai_gateway.embeddings import open_embedder
from ai_gateway.pricing import default_price_table
from ai_gateway.semantic import (
    ENTRY_PREFIX,
    LOG,
    SNAPSHOT_POLICY,
    SemanticCache,
    semantic_scope,
)
from ai_gateway.settings import load_settings
from ai_gateway.simulator import SimulatedProvider
from ai_gateway.store import KEY_PREFIX, RedisStore
from finops_common.arguments import at_least, positive_number
from finops_common.process import embedded_valkey

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "services" / "finops_sim" / "rightsize" / "gateway_memory.json"
RUN = 424242
# The new replica's peak memory is read once it has saved a snapshot (with one new entry to save).
PEAK_AFTER_S = SNAPSHOT_POLICY.max_interval_s + 15
BATCH = 2000


def benchmark_scope(settings_path: Path) -> str:
    """The scope the gateway files the benchmark's requests under (team-a, the named model)."""
    settings = load_settings("optimized", settings_path)
    request = OpenAIAdapter().parse(json.loads(chat_body(miss_prompt(RUN, 0))))
    catalog = Catalog(default_price_table(), settings.routing, SimulatedProvider(0))
    models = catalog.answering_models(
        catalog.requested(request), settings.teams["team-a"].routing == "all"
    )
    return semantic_scope("team-a", models, request)


def fill(redis_url: str, scope: str, first: int, count: int, model: str, ttl: int) -> float:
    """Write ``count`` answers and log entries, from prompt number ``first``, straight into
    Valkey; returns the seconds."""
    embedder = open_embedder("model2vec", model)
    answer = CachedCompletion("gpt-4o-mini", "A cached answer.", 20, 4, "stop", 0.0)
    value = json.dumps(answer.__dict__).encode()
    client = redis.Redis.from_url(redis_url)
    started = time.monotonic()
    for start in range(first, first + count, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + BATCH, first + count)):
            prompt = miss_prompt(RUN, i)
            ref = f"{ENTRY_PREFIX}{scope}:{i}"
            vector = np.ascontiguousarray(embedder.embed(prompt), dtype=np.float32)
            pipe.set(KEY_PREFIX + ref, value, ex=ttl)
            fields = {"scope": scope, "vector": vector.tobytes(), "prompt": prompt, "ref": ref}
            pipe.xadd(KEY_PREFIX + LOG, fields)
        pipe.execute()
    client.close()
    return time.monotonic() - started


async def snapshot(redis_url: str, dimensions: int, ttl: int) -> tuple[int, float]:
    """What a running replica does: mirror the log into its indexes, then save the snapshot."""
    store = RedisStore(redis_url)
    cache = SemanticCache(store, dimensions, 0.6, True, ttl, 200_000)
    started = time.monotonic()
    mirrored = await cache.sync()
    await cache.save_snapshot()
    await store.close()
    return mirrored, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=at_least(1), default=100_000)
    parser.add_argument(
        "--tail",
        type=at_least(0),
        default=SNAPSHOT_POLICY.max_tail - 1,
        help="entries written after the snapshot, for the new replica to replay (default: the "
        "longest tail the snapshot policy leaves, the worst case)",
    )
    parser.add_argument(
        "--timeout", type=positive_number, default=120.0, help="seconds for the replica"
    )
    parser.add_argument("--record", action="store_true", help=f"write {RECORD.name}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-warmup-") as tmp_dir:
        tmp = Path(tmp_dir)
        config = gateway_config(tmp, "optimized")
        settings = load_settings("optimized", config)
        semantic = settings.cache.semantic
        if not semantic.model:
            sys.exit("set GATEWAY_EMBEDDING_MODEL to the model2vec model folder")
        scope = benchmark_scope(config)
        with embedded_valkey() as redis_url:
            model, ttl = semantic.model, semantic.ttl_seconds
            fill_s = fill(redis_url, scope, 0, args.entries, model, ttl)
            print(f"wrote {args.entries:,} entries into Valkey in {fill_s:.1f} s", flush=True)
            dims = open_embedder("model2vec", model).dimensions
            mirrored, build_s = asyncio.run(snapshot(redis_url, dims, ttl))
            print(f"first replica mirrored {mirrored:,} and saved the snapshot in {build_s:.0f} s")
            fill(redis_url, scope, args.entries, args.tail, model, ttl)
            print(f"wrote {args.tail:,} more entries after the snapshot", flush=True)
            replica = time_new_replica(
                redis_url, config, tmp / "replica.log", args.timeout, RUN, PEAK_AFTER_S
            )
    result = {
        **machine(),
        "entries": args.entries,
        "tail_entries": args.tail,
        "fill_s": round(fill_s, 1),
        "first_replica_build_s": round(build_s, 1),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in replica.items()},
    }
    print(
        f"new replica (replaying {args.tail:,} entries): /readyz 200 after "
        f"{replica['readyz_s']:.1f} s, first semantic hit after "
        f"{replica['warm_s']:.1f} s; resident memory {replica['rss_mib']:.0f} MiB, peak "
        f"{replica['peak_rss_mib']:.0f} MiB once it saved a snapshot"
    )
    if args.record:
        RECORD.write_text(json.dumps(result, indent=2) + "\n")
        print(f"recorded in {RECORD.relative_to(ROOT)}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
