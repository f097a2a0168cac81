"""Kubecost 3.x Helm values: the cluster id, spot nodes recognised by Karpenter's label, every
pod on the system node group but the network-costs DaemonSet (on every node, tainted spot ones
included), and claims sized for a lab that `pulumi destroy` removes."""

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
# The chart's defaults are 128 GiB for the aggregator's database and 32 GiB for the local store:
# about $12.80 a month of gp3 per stack (us-east-1, $0.08 per GB-month) for a lab that runs
# hours or days on a few nodes. These hold weeks of such a cluster's data; the chart's small
# config claims keep their 1 GiB.
CLAIM_SIZES = {("aggregator", "aggregatorDbStorage"): ("storageRequest", "32Gi"),
               ("localStore", "persistentVolume"): ("size", "8Gi")}  # fmt: skip
# The network-costs DaemonSet meters each node's traffic: without a toleration it stays off the
# NodePools' tainted nodes (the optimized stack's spot pool), where the workloads run.
EVERY_NODE = [{"operator": "Exists"}]


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
    for (component, claim), (key, size) in CLAIM_SIZES.items():
        values[component][claim][key] = size
    values["networkCosts"] = {"tolerations": EVERY_NODE}
    return values
