"""Dashboards: every PromQL expression parses, and every metric it reads exists in the gateway's
/metrics or in kube-state-metrics / cAdvisor."""

from __future__ import annotations

from typing import Any

import promql_parser
import pytest
from prometheus_client.metrics import MetricWrapperBase

from ai_gateway.metrics import GatewayMetrics
from finops_platform.builders.observability import alert_rules, dashboards
from finops_platform.config import load_stack

# Metric names of kube-state-metrics (kube_*) and the kubelet's cAdvisor (container_*) that the
# dashboards use, as documented by those projects.
KUBERNETES_METRICS = {
    "kube_pod_container_resource_requests",
    "kube_pod_labels",
    "kube_node_labels",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
}


# The names /metrics exposes for each metric type, and the labels each adds.
_EXPOSED = {"counter": (("_total", ()),), "gauge": (("", ()),),
            "histogram": (("_bucket", ("le",)), ("_count", ()), ("_sum", ()))}  # fmt: skip


def gateway_metrics() -> dict[str, set[str]]:
    """Each name the gateway's /metrics exposes (a counter with _total, a histogram's _bucket,
    _count and _sum, a gauge bare), with its label names."""
    exposed: dict[str, set[str]] = {}
    for metric in vars(GatewayMetrics()).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix, extra in _EXPOSED[metric._type]:
                exposed[metric._name + suffix] = {*metric._labelnames, *extra}
    return exposed


def gateway_metric_names() -> set[str]:
    return set(gateway_metrics())


def selectors(node: Any) -> list[Any]:
    """Every vector selector of an expression."""
    found = [node] if isinstance(node, promql_parser.VectorSelector) else []
    for attr in ("lhs", "rhs", "expr", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int | float):
            found += selectors(child)
    for child in getattr(node, "args", None) or []:
        found += selectors(child)
    return found


def metric_names(node: Any) -> set[str]:
    return {selector.name for selector in selectors(node) if selector.name}


def expressions() -> list[tuple[str, str]]:
    exprs = [
        (f"{name}: {panel['title']}", target["expr"])
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    config = load_stack("optimized").platform
    rules = alert_rules(config.observability, config.karpenter)
    exprs += [(rule["alert"], rule["expr"]) for g in rules["groups"] for rule in g["rules"]]
    return exprs


def test_both_dashboards_have_the_required_panels():
    boards = dashboards()
    ai_titles = " | ".join(p["title"] for p in boards["ai-gateway"]["panels"]).lower()
    needed_ai = ("token cost per hour", "cache hit ratio", "model distribution",
                 "tokens per hour", "active", "saved", "budget rejections")  # fmt: skip
    for needed in needed_ai:
        assert needed in ai_titles
    compute_titles = " | ".join(p["title"] for p in boards["compute-cost"]["panels"]).lower()
    for needed in ("cpu requested vs used", "memory requested vs used", "capacity type",
                   "instance type"):  # fmt: skip
        assert needed in compute_titles


@pytest.mark.parametrize(("where", "expr"), expressions())
def test_promql_parses_and_reads_existing_metrics(where, expr):
    names = metric_names(promql_parser.parse(expr))
    assert names, where
    unknown = names - gateway_metric_names() - KUBERNETES_METRICS
    assert not unknown, f"{where}: unknown metrics {unknown}"


@pytest.mark.parametrize(("where", "expr"), expressions())
def test_every_label_a_gateway_metric_is_matched_on_exists(where, expr):
    metrics = gateway_metrics()
    for selector in selectors(promql_parser.parse(expr)):
        if selector.name in metrics:
            used = {matcher.name for matcher in selector.matchers.matchers}
            assert used <= metrics[selector.name], f"{where}: {selector.name} has no {used}"


@pytest.mark.parametrize(
    "wrong", ["ai_cost_totl", "ai_cost", "ai_tokens", "ai_store_up_count", "ai_cost_bucket"]
)
def test_an_unknown_or_wrongly_suffixed_metric_is_caught(wrong):
    """A counter is exposed with _total only, a gauge bare, a histogram's series with theirs."""
    assert metric_names(promql_parser.parse(f"sum(rate({wrong}[5m]))")) - gateway_metric_names()


def test_a_label_the_metric_lacks_is_caught():
    (selector,) = selectors(promql_parser.parse('ai_cache_hits_total{model="gpt-4o"}'))
    assert {m.name for m in selector.matchers.matchers} - gateway_metrics()[selector.name]
