"""Apply and destroy order, read from the rows `finops-sim render` writes to dependencies.json.

Pulumi creates a resource after everything it depends on and deletes it before them, and runs
unrelated steps in parallel; so "B outlives A" holds on every `up` and `destroy` exactly when A
depends on B, directly or through others. Each rule below is one of issue 10's defects seen as
order: the pieces that must exist first on `up` and must still be there while their dependents
are deleted (a controller draining its nodes, a driver deleting its volumes)."""

from __future__ import annotations

import pytest

from finops_platform.render import dependency_rows, transitive
from tests.infra.support import STACKS, recorded

RELEASE = "kubernetes:helm.sh/v3:Release::"
KARPENTER = f"{RELEASE}karpenter-chart"
NODE_POOLS = "kubernetes:karpenter.sh/v1:NodePool::"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass::"
NAMESPACES = "kubernetes:core/v1:Namespace::"

# (defect, what comes first and goes last, what depends on it, why); an id ending in "::" means
# every resource of that type.
ORDER = [
    ("10", "aws:cloudwatch/logGroup:LogGroup::cluster-control-plane-logs", "eks:index:Cluster::",
     "EKS would create the group itself, with no retention, and destroy would leave it"),
    ("5", "aws:eks/nodeGroup:NodeGroup::cluster-system", RELEASE,
     "the charts' pods need nodes; on destroy the controllers must not be evicted first"),
    ("5", "aws:eks/addon:Addon::cluster-pod-identity-agent", RELEASE,
     "the controllers' AWS identity comes through the agent"),
    ("5", "aws:eks/addon:Addon::cluster-coredns", RELEASE, "the charts resolve names"),
    ("1", f"{RELEASE}observability-chart", KARPENTER,
     "Karpenter's ServiceMonitor needs the operator's CRD"),
    ("5", KARPENTER, NODE_POOLS,
     "the controller drains and terminates its instances when a NodePool is deleted"),
    ("5", KARPENTER, NODE_CLASS, "the EC2NodeClass finalizer needs the controller"),
    ("5", "aws:iam/rolePolicy:RolePolicy::karpenter-controller", KARPENTER,
     "the controller needs its permissions to terminate instances"),
    ("5", "aws:eks/podIdentityAssociation:PodIdentityAssociation::karpenter-controller",
     KARPENTER, "the controller's identity"),
    ("5", "aws:sqs/queue:Queue::karpenter-interruptions", KARPENTER,
     "the controller reads interruptions from the queue"),
    ("5", "aws:eks/accessEntry:AccessEntry::karpenter-node", NODE_POOLS,
     "Karpenter's nodes join the cluster through the node role's access entry"),
    ("2", "aws:eks/addon:Addon::cluster-ebs-csi", NAMESPACES,
     "deleting a namespace deletes its claims; the driver must still run to delete the volumes"),
    ("2", "kubernetes:storage.k8s.io/v1:StorageClass::cluster-gp3", NAMESPACES,
     "claims are provisioned from the default class"),
    ("7", "aws:iam/serviceLinkedRole:ServiceLinkedRole::", KARPENTER,
     "spot launches need the EC2 Spot service-linked role"),
    ("5", "awsx:ec2:Vpc::network-vpc", NODE_POOLS,
     "Karpenter's instances and their network interfaces live in the VPC's subnets"),
    ("audit", "aws:ec2/tag:Tag::cluster-sg-discovery", NODE_CLASS,
     "the node class finds the cluster security group by its discovery tag"),
]  # fmt: skip


def matching(ids: set[str], pattern: str) -> set[str]:
    return {i for i in ids if i.startswith(pattern)} if pattern.endswith("::") else {pattern} & ids


def broken(rows: list[dict]) -> list[str]:
    """The rules the rows break. A rule whose first piece the stack does not have (no spot role
    where no NodePool allows spot) does not apply; a missing dependent is an error."""
    ids = {row["id"] for row in rows}
    depends = transitive(rows)
    problems = []
    for defect, first, pattern, why in ORDER:
        firsts, dependents = matching(ids, first), matching(ids, pattern)
        if not dependents:
            problems.append(f"defect {defect}: nothing matches {pattern}")
        for dependent in sorted(dependents):
            if firsts and not firsts <= depends.get(dependent, set()):
                problems.append(f"defect {defect}: {dependent} does not wait for {first} ({why})")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_apply_and_destroy_order(stack):
    assert broken(dependency_rows(recorded(stack).monitor)) == []


def test_the_spot_role_rule_applies_where_spot_is_allowed():
    ids = {row["id"] for row in dependency_rows(recorded("optimized").monitor)}
    assert matching(ids, "aws:iam/serviceLinkedRole:ServiceLinkedRole::")
    assert not matching(
        {row["id"] for row in dependency_rows(recorded("unoptimized").monitor)},
        "aws:iam/serviceLinkedRole:ServiceLinkedRole::",
    )


def test_a_lost_dependency_is_caught():
    """Without the cluster's edge to its log group (as before defect 10's fix), the rule fails."""
    rows = dependency_rows(recorded("optimized").monitor)
    log_group = "aws:cloudwatch/logGroup:LogGroup::cluster-control-plane-logs"
    cut = [{**row, "dependsOn": [d for d in row["dependsOn"] if d != log_group]} for row in rows]
    assert broken(cut) == [
        f"defect 10: eks:index:Cluster::cluster-eks does not wait for {log_group} ({ORDER[0][3]})"
    ]
