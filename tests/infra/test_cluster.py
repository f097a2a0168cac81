"""The cluster component under mocks: log group, node group, add-ons and their order
(issue 10, defects 5, 6, 8, 10, 12)."""

from __future__ import annotations

from finops_platform.config import parse_stack_config, read_stack_file
from finops_platform.render import record
from tests.infra.graph import depends_on, one

NODE_GROUP = ("aws:eks/nodeGroup:NodeGroup", "cluster-system")
POD_IDENTITY = ("aws:eks/addon:Addon", "cluster-pod-identity-agent")
COREDNS = ("aws:eks/addon:Addon", "cluster-coredns")
EKS = ("eks:index:Cluster", "cluster-eks")


def addons(recording) -> dict[str, dict]:
    return {r.inputs["addonName"]: r.inputs for r in recording.mocks.of_type("aws:eks/addon:Addon")}


def test_control_plane_log_group_is_created_first_with_a_retention(recording):
    """Defect 10: EKS would create the group itself, with no retention, and destroy would
    leave it; the program creates it, and the cluster waits for it."""
    group = one(recording, "aws:cloudwatch/logGroup:LogGroup").inputs
    assert group["name"] == f"/aws/eks/{recording.outputs['cluster_name']}/cluster"
    assert group["retentionInDays"] == 7
    assert group["tags"]["stack"] == recording.stack
    assert depends_on(
        recording, EKS, ("aws:cloudwatch/logGroup:LogGroup", "cluster-control-plane-logs")
    )


def test_upgrade_policy_is_standard_support(recording):
    """Defect 12: extended support bills six times the control plane's standard rate."""
    assert one(recording, *EKS).inputs["upgradePolicy"] == {"supportType": "STANDARD"}


def test_vpc_cni_enforces_network_policies(recording):
    """Defect 6: without it the VPC CNI ignores every NetworkPolicy, Valkey's included."""
    options = one(recording, *EKS).inputs["vpcCniOptions"]
    assert options["configurationValues"]["enableNetworkPolicy"] == "true"


def test_system_nodes_tag_their_instances_and_volumes(recording):
    """Defect 8: a node group's tags stay on the group; a launch template's tag specifications
    reach the EC2 instances and their EBS volumes."""
    template = one(recording, "aws:ec2/launchTemplate:LaunchTemplate").inputs
    tagged = {spec["resourceType"]: spec["tags"] for spec in template["tagSpecifications"]}
    assert {"instance", "volume"} <= set(tagged)
    for tags in tagged.values():
        assert tags["cost-center"] == "finops-lab" and tags["stack"] == recording.stack
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    group = one(recording, *NODE_GROUP).inputs
    assert group["launchTemplate"] == {"id": "cluster-system-id", "version": "1"}
    assert "diskSize" not in group


def test_coredns_and_storage_wait_for_the_system_nodes(recording):
    """Defect 5: an add-on whose pods cannot be scheduled never becomes ACTIVE. metrics-server
    serves the resource metrics API that the gateway's HPA reads, which EKS does not install."""
    cluster = one(recording, *EKS).inputs
    assert cluster["corednsAddonOptions"]["enabled"] is False
    assert set(addons(recording)) == {
        "eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver", "metrics-server"
    }  # fmt: skip
    assert depends_on(recording, COREDNS, NODE_GROUP)
    assert depends_on(recording, ("aws:eks/addon:Addon", "cluster-metrics-server"), NODE_GROUP)
    assert depends_on(recording, ("aws:eks/addon:Addon", "cluster-ebs-csi"), NODE_GROUP)
    assert depends_on(recording, ("aws:eks/addon:Addon", "cluster-ebs-csi"), POD_IDENTITY)


def test_releases_wait_for_nodes_and_pod_identity_and_outlive_them_on_destroy(recording):
    """Defect 5: every release depends on the system node group and the Pod Identity agent, so
    on `up` none races the nodes, and on destroy the node group goes after the controllers."""
    releases = recording.mocks.of_type("kubernetes:helm.sh/v3:Release")
    assert {r.name for r in releases} == {
        "karpenter-crd", "karpenter-chart", "observability-chart", "kubecost-chart"
    }  # fmt: skip
    for release in releases:
        key = (release.typ, release.name)
        assert depends_on(recording, key, NODE_GROUP), release.name
        assert depends_on(recording, key, POD_IDENTITY), release.name
        assert depends_on(recording, key, COREDNS), release.name
        assert not depends_on(recording, NODE_GROUP, key)


def test_a_private_endpoint_is_created_without_the_stack_files_allow_list():
    """The placeholder's refusal advises endpointPublicAccess: false; the stack file still holds
    publicAccessCidrs then, and pulumi-eks throws on CIDRs without public access, mid-`up`."""
    values = read_stack_file("optimized")
    values["finops-sim:platform"]["cluster"]["endpointPublicAccess"] = False
    private = record(parse_stack_config("optimized", values))
    inputs = one(private, *EKS).inputs
    assert inputs["endpointPublicAccess"] is False and inputs["endpointPrivateAccess"] is True
    assert inputs.get("publicAccessCidrs") is None


def test_a_public_endpoint_keeps_its_allow_list(recording):
    inputs = one(recording, *EKS).inputs
    assert inputs["endpointPublicAccess"] is True and inputs["publicAccessCidrs"]
