"""Where a pod runs: the NodePool (and so the capacity type) the stack gives it.

Stateless pods (gateway, Locust workers, demo services) go to a pool that allows spot when the
stack says ``statelessOnSpot``; stateful ones (Redis, the Locust master) always to an on-demand
pool. The cost model and the workloads' node selectors both use this, so they cannot disagree.
"""

from __future__ import annotations

from typing import Any

from ..config import NodePoolConfig, WorkloadsConfig
from .karpenter import CAPACITY_TYPE_LABEL, POOL_LABEL


class PlacementError(ValueError):
    """No NodePool of the stack can hold the pod."""


def choose_pool(
    stateless: bool, workloads: WorkloadsConfig, pools: tuple[NodePoolConfig, ...]
) -> tuple[NodePoolConfig, str]:
    """The pool and the capacity type ("spot" or "on-demand") the pod gets."""
    if stateless and workloads.stateless_on_spot:
        for pool in pools:
            if "spot" in pool.capacity_types:
                return pool, "spot"
    for pool in pools:
        if pool.capacity_types == ("on-demand",):
            return pool, "on-demand"
    for pool in pools:
        if "on-demand" in pool.capacity_types:
            return pool, "on-demand"
    raise PlacementError("the pod needs on-demand capacity and no NodePool allows it")


def pod_placement(pool: NodePoolConfig, capacity: str) -> dict[str, Any]:
    """The pod spec fields that put a pod on ``pool``'s nodes: a selector and its tolerations.
    In a pool that may buy either capacity type, a pod given on-demand selects it (Karpenter
    would otherwise put a stateful pod on the spot nodes the pool allows, while the cost model
    prices it on-demand), and a pod given spot prefers it without requiring it: Karpenter drops
    a preference it cannot meet, so when spot is short (or the account's spot quota is spent)
    the pod still gets an on-demand node, the fallback such a pool exists for."""
    selector = {POOL_LABEL: pool.name}
    placement: dict[str, Any] = {"nodeSelector": selector}
    if len(pool.capacity_types) > 1 and capacity == "on-demand":
        selector[CAPACITY_TYPE_LABEL] = capacity
    elif len(pool.capacity_types) > 1:
        preference = {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": [capacity]}
        placement["affinity"] = {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "preference": {"matchExpressions": [preference]}}
                ]
            }
        }
    if pool.taints:
        placement["tolerations"] = [
            {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
            for t in pool.taints
        ]
    return placement
