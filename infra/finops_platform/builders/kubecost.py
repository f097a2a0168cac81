"""Kubecost 3.x Helm values: the cluster id, spot nodes recognised by Karpenter's label, every
pod on the system node group, and claims that `pulumi destroy` removes."""

from __future__ import annotations

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


def helm_values(cluster_name: str) -> dict[str, Any]:
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
    return values
