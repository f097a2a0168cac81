"""The compute cost model: what a stack's pods cost per month on the nodes Karpenter would buy.

Assumptions, all visible here:
- Pods are the stack's workloads with their requests; each goes to a NodePool the way the
  workloads component places it: stateless pods to the pool that allows spot when
  ``statelessOnSpot`` is true, everything else to an on-demand pool.
- For each pool, Karpenter picks the cheapest instance type it allows that fits, and
  consolidation keeps the pods packed: the model packs each pool's pods first-fit-decreasing onto
  nodes of every allowed type and keeps the cheapest total. A static model cannot see the waste of
  a cluster that never consolidates; it prices the pods' requests, which is what rightsizing
  changes.
- A node's allocatable capacity is its size minus kubelet and system reservations and the
  daemonsets' requests (below), and minus the 7.5% memory overhead Karpenter assumes.
- Spot costs the on-demand price minus a per-category discount (``SPOT_DISCOUNTS``); spot prices
  move hourly, so this is an assumption to replace with DescribeSpotPriceHistory data.
- The system node group is fixed and identical in both stacks; it is priced at on-demand.
- With ``workloads.store.mode: elasticache_serverless`` the Valkey pod is not on a node: the
  ElastiCache Serverless cache is priced instead, from the data it stores (at least the 100 MB
  that Valkey caches are billed for) and the ECPUs an assumed request rate uses.
- A month is 730 hours.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .builders.placement import PlacementError, choose_pool
from .config import (
    ElastiCacheConfig,
    NodePoolConfig,
    StackConfig,
    cpu_millicores,
    memory_mib,
)
from .workload_list import workload_list

HOURS_PER_MONTH = 730
PRICES = Path(__file__).resolve().parent / "data" / "ec2-instances.csv"
PRICE_SOURCE = "Karpenter's fallback price table for us-east-1, generated 2026-07-20"
# Discount of spot against on-demand, by instance category: an assumption (see module docstring).
SPOT_DISCOUNTS = {"c": 0.62, "m": 0.60, "r": 0.60}
RESERVED_CPU_M = 100 + 200  # kubelet/system reservation + daemonsets (CNI, kube-proxy, exporter)
RESERVED_MEMORY_MIB = 600 + 300
VM_MEMORY_OVERHEAD = 0.075
# Amazon ElastiCache Serverless for Valkey in us-east-1: AWS's rates as of June 2026, as quoted
# (with the 100 MB minimum) by usage.ai, "ElastiCache Serverless pricing", read 2026-11-30;
# the authority is https://aws.amazon.com/elasticache/pricing/.
ELASTICACHE_VALKEY_GB_HOUR_USD = 0.084
ELASTICACHE_VALKEY_MILLION_ECPU_USD = 0.0023
ELASTICACHE_VALKEY_MIN_GB = 0.1
ELASTICACHE_PRICE_SOURCE = (
    f"ElastiCache Serverless for Valkey, us-east-1: ${ELASTICACHE_VALKEY_GB_HOUR_USD}/GB-hour, "
    f"${ELASTICACHE_VALKEY_MILLION_ECPU_USD} per million ECPUs, "
    f"{ELASTICACHE_VALKEY_MIN_GB * 1000:g} MB minimum (AWS rates of June 2026, read 2026-11-30)"
)


class CostModelError(ValueError):
    """The stack cannot be priced, e.g. a pod fits no instance type its pool allows."""


@dataclass(frozen=True)
class Pod:
    name: str
    cpu_m: int
    memory_mib: int
    stateless: bool


@dataclass(frozen=True)
class InstanceType:
    name: str
    family: str
    vcpu: int
    memory_gib: int
    on_demand_hourly: float

    @property
    def category(self) -> str:
        return self.family[0]

    @property
    def generation(self) -> int:
        return int(self.family[1])

    @property
    def allocatable(self) -> tuple[int, int]:
        cpu = self.vcpu * 1000 - RESERVED_CPU_M
        memory = int(self.memory_gib * 1024 * (1 - VM_MEMORY_OVERHEAD)) - RESERVED_MEMORY_MIB
        return cpu, memory


@dataclass(frozen=True)
class PoolCost:
    pool: str
    capacity: str  # "spot" or "on-demand"
    instance_type: str
    nodes: int
    pods: int | None  # None: the system node group, whose add-on pods the model does not list
    hourly_usd: float

    @property
    def monthly_usd(self) -> float:
        return self.hourly_usd * HOURS_PER_MONTH


@dataclass(frozen=True)
class ServiceCost:
    """A managed service the stack pays for beside its nodes."""

    service: str
    usage: str
    monthly_usd: float


@dataclass(frozen=True)
class StackCost:
    stack: str
    pools: tuple[PoolCost, ...]
    services: tuple[ServiceCost, ...] = ()

    @property
    def monthly_usd(self) -> float:
        return sum(p.monthly_usd for p in self.pools) + sum(s.monthly_usd for s in self.services)


def elasticache_cost(config: ElastiCacheConfig) -> ServiceCost:
    """Storage (GB-hours, at least the minimum) plus ECPUs (per million)."""
    stored_gb = max(config.data_stored_gb, ELASTICACHE_VALKEY_MIN_GB)
    storage = stored_gb * ELASTICACHE_VALKEY_GB_HOUR_USD * HOURS_PER_MONTH
    million_ecpus = config.average_ecpu_per_second * 3600 * HOURS_PER_MONTH / 1e6
    return ServiceCost(
        "ElastiCache Serverless (Valkey)",
        f"{stored_gb:g} GB stored, {config.average_ecpu_per_second:g} ECPU/s",
        storage + million_ecpus * ELASTICACHE_VALKEY_MILLION_ECPU_USD,
    )


def load_instance_types(path: Path = PRICES) -> list[InstanceType]:
    with path.open(encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return [
            InstanceType(
                r["instance_type"],
                r["family"],
                int(r["vcpu"]),
                int(r["memory_gib"]),
                float(r["on_demand_usd_per_hour"]),
            )
            for r in rows
        ]


def stack_pods(config: StackConfig) -> list[Pod]:
    """One pod per replica of every workload in the stack's workload list."""
    pods = []
    for workload in workload_list(config.workloads):
        requests = workload.resources.requests
        cpu, memory = cpu_millicores(requests.cpu), memory_mib(requests.memory)
        pods += [
            Pod(f"{workload.name}-{i}", cpu, memory, workload.stateless)
            for i in range(workload.replicas)
        ]
    return pods


def allowed_types(pool: NodePoolConfig, catalog: list[InstanceType]) -> list[InstanceType]:
    return [
        t
        for t in catalog
        if t.category in pool.instance_categories
        and t.generation > 4
        and (not pool.instance_families or t.family in pool.instance_families)
    ]


def nodes_needed(
    pods: list[Pod], instance: InstanceType, per_node: tuple[int, int] = (0, 0)
) -> int | None:
    """First-fit-decreasing bin packing; None when a pod is larger than a node. ``per_node`` is
    what every node also carries beyond the reservation (millicores, MiB): daemonsets the model
    does not assume."""
    cpu_cap, memory_cap = (a - b for a, b in zip(instance.allocatable, per_node, strict=True))
    if cpu_cap <= 0 or memory_cap <= 0:
        return None
    ordered = sorted(
        pods, key=lambda p: max(p.cpu_m / cpu_cap, p.memory_mib / memory_cap), reverse=True
    )
    free: list[list[int]] = []
    for pod in ordered:
        if pod.cpu_m > cpu_cap or pod.memory_mib > memory_cap:
            return None
        for node in free:
            if node[0] >= pod.cpu_m and node[1] >= pod.memory_mib:
                node[0] -= pod.cpu_m
                node[1] -= pod.memory_mib
                break
        else:
            free.append([cpu_cap - pod.cpu_m, memory_cap - pod.memory_mib])
    return len(free)


def within_limits(pool: NodePoolConfig, nodes: int, instance: InstanceType) -> bool:
    """Karpenter buys no node past a NodePool's limits."""
    return (
        nodes * instance.vcpu <= pool.cpu_limit
        and nodes * instance.memory_gib <= pool.memory_limit_gib
    )


def price_pool(
    pool: NodePoolConfig,
    capacity: str,
    pods: list[Pod],
    catalog: list[InstanceType],
    spot_discounts: dict[str, float],
) -> PoolCost:
    best: PoolCost | None = None
    over_limit: list[tuple[int, InstanceType]] = []
    for instance in allowed_types(pool, catalog):
        nodes = nodes_needed(pods, instance)
        if nodes is None:
            continue
        if not within_limits(pool, nodes, instance):
            over_limit.append((nodes, instance))
            continue
        hourly = instance.on_demand_hourly
        if capacity == "spot":
            hourly *= 1 - spot_discounts[instance.category]
        cost = PoolCost(pool.name, capacity, instance.name, nodes, len(pods), nodes * hourly)
        if best is None or cost.hourly_usd < best.hourly_usd:
            best = cost
    if best is None and over_limit:
        nodes, instance = min(over_limit, key=lambda fit: fit[0] * fit[1].vcpu)
        raise CostModelError(
            f"NodePool {pool.name!r} cannot hold its {len(pods)} {capacity} pods within its "
            f"limits ({pool.cpu_limit} vCPUs, {pool.memory_limit_gib} GiB): the smallest fit "
            f"is {nodes} x {instance.name} ({nodes * instance.vcpu} vCPUs, "
            f"{nodes * instance.memory_gib} GiB), so Karpenter would leave pods pending. Raise "
            "the pool's cpuLimit or memoryLimitGib, or lower the requests"
        )
    if best is None:
        types = allowed_types(pool, catalog)
        unfit = next((p for p in pods if not any(nodes_needed([p], t) for t in types)), None)
        if unfit is not None:
            raise CostModelError(
                f"pod {unfit.name} ({unfit.cpu_m}m CPU, {unfit.memory_mib}Mi) fits no instance "
                f"type NodePool {pool.name!r} allows"
            )
        raise CostModelError(
            f"no one instance type NodePool {pool.name!r} allows holds all of its {len(pods)} "
            f"{capacity} pods (the model packs a pool onto one type)"
        )
    return best


def stack_cost(
    config: StackConfig,
    catalog: list[InstanceType] | None = None,
    spot_discounts: dict[str, float] | None = None,
) -> StackCost:
    if config.platform.mode != "aws" or config.platform.cluster is None:
        raise CostModelError(
            f"stack {config.stack} runs on an existing cluster: the cost model prices AWS stacks"
        )
    catalog = catalog or load_instance_types()
    discounts = {**SPOT_DISCOUNTS, **(spot_discounts or {})}
    groups: dict[tuple[str, str], list[Pod]] = {}
    pools = {p.name: p for p in config.platform.node_pools}
    for pod in stack_pods(config):
        try:
            pool, capacity = choose_pool(pod.stateless, config.workloads, tuple(pools.values()))
        except PlacementError as exc:
            raise CostModelError(f"pod {pod.name}: {exc}") from exc
        groups.setdefault((pool.name, capacity), []).append(pod)
    lines = [
        price_pool(pools[name], capacity, pods, catalog, discounts)
        for (name, capacity), pods in sorted(groups.items())
    ]
    by_name = {t.name: t for t in catalog}
    _check_shared_limits(lines, pools, by_name)
    system = config.platform.cluster.system_node_group
    system_type = by_name.get(system.instance_types[0])
    if system_type is None:
        raise CostModelError(f"no price for the system node group's {system.instance_types[0]}")
    lines.append(
        PoolCost(
            "system node group",
            "on-demand",
            system_type.name,
            system.desired_size,
            None,
            system.desired_size * system_type.on_demand_hourly,
        )
    )
    store = config.workloads.store
    services = (elasticache_cost(store.elasticache),) if store.mode != "in_cluster" else ()
    return StackCost(config.stack, tuple(lines), services)


def _check_shared_limits(
    lines: list[PoolCost], pools: dict[str, NodePoolConfig], by_name: dict[str, InstanceType]
) -> None:
    """A NodePool that buys both spot and on-demand nodes holds both within one set of limits."""
    for name, pool in pools.items():
        bought = [(line.nodes, by_name[line.instance_type]) for line in lines if line.pool == name]
        cpu = sum(nodes * instance.vcpu for nodes, instance in bought)
        memory = sum(nodes * instance.memory_gib for nodes, instance in bought)
        if cpu > pool.cpu_limit or memory > pool.memory_limit_gib:
            raise CostModelError(
                f"NodePool {name!r} would need {cpu} vCPUs and {memory} GiB in all, over its "
                f"limits ({pool.cpu_limit} vCPUs, {pool.memory_limit_gib} GiB), so Karpenter "
                "would leave pods pending. Raise the pool's cpuLimit or memoryLimitGib, or lower "
                "the requests"
            )


def compare(
    before: StackConfig, after: StackConfig, spot_discounts: dict[str, float] | None = None
) -> dict[str, float]:
    """Monthly costs and the saving, split into rightsizing (the requests, both stacks priced
    on-demand) and spot (what spot saves the after stack, less what it saved the before one)."""

    def on_demand(config: StackConfig) -> StackConfig:
        workloads = config.workloads.model_copy(update={"stateless_on_spot": False})
        return config.model_copy(update={"workloads": workloads})

    def monthly(config: StackConfig) -> float:
        return stack_cost(config, spot_discounts=spot_discounts).monthly_usd

    unoptimized, optimized = monthly(before), monthly(after)
    before_on_demand, after_on_demand = monthly(on_demand(before)), monthly(on_demand(after))
    saved = unoptimized - optimized
    return {
        "unoptimized_monthly_usd": unoptimized,
        "optimized_monthly_usd": optimized,
        "savings_usd": saved,
        "savings_pct": saved / unoptimized if unoptimized else 0.0,
        "rightsizing_usd": before_on_demand - after_on_demand,
        "spot_usd": (after_on_demand - optimized) - (before_on_demand - unoptimized),
    }
