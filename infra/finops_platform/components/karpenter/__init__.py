"""Karpenter: IAM (iam.py), the spot service-linked role (spot.py), the interruption queue
(queue.py), the charts and their custom resources (chart.py), wired so that `pulumi destroy`
removes NodePools first.

Up: the releases wait for the system node group, the Pod Identity agent, CoreDNS and storage
(``Cluster.system_ready``), and for kube-prometheus-stack (``depends_on``), whose CRDs the
controller chart's ServiceMonitor needs.

Destroy order: the NodePools and the EC2NodeClass depend on the Helm releases, and the controller
release depends on the IAM roles, the Pod Identity association, the queue and the system node
group. Pulumi deletes dependents first, so the NodePools go while the controller still runs on
nodes that are still there; their finalizers drain and terminate Karpenter's EC2 instances before
the controller, its permissions, the queue and the node group are removed, and no instance is
left to block the VPC's deletion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from ...config import KarpenterConfig
from ..cluster import Cluster
from .chart import install_chart, install_node_pools
from .iam import KarpenterIam, create_iam
from .queue import create_interruption_queue
from .spot import spot_service_linked_role


@dataclass(frozen=True)
class KarpenterArgs:
    config: KarpenterConfig
    cluster: Cluster
    controller_identity: str
    region: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    tags: dict[str, str]
    # The private subnets nodes go into, by id, in an existing VPC; empty: the discovery tag.
    subnet_ids: tuple[str, ...] = ()
    # What else the controller's release waits for (kube-prometheus-stack, for its CRDs).
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class Karpenter(pulumi.ComponentResource):
    iam: KarpenterIam
    crds: k8s.helm.v3.Release
    release: k8s.helm.v3.Release
    node_pools: list[k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("finops:platform:Karpenter", name, None, opts)
        queue = create_interruption_queue(name, args, parent=self)
        self.iam = create_iam(name, args, queue.arn, parent=self)
        self.iam.dependencies.extend(spot_service_linked_role(name, args, parent=self))
        self.crds, self.release = install_chart(name, args, queue.name, self.iam, parent=self)
        self.node_pools = install_node_pools(
            name, args, self.iam, (self.crds, self.release), parent=self
        )
        self.register_outputs(
            {
                "node_role_name": self.iam.node_role.name,
                "queue_name": queue.name,
                # A custom resource's outputs are attributes pulumi_kubernetes does not declare.
                "node_pools": [pool.metadata["name"] for pool in self.node_pools],  # type: ignore[attr-defined]
            }
        )
