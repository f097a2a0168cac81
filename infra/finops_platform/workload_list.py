"""The stack's workloads, listed once: name, team, replicas, requests and whether stateless.

The manifests (``builders/workloads.py``), the cost model (``cost.py``) and the policy pack
(``policy/finops_rules.py``) all read this list, so a workload added, resized or made stateful
here changes all three together.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ContainerResources, WorkloadsConfig

GATEWAY = "ai-gateway"
GATEWAY_CONTAINER = "gateway"  # its container's name, as metrics and recommendations see it
REDIS = "redis"
LOCUST_MASTER = "locust-master"
LOCUST_WORKER = "locust-worker"
DEMO_SERVICE_PREFIX = "demo-service-"
PLATFORM_TEAM = "ai-platform"  # owns the gateway, its store and the namespace


@dataclass(frozen=True)
class Workload:
    """One Deployment or StatefulSet: ``stateless`` pods may run on spot nodes where the stack
    allows it."""

    name: str
    team: str
    replicas: int
    resources: ContainerResources
    stateless: bool


def workload_list(w: WorkloadsConfig) -> tuple[Workload, ...]:
    demo = w.demo_services
    return (
        Workload(GATEWAY, PLATFORM_TEAM, w.gateway.replicas, w.gateway.resources, stateless=True),
        *(
            [Workload(REDIS, PLATFORM_TEAM, 1, w.redis, stateless=False)]
            if w.store.mode == "in_cluster"
            else []
        ),
        Workload(LOCUST_MASTER, "load-testing", 1, w.locust.master, stateless=False),
        Workload(LOCUST_WORKER, "load-testing", w.locust.workers, w.locust.worker, stateless=True),
        *(
            Workload(f"{DEMO_SERVICE_PREFIX}{i}", "storefront", demo.replicas, demo.resources, True)
            for i in range(demo.count)
        ),
    )


def workloads_by_name(w: WorkloadsConfig) -> dict[str, Workload]:
    return {workload.name: workload for workload in workload_list(w)}
