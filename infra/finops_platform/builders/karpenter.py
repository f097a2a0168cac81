"""Karpenter manifests and Helm values from the typed stack config."""

from __future__ import annotations

from typing import Any

from ..config import KarpenterConfig, NodePoolConfig

NODE_CLASS_NAME = "default"
NAMESPACE = "kube-system"
RELEASE_NAME = "karpenter"
CRD_RELEASE_NAME = "karpenter-crd"
POOL_LABEL = "finops-sim/node-pool"
# Karpenter's well-known label for the capacity type a node was bought as.
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
# The label of the system managed node group's nodes: the ones Karpenter neither launches nor
# consolidates, where controllers and measurements run.
SYSTEM_NODES = {"finops-sim/node-group": "system"}


def node_role_name(cluster_name: str) -> str:
    return f"KarpenterNodeRole-{cluster_name}"


def node_class(
    config: KarpenterConfig,
    cluster_name: str,
    node_role_name: str,
    tags: dict[str, str],
    subnet_ids: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The one EC2NodeClass: pinned AMI alias, IMDSv2 only, encrypted gp3 root volume. Nodes go
    into ``subnet_ids`` when given (an existing VPC's subnets, which lack the discovery tag),
    else into the subnets tagged for this cluster (the VPC the network component creates)."""
    discovery = [{"tags": {"karpenter.sh/discovery": cluster_name}}]
    subnets = [{"id": subnet} for subnet in subnet_ids] or discovery
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": NODE_CLASS_NAME},
        "spec": {
            "role": node_role_name,
            "amiSelectorTerms": [{"alias": config.ami_alias}],
            "subnetSelectorTerms": subnets,
            "securityGroupSelectorTerms": discovery,
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "ebs": {
                        "volumeSize": f"{config.root_volume_gib}Gi",
                        "volumeType": "gp3",
                        "encrypted": True,
                        "deleteOnTermination": True,
                    },
                }
            ],
            "tags": tags,
        },
    }


def node_pool(pool: NodePoolConfig) -> dict[str, Any]:
    """A NodePool: what capacity it may buy, how much at most, and how it consolidates."""
    requirements: list[dict[str, Any]] = [
        {
            "key": CAPACITY_TYPE_LABEL,
            "operator": "In",
            "values": list(pool.capacity_types),
        },
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(pool.architectures)},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {
            "key": "karpenter.k8s.aws/instance-category",
            "operator": "In",
            "values": list(pool.instance_categories),
        },
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["4"]},
    ]
    if pool.instance_families:
        requirements.append(
            {
                "key": "karpenter.k8s.aws/instance-family",
                "operator": "In",
                "values": list(pool.instance_families),
            }
        )
    template_spec: dict[str, Any] = {
        "nodeClassRef": {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": NODE_CLASS_NAME,
        },
        "requirements": requirements,
        "expireAfter": pool.expire_after,
    }
    if pool.taints:
        template_spec["taints"] = [t.model_dump() for t in pool.taints]
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": pool.name},
        "spec": {
            "weight": pool.weight,
            "template": {
                "metadata": {"labels": {POOL_LABEL: pool.name, **pool.labels}},
                "spec": template_spec,
            },
            "disruption": {
                "consolidationPolicy": pool.consolidation_policy,
                "consolidateAfter": pool.consolidate_after,
                "budgets": [{"nodes": "10%"}],
            },
            "limits": {"cpu": str(pool.cpu_limit), "memory": f"{pool.memory_limit_gib}Gi"},
        },
    }


def replaces_spot_with_spot(config: KarpenterConfig) -> bool:
    """Whether a spot node may be consolidated onto a cheaper spot node: off in Karpenter by
    default (an alpha gate), a spot node is otherwise only removed when its pods fit elsewhere,
    never swapped for a smaller one. On where a pool consolidates underused spot nodes."""
    return any(
        "spot" in pool.capacity_types
        and pool.consolidation_enabled
        and pool.consolidation_policy != "WhenEmpty"
        for pool in config.node_pools
    )


def helm_values(
    config: KarpenterConfig, cluster_name: str, queue_name: str, role_arn_annotation: str | None
) -> dict[str, Any]:
    """Controller values; with IRSA the service account carries the role ARN. The controller
    runs on the system node group: never on the nodes it manages."""
    service_account: dict[str, Any] = {"create": True, "name": "karpenter"}
    if role_arn_annotation:
        service_account["annotations"] = {"eks.amazonaws.com/role-arn": role_arn_annotation}
    return {
        "settings": {
            "clusterName": cluster_name,
            "interruptionQueue": queue_name,
            "featureGates": {"spotToSpotConsolidation": replaces_spot_with_spot(config)},
        },
        "replicas": config.replicas,
        "dnsPolicy": "Default",
        "nodeSelector": dict(SYSTEM_NODES),
        "serviceAccount": service_account,
        "serviceMonitor": {"enabled": True},
        # The getting-started guide gives the controller 1Gi; the request stays smaller so the
        # system nodes keep room, and the limit matches the guide, so a burst is not OOM-killed
        # (which would stall provisioning, and the drain during `pulumi destroy`).
        "controller": {
            "resources": {
                "requests": {"cpu": "250m", "memory": "512Mi"},
                "limits": {"memory": "1Gi"},
            }
        },
    }
