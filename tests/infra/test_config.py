"""The stack config: both stack files parse; bad values name the file, the key and the rule."""

from __future__ import annotations

import pytest

from finops_common.config import ConfigError
from finops_platform.config import parse_stack_config, read_stack_file


def test_both_stacks_parse_and_differ_where_they_should():
    unoptimized = parse_stack_config("unoptimized", read_stack_file("unoptimized"))
    optimized = parse_stack_config("optimized", read_stack_file("optimized"))
    assert unoptimized.cluster_name == "finops-unoptimized"
    assert [p.capacity_types for p in unoptimized.platform.karpenter.node_pools] == [("on-demand",)]
    assert not unoptimized.platform.karpenter.node_pools[0].consolidation_enabled
    spot = optimized.platform.karpenter.node_pools[0]
    assert "spot" in spot.capacity_types and spot.consolidation_enabled
    assert optimized.tags == {
        "project": "finops-sim",
        "stack": "optimized",
        "cost-center": "finops-lab",
        "managed-by": "pulumi",
    }


def values_with(change) -> dict:
    values = read_stack_file("optimized")
    change(values["finops-sim:platform"])
    return values


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p["karpenter"]["nodePools"][0].update(capacityTypes=["spott"]),
            "`finops-sim:platform.karpenter.nodePools[0].capacityTypes[0]`: value 'spott'",
        ),
        (lambda p: p["network"].update(natGateways="many"), "'single' or 'one_per_az'"),
        (lambda p: p["cluster"].update(publicAccessCidrs=[]), "explicit allow-list"),
        (
            lambda p: p["karpenter"].update(amiAlias="al2023@latest"),
            "`finops-sim:platform.karpenter.amiAlias`",
        ),
        (lambda p: p["karpenter"]["nodePools"][0].pop("cpuLimit"), "cpuLimit"),
        (lambda p: p.update(clusterNmae="x"), "unknown key `finops-sim:platform.clusterNmae`"),
        (lambda p: p["cluster"]["systemNodeGroup"].update(minSize=5), "minSize <= desiredSize"),
    ],
)
def test_bad_values_are_reported_with_file_and_key(change, expected):
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values_with(change))
    assert "stacks/Pulumi.optimized.yaml" in str(info.value)
    assert expected in str(info.value)


def test_missing_platform_object_is_named():
    with pytest.raises(ConfigError, match="`finops-sim:platform`"):
        parse_stack_config("optimized", {"aws:region": "us-east-1"})


def test_local_stack_parses_and_its_mode_is_checked():
    local = parse_stack_config("local", read_stack_file("local"))
    assert local.platform.mode == "local" and local.platform.node_pools == ()
    values = read_stack_file("local")
    values["finops-sim:platform"]["kubecost"] = {"enabled": True}
    with pytest.raises(ConfigError, match="mode 'local' deploys no cluster, Karpenter or Kubecost"):
        parse_stack_config("local", values)
    aws = read_stack_file("optimized")
    aws["finops-sim:platform"].pop("karpenter")
    with pytest.raises(ConfigError, match="mode 'aws' needs the cluster and karpenter sections"):
        parse_stack_config("optimized", aws)


def test_quantities_in_every_kubernetes_spelling():
    from finops_platform.config import cpu_millicores, memory_mib

    assert [cpu_millicores(q) for q in ("400m", "0.5", "2", 1)] == [400, 500, 2000, 1000]
    assert [memory_mib(q) for q in ("400Mi", "1Gi", "512Ki", str(2**21))] == [400, 1024, 1, 2]
