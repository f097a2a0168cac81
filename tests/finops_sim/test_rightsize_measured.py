"""The scaling rule: CPU per request x the stack's load per replica, through the strategy."""

from __future__ import annotations

import math

import pytest

from finops_common.config import ConfigError
from finops_platform.config import load_stack
from finops_sim.results import GatewayUsage
from finops_sim.rightsize.measured import (
    CacheMemory,
    cache_memory,
    rate_percentile,
    size_gateway,
    stack_arrival,
)
from finops_sim.rightsize.strategy import MIB, Strategy
from loadgen.scenario import Arrival

FAST_MS = 1.0  # 20 users / 1 ms: a ceiling far above any arrival rate here


def usage(cpu_seconds: float = 3.0, requests: int = 600, rss_mib: float = 300.0) -> GatewayUsage:
    return GatewayUsage(
        source="test",
        wall_seconds=15.0,
        cpu_seconds=cpu_seconds,
        peak_rss_bytes=int(rss_mib * MIB),
        rss_samples=15,
        requests=requests,
    )


def test_a_steady_rate_is_its_own_percentile():
    assert rate_percentile(Arrival(pattern="steady", rate_per_second=40), 95) == pytest.approx(40)


def test_a_diurnal_rate_percentile_follows_the_cosine():
    arrival = Arrival(pattern="diurnal", rate_per_second=40, period_seconds=30, amplitude=0.5)
    # rate = 40 (1 - 0.5 cos 2πt/T): the median is the mean, the top is 40 x 1.5.
    assert rate_percentile(arrival, 50) == pytest.approx(40, rel=1e-2)
    assert rate_percentile(arrival, 100) == pytest.approx(60, rel=1e-4)
    # P95 of a cosine over a cycle: 1 - 0.5 cos(π x 0.95) ... by hand: cos(0.95π) = -0.98769.
    assert rate_percentile(arrival, 95) == pytest.approx(40 * (1 + 0.5 * 0.98769), rel=1e-3)


def test_bursts_count_in_the_percentile():
    arrival = Arrival(
        pattern="burst", rate_per_second=10, burst_every_seconds=20, burst_seconds=4,
        burst_multiplier=4,
    )  # fmt: skip
    assert rate_percentile(arrival, 50) == pytest.approx(10)
    assert rate_percentile(arrival, 95) == pytest.approx(40)  # a fifth of the cycle bursts


def test_cpu_per_request_times_the_rate_per_replica_rounded_up():
    config = load_stack("optimized")
    arrival = Arrival(pattern="steady", rate_per_second=50)
    strategy = Strategy()
    sizing = size_gateway(usage(cpu_seconds=3.0, requests=600), FAST_MS, config, arrival, strategy)
    replicas = config.workloads.gateway.replicas
    per_replica = 50 / replicas
    target_m = 3.0 / 600 * per_replica * 1000  # 5 ms per request
    assert sizing.cpu_seconds_per_request == pytest.approx(0.005)
    assert sizing.stack_replicas == replicas
    assert sizing.requests_per_second_per_replica == pytest.approx(per_replica)
    assert sizing.cpu_target_m == pytest.approx(target_m)
    step = strategy.cpu_step_m
    assert sizing.cpu_request_m == max(strategy.cpu_floor_m, math.ceil(target_m / step) * step)


def test_memory_is_the_peak_plus_headroom_not_scaled_by_load():
    config = load_stack("optimized")
    strategy = Strategy(memory_headroom=0.15, memory_step_mib=8)
    slow, fast = (
        size_gateway(usage(rss_mib=300), FAST_MS, config, Arrival(pattern="steady",
                     rate_per_second=rate), strategy)
        for rate in (1, 90)
    )  # fmt: skip
    assert slow.memory_bytes == fast.memory_bytes == math.ceil(300 * 1.15 / 8) * 8 * MIB
    assert fast.cpu_request_m > slow.cpu_request_m


def test_tiny_usage_gets_the_floors():
    config = load_stack("optimized")
    strategy = Strategy()
    sizing = size_gateway(
        usage(cpu_seconds=0.001, rss_mib=1),
        FAST_MS,
        config,
        Arrival(pattern="steady", rate_per_second=1),
        strategy,
    )
    assert sizing.cpu_request_m == strategy.cpu_floor_m
    assert sizing.memory_bytes == strategy.memory_floor_mib * MIB


def test_the_current_stack_request_is_reported_beside_it():
    config = load_stack("optimized")
    sizing = size_gateway(usage(), FAST_MS, config, stack_arrival(), Strategy())
    requests = config.workloads.gateway.resources.requests
    assert f"{sizing.stack_cpu_request_m}m" == requests.cpu
    assert f"{sizing.stack_memory_request_bytes // MIB}Mi" == requests.memory


def test_the_locust_users_cap_the_rate_by_littles_law():
    config = load_stack("optimized")
    users = config.workloads.locust.users
    arrival = Arrival(pattern="steady", rate_per_second=1000)
    sizing = size_gateway(usage(cpu_seconds=3.0, requests=600), 2000.0, config, arrival, Strategy())
    assert sizing.users_ceiling_requests_per_second == pytest.approx(users / 2.0)
    assert sizing.stack_requests_per_second == pytest.approx(users / 2.0)
    assert sizing.arrival_requests_per_second == pytest.approx(1000)
    replicas = config.workloads.gateway.replicas
    assert sizing.cpu_target_m == pytest.approx(0.005 * users / 2.0 / replicas * 1000)


def test_a_measurement_without_requests_is_refused():
    with pytest.raises(ValueError, match="no requests, CPU, memory or latency"):
        size_gateway(
            usage(requests=0), FAST_MS, load_stack("optimized"), stack_arrival(), Strategy()
        )


def test_memory_covers_the_full_semantic_cache_when_the_demo_peak_is_lower():
    config = load_stack("optimized")
    strategy = Strategy(memory_headroom=0.15, memory_step_mib=8)
    full = CacheMemory(entries=100_000, rss_bytes=400 * MIB, date="2026-11-30")
    arrival = stack_arrival()
    low = size_gateway(usage(rss_mib=231), FAST_MS, config, arrival, strategy, full)
    high = size_gateway(usage(rss_mib=500), FAST_MS, config, arrival, strategy, full)
    assert low.memory_bytes == math.ceil(400 * 1.15 / 8) * 8 * MIB
    assert high.memory_bytes == math.ceil(500 * 1.15 / 8) * 8 * MIB


def test_a_record_without_the_peak_names_the_missing_key(tmp_path):
    record = tmp_path / "gateway_memory.json"
    record.write_text('{"entries": 100000, "rss_mib": 349, "date": "2026-11-30"}')
    with pytest.raises(ConfigError, match="peak_rss_mib") as refused:
        cache_memory(record)
    assert str(record) in str(refused.value)


def test_the_recorded_full_cache_memory_is_readable():
    recorded = cache_memory()
    assert recorded.entries >= 100_000
    assert recorded.rss_bytes > 0
