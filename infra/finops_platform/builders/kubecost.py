"""Kubecost 3.x Helm values: the cluster id, spot nodes recognised by Karpenter's label, every
pod on the system node group but the network-costs DaemonSet (on every node, tainted spot ones
included), and claims that `pulumi destroy` removes."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from .karpenter import SYSTEM_NODES

NAMESPACE = "kubecost"
RELEASE_NAME = "kubecost"
# The chart's components that run pods we pin (the network-costs DaemonSet runs on every node).
PINNED_COMPONENTS = (
    "frontend",
    "localStore",
    "aggregator",
    "cloudCost",
    "forecasting",
    "clusterController",
)
# The chart marks these claims `helm.sh/resource-policy: keep`, so an uninstall would leave
# their EBS volumes behind. Helm keeps a resource only when the annotation's value is "keep".
KEPT_CLAIMS = {
    "localStore": ("persistentVolume",),
    "aggregator": ("persistentConfigsStorage", "aggregatorDbStorage"),
    "cloudCost": ("persistentConfigsStorage",),
}
NOT_KEPT = {"helm.sh/resource-policy": "delete"}
# The network-costs DaemonSet meters each node's traffic: without a toleration it stays off the
# NodePools' tainted nodes (the optimized stack's spot pool), where the workloads run.
EVERY_NODE = [{"operator": "Exists"}]
# The chart's in-zone destinations: traffic to them is priced as free. Its values say to remove
# the private range of a multi-AZ cluster's network, or traffic between zones (billed both ways)
# is counted as in-zone; every EKS stack here spans two or three zones. Without it, network-costs
# places each pod's address in its node's zone.
CHART_IN_ZONE = ("127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12",
                                                         "192.168.0.0/16"))  # fmt: skip


def in_zone_destinations(vpc_cidrs: Sequence[str]) -> list[str]:
    """The chart's in-zone list less each private range that holds one of the VPC's ranges
    (an existing VPC may have secondary ones)."""
    vpc = [ipaddress.IPv4Network(cidr) for cidr in vpc_cidrs]
    dropped = {private for private in PRIVATE_RANGES if any(r.subnet_of(private) for r in vpc)}
    return [cidr for cidr in CHART_IN_ZONE if ipaddress.ip_network(cidr) not in dropped]


def helm_values(cluster_name: str, vpc_cidrs: Sequence[str]) -> dict[str, Any]:
    """``vpc_cidrs``: the VPC's IPv4 ranges (its primary and any secondary ones)."""
    values: dict[str, Any] = {
        "global": {"clusterId": cluster_name},
        "finopsagent": {
            "nodeSelector": dict(SYSTEM_NODES),
            "agent": {
                "kubecost": {"spotLabel": "karpenter.sh/capacity-type", "spotLabelValue": "spot"}
            },
        },
    }
    for component in PINNED_COMPONENTS:
        values[component] = {"nodeSelector": dict(SYSTEM_NODES)}
    for component, claims in KEPT_CLAIMS.items():
        for claim in claims:
            values[component][claim] = {"annotations": dict(NOT_KEPT)}
    values["networkCosts"] = {
        "tolerations": EVERY_NODE,
        "config": {"destinations": {"in-zone": in_zone_destinations(vpc_cidrs)}},
    }
    return values
