"""The Karpenter Helm releases and its EC2NodeClass and NodePools.

The CRDs come from the ``karpenter-crd`` chart, a release of their own, so that Helm upgrades
them with the controller (a chart's ``crds/`` folder is installed once and never upgraded); the
controller's release skips its copy. The controller's chart renders a ServiceMonitor, so its
release waits for kube-prometheus-stack, which installs that CRD."""

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
) -> tuple[k8s.helm.v3.Release, k8s.helm.v3.Release]:
    """The CRD release and the controller's release."""
    after_cluster = pulumi.ResourceOptions(
        parent=parent, provider=args.cluster.provider, depends_on=args.cluster.system_ready
    )
    crds = k8s.helm.v3.Release(
        f"{name}-crd",
        name=build.CRD_RELEASE_NAME,
        chart=versions.KARPENTER_CRD_CHART,
        version=versions.KARPENTER_VERSION,
        namespace=build.NAMESPACE,
        opts=after_cluster,
    )
    role_arn = iam.controller_role.arn if args.controller_identity == "irsa" else None
    values = pulumi.Output.all(queue_name, role_arn).apply(
        lambda v: build.helm_values(args.config, args.cluster.name, v[0], v[1])
    )
    controller = k8s.helm.v3.Release(
        f"{name}-chart",
        name=build.RELEASE_NAME,
        chart=versions.KARPENTER_CHART,
        version=versions.KARPENTER_VERSION,
        namespace=build.NAMESPACE,
        values=values,
        skip_crds=True,
        wait_for_jobs=True,
        opts=pulumi.ResourceOptions.merge(
            after_cluster,
            pulumi.ResourceOptions(depends_on=[crds, *iam.dependencies, *args.depends_on]),
        ),
    )
    return crds, controller


def install_node_pools(
    name: str,
    args: KarpenterArgs,
    iam: KarpenterIam,
    releases: tuple[k8s.helm.v3.Release, k8s.helm.v3.Release],
    parent: pulumi.Resource,
) -> list[k8s.apiextensions.CustomResource]:
    """Both depend on the releases (CRDs and controller), so destroy deletes them (and drains
    nodes) first."""
    opts = pulumi.ResourceOptions(
        parent=parent, provider=args.cluster.provider, depends_on=list(releases)
    )
    node_class = build.node_class(
        args.config,
        args.cluster.name,
        build.node_role_name(args.cluster.name),
        args.tags,
        args.subnet_ids,
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
