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
    child = pulumi.ResourceOptions(parent=parent)
    cluster_name = args.cluster.name
    node_role, attachments = create_node_role(
        f"{name}-node",
        KARPENTER_NODE_MANAGED_POLICIES,
        args.partition,
        args.tags,
        parent,
        role_name=node_role_name(cluster_name),
    )
    dependencies: list[pulumi.Resource] = list(attachments)
    dependencies.append(
        aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[args.cluster.eks]),
        )
    )
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
    dependencies.append(
        aws.iam.RolePolicy(f"{name}-controller", role=controller_role.id, policy=policy, opts=child)
    )
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
    return KarpenterIam(node_role, controller_role, dependencies)
