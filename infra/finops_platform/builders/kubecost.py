"""Kubecost 3.x Helm values: the cluster id, and spot nodes recognised by Karpenter's label."""

from __future__ import annotations

from typing import Any

NAMESPACE = "kubecost"
RELEASE_NAME = "kubecost"


def helm_values(cluster_name: str) -> dict[str, Any]:
    return {
        "global": {"clusterId": cluster_name},
        "finopsagent": {
            "agent": {
                "kubecost": {"spotLabel": "karpenter.sh/capacity-type", "spotLabelValue": "spot"}
            }
        },
    }
