"""Dashboards: every PromQL expression parses, and every metric it reads exists in the gateway's
/metrics or in kube-state-metrics / cAdvisor."""

from __future__ import annotations

from typing import Any

import promql_parser
import pytest

from ai_gateway.metrics import GatewayMetrics
from finops_platform.builders.observability import alert_rules, dashboards
from finops_platform.render import load_stack

# Metric names of kube-state-metrics (kube_*) and the kubelet's cAdvisor (container_*) that the
# dashboards use, as documented by those projects.
KUBERNETES_METRICS = {
    "kube_pod_container_resource_requests",
    "kube_pod_labels",
    "kube_node_labels",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
}


def gateway_metric_names() -> set[str]:
    names = set()
    for family in GatewayMetrics().registry.collect():
        names |= {family.name, f"{family.name}_total", f"{family.name}_count",
                  f"{family.name}_sum", f"{family.name}_bucket"}  # fmt: skip
    return names


def metric_names(node: Any) -> set[str]:
    found = set()
    if isinstance(node, promql_parser.VectorSelector) and node.name:
        found.add(node.name)
    for attr in ("lhs", "rhs", "expr", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int | float):
            found |= metric_names(child)
    for child in getattr(node, "args", None) or []:
        found |= metric_names(child)
    return found


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


def test_an_unknown_metric_is_caught():
    assert metric_names(promql_parser.parse("sum(rate(ai_cost_totl[5m]))")) - gateway_metric_names()
