"""The gateway's metrics: children are remembered, and they count in prometheus's series."""

from __future__ import annotations

from prometheus_client import generate_latest

from ai_gateway.metrics import GatewayMetrics


def test_a_child_is_remembered_and_counts_in_its_series():
    metrics = GatewayMetrics()
    first = metrics.tokens.labels(type="input", model="gpt-4o-mini", team="a")
    assert metrics.tokens.labels(type="input", model="gpt-4o-mini", team="a") is first
    first.inc(3)
    metrics.tokens.labels("input", "gpt-4o-mini", "a").inc(2)  # positional: the same series
    metrics.tokens.labels(type="input", model="gpt-4o-mini", team="b").inc(7)
    exposition = generate_latest(metrics.registry).decode()
    assert 'ai_tokens_total{model="gpt-4o-mini",team="a",type="input"} 5.0' in exposition
    assert 'ai_tokens_total{model="gpt-4o-mini",team="b",type="input"} 7.0' in exposition


def test_histograms_and_gauges_remember_children_too():
    metrics = GatewayMetrics()
    metrics.duration.labels(model="m").observe(0.02)
    metrics.duration.labels(model="m").observe(0.2)
    metrics.budget_remaining.labels(team="a").set(4.5)
    exposition = generate_latest(metrics.registry).decode()
    assert 'ai_request_duration_seconds_count{model="m"} 2.0' in exposition
    assert 'ai_budget_remaining_usd{team="a"} 4.5' in exposition
