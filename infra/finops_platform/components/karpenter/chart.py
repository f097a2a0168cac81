"""The Karpenter Helm release (fixed name) and its EC2NodeClass and NodePools."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from ... import versions
from ...builders import karpenter as build
from .iam import KarpenterIam

if TYPE_CHECKING:
    from . import KarpenterArgs


def install_chart(
    name: str,
    args: KarpenterArgs,
    queue_name: pulumi.Output[str],
    iam: KarpenterIam,
    parent: pulumi.Resource,
) -> k8s.helm.v3.Release:
    role_arn = iam.controller_role.arn if args.controller_identity == "irsa" else None
    values = pulumi.Output.all(queue_name, role_arn).apply(
        lambda v: build.helm_values(args.config, args.cluster.name, v[0], v[1])
    )
    return k8s.helm.v3.Release(
        f"{name}-chart",
        name=build.RELEASE_NAME,
        chart=versions.KARPENTER_CHART,
        version=versions.KARPENTER_VERSION,
        namespace=build.NAMESPACE,
        values=values,
        wait_for_jobs=True,
        opts=pulumi.ResourceOptions(
            parent=parent, provider=args.cluster.provider, depends_on=iam.dependencies
        ),
    )


def install_node_pools(
    name: str,
    args: KarpenterArgs,
    iam: KarpenterIam,
    release: k8s.helm.v3.Release,
    parent: pulumi.Resource,
) -> list[k8s.apiextensions.CustomResource]:
    """Both depend on the release, so destroy deletes them (and drains nodes) first."""
    opts = pulumi.ResourceOptions(
        parent=parent, provider=args.cluster.provider, depends_on=[release]
    )
    node_class = build.node_class(
        args.config, args.cluster.name, build.node_role_name(args.cluster.name), args.tags
    )
    node_class_resource = k8s.apiextensions.CustomResource(
        f"{name}-nodeclass-{build.NODE_CLASS_NAME}",
        api_version=node_class["apiVersion"],
        kind=node_class["kind"],
        metadata=node_class["metadata"],
        spec=node_class["spec"],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[iam.node_role])),
    )
    pools = []
    for pool in args.config.node_pools:
        manifest = build.node_pool(pool)
        pools.append(
            k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(depends_on=[node_class_resource])
                ),
            )
        )
    return pools
