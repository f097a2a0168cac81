"""Storage (issue 10, defect 2): the EBS CSI driver with its IAM, a default encrypted gp3
StorageClass, and claims that `pulumi destroy` removes."""

from __future__ import annotations

import json

import pytest
import yaml

from finops_platform.builders.kubecost import CHART_IN_ZONE
from finops_platform.builders.kubecost import helm_values as kubecost_values
from finops_platform.builders.storage import default_storage_class
from finops_platform.render import kubernetes_objects
from tests.infra.graph import depends_on, one
from tests.infra.support import CHARTS, need_shared

STORAGE_CLASS = ("kubernetes:storage.k8s.io/v1:StorageClass", "cluster-gp3")
EBS_ADDON = ("aws:eks/addon:Addon", "cluster-ebs-csi")


def test_default_class_is_encrypted_gp3_that_deletes_its_volumes():
    cls = default_storage_class({"stack": "optimized", "cost-center": "finops-lab"})
    assert cls["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert cls["provisioner"] == "ebs.csi.aws.com"
    assert cls["parameters"]["type"] == "gp3" and cls["parameters"]["encrypted"] == "true"
    assert cls["reclaimPolicy"] == "Delete"
    assert cls["volumeBindingMode"] == "WaitForFirstConsumer"
    tags = {v for k, v in cls["parameters"].items() if k.startswith("tagSpecification_")}
    assert tags == {"cost-center=finops-lab", "stack=optimized"}


def test_ebs_csi_driver_addon_with_pod_identity(recording):
    addon = one(recording, *EBS_ADDON).inputs
    assert addon["addonName"] == "aws-ebs-csi-driver"
    association = next(
        r.inputs
        for r in recording.mocks.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if r.inputs["serviceAccount"] == "ebs-csi-controller-sa"
    )
    assert association["namespace"] == "kube-system"
    role = one(recording, "aws:iam/role:Role", "cluster-ebs-csi").inputs
    assert association["roleArn"].endswith(f"role/{role.get('name') or 'cluster-ebs-csi-role'}")
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    policy = one(recording, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "cluster-ebs-csi")
    assert policy.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    )
    assert depends_on(
        recording,
        EBS_ADDON,
        ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "cluster-ebs-csi"),
    )


def test_the_stack_has_one_default_class_on_the_installed_driver(recording):
    classes = [o for o in kubernetes_objects(recording.mocks) if o["kind"] == "StorageClass"]
    marker = "storageclass.kubernetes.io/is-default-class"
    defaults = [c for c in classes if c["metadata"].get("annotations", {}).get(marker) == "true"]
    assert len(defaults) == 1 and defaults[0]["provisioner"] == "ebs.csi.aws.com"
    assert depends_on(recording, STORAGE_CLASS, EBS_ADDON)


def test_namespaces_holding_claims_go_before_the_driver_on_destroy(recording):
    """Claims of StatefulSets (Kubecost's aggregator, Prometheus, Valkey) outlive their
    StatefulSet; deleting the namespace deletes them, and the driver, still running, deletes
    their volumes (reclaimPolicy Delete)."""
    for namespace in ("observability-ns", "kubecost-ns", "workloads-ns"):
        key = ("kubernetes:core/v1:Namespace", namespace)
        assert depends_on(recording, key, STORAGE_CLASS), namespace
        assert depends_on(recording, key, EBS_ADDON), namespace
    kubecost = one(recording, "kubernetes:helm.sh/v3:Release", "kubecost-chart").inputs
    assert "createNamespace" not in kubecost or not kubecost["createNamespace"]


def test_kubecost_claims_are_not_kept_by_helm():
    """The chart annotates its claims helm.sh/resource-policy: keep; Helm keeps a resource only
    when that value is "keep"."""
    values = kubecost_values("finops-optimized", ["10.0.0.0/16"])
    overridden = [
        values["localStore"]["persistentVolume"],
        values["aggregator"]["persistentConfigsStorage"],
        values["aggregator"]["aggregatorDbStorage"],
        values["cloudCost"]["persistentConfigsStorage"],
    ]
    for claim in overridden:
        assert claim["annotations"]["helm.sh/resource-policy"] != "keep"


def test_kubecost_runs_on_the_system_nodes():
    """Defect 9."""
    values = kubecost_values("finops-optimized", ["10.0.0.0/16"])
    for component in ("frontend", "localStore", "aggregator", "cloudCost", "finopsagent"):
        assert values[component]["nodeSelector"] == {"finops-sim/node-group": "system"}


@pytest.mark.parametrize(
    ("vpc_cidrs", "left_out"),
    [(["10.0.0.0/16"], ["10.0.0.0/8"]), (["172.31.0.0/16"], ["172.16.0.0/12"]),
     # An existing VPC's secondary ranges: one outside the private ranges changes nothing.
     (["10.20.0.0/16", "100.64.0.0/16"], ["10.0.0.0/8"]),
     (["10.1.0.0/16", "192.168.0.0/20"], ["10.0.0.0/8", "192.168.0.0/16"])],
)  # fmt: skip
def test_traffic_between_zones_is_not_priced_as_in_zone(vpc_cidrs, left_out):
    """The chart counts all of 10.0.0.0/8 as in-zone, free, and says to remove the range of a
    multi-AZ cluster: every EKS stack here spans two zones or three, whose traffic between them
    AWS bills both ways."""
    values = kubecost_values("finops-optimized", vpc_cidrs)
    in_zone = values["networkCosts"]["config"]["destinations"]["in-zone"]
    assert in_zone == [cidr for cidr in CHART_IN_ZONE if cidr not in left_out]
    assert {"127.0.0.0/8", "169.254.0.0/16"} <= set(in_zone)


def test_the_in_zone_list_is_the_charts_own():
    """What the program drops from must be what the pinned chart ships."""
    need_shared(CHARTS, "the sources of the charts the platform installs")
    chart_values = yaml.safe_load((CHARTS / "kubecost" / "values.yaml").read_text())
    assert tuple(chart_values["networkCosts"]["config"]["destinations"]["in-zone"]) == (
        CHART_IN_ZONE
    )
