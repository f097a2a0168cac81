"""Cluster: EKS (API authentication mode, access entries, STANDARD support), its control-plane
log group, a small on-demand system node group whose launch template tags its instances and
volumes, the add-ons (VPC CNI with network policies, CoreDNS, Pod Identity agent, EBS CSI driver,
metrics-server), the default gp3 StorageClass, and a Kubernetes provider fed from the kubeconfig.

Order: CoreDNS and the EBS CSI driver wait for the system nodes (an add-on whose pods cannot be
scheduled never becomes ACTIVE). ``system_ready`` lists what a release must wait for; on destroy
the releases go first, so the node group outlives every controller that runs on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s
from pulumi_eks import Cluster as EksCluster  # in Cluster's annotations, `eks` is the attribute

from ..builders import storage
from ..builders.iam import (
    SYSTEM_NODE_MANAGED_POLICIES,
    controller_trust_pod_identity,
    managed_policy_arn,
)
from ..builders.karpenter import SYSTEM_NODES
from ..config import ClusterConfig
from .node_roles import node_role as create_node_role

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
SYSTEM_ROOT_VOLUME_GIB = 30
# The VPC CNI's node agent enforces NetworkPolicies only with this (off by default).
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}


@dataclass(frozen=True)
class ClusterArgs:
    config: ClusterConfig
    cluster_name: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    partition: pulumi.Input[str]
    tags: dict[str, str]
    # The stack's aws:profile: the kubeconfig the Kubernetes provider logs in with (through
    # `aws eks get-token`) uses it too, or it would ask the environment's account.
    aws_profile: str | None = None


def control_plane_log_group(cluster_name: str) -> str:
    """The name EKS writes to; created first by the program, so destroy removes it."""
    return f"/aws/eks/{cluster_name}/cluster"


class Cluster(pulumi.ComponentResource):
    name: str
    eks: eks.Cluster
    system_nodes: aws.eks.NodeGroup
    pod_identity_agent: aws.eks.Addon
    storage_class: k8s.storage.v1.StorageClass
    # What a Helm release or workload waits for: nodes, Pod Identity, DNS, storage.
    system_ready: list[pulumi.Resource]
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("finops:platform:Cluster", name, None, opts)
        self.name = args.cluster_name
        self.eks = self._control_plane(name, args)
        sg_discovery = self._security_group_discovery_tag(name, args)
        self.system_nodes = self._system_node_group(name, args)
        self.pod_identity_agent = self._pod_identity_agent(name, args)
        coredns = self._coredns(name, args)
        ebs_csi = self._ebs_csi_driver(name, args)
        self._metrics_server(name, args)
        self.kubeconfig = pulumi.Output.secret(self.eks.kubeconfig_json)
        self.provider = self._kubernetes_provider(name)
        self.storage_class = self._default_storage_class(name, args, ebs_csi)
        self.system_ready = [
            sg_discovery,
            self.system_nodes,
            self.pod_identity_agent,
            coredns,
            ebs_csi,
            self.storage_class,
        ]
        self.register_outputs({"cluster_name": self.name, "kubeconfig": self.kubeconfig})

    def _control_plane(self, name: str, args: ClusterArgs) -> EksCluster:
        """The EKS cluster, after its log group: EKS would otherwise create the group itself,
        with no retention, and destroy would leave it behind."""
        config = args.config
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=control_plane_log_group(args.cluster_name),
            retention_in_days=config.log_retention_days,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=config.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=args.private_subnet_ids,
            public_subnet_ids=args.public_subnet_ids,
            authentication_mode=eks.AuthenticationMode.API,
            provider_credential_opts=(
                None
                if args.aws_profile is None
                else eks.KubeconfigOptionsArgs(profile_name=args.aws_profile)
            ),
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
            public_access_cidrs=config.api_allow_list,
            create_oidc_provider=config.controller_identity == "irsa",
            enabled_cluster_log_types=["api", "audit"],
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=config.upgrade_policy),
            vpc_cni_options=eks.VpcCniOptionsArgs(configuration_values=VPC_CNI_CONFIGURATION),
            # CoreDNS is installed by _coredns, once there are nodes to run it.
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )

    def _security_group_discovery_tag(self, name: str, args: ClusterArgs) -> aws.ec2.Tag:
        """Karpenter finds the cluster security group that EKS created by this tag: in the
        system's readiness, so node classes come after it and, on destroy, are gone before it."""
        return aws.ec2.Tag(
            f"{name}-sg-discovery",
            resource_id=self.eks.cluster_security_group_id,
            key="karpenter.sh/discovery",
            value=args.cluster_name,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _pod_identity_agent(self, name: str, args: ClusterArgs) -> aws.eks.Addon:
        """The Pod Identity agent add-on: pods get their Pod Identity associations' IAM roles
        through it (the EBS CSI driver's always, the controllers' under pod_identity)."""
        return aws.eks.Addon(
            f"{name}-pod-identity-agent",
            cluster_name=args.cluster_name,
            addon_name="eks-pod-identity-agent",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.eks]),
        )

    def _coredns(self, name: str, args: ClusterArgs) -> aws.eks.Addon:
        """The CoreDNS add-on, after the system nodes: without nodes for its pods it never
        becomes ACTIVE."""
        return aws.eks.Addon(
            f"{name}-coredns",
            cluster_name=args.cluster_name,
            addon_name="coredns",
            resolve_conflicts_on_create="OVERWRITE",
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.system_nodes, self.pod_identity_agent]
            ),
        )

    def _metrics_server(self, name: str, args: ClusterArgs) -> aws.eks.Addon:
        """The resource metrics API, which EKS does not install: the gateway's HPA
        (workloads.gateway.maxReplicas) reads CPU through it, and `kubectl top` too."""
        return aws.eks.Addon(
            f"{name}-metrics-server",
            cluster_name=args.cluster_name,
            addon_name="metrics-server",
            resolve_conflicts_on_create="OVERWRITE",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_nodes]),
        )

    def _kubernetes_provider(self, name: str) -> k8s.Provider:
        """The provider for everything inside the cluster, fed from the cluster's kubeconfig."""
        return k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.eks.kubeconfig_json,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _default_storage_class(
        self, name: str, args: ClusterArgs, ebs_csi: aws.eks.Addon
    ) -> k8s.storage.v1.StorageClass:
        """The default gp3 StorageClass, after the EBS CSI driver that provisions its volumes."""
        manifest = storage.default_storage_class(args.tags)
        return k8s.storage.v1.StorageClass(
            f"{name}-{storage.DEFAULT_CLASS}",
            metadata=manifest["metadata"],
            provisioner=manifest["provisioner"],
            parameters=manifest["parameters"],
            reclaim_policy=manifest["reclaimPolicy"],
            volume_binding_mode=manifest["volumeBindingMode"],
            allow_volume_expansion=manifest["allowVolumeExpansion"],
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_csi]),
        )

    def _system_node_group(self, name: str, args: ClusterArgs) -> aws.eks.NodeGroup:
        """A plain EKS managed node group (not the eks.ManagedNodeGroup component): EKS creates
        its access entry, and no resource reference crosses into a remote component. Its launch
        template tags the instances and root volumes, which the group's own tags do not reach."""
        child = pulumi.ResourceOptions(parent=self)
        node_role, attachments = create_node_role(
            f"{name}-system-nodes", SYSTEM_NODE_MANAGED_POLICIES, args.partition, args.tags, self
        )
        template = aws.ec2.LaunchTemplate(
            f"{name}-system",
            name_prefix=f"{args.cluster_name}-system-",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=2
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=SYSTEM_ROOT_VOLUME_GIB,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=args.tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            tags=args.tags,
            opts=child,
        )
        group = args.config.system_node_group
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=args.cluster_name,
            node_role_arn=node_role.arn,
            instance_types=list(group.instance_types),
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=group.desired_size, min_size=group.min_size, max_size=group.max_size
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            subnet_ids=args.private_subnet_ids,
            labels=dict(SYSTEM_NODES),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.eks, *attachments]),
        )

    def _ebs_csi_driver(self, name: str, args: ClusterArgs) -> aws.eks.Addon:
        """The EBS CSI driver add-on, its IAM role through Pod Identity."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=json.dumps(controller_trust_pod_identity()),
            tags=args.tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=role.name,
            policy_arn=pulumi.Output.from_input(args.partition).apply(
                lambda partition: managed_policy_arn(partition, storage.EBS_CSI_POLICY)
            ),
            opts=child,
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-ebs-csi",
            cluster_name=args.cluster_name,
            namespace="kube-system",
            service_account=storage.EBS_CSI_SERVICE_ACCOUNT,
            role_arn=role.arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.eks]),
        )
        return aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=args.cluster_name,
            addon_name=storage.EBS_CSI_ADDON,
            resolve_conflicts_on_create="OVERWRITE",
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.system_nodes, self.pod_identity_agent, association, attachment],
            ),
        )
