"""The FinOps guardrails as plain functions: (resource type, props, stack) -> violation messages.

``__main__.py`` wraps them as a Pulumi policy pack; the tests call them on the resources the
program registers under mocks. They read only values known at preview (the workloads' requests,
labels and placement, NodePool specs, tags are plain values in the program, not outputs), and
the stack's config through the program's own validated config and workload list.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_taggable import is_taggable
from finops_common.labels import COST_LABELS
from finops_platform.config import (
    StackConfig,
    cpu_millicores,
    load_stack,
    memory_mib,
    stack_file,
)
from finops_platform.workload_list import workloads_by_name

COST_TAGS = ("project", "stack", "cost-center")
WORKLOAD_KINDS = ("apps/v1:Deployment", "apps/v1:StatefulSet", "apps/v1:DaemonSet", "batch/v1:Job")
DEFAULT_GRAFANA_PASSWORDS = ("admin", "prom-operator", "")


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::...`` -> the stack name."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


@cache
def stack_config(stack: str) -> StackConfig | None:
    """The stack's config as the program validates it (stacks/Pulumi.<stack>.yaml, secrets
    left out); None for a stack without a file there, whose stack-aware rules then pass."""
    if not stack_file(stack).exists():
        return None
    return load_stack(stack)


def is_workload(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:") and resource_type.endswith(WORKLOAD_KINDS)


def _pod_spec(props: dict[str, Any]) -> dict[str, Any]:
    spec = props.get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def _containers(props: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod_spec(props)
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _name(props: dict[str, Any]) -> str:
    return (props.get("metadata") or {}).get("name", "?")


def requests_and_limits(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    if not is_workload(resource_type):
        return []
    problems = []
    for container in _containers(props):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        missing = [f"{r} request" for r in ("cpu", "memory") if r not in requests]
        if "memory" not in limits:
            missing.append("memory limit")
        if missing:
            problems.append(
                f"{_name(props)}: container {container.get('name', '?')} has no "
                + ", no ".join(missing)
            )
    return problems


def cost_labels(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    """Kubecost splits cost by the pods' labels, which come from the pod template; the
    workload's own labels are checked too, for kubectl and the dashboards."""
    if not is_workload(resource_type):
        return []
    template = (props.get("spec") or {}).get("template") or {}
    problems = []
    for whose, metadata in (("", props.get("metadata")), ("'s pods", template.get("metadata"))):
        labels = (metadata or {}).get("labels") or {}
        missing = [label for label in COST_LABELS if label not in labels]
        if missing:
            verb = "lack" if whose else "lacks"
            problems.append(
                f"{_name(props)}{whose} {verb} the cost-allocation labels {', '.join(missing)}"
            )
    return problems


def cost_tags(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    """Taggable is what the provider's schema says (``aws_taggable``). The AWS provider's
    ``defaultTags`` reach ``tagsAll`` in the provider's Check, before policies see the inputs, so
    component children (the VPC's subnets, the cluster's roles) pass without explicit tags."""
    if not resource_type.startswith("aws:") or not is_taggable(resource_type):
        return []
    tags = {**(props.get("tagsAll") or {}), **(props.get("tags") or {})}
    missing = [tag for tag in COST_TAGS if tag not in tags]
    return [f"{resource_type} lacks the cost tags {', '.join(missing)}"] if missing else []


# What makes an AWS load balancer internal: the cloud provider's own annotation, which EKS's
# built-in service controller reads; or the AWS Load Balancer Controller's scheme annotation, which
# only that controller reads, so only on a Service handed to it (by type or load balancer class).
IN_TREE_INTERNAL = "service.beta.kubernetes.io/aws-load-balancer-internal"
LBC_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LBC_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
LBC_TYPES = ("external", "nlb-ip")
LBC_CLASS = "service.k8s.aws/nlb"
PUBLIC_ENDPOINT = (
    "the EKS API endpoint is public without an explicit allow-list (publicAccessCidrs)"
)


def _is_internal(props: dict[str, Any]) -> bool:
    annotations = (props.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(IN_TREE_INTERNAL, "")).lower() == "true":
        return True
    to_the_controller = (
        annotations.get(LBC_TYPE) in LBC_TYPES
        or (props.get("spec") or {}).get("loadBalancerClass") == LBC_CLASS
    )
    return to_the_controller and annotations.get(LBC_SCHEME) == "internal"


def _open_endpoint(public: Any, cidrs: Any) -> bool:
    """EKS opens a public endpoint with no allow-list to 0.0.0.0/0."""
    return bool(public) and (not cidrs or "0.0.0.0/0" in cidrs)


def no_public_exposure(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    """The endpoint is read on the ``aws:eks/cluster:Cluster`` the eks component creates: the
    component's own inputs reach policies only when its plugin records them, so they are read
    only when there are any (the endpoint's default is public)."""
    service_type = (props.get("spec") or {}).get("type")
    if resource_type == "kubernetes:core/v1:Service" and service_type == "LoadBalancer":
        if _is_internal(props):
            return []
        return [
            f"Service {_name(props)} is an internet-facing LoadBalancer; use a port-forward or "
            f'an internal load balancer (annotation {IN_TREE_INTERNAL}: "true")'
        ]
    endpoint = None
    if resource_type == "aws:eks/cluster:Cluster":
        endpoint = props.get("vpcConfig") or {}
    elif resource_type == "eks:index:Cluster" and props:
        endpoint = props
    if endpoint is not None and _open_endpoint(
        endpoint.get("endpointPublicAccess", True), endpoint.get("publicAccessCidrs")
    ):
        return [PUBLIC_ENDPOINT]
    return []


def grafana_password(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    if resource_type != "kubernetes:helm.sh/v3:Release":
        return []
    if "kube-prometheus-stack" not in str(props.get("chart", "")):
        return []
    grafana = (props.get("values") or {}).get("grafana") or {}
    if (grafana.get("admin") or {}).get("existingSecret"):
        return []
    if grafana.get("adminPassword", "prom-operator") in DEFAULT_GRAFANA_PASSWORDS:
        return ["Grafana would keep a default admin password; set grafana.admin.existingSecret"]
    return []


def nodepool_limits(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    if resource_type != "kubernetes:karpenter.sh/v1:NodePool":
        return []
    limits = (props.get("spec") or {}).get("limits") or {}
    missing = [r for r in ("cpu", "memory") if r not in limits]
    return [f"NodePool {_name(props)} has no {' or '.join(missing)} limit"] if missing else []


def stateless_tolerates_spot(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    if not is_workload(resource_type):
        return []
    config = stack_config(stack)
    workload = workloads_by_name(config.workloads).get(_name(props)) if config else None
    if workload is None or not workload.stateless:
        return []
    tolerations = _pod_spec(props).get("tolerations") or []
    if any("spot" in str(t.get("key", "")) for t in tolerations):
        return []
    return [f"stateless workload {_name(props)} does not tolerate spot nodes"]


def measured_ceilings(stack: str) -> dict[tuple[str, str], dict[str, str]]:
    """(app, container) -> the requests ``finops-sim rightsize --write`` derived from measured
    usage and wrote into the stack, as recorded in ``stacks/rightsize.<stack>.json``."""
    from finops_sim.rightsize.stackfile import read_recommendations

    return {
        (app, w["container"]): {k: w["recommendation"][k] for k in ("cpu", "memory")}
        for w in read_recommendations(stack)
        for app in w["apps"]
    }


def within_rightsizing_ceiling(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    """A container's ceiling is its measured recommendation where one exists, else the stack's
    ``rightsizingCeiling``."""
    if not is_workload(resource_type):
        return []
    config = stack_config(stack)
    stack_ceiling = config.workloads.rightsizing_ceiling if config else None
    ceiling = stack_ceiling.model_dump() if stack_ceiling else None
    measured = measured_ceilings(stack)
    app = ((props.get("metadata") or {}).get("labels") or {}).get("app")
    problems = []
    for container in _containers(props):
        name = container.get("name", "?")
        container_ceiling = measured.get((app, name), ceiling) or {}
        source = f" (measured, rightsize.{stack}.json)" if (app, name) in measured else ""
        requests = (container.get("resources") or {}).get("requests") or {}
        for resource, parse in (("cpu", cpu_millicores), ("memory", memory_mib)):
            if (
                resource in requests
                and resource in container_ceiling
                and parse(requests[resource]) > parse(container_ceiling[resource])
            ):
                problems.append(
                    f"{_name(props)}: container {name} requests "
                    f"{requests[resource]} {resource}, above the ceiling "
                    f"{container_ceiling[resource]}{source}"
                )
    return problems


# name -> (description, check, applies to): "all" stacks, or "optimized" where it is mandatory
# and advisory elsewhere (so the demo's "before" state previews with warnings, not failures).
RULES = {
    "requests-and-limits": (
        "Every container has CPU and memory requests and a memory limit.",
        requests_and_limits,
        "all",
    ),
    "cost-allocation-labels": (
        "Every workload carries app, team, cost-center and phase labels.",
        cost_labels,
        "all",
    ),
    "cost-tags": (
        "Every taggable AWS resource carries the project, stack and cost-center tags.",
        cost_tags,
        "all",
    ),
    "no-public-exposure": (
        "No internet-facing LoadBalancer Service, and no EKS endpoint public to everyone.",
        no_public_exposure,
        "all",
    ),
    "grafana-admin-password": (
        "Grafana's admin password is not a default.",
        grafana_password,
        "all",
    ),
    "nodepool-limits": ("Every NodePool has CPU and memory limits.", nodepool_limits, "all"),
    "stateless-tolerates-spot": (
        "Stateless workloads may run on spot nodes.",
        stateless_tolerates_spot,
        "optimized",
    ),
    "rightsizing-ceiling": (
        "No container requests more than its measured recommendation, else the stack's "
        "rightsizing ceiling.",
        within_rightsizing_ceiling,
        "optimized",
    ),
}
