"""The compute cost model on hand-computed cases, and on the two stacks."""

from __future__ import annotations

import pytest

from finops_platform.config import NodePoolConfig, load_stack
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


def test_what_every_node_also_carries_comes_off_its_room():
    # 1,700m less 1,200m of daemonsets leaves 500m: four 500m pods need four nodes.
    assert nodes_needed(pods(4, 500, 1024), M5_LARGE, per_node=(1200, 0)) == 4
    # Daemonsets that fill a node leave no room at all (this divided by zero).
    assert nodes_needed(pods(1, 10, 10), M5_LARGE, per_node=(1700, 0)) is None


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


# ---- hand-priced stacks: each figure below is worked out from the price table by hand -------


def table_price(instance_type: str) -> float:
    """The on-demand $/hour the price table publishes, read here without the module's parser."""
    import csv

    from finops_platform.cost import PRICES

    with PRICES.open(encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        prices = {r["instance_type"]: float(r["on_demand_usd_per_hour"]) for r in rows}
    return prices[instance_type]


def sized(cpu: str, memory: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}


def small_stack(pools: list[dict], on_spot: bool = True, big: bool = False):
    """The optimized stack cut to one replica of each workload (five pods) on the given pools,
    with a three-node system group; ``big`` gives each stateless pod a whole vCPU."""
    from finops_platform.config import parse_stack_config, read_stack_file

    values = read_stack_file("optimized")
    platform, workloads = values["finops-sim:platform"], values["finops-sim:workloads"]
    platform["cluster"]["systemNodeGroup"] = {
        "instanceTypes": ["t3.large"], "desiredSize": 3, "minSize": 2, "maxSize": 3,
    }  # fmt: skip
    platform["karpenter"]["nodePools"] = pools
    workloads["statelessOnSpot"] = on_spot
    workloads["store"] = {"mode": "in_cluster"}  # Valkey as a pod, not a priced ElastiCache
    workloads["gateway"] = {"replicas": 1, "resources": sized("1" if big else "100m", "512Mi")}
    workloads["locust"]["workers"] = 1
    workloads["locust"]["worker"] = sized("1" if big else "500m", "512Mi")
    workloads["locust"]["master"] = sized("100m", "256Mi")
    workloads["redis"] = sized("200m", "256Mi")
    workloads["demoServices"] = {
        "count": 1, "replicas": 1, "resources": sized("1" if big else "300m", "256Mi"),
    }  # fmt: skip
    return parse_stack_config("optimized", values)


def m5_pool(name: str, capacity: list[str], cpu_limit: int = 64, memory_gib: int = 256) -> dict:
    pool = {"name": name, "capacityTypes": capacity, "instanceCategories": ["m"]}
    return pool | {"instanceFamilies": ["m5"], "cpuLimit": cpu_limit, "memoryLimitGib": memory_gib}


SPOT_AND_ON_DEMAND = [m5_pool("spot", ["spot"]), m5_pool("on-demand", ["on-demand"])]


def test_a_small_stack_priced_by_hand():
    """The figure `finops-sim cost` prints, worked out by hand: a mutant that priced the system
    group as one node passed every relation the other tests check."""
    m5_large, t3_large = table_price("m5.large"), table_price("t3.large")
    # m5.large allocatable: 2,000m - 300m = 1,700m; int(8,192Mi x 0.925) - 900Mi = 6,677Mi.
    # Spot (stateless): gateway 100m/512Mi + worker 500m/512Mi + demo 300m/256Mi = 900m/1,280Mi,
    # one m5.large, the smallest and cheapest m5. On-demand (stateful): Valkey 200m/256Mi +
    # Locust master 100m/256Mi = 300m/512Mi, one m5.large. System group: 3 x t3.large.
    cost = stack_cost(small_stack(SPOT_AND_ON_DEMAND), spot_discounts={"m": 0.6})
    assert [(p.pool, p.capacity, p.instance_type, p.nodes, p.pods) for p in cost.pools] == [
        ("on-demand", "on-demand", "m5.large", 1, 2),
        ("spot", "spot", "m5.large", 1, 3),
        ("system node group", "on-demand", "t3.large", 3, None),
    ]
    hourly = 1 * m5_large * (1 - 0.6) + 1 * m5_large + 3 * t3_large
    assert cost.monthly_usd == pytest.approx(730 * hourly)


def test_the_saving_is_a_share_of_the_before_bill_worked_by_hand():
    """savings_pct divides by what the before stack cost, not by what the after stack costs."""
    m5_large, m5_xlarge = table_price("m5.large"), table_price("m5.xlarge")
    system = 3 * table_price("t3.large")
    # Before: all five pods on-demand, the three stateless ones at 1 vCPU: 3,300m/1,792Mi. On
    # m5.large (1,700m each) no two 1 vCPU pods share a node: 3 nodes; one m5.xlarge (4,000m -
    # 300m = 3,700m) holds them all for less than three m5.large; larger m5s cost more.
    assert m5_xlarge < 3 * m5_large
    before = small_stack(SPOT_AND_ON_DEMAND, on_spot=False, big=True)
    after = small_stack(SPOT_AND_ON_DEMAND)  # priced in the test above
    before_monthly = 730 * (m5_xlarge + system)
    after_monthly = 730 * (m5_large * (1 - 0.6) + m5_large + system)
    result = compare(before, after, spot_discounts={"m": 0.6})
    assert result["unoptimized_monthly_usd"] == pytest.approx(before_monthly)
    assert result["optimized_monthly_usd"] == pytest.approx(after_monthly)
    saved = before_monthly - after_monthly
    assert result["savings_usd"] == pytest.approx(saved)
    assert result["savings_pct"] == pytest.approx(saved / before_monthly)


def test_a_pool_within_its_cpu_limit_but_over_its_memory_limit_is_refused():
    """Karpenter stops at whichever limit is reached first; a mutant that checked only vCPUs
    priced three m5.large (24 GiB) in a 16 GiB pool."""
    tight = POOL.model_copy(update={"cpu_limit": 100, "memory_limit_gib": 16})
    # 3 GiB pods, two per m5.large (6,677Mi allocatable): four pods fill 2 nodes, 16 GiB.
    assert price_pool(tight, "on-demand", pods(4, 100, 3072), [M5_LARGE], {}).nodes == 2
    with pytest.raises(CostModelError) as info:  # five need 3 nodes: 6 vCPUs fit, 24 GiB not
        price_pool(tight, "on-demand", pods(5, 100, 3072), [M5_LARGE], {})
    expected = f"the smallest fit is 3 x m5.large ({3 * 2} vCPUs, {3 * 8} GiB)"
    assert f"within its limits (100 vCPUs, 16 GiB): {expected}" in str(info.value)


@pytest.mark.parametrize(
    ("cpu_limit", "memory_gib"),
    [(3, 256), (64, 12)],  # each limit in turn: one m5.large (2 vCPUs, 8 GiB) fits, two do not
)
def test_spot_and_on_demand_nodes_of_one_pool_share_its_limits(cpu_limit, memory_gib):
    """A pool allowing both capacity types buys spot nodes for the stateless pods and on-demand
    ones for the stateful: each set fits the limits alone, so only their sum shows the pods
    Karpenter would leave pending."""
    mixed = [m5_pool("mixed", ["spot", "on-demand"], cpu_limit, memory_gib)]
    # One m5.large each for the spot and on-demand pods (see the hand-priced stack above):
    # 2 x 2 vCPUs, 2 x 8 GiB.
    with pytest.raises(CostModelError) as info:
        stack_cost(small_stack(mixed))
    assert str(info.value).startswith(
        f"NodePool 'mixed' would need {2 * 2} vCPUs and {2 * 8} GiB in all, over its limits "
        f"({cpu_limit} vCPUs, {memory_gib} GiB)"
    )
