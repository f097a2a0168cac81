"""The metering stage alone: what an answer billed, saved and hit, in the gateway's counters."""

from __future__ import annotations

import pytest

from ai_gateway.domain import Completion
from ai_gateway.metering import Meter
from ai_gateway.metrics import GatewayMetrics
from ai_gateway.pricing import default_price_table
from ai_gateway.simulator import LatencyPlan
from ai_gateway.store import StoreUnavailable
from tests.ai_gateway.support import sample

TABLE = default_price_table()
SONNET = TABLE.models["claude-sonnet-4-6"]


def answer(**fields) -> Completion:
    defaults = {
        "requested_model": SONNET.name,
        "model": SONNET,
        "team": "team-a",
        "text": "ok",
        "prompt_tokens": 5000,
        "completion_tokens": 200,
        "finish_reason": "stop",
        "cost_usd": 0.0,
        "saved_usd": 0.0,
        "cache": "miss",
        "latency": LatencyPlan(0.0, 0.0),
    }
    return Completion(**{**defaults, **fields})


def test_a_miss_bills_each_token_type_at_its_price_and_they_add_up():
    metrics = GatewayMetrics()
    Meter(metrics, ("exact",), ("team-a",)).record(
        answer(cached_tokens=3000, cache_write_tokens=1000, cache_write_1h_tokens=400)
    )
    tokens = {
        kind: sample(metrics, "ai_tokens_total", type=kind, model=SONNET.name, team="team-a")
        for kind in ("input", "cached_input", "cache_write", "output")
    }
    assert tokens == {"input": 1000, "cached_input": 3000, "cache_write": 1000, "output": 200}
    cost = sum(
        sample(metrics, "ai_cost_total", type=kind, model=SONNET.name, team="team-a")
        for kind in tokens
    )
    assert cost == pytest.approx(SONNET.cost_usd(5000, 200, 3000, 1000, 400))
    assert sample(metrics, "ai_cache_misses_total", team="team-a") == 1


def test_a_hit_bills_nothing_and_counts_its_saving_as_the_caches():
    metrics = GatewayMetrics()
    Meter(metrics, ("exact", "semantic"), ("team-a",)).record(
        answer(cache="semantic", saved_usd=0.25)
    )
    assert sample(metrics, "ai_tokens_total", type="input", model=SONNET.name, team="team-a") == 0
    assert sample(metrics, "ai_cache_hits_total", kind="semantic", team="team-a") == 1
    assert sample(metrics, "ai_cost_saved_total", reason="cache", team="team-a") == 0.25


def test_a_routed_miss_counts_its_route_and_its_saving_as_routings():
    metrics = GatewayMetrics()
    Meter(metrics, (), ("team-a",), routing=True).record(
        answer(routed_from="claude-opus-4-7", saved_usd=0.5, prompt_cache_saved_usd=0.1)
    )
    routed = {"requested": "claude-opus-4-7", "served": SONNET.name}
    assert sample(metrics, "ai_routed_requests_total", **routed) == 1
    assert sample(metrics, "ai_cost_saved_total", reason="routing", team="team-a") == 0.5
    saved_by_provider = sample(
        metrics, "ai_cost_saved_total", reason="provider_prompt_cache", team="team-a"
    )
    assert saved_by_provider == pytest.approx(0.1)
    # No cache is on: no miss is counted, and no cache series exists to read as 0% hits.
    assert metrics.registry.get_sample_value("ai_cache_misses_total", {"team": "team-a"}) is None


def test_the_series_alerts_divide_by_exist_at_zero_before_any_request():
    metrics = GatewayMetrics()
    Meter(metrics, ("exact",), ("team-a", "team-b"), routing=True)
    for team in ("team-a", "team-b"):
        for name, labels in (
            ("ai_cache_hits_total", {"kind": "exact", "team": team}),
            ("ai_cache_misses_total", {"team": team}),
            ("ai_cost_saved_total", {"reason": "routing", "team": team}),
        ):
            assert metrics.registry.get_sample_value(name, labels) == 0, (name, labels)
    for status in ("200", "500", "503"):
        labels = {"api": "openai", "status": status}
        assert metrics.registry.get_sample_value("ai_requests_total", labels) == 0


async def test_a_store_failure_is_counted_and_answered_as_nothing():
    metrics = GatewayMetrics()
    meter = Meter(metrics, ("exact",), ("team-a",))

    async def failing() -> str:
        raise StoreUnavailable("connection refused")

    assert await meter.guarded(failing(), "exact_get") is None
    assert sample(metrics, "ai_store_errors_total", op="exact_get") == 1
    assert sample(metrics, "ai_store_up") == 0
