"""Karpenter's releases and the spot role under mocks (issue 10, defects 1, 7, 8, 12)."""

from __future__ import annotations

import pytest

from finops_platform import versions
from finops_platform.builders.karpenter import replaces_spot_with_spot
from finops_platform.components.karpenter.spot import SPOT_ROLE as SPOT_ROLE_NAME
from finops_platform.config import load_stack
from finops_platform.render import RecordingMocks, kubernetes_objects, record
from tests.infra.graph import depends_on, one
from tests.infra.support import recorded
from tests.infra.test_rendered_schemas import crd_schema, validate_against_crd

RELEASE = "kubernetes:helm.sh/v3:Release"
SPOT_ROLE = "aws:iam/serviceLinkedRole:ServiceLinkedRole"


def test_crds_come_from_their_own_chart_and_the_controller_skips_its_copy(recording):
    """Defect 12: a chart's crds/ folder is installed once and never upgraded."""
    crds = one(recording, RELEASE, "karpenter-crd").inputs
    assert (crds["name"], crds["chart"], crds["version"]) == (
        "karpenter-crd", versions.KARPENTER_CRD_CHART, versions.KARPENTER_VERSION
    )  # fmt: skip
    assert crds["namespace"] == "kube-system"
    controller = one(recording, RELEASE, "karpenter-chart").inputs
    assert controller["skipCrds"] is True
    assert depends_on(recording, (RELEASE, "karpenter-chart"), (RELEASE, "karpenter-crd"))
    for kind in ("kubernetes:karpenter.sh/v1:NodePool",
                 "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):  # fmt: skip
        for resource in recording.mocks.of_type(kind):
            assert depends_on(recording, (resource.typ, resource.name), (RELEASE, "karpenter-crd"))


def test_the_controllers_servicemonitor_waits_for_the_prometheus_operator_crds(recording):
    """Defect 1: the chart renders a ServiceMonitor; kube-prometheus-stack installs its CRD."""
    controller = (RELEASE, "karpenter-chart")
    assert one(recording, *controller).inputs["values"]["serviceMonitor"] == {"enabled": True}
    assert depends_on(recording, controller, (RELEASE, "observability-chart"))
    assert not depends_on(recording, (RELEASE, "observability-chart"), controller)


def test_spot_nodes_are_replaced_by_cheaper_spot_nodes_only_where_spot_consolidates(recording):
    """The gate is off in the chart (values.yaml: alpha); without it an underused spot node is
    never swapped for a smaller one, which the optimized stack's cost model assumes."""
    values = one(recording, RELEASE, "karpenter-chart").inputs["values"]
    gates = values["settings"]["featureGates"]
    assert gates == {"spotToSpotConsolidation": recording.stack == "optimized"}
    config = load_stack("optimized").platform.karpenter
    only_when_empty = [pool.model_copy(update={"consolidation_policy": "WhenEmpty"})
                       for pool in config.node_pools]  # fmt: skip
    assert replaces_spot_with_spot(config)
    assert not replaces_spot_with_spot(config.model_copy(update={"node_pools": only_when_empty}))


def test_controller_runs_on_the_system_nodes(recording):
    values = one(recording, RELEASE, "karpenter-chart").inputs["values"]
    assert values["nodeSelector"] == {"finops-sim/node-group": "system"}


def test_ec2nodeclass_tags_what_karpenter_launches(recording):
    """Defect 8: Karpenter puts the EC2NodeClass's tags on its instances and volumes."""
    node_class = one(recording, NODE_CLASS).inputs
    assert node_class["spec"]["tags"]["cost-center"] == "finops-lab"
    assert node_class["spec"]["tags"]["stack"] == recording.stack


NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def test_nodes_go_into_the_created_vpcs_subnets_by_their_discovery_tag(recording):
    spec = one(recording, NODE_CLASS).inputs["spec"]
    discovery = [{"tags": {"karpenter.sh/discovery": load_stack(recording.stack).cluster_name}}]
    assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == discovery


def test_nodes_go_into_an_existing_vpcs_private_subnets_by_id(schemas):
    """An existing VPC's subnets lack the discovery tag: selected by it, Karpenter found none
    and no node was ever launched."""
    config = load_stack("optimized")
    network = config.platform.network.model_copy(
        update={
            "mode": "existing",
            "vpc_id": "vpc-0abc",
            "private_subnet_ids": ("subnet-0a", "subnet-0b"),
        }
    )
    platform = config.platform.model_copy(update={"network": network})
    recording = record(config.model_copy(update={"platform": platform}))
    spec = one(recording, NODE_CLASS).inputs["spec"]
    assert spec["subnetSelectorTerms"] == [{"id": "subnet-0a"}, {"id": "subnet-0b"}]
    tag = {"karpenter.sh/discovery": config.cluster_name}
    assert spec["securityGroupSelectorTerms"] == [{"tags": tag}]  # the cluster's own group
    manifest = next(o for o in kubernetes_objects(recording.mocks) if o["kind"] == "EC2NodeClass")
    validate_against_crd(manifest, crd_schema(schemas, "karpenter.k8s.aws/v1", "EC2NodeClass"))


def test_spot_role_is_created_where_spot_is_allowed_and_outlives_the_controller():
    """Defect 7: without AWSServiceRoleForEC2Spot a fresh account's spot launches fail and
    Karpenter falls back to on-demand without a word."""
    optimized = recorded("optimized")
    role = one(optimized, SPOT_ROLE).inputs
    assert role["awsServiceName"] == "spot.amazonaws.com"
    assert one(optimized, SPOT_ROLE).import_id is None  # a fresh account: created
    assert depends_on(optimized, (RELEASE, "karpenter-chart"), (SPOT_ROLE, "karpenter-spot"))
    assert not recorded("unoptimized").mocks.of_type(SPOT_ROLE)


@pytest.mark.parametrize(
    ("tags", "adopted"),
    [({"project": "finops-sim", "stack": "optimized"}, True), ({}, False)],
)
def test_an_existing_spot_role_is_adopted_only_if_this_stack_made_it(monkeypatch, tags, adopted):
    """The account's role from elsewhere is reported, not recreated (AWS would refuse); the
    stack's own role, left by a destroy (it is retained: other stacks' spot launches need it),
    is imported rather than created again."""
    answer = RecordingMocks.call
    arn = "arn:aws:iam::123456789012:role/aws-service-role/spot.amazonaws.com/" + SPOT_ROLE_NAME

    def call(self, args):
        if args.token == "aws:iam/getRoles:getRoles":
            return {"names": ["AWSServiceRoleForEC2Spot"], "arns": [arn], "id": "roles"}
        if args.token == "aws:iam/getRole:getRole":
            return {"name": "AWSServiceRoleForEC2Spot", "arn": arn, "tags": tags, "id": "role"}
        return answer(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    roles = record(load_stack("optimized")).mocks.of_type(SPOT_ROLE)
    assert [role.import_id for role in roles] == ([arn] if adopted else [])
