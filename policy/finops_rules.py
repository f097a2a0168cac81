"""The FinOps guardrails as plain functions: (resource type, props, stack) -> violation messages.

``__main__.py`` wraps them as a Pulumi policy pack; the tests call them on the resources the
program registers under mocks. They read only values known at preview (the workloads' requests,
labels and placement, NodePool specs, tags are plain values in the program, not outputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from finops_common.labels import COST_LABELS
from finops_platform.config import cpu_millicores, memory_mib

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"
COST_TAGS = ("project", "stack", "cost-center")
WORKLOAD_KINDS = ("apps/v1:Deployment", "apps/v1:StatefulSet", "apps/v1:DaemonSet", "batch/v1:Job")
STATEFUL_APPS = ("redis", "locust-master")
# AWS resource types that take no tags (attachments, inline policies, targets, tag resources).
UNTAGGABLE_AWS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:sqs/queuePolicy:QueuePolicy",
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:ec2/tag:Tag",
)
DEFAULT_GRAFANA_PASSWORDS = ("admin", "prom-operator", "")


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::...`` -> the stack name."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


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
    if not is_workload(resource_type):
        return []
    labels = (props.get("metadata") or {}).get("labels") or {}
    missing = [label for label in COST_LABELS if label not in labels]
    return (
        [f"{_name(props)} lacks the cost-allocation labels {', '.join(missing)}"] if missing else []
    )


def cost_tags(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    if not resource_type.startswith("aws:") or resource_type in UNTAGGABLE_AWS:
        return []
    if resource_type.startswith("pulumi:providers:"):
        return []
    tags = props.get("tags") or {}
    missing = [tag for tag in COST_TAGS if tag not in tags]
    return [f"{resource_type} lacks the cost tags {', '.join(missing)}"] if missing else []


def no_public_exposure(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    service_type = (props.get("spec") or {}).get("type")
    if resource_type == "kubernetes:core/v1:Service" and service_type == "LoadBalancer":
        return [
            f"Service {_name(props)} is a public LoadBalancer; use a port-forward or an "
            "internal load balancer"
        ]
    if resource_type == "eks:index:Cluster" and props.get("endpointPublicAccess", True):
        cidrs = props.get("publicAccessCidrs") or []
        if not cidrs or "0.0.0.0/0" in cidrs:
            return [
                "the EKS API endpoint is public without an explicit allow-list (publicAccessCidrs)"
            ]
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
    app = ((props.get("metadata") or {}).get("labels") or {}).get("app")
    if app in STATEFUL_APPS:
        return []
    tolerations = _pod_spec(props).get("tolerations") or []
    if any("spot" in str(t.get("key", "")) for t in tolerations):
        return []
    return [f"stateless workload {_name(props)} does not tolerate spot nodes"]


def rightsizing_ceiling(stack: str) -> dict[str, str] | None:
    """The stack config's ``finops-sim:workloads.rightsizingCeiling``, read from its file."""
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return None
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return (config.get("finops-sim:workloads") or {}).get("rightsizingCeiling")


def within_rightsizing_ceiling(resource_type: str, props: dict[str, Any], stack: str) -> list[str]:
    if not is_workload(resource_type):
        return []
    ceiling = rightsizing_ceiling(stack)
    if not ceiling:
        return []
    problems = []
    for container in _containers(props):
        requests = (container.get("resources") or {}).get("requests") or {}
        for resource, parse in (("cpu", cpu_millicores), ("memory", memory_mib)):
            if (
                resource in requests
                and resource in ceiling
                and parse(requests[resource]) > parse(ceiling[resource])
            ):
                problems.append(
                    f"{_name(props)}: container {container.get('name', '?')} requests "
                    f"{requests[resource]} {resource}, above the ceiling {ceiling[resource]}"
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
        "No LoadBalancer Service, and no EKS endpoint public to everyone.",
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
        "No container requests more than the stack's rightsizing ceiling.",
        within_rightsizing_ceiling,
        "optimized",
    ),
}
