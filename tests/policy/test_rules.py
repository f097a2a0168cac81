"""The policy pack's rules on what the program registers (under mocks) for each stack, and on
deliberately broken resources."""

from __future__ import annotations

import copy

import pytest

from finops_rules import RULES
from tests.infra.conftest import recorded


def violations(stack: str, scope_filter=None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for resource in recorded(stack).mocks.resources:
        for name, (_, check, scope) in RULES.items():
            if scope_filter and not scope_filter(scope):
                continue
            messages = check(resource.typ, resource.inputs, stack)
            if messages:
                found.setdefault(name, []).extend(messages)
    return found


@pytest.mark.parametrize("stack", ["unoptimized", "optimized", "local"])
def test_every_stack_passes_the_mandatory_rules(stack):
    """Rules for all stacks, and the optimized-only ones on the optimized stack."""
    assert violations(stack, lambda scope: scope == "all" or scope == stack) == {}


def test_unoptimized_gets_advisory_warnings_from_the_optimized_rules():
    advisory = violations("unoptimized", lambda scope: scope == "optimized")
    assert "stateless-tolerates-spot" in advisory
    assert not violations("unoptimized", lambda scope: scope == "all")


def one(stack: str, typ: str, name: str | None = None):
    return copy.deepcopy(next(r for r in recorded(stack).mocks.resources
                              if r.typ == typ and (name is None or r.name == name)))  # fmt: skip


def test_a_container_without_requests_fails():
    deployment = one("optimized", "kubernetes:apps/v1:StatefulSet", "workloads-statefulset-redis")
    deployment.inputs["spec"]["template"]["spec"]["containers"][0].pop("resources")
    _, check, _ = RULES["requests-and-limits"]
    assert check(deployment.typ, deployment.inputs, "optimized") == [
        "redis: container valkey has no cpu request, no memory request, no memory limit"
    ]


def test_an_untagged_bucket_fails():
    _, check, _ = RULES["cost-tags"]
    assert check("aws:s3/bucket:Bucket", {"bucket": "logs"}, "optimized") == [
        "aws:s3/bucket:Bucket lacks the cost tags project, stack, cost-center"
    ]


def test_a_nodepool_without_limits_fails():
    pool = one("optimized", "kubernetes:karpenter.sh/v1:NodePool")
    pool.inputs["spec"].pop("limits")
    _, check, _ = RULES["nodepool-limits"]
    assert check(pool.typ, pool.inputs, "optimized") == ["NodePool spot has no cpu or memory limit"]


def test_a_public_load_balancer_fails():
    service = one("optimized", "kubernetes:core/v1:Service", "workloads-service-ai-gateway")
    service.inputs["spec"]["type"] = "LoadBalancer"
    _, check, _ = RULES["no-public-exposure"]
    assert check(service.typ, service.inputs, "optimized") == [
        "Service ai-gateway is a public LoadBalancer; use a port-forward or an internal load "
        "balancer"
    ]


def test_a_public_endpoint_without_allow_list_fails():
    cluster = one("optimized", "eks:index:Cluster")
    cluster.inputs["publicAccessCidrs"] = ["0.0.0.0/0"]
    _, check, _ = RULES["no-public-exposure"]
    assert check(cluster.typ, cluster.inputs, "optimized")


def test_default_grafana_password_fails():
    release = one("optimized", "kubernetes:helm.sh/v3:Release", "observability-chart")
    release.inputs["values"]["grafana"].pop("admin")
    _, check, _ = RULES["grafana-admin-password"]
    assert check(release.typ, release.inputs, "optimized")


def test_overprovisioned_requests_fail_the_optimized_ceiling():
    deployment = one(
        "unoptimized", "kubernetes:apps/v1:Deployment", "workloads-deployment-ai-gateway"
    )
    _, check, _ = RULES["rightsizing-ceiling"]
    assert check(deployment.typ, deployment.inputs, "optimized") == [
        "ai-gateway: container gateway requests 1000m cpu, above the ceiling 500m",
        "ai-gateway: container gateway requests 1Gi memory, above the ceiling 512Mi",
    ]


def test_the_pack_loads_with_both_enforcement_levels(monkeypatch):
    """The pack module builds every policy; stack-aware ones twice (mandatory and advisory)."""
    import importlib.util
    from pathlib import Path

    import pulumi_policy

    created = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: created.append(kwargs))
    path = Path(__file__).resolve().parents[2] / "policy" / "__main__.py"
    spec = importlib.util.spec_from_file_location("finops_policy_pack", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    names = {p.name: p.enforcement_level for p in created[0]["policies"]}
    assert names["rightsizing-ceiling"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert names["rightsizing-ceiling-advisory"] == pulumi_policy.EnforcementLevel.ADVISORY
    assert names["cost-tags"] == pulumi_policy.EnforcementLevel.MANDATORY
