"""Karpenter's IAM: the node role with its access entry, and the controller role and policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from ...builders.iam import (
    KARPENTER_NODE_MANAGED_POLICIES,
    controller_policy,
    controller_trust_irsa,
    controller_trust_pod_identity,
)
from ...builders.karpenter import NAMESPACE, node_role_name
from ..node_roles import node_role as create_node_role

if TYPE_CHECKING:
    from . import KarpenterArgs


@dataclass(frozen=True)
class KarpenterIam:
    node_role: aws.iam.Role
    controller_role: aws.iam.Role
    # Everything the controller needs before it starts, and must outlive it on destroy.
    dependencies: list[pulumi.Resource]


def create_iam(
    name: str, args: KarpenterArgs, queue_arn: pulumi.Output[str], parent: pulumi.Resource
) -> KarpenterIam:
    node_role, node_dependencies = _node_role(name, args, parent)
    controller_role, controller_dependencies = _controller_role(
        name, args, node_role, queue_arn, parent
    )
    return KarpenterIam(node_role, controller_role, [*node_dependencies, *controller_dependencies])


def _node_role(
    name: str, args: KarpenterArgs, parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """The role Karpenter's nodes boot with, and the access entry that lets them join."""
    cluster_name = args.cluster.name
    node_role, attachments = create_node_role(
        f"{name}-node",
        KARPENTER_NODE_MANAGED_POLICIES,
        args.partition,
        args.tags,
        parent,
        role_name=node_role_name(cluster_name),
    )
    access_entry = aws.eks.AccessEntry(
        f"{name}-node",
        cluster_name=cluster_name,
        principal_arn=node_role.arn,
        type="EC2_LINUX",
        tags=args.tags,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[args.cluster.eks]),
    )
    return node_role, [*attachments, access_entry]


def _controller_role(
    name: str,
    args: KarpenterArgs,
    node_role: aws.iam.Role,
    queue_arn: pulumi.Output[str],
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """The controller's role, trusted by IRSA or Pod Identity, with its inline policy (and
    the Pod Identity association)."""
    child = pulumi.ResourceOptions(parent=parent)
    cluster_name = args.cluster.name
    if args.controller_identity == "irsa":
        trust = pulumi.Output.all(
            args.cluster.eks.oidc_provider_arn, args.cluster.eks.oidc_issuer
        ).apply(lambda v: json.dumps(controller_trust_irsa(v[0], v[1], NAMESPACE)))
    else:
        trust = pulumi.Output.from_input(json.dumps(controller_trust_pod_identity()))
    controller_role = aws.iam.Role(
        f"{name}-controller",
        name=f"KarpenterControllerRole-{cluster_name}",
        assume_role_policy=trust,
        tags=args.tags,
        opts=child,
    )
    policy = pulumi.Output.all(args.partition, args.account_id, node_role.arn, queue_arn).apply(
        lambda v: json.dumps(
            controller_policy(
                partition=v[0],
                region=args.region,
                account_id=v[1],
                cluster_name=cluster_name,
                node_role_arn=v[2],
                queue_arn=v[3],
            )
        )
    )
    dependencies: list[pulumi.Resource] = [
        aws.iam.RolePolicy(f"{name}-controller", role=controller_role.id, policy=policy, opts=child)
    ]
    if args.controller_identity == "pod_identity":
        dependencies.append(
            aws.eks.PodIdentityAssociation(
                f"{name}-controller",
                cluster_name=cluster_name,
                namespace=NAMESPACE,
                service_account="karpenter",
                role_arn=controller_role.arn,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[args.cluster.eks]),
            )
        )
    return controller_role, dependencies
