"""The one list of workloads, and what it feeds: the manifests and the cost model."""

from __future__ import annotations

import pytest

from finops_platform.builders.workloads import WorkloadBuilder
from finops_platform.config import load_stack
from finops_platform.cost import stack_pods
from finops_platform.workload_list import workload_list


@pytest.mark.parametrize("stack", ["unoptimized", "optimized"])
def test_the_manifests_deploy_each_listed_workload_as_listed(stack):
    config = load_stack(stack)
    builder = WorkloadBuilder(config.workloads, config.platform.node_pools, "cc", stack)
    deployments = {
        m["metadata"]["name"]: m
        for m in builder.manifests()
        if m["kind"] in ("Deployment", "StatefulSet")
    }
    listed = workload_list(config.workloads)
    assert set(deployments) == {w.name for w in listed}
    for workload in listed:
        deployment = deployments[workload.name]
        assert deployment["spec"]["replicas"] == workload.replicas
        assert deployment["metadata"]["labels"]["team"] == workload.team
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"] == workload.resources.requests.model_dump()


@pytest.mark.parametrize("stack", ["unoptimized", "optimized"])
def test_the_cost_model_prices_one_pod_per_listed_replica(stack):
    config = load_stack(stack)
    listed = workload_list(config.workloads)
    pods = stack_pods(config)
    assert len(pods) == sum(w.replicas for w in listed)
    stateless = {w.name for w in listed if w.stateless}
    assert {p.name.rsplit("-", 1)[0] for p in pods if p.stateless} == stateless


def test_a_resized_workload_changes_manifests_and_cost_together():
    config = load_stack("optimized")
    bigger = config.workloads.gateway.model_copy(update={"replicas": 7})
    config = config.model_copy(
        update={"workloads": config.workloads.model_copy(update={"gateway": bigger})}
    )
    builder = WorkloadBuilder(config.workloads, config.platform.node_pools, "cc", "optimized")
    gateway = next(m for m in builder.manifests() if m["metadata"]["name"] == "ai-gateway")
    assert gateway["spec"]["replicas"] == 7
    assert sum(p.name.startswith("ai-gateway-") for p in stack_pods(config)) == 7
