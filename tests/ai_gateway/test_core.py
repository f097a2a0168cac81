"""The pipeline without HTTP: limits, determinism, exact cache and metering, on both stores."""

from __future__ import annotations

import pytest

from ai_gateway.core import ChatRequest, Gateway, GatewayError
from ai_gateway.metrics import GatewayMetrics
from ai_gateway.settings import GatewaySettings, deep_merge, load_settings
from ai_gateway.store import MemoryStore
from ai_gateway.tokens import PromptMessage


def ask(text: str, model: str = "gpt-4", **kwargs) -> ChatRequest:
    return ChatRequest(model=model, messages=(PromptMessage("user", text),), **kwargs)


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


EXACT_ONLY = {"cache": {"semantic": {"enabled": False}}, "routing": {"enabled": False}}


def gateway_for(store, profile: str, overrides: dict | None = None) -> Gateway:
    data = deep_merge(
        load_settings(profile).model_dump(), {"latency_scale": 0.0, **(overrides or {})}
    )
    return Gateway(GatewaySettings.model_validate(data), store, GatewayMetrics())


async def test_unknown_model_is_not_found(store):
    with pytest.raises(GatewayError) as info:
        await gateway_for(store, "optimized").complete(ask("hi", model="gpt-5-ultra"), "team-a")
    assert info.value.status == 404
    assert info.value.param == "model"


async def test_alias_resolves_to_the_canonical_model(store):
    result = await gateway_for(store, "unoptimized").complete(
        ask("hi", model="claude-haiku-4-5-20251001"), "team-a"
    )
    assert result.model.name == "claude-haiku-4-5"
    assert result.requested_model == "claude-haiku-4-5-20251001"


async def test_context_window_is_enforced(store):
    long_prompt = "alpha " * 5000
    with pytest.raises(GatewayError) as info:
        await gateway_for(store, "unoptimized").complete(
            ask(long_prompt, max_tokens=4096), "team-a"
        )
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"


async def test_default_cap_leaves_room_in_the_context_window(store):
    result = await gateway_for(store, "unoptimized").complete(ask("alpha " * 8000), "team-a")
    assert result.prompt_tokens + result.completion_tokens <= result.model.context_window


async def test_exact_cache_hit_costs_nothing_and_counts_the_saving(store):
    gateway = gateway_for(store, "optimized", EXACT_ONLY)
    first = await gateway.complete(ask("How do I rotate my API key?"), "team-a")
    second = await gateway.complete(ask("How do I rotate my API key?  "), "team-a")
    assert (first.cache, second.cache) == ("miss", "exact")
    assert second.cost_usd == 0.0
    assert first.baseline_usd == first.cost_usd  # unrouted: the baseline is what was paid
    assert second.saved_usd == second.baseline_usd  # a hit saves this request's baseline
    assert second.text == first.text
    m = gateway.metrics
    assert sample(m, "ai_cache_hits_total", kind="exact", team="team-a") == 1
    assert sample(m, "ai_cache_misses_total", team="team-a") == 1
    assert sample(m, "ai_cost_saved_total", reason="cache", team="team-a") == pytest.approx(
        second.saved_usd
    )
    assert sample(m, "ai_cost_total", model="gpt-4", team="team-a") == pytest.approx(first.cost_usd)


async def test_exact_cache_is_scoped_by_team_and_parameters(store):
    gateway = gateway_for(store, "optimized", EXACT_ONLY)
    await gateway.complete(ask("Summarise the outage", temperature=0.2), "team-a")
    other_team = await gateway.complete(ask("Summarise the outage", temperature=0.2), "team-b")
    other_temperature = await gateway.complete(
        ask("Summarise the outage", temperature=0.9), "team-a"
    )
    other_model = await gateway.complete(
        ask("Summarise the outage", model="gpt-4o", temperature=0.2), "team-a"
    )
    assert {other_team.cache, other_temperature.cache, other_model.cache} == {"miss"}


async def test_streaming_flag_does_not_split_the_cache(store):
    gateway = gateway_for(store, "optimized", EXACT_ONLY)
    await gateway.complete(ask("Explain NAT costs", stream=False), "team-a")
    streamed = await gateway.complete(ask("Explain NAT costs", stream=True), "team-a")
    assert streamed.cache == "exact"


async def test_unoptimized_profile_never_caches(store):
    gateway = gateway_for(store, "unoptimized")
    results = [await gateway.complete(ask("Same question"), "team-a") for _ in range(3)]
    assert [r.cache for r in results] == ["miss"] * 3
    assert sample(gateway.metrics, "ai_cache_misses_total", team="team-a") == 0
    assert sample(gateway.metrics, "ai_cost_total", model="gpt-4", team="team-a") == pytest.approx(
        sum(r.cost_usd for r in results)
    )


async def test_tokens_metric_counts_billed_tokens(store):
    gateway = gateway_for(store, "optimized", EXACT_ONLY)
    miss = await gateway.complete(ask("Count me", model="gpt-4o-mini"), "team-b")
    await gateway.complete(ask("Count me", model="gpt-4o-mini"), "team-b")
    m = gateway.metrics
    labels = {"model": "gpt-4o-mini", "team": "team-b"}
    assert sample(m, "ai_tokens_total", type="input", **labels) == miss.prompt_tokens
    assert sample(m, "ai_tokens_total", type="output", **labels) == miss.completion_tokens


def test_authentication_accepts_plain_and_hashed_keys():
    import hashlib

    digest = hashlib.sha256(b"sk-hashed-team-key").hexdigest()
    settings = GatewaySettings.model_validate(
        {"teams": {"ops": {"keys": ["sk-plain-team-key"]}, "ml": {"keys": [f"sha256:{digest}"]}}}
    )
    gateway = Gateway(settings, MemoryStore(), GatewayMetrics())
    assert gateway.authenticate("sk-plain-team-key") == "ops"
    assert gateway.authenticate("sk-hashed-team-key") == "ml"
    with pytest.raises(GatewayError) as info:
        gateway.authenticate(f"sha256:{digest}")
    assert info.value.status == 401
