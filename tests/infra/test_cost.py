"""The compute cost model on hand-computed cases, and on the two stacks."""

from __future__ import annotations

import pytest

from finops_platform.config import NodePoolConfig
from finops_platform.cost import (
    CostModelError,
    InstanceType,
    Pod,
    compare,
    load_instance_types,
    nodes_needed,
    price_pool,
    stack_cost,
)
from finops_platform.render import load_stack

M5_LARGE = InstanceType("m5.large", "m5", 2, 8, 0.096)
POOL = NodePoolConfig(name="general", capacity_types=("on-demand",), instance_categories=("m",),
                      cpu_limit=100, memory_limit_gib=400)  # fmt: skip
SPOT_POOL = POOL.model_copy(update={"capacity_types": ("spot",)})


def pods(n: int, cpu_m: int, memory_mib: int) -> list[Pod]:
    return [Pod(f"p{i}", cpu_m, memory_mib, stateless=True) for i in range(n)]


def test_m5_large_allocatable_by_hand():
    # 2 vCPU - 300m reserved; 8 GiB less 7.5% VM overhead, less 900 MiB reserved.
    assert M5_LARGE.allocatable == (1700, int(8192 * 0.925) - 900)


def test_small_pod_set_on_m5_large():
    # Three 500m pods fit one node's 1,700m, the fourth needs a second node: 2 x $0.096/h.
    assert nodes_needed(pods(4, 500, 1024), M5_LARGE) == 2
    cost = price_pool(POOL, "on-demand", pods(4, 500, 1024), [M5_LARGE], {"m": 0.6})
    assert (cost.instance_type, cost.nodes) == ("m5.large", 2)
    assert cost.monthly_usd == pytest.approx(2 * 0.096 * 730)


def test_memory_can_be_the_binding_constraint():
    # 6,677 MiB allocatable: two 3 GiB pods per node, so five pods need three nodes.
    assert nodes_needed(pods(5, 100, 3072), M5_LARGE) == 3


def test_spot_discount_is_applied():
    cost = price_pool(SPOT_POOL, "spot", pods(4, 500, 1024), [M5_LARGE], {"m": 0.6})
    assert cost.monthly_usd == pytest.approx(2 * 0.096 * 0.4 * 730)


def test_a_pod_too_large_for_every_allowed_type_is_an_error():
    with pytest.raises(CostModelError, match=r"pod big-0 \(2000m CPU, 1024Mi\) fits no instance"):
        price_pool(POOL, "on-demand", [Pod("big-0", 2000, 1024, True)], [M5_LARGE], {"m": 0.6})


def test_the_pod_that_fits_no_type_is_named_not_the_one_with_the_most_cpu():
    pods = [Pod("busy-0", 1500, 100, True), Pod("huge-0", 100, 65536, True)]
    with pytest.raises(CostModelError, match=r"pod huge-0 \(100m CPU, 65536Mi\) fits no"):
        price_pool(POOL, "on-demand", pods, [M5_LARGE], {"m": 0.6})


def test_a_pool_never_grows_past_its_limits():
    """Karpenter buys no node past a NodePool's limits: four m5.large (8 vCPUs) do not fit a
    6-vCPU pool, so the model says pods would stay pending instead of pricing them."""
    small = POOL.model_copy(update={"cpu_limit": 6})
    assert price_pool(small, "on-demand", pods(3, 1000, 1024), [M5_LARGE], {}).nodes == 3
    with pytest.raises(CostModelError) as info:
        price_pool(small, "on-demand", pods(4, 1000, 1024), [M5_LARGE], {})
    assert str(info.value).startswith(
        "NodePool 'general' cannot hold its 4 on-demand pods within its limits (6 vCPUs, "
        "400 GiB): the smallest fit is 4 x m5.large (8 vCPUs, 32 GiB)"
    )


def test_a_stack_over_a_pools_limit_is_refused():
    config = load_stack("optimized")
    demo = config.workloads.demo_services
    big = demo.resources.model_copy(
        update={"requests": demo.resources.requests.model_copy(update={"cpu": "8"})}
    )
    workloads = config.workloads.model_copy(
        update={"demo_services": demo.model_copy(update={"resources": big})}
    )
    with pytest.raises(CostModelError, match="so Karpenter would leave pods pending"):
        stack_cost(config.model_copy(update={"workloads": workloads}))


def test_the_cheapest_fitting_type_wins():
    catalog = [t for t in load_instance_types() if t.family in ("m5", "c5")]
    cost = price_pool(POOL, "on-demand", pods(6, 1000, 1024), catalog, {})
    assert cost.instance_type.startswith("m5.")  # the pool allows category m only
    fits_one = price_pool(POOL, "on-demand", pods(1, 100, 128), catalog, {})
    assert fits_one.instance_type == "m5.large" and fits_one.nodes == 1


def test_the_two_stacks_compare_and_the_split_adds_up():
    result = compare(load_stack("unoptimized"), load_stack("optimized"))
    assert result["optimized_monthly_usd"] < result["unoptimized_monthly_usd"]
    assert result["rightsizing_usd"] > 0 and result["spot_usd"] > 0
    assert result["rightsizing_usd"] + result["spot_usd"] == pytest.approx(result["savings_usd"])


def test_placement_follows_the_stack():
    unoptimized = {line.capacity for line in stack_cost(load_stack("unoptimized")).pools}
    optimized = {line.capacity for line in stack_cost(load_stack("optimized")).pools}
    assert unoptimized == {"on-demand"}
    assert optimized == {"on-demand", "spot"}


def test_cost_command_prints_both_stacks_and_the_split():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "cost", "--compare", "unoptimized", "optimized"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    expected = compare(load_stack("unoptimized"), load_stack("optimized"))
    assert f"${expected['unoptimized_monthly_usd']:,.2f}" in result.stdout
    assert f"rightsizing ${expected['rightsizing_usd']:,.2f}" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "cost", "--stack", "optimized",
         "--spot-discount", "m=1.5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--spot-discount 'm=1.5' is invalid" in bad.stderr


def test_a_stack_compared_with_itself_saves_nothing_by_either_cause():
    """The split assumed the before stack used no spot: optimized against itself printed
    rightsizing $-91.83 and spot $91.83."""
    from finops_platform.cost import compare

    same = compare(load_stack("optimized"), load_stack("optimized"))
    assert same["savings_usd"] == 0
    assert same["rightsizing_usd"] == pytest.approx(0) and same["spot_usd"] == pytest.approx(0)
    split = compare(load_stack("unoptimized"), load_stack("optimized"))
    assert split["rightsizing_usd"] + split["spot_usd"] == pytest.approx(split["savings_usd"])
