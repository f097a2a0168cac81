"""Cluster: EKS (API authentication mode, access entries), a small on-demand system node group,
the Pod Identity agent, cost tags, and a Kubernetes provider fed from the kubeconfig."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from ..builders.iam import SYSTEM_NODE_MANAGED_POLICIES
from ..config import ClusterConfig
from .node_roles import node_role as create_node_role

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class ClusterArgs:
    config: ClusterConfig
    cluster_name: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    public_subnet_ids: pulumi.Input[list[str]]
    partition: pulumi.Input[str]
    tags: dict[str, str]


class Cluster(pulumi.ComponentResource):
    name: str
    eks: eks.Cluster
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("finops:platform:Cluster", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.name = args.cluster_name
        self.eks = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=config.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=args.private_subnet_ids,
            public_subnet_ids=args.public_subnet_ids,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                f"admin-{i}": eks.AccessEntryArgs(
                    principal_arn=arn,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=ADMIN_POLICY,
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                                type="cluster"
                            ),
                        )
                    },
                )
                for i, arn in enumerate(config.admin_role_arns)
            },
            skip_default_node_group=True,
            skip_default_security_groups=True,
            endpoint_private_access=True,
            endpoint_public_access=config.endpoint_public_access,
            public_access_cidrs=list(config.public_access_cidrs) or None,
            create_oidc_provider=config.controller_identity == "irsa",
            enabled_cluster_log_types=["api", "audit"],
            tags=args.tags,
            opts=child,
        )
        # Karpenter finds the cluster security group that EKS created by this tag.
        aws.ec2.Tag(
            f"{name}-sg-discovery",
            resource_id=self.eks.cluster_security_group_id,
            key="karpenter.sh/discovery",
            value=args.cluster_name,
            opts=child,
        )
        node_role, attachments = create_node_role(
            f"{name}-system-nodes", SYSTEM_NODE_MANAGED_POLICIES, args.partition, args.tags, self
        )
        group = config.system_node_group
        # A plain EKS managed node group (not the eks.ManagedNodeGroup component): EKS creates its
        # access entry, and no resource reference crosses into a remote component.
        aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=args.cluster_name,
            node_role_arn=node_role.arn,
            instance_types=list(group.instance_types),
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=group.desired_size, min_size=group.min_size, max_size=group.max_size
            ),
            subnet_ids=args.private_subnet_ids,
            labels={"finops-sim/node-group": "system"},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.eks, *attachments]),
        )
        aws.eks.Addon(
            f"{name}-pod-identity-agent",
            cluster_name=args.cluster_name,
            addon_name="eks-pod-identity-agent",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.eks]),
        )
        self.kubeconfig = pulumi.Output.secret(self.eks.kubeconfig_json)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.eks.kubeconfig_json,
            enable_server_side_apply=True,
            opts=child,
        )
        self.register_outputs({"cluster_name": self.name, "kubeconfig": self.kubeconfig})
