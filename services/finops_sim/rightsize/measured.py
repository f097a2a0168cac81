"""The gateway's requests from the local simulation's measurement, scaled to the stack's load.

The rule:

- **CPU per request** = the optimized phase's gateway CPU seconds / the requests it handled,
  budget and rate-limit refusals included, since each costs the gateway CPU too and the stack's
  arrival rate below counts them (the optimized stack runs the optimized profile).
- **The stack's load** = the ``cpu_percentile`` (P95 by default, as for usage) of the arrival
  rate of the scenario the stack's Locust paces, over one cycle of its pattern, but no more than
  its ``users`` can send: each user has one request in flight, so by Little's law they send at
  most users / latency per second. The latency is the optimized phase's median (simulated
  provider time at list speed, as the cluster's gateway runs it, plus measured gateway time);
  the median is below the mean, so the ceiling errs high. Divided by the gateway's replicas.
- **CPU target** = CPU per request x that rate, in millicores.
- **Memory target** = the larger of the phase's peak resident memory and the gateway's peak
  resident memory with a full semantic cache (100k entries: restoring a snapshot, then saving
  one, which briefly holds a copy of the index), measured by ``bench/warmup_bench.py --record``
  into ``gateway_memory.json`` next to this module; neither is scaled by load: they are the
  interpreter, the embedding model and bounded in-process state, not a per-request cost. A short
  demo run fills far fewer cache entries than a cluster keeps, so its peak alone undersizes.
- Both go through ``strategy.assess`` like a Prometheus measurement: memory headroom, rounding
  steps and floors; the one sample is both the percentile and the peak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finops_common.config import ConfigError
from finops_platform.config import StackConfig, cpu_millicores, memory_mib
from loadgen.scenario import DEFAULT_SCENARIO, Arrival, load_scenario

from ..results import GatewaySizing, GatewayUsage
from .strategy import MIB, ContainerUsage, Series, Strategy, assess

RATE_SAMPLES = 1000  # points of the arrival pattern's cycle the rate percentile is taken over
SEMANTIC_MEMORY_RECORD = Path(__file__).with_name("gateway_memory.json")


@dataclass(frozen=True)
class CacheMemory:
    """The gateway's peak resident memory with ``entries`` semantic cache entries (a snapshot
    restored and one saved), and when it was measured."""

    entries: int
    rss_bytes: int
    date: str


def cache_memory(path: Path = SEMANTIC_MEMORY_RECORD) -> CacheMemory:
    """The figure ``bench/warmup_bench.py --record`` wrote."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return CacheMemory(
            int(record["entries"]), int(record["peak_rss_mib"] * MIB), record["date"][:10]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the gateway's full-cache memory (keys entries, peak_rss_mib, "
            f"date; written by bench/warmup_bench.py --record): {exc!r}"
        ) from exc


def stack_arrival() -> Arrival:
    """The arrival pattern the stack's Locust paces: the loadgen image runs the default scenario."""
    return load_scenario(DEFAULT_SCENARIO).arrival


def arrival_cycle_s(arrival: Arrival) -> float:
    """The length of one repetition of the pattern (any length for a steady rate)."""
    if arrival.pattern == "diurnal":
        return arrival.period_seconds
    return arrival.burst_every_seconds


def rate_percentile(arrival: Arrival, q: float) -> float:
    """The ``q``th percentile of the arrival rate over one cycle, in requests per second."""
    cycle = arrival_cycle_s(arrival)
    rates = [arrival.rate_at(cycle * i / RATE_SAMPLES) for i in range(RATE_SAMPLES)]
    return float(np.percentile(rates, q))


def size_gateway(
    usage: GatewayUsage,
    latency_p50_ms: float,
    config: StackConfig,
    arrival: Arrival,
    strategy: Strategy,
    full_cache: CacheMemory | None = None,
) -> GatewaySizing:
    """The measured figures, the stack's load, and the request they give (see the module doc)."""
    if (
        not usage.requests
        or usage.cpu_seconds <= 0
        or usage.peak_rss_bytes <= 0
        or (latency_p50_ms <= 0)
    ):
        raise ValueError(
            "the measurement has no requests, CPU, memory or latency: cannot size the gateway"
        )
    cpu_per_request = usage.cpu_seconds / usage.requests
    arrival_rate = rate_percentile(arrival, strategy.cpu_percentile)
    users = config.workloads.locust.users
    users_ceiling = users / (latency_p50_ms / 1000)
    stack_rate = min(arrival_rate, users_ceiling)
    replicas = config.workloads.gateway.replicas
    per_replica = stack_rate / replicas
    cpu_cores = cpu_per_request * per_replica
    peak_bytes = max(usage.peak_rss_bytes, full_cache.rss_bytes if full_cache else 0)
    sample = ContainerUsage(
        cpu=(Series("simulation", (0.0,), (cpu_cores,)),),
        memory=(Series("simulation", (0.0,), (float(peak_bytes),)),),
        resolution_s=strategy.resolution_s,
    )
    recommendation = assess(sample, strategy.model_copy(update={"min_history_s": 0})).recommendation
    assert recommendation is not None  # one sample of each, and no history needed
    current = config.workloads.gateway.resources.requests
    return GatewaySizing(
        stack=config.stack,
        measured_requests_per_second=usage.requests_per_second,
        measured_cpu_millicores=usage.cpu_millicores,
        cpu_seconds_per_request=cpu_per_request,
        peak_rss_bytes=usage.peak_rss_bytes,
        stack_rate_percentile=strategy.cpu_percentile,
        arrival_requests_per_second=arrival_rate,
        locust_users=users,
        latency_p50_ms=latency_p50_ms,
        users_ceiling_requests_per_second=users_ceiling,
        stack_requests_per_second=stack_rate,
        stack_replicas=replicas,
        cpu_target_m=cpu_cores * 1000,
        full_cache_entries=full_cache.entries if full_cache else 0,
        full_cache_rss_bytes=full_cache.rss_bytes if full_cache else 0,
        full_cache_measured=full_cache.date if full_cache else "",
        memory_target_bytes=peak_bytes * (1 + strategy.memory_headroom),
        memory_headroom=strategy.memory_headroom,
        cpu_step_m=strategy.cpu_step_m,
        cpu_floor_m=strategy.cpu_floor_m,
        memory_step_mib=strategy.memory_step_mib,
        memory_floor_mib=strategy.memory_floor_mib,
        cpu_request_m=recommendation.cpu_request_m,
        memory_bytes=recommendation.memory_bytes,
        stack_cpu_request_m=cpu_millicores(current.cpu),
        stack_memory_request_bytes=memory_mib(current.memory) * MIB,
    )
