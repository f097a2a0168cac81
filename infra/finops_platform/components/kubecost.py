"""Kubecost 3.x: pod-level cost allocation, with Karpenter's spot nodes recognised.

Its namespace is a resource of the program, not the release's: deleting it on `pulumi destroy`
deletes every claim in it, the aggregator StatefulSet's too (Helm never deletes those), so the
EBS CSI driver deletes their volumes while it still runs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .. import versions
from ..builders import kubecost as build


@dataclass(frozen=True)
class KubecostArgs:
    cluster_name: str
    vpc_cidrs: pulumi.Input[list[str]]  # the VPC's IPv4 ranges (Network.vpc_cidrs)
    provider: k8s.Provider
    depends_on: list[pulumi.Resource]


class Kubecost(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KubecostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("finops:platform:Kubecost", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=args.depends_on
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": build.NAMESPACE}, opts=k8s_opts
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=build.RELEASE_NAME,
            chart=versions.KUBECOST_CHART,
            version=versions.KUBECOST_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.KUBECOST_REPO),
            namespace=build.NAMESPACE,
            values=pulumi.Output.from_input(args.vpc_cidrs).apply(
                lambda cidrs: build.helm_values(args.cluster_name, cidrs)
            ),
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])
            ),
        )
        self.register_outputs({"release": self.release.name})
