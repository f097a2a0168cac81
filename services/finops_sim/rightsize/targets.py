"""What to rightsize: the stack's workloads, as the workloads builder renders them.

Each target is one container and the stack-config key that sets its resources. The apps,
container names and replicas come from the builder's own manifests, so they cannot drift from
what the cluster runs; the cost of a change comes from the compute cost model (``finops-sim
cost``'s prices and packing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic.alias_generators import to_camel

from finops_platform.builders.workloads import VALKEY_MAXMEMORY_SHARE, WorkloadBuilder
from finops_platform.config import (
    PROJECT,
    ContainerResources,
    MemoryLimit,
    Quantities,
    StackConfig,
    cpu_millicores,
    memory_mib,
)
from finops_platform.cost import CostModelError, stack_cost
from finops_platform.workload_list import (
    DEMO_SERVICE_PREFIX,
    GATEWAY,
    LOCUST_MASTER,
    LOCUST_WORKER,
    REDIS,
)

from .strategy import MIB, CacheBudget, Recommendation

# The key under ``finops-sim:workloads`` that sets each app's container resources.
RESOURCES_KEY = {
    GATEWAY: ("gateway", "resources"),
    REDIS: ("redis",),
    LOCUST_MASTER: ("locust", "master"),
    LOCUST_WORKER: ("locust", "worker"),
}
DEMO_SERVICES_KEY = ("demo_services", "resources")


@dataclass(frozen=True)
class Target:
    workload: str  # as the stack file names it: "gateway", "locust.worker", "demoServices"
    key: tuple[str, ...]  # attribute path under WorkloadsConfig
    apps: tuple[str, ...]
    container: str
    pods: int  # replicas summed over its apps
    resources: ContainerResources
    # The share of its memory limit its cache may fill (Valkey's maxmemory), or None.
    cache_share: float | None = None

    @property
    def stack_key(self) -> str:
        """The key as the stack file spells it."""
        return f"{PROJECT}:workloads." + ".".join(to_camel(part) for part in self.key)

    @property
    def cpu_request_m(self) -> int:
        return cpu_millicores(self.resources.requests.cpu)

    @property
    def memory_request_bytes(self) -> int:
        return memory_mib(self.resources.requests.memory) * MIB

    @property
    def memory_limit_bytes(self) -> int:
        return memory_mib(self.resources.limits.memory) * MIB

    @property
    def cache(self) -> CacheBudget | None:
        """Its cache budget, for a container whose cache is sized by its limit."""
        if self.cache_share is None:
            return None
        return CacheBudget(self.cache_share, self.memory_limit_bytes)


def _key(app: str) -> tuple[str, ...]:
    return RESOURCES_KEY.get(app, DEMO_SERVICES_KEY if app.startswith(DEMO_SERVICE_PREFIX) else ())


def _resources_at(config: StackConfig, key: tuple[str, ...]) -> ContainerResources:
    value: object = config.workloads
    for part in key:
        value = getattr(value, part)
    if not isinstance(value, ContainerResources):
        raise TypeError(f"workloads.{'.'.join(key)} is not a container's resources")
    return value


def stack_targets(config: StackConfig) -> list[Target]:
    """One target per (stack key, container), in the order the stack file lists them."""
    managed_store = config.workloads.store.mode != "in_cluster"  # no Valkey pod to size
    builder = WorkloadBuilder(
        config.workloads,
        config.platform.node_pools,
        config.platform.cost_center,
        config.stack,
        external_store_url="managed store" if managed_store else None,
    )
    found: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}
    for manifest in builder.manifests():
        if manifest["kind"] not in ("Deployment", "StatefulSet"):
            continue
        app = manifest["metadata"]["labels"]["app"]
        key = _key(app)
        if not key:
            raise ValueError(f"no stack key sets the resources of app {app!r}")
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            entry = found.setdefault((key, container["name"]), {"apps": [], "pods": 0})
            entry["apps"].append(app)
            entry["pods"] += manifest["spec"]["replicas"]
    return [
        Target(
            workload=".".join(to_camel(part) for part in key if part != "resources"),
            key=key,
            apps=tuple(entry["apps"]),
            container=container,
            pods=entry["pods"],
            resources=_resources_at(config, key),
            cache_share=VALKEY_MAXMEMORY_SHARE if key == RESOURCES_KEY[REDIS] else None,
        )
        for (key, container), entry in found.items()
    ]


def recommended_resources(target: Target, recommendation: Recommendation) -> ContainerResources:
    """The target's resources with the recommendation's requests and memory limit. A CPU limit
    the stack sets stays, raised to the new request where it is below it (Kubernetes refuses a
    limit under its request; the stack config refused it with a traceback)."""
    cpu_limit = target.resources.limits.cpu
    if cpu_limit is not None and cpu_millicores(cpu_limit) < cpu_millicores(recommendation.cpu):
        cpu_limit = recommendation.cpu
    return ContainerResources(
        requests=Quantities(cpu=recommendation.cpu, memory=recommendation.memory),
        limits=MemoryLimit(memory=recommendation.memory, cpu=cpu_limit),
    )


def with_resources(
    config: StackConfig, changes: dict[tuple[str, ...], ContainerResources]
) -> StackConfig:
    """The stack config with some workloads' resources replaced (the models are frozen)."""

    def replace(model: Any, key: tuple[str, ...], resources: ContainerResources) -> Any:
        if len(key) == 1:
            return model.model_copy(update={key[0]: resources})
        child = replace(getattr(model, key[0]), key[1:], resources)
        return model.model_copy(update={key[0]: child})

    workloads = config.workloads
    for key, resources in changes.items():
        workloads = replace(workloads, key, resources)
    return config.model_copy(update={"workloads": workloads})


def monthly_cost(config: StackConfig) -> float | None:
    """The cost model's monthly estimate, or None for a stack it cannot price (mode: local, or
    pods that fit no NodePool); the output says both."""
    try:
        return stack_cost(config).monthly_usd
    except CostModelError:
        return None
