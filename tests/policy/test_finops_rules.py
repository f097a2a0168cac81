"""The policy pack's rules on what the program registers (under mocks) for each stack, with the
children of the remote components as a real preview shows them, and on deliberately broken
resources."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from finops_platform.config import StackConfig, load_stack
from finops_platform.render import Recorded, record
from finops_rules import (
    IN_TREE_INTERNAL,
    LBC_SCHEME,
    LBC_TYPE,
    PUBLIC_ENDPOINT,
    RULES,
    stack_config,
)
from tests.infra.support import recorded
from tests.policy.component_children import child_types

REMOTE_COMPONENTS = ("awsx:ec2:Vpc", "eks:index:Cluster")


def violations(
    stack: str, scope_filter=None, resources: list[Recorded] | None = None
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for resource in recorded(stack).mocks.resources if resources is None else resources:
        for name, (_, check, scope) in RULES.items():
            if scope_filter and not scope_filter(scope):
                continue
            messages = check(resource.typ, resource.inputs, stack)
            if messages:
                found.setdefault(name, []).extend(messages)
    return found


def mandatory(stack: str):
    return lambda scope: scope == "all" or scope == stack


def default_tags(resources: list[Recorded]) -> dict[str, str]:
    """The defaultTags of the program's AWS provider, as it registers them."""
    provider = next(r for r in resources if r.typ == "pulumi:providers:aws")
    return json.loads(provider.inputs["defaultTags"])["tags"]


def children(resources: list[Recorded], tags: dict[str, Any]) -> list[Recorded]:
    """The remote components' AWS children as the policy pack sees them in a real preview: the
    provider's Check has merged its defaultTags into ``tagsAll`` of every type that takes tags
    (the rule itself decides which those are; untaggable types get no ``tagsAll`` either)."""

    return [
        Recorded(typ, f"{component.name}-child", child_inputs(component, typ, tags), True)
        for component in resources
        if component.typ in REMOTE_COMPONENTS
        for typ in sorted(child_types(component.typ))
    ]


def child_inputs(component: Recorded, typ: str, tags: dict[str, Any]) -> dict[str, Any]:
    """A child's inputs as far as the rules read them: the merged tags, and on the EKS cluster
    the endpoint settings the eks component passes through to its ``vpcConfig``."""
    from aws_taggable import is_taggable

    inputs: dict[str, Any] = {"tagsAll": tags} if is_taggable(typ) else {}
    if typ == "aws:eks/cluster:Cluster":
        inputs["vpcConfig"] = {
            key: component.inputs[key]
            for key in ("endpointPublicAccess", "publicAccessCidrs")
            if key in component.inputs
        }
    return inputs


def variant(stack: str, **changes: Any) -> StackConfig:
    """A stack config with the README's optional settings changed (``cluster``, ``images``,
    ``network`` take field updates)."""
    config = load_stack(stack)
    platform, workloads = config.platform, config.workloads
    if "cluster" in changes:
        assert platform.cluster is not None
        cluster = platform.cluster.model_copy(update=changes["cluster"])
        platform = platform.model_copy(update={"cluster": cluster})
    if "network" in changes:
        network = platform.network.model_copy(update=changes["network"])
        platform = platform.model_copy(update={"network": network})
    if "images" in changes:
        images = workloads.images.model_copy(update=changes["images"])
        workloads = workloads.model_copy(update={"images": images})
    return config.model_copy(update={"platform": platform, "workloads": workloads})


ADMIN = "arn:aws:iam::123456789012:role/platform-admins"
PREVIEWS = {
    "unoptimized": lambda: load_stack("unoptimized"),
    "optimized": lambda: load_stack("optimized"),
    "optimized, adminRoleArns": lambda: variant("optimized", cluster={"admin_role_arns": (ADMIN,)}),
    "optimized, irsa": lambda: variant("optimized", cluster={"controller_identity": "irsa"}),
    "optimized, images.build": lambda: variant("optimized", images={"build": True}),
    "optimized, NAT per AZ": lambda: variant("optimized", network={"nat_gateways": "one_per_az"}),
    "optimized, existing network": lambda: variant(
        "optimized",
        network={"mode": "existing", "vpc_id": "vpc-0abc", "private_subnet_ids": ("subnet-1",)},
    ),
}


@pytest.mark.parametrize("stack", ["unoptimized", "optimized", "local"])
def test_every_stack_passes_the_mandatory_rules(stack):
    """Rules for all stacks, and the optimized-only ones on the optimized stack."""
    assert violations(stack, mandatory(stack)) == {}


def test_the_component_children_are_read_from_the_packages():
    """The children the issue names, found in the installed awsx and eks packages."""
    assert {
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/natGateway:NatGateway",
    } <= child_types("awsx:ec2:Vpc")
    assert {
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "aws:eks/cluster:Cluster",
        "aws:iam/role:Role",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    } <= child_types("eks:index:Cluster")


@pytest.mark.parametrize("preview", PREVIEWS)
def test_every_preview_passes_the_mandatory_rules_with_the_component_children(preview):
    """Each preview the README describes: what the program registers, plus every AWS child type
    of its VPC and cluster components, passes the rules that are mandatory for its stack."""
    config = PREVIEWS[preview]()
    resources = record(config).mocks.resources
    kids = children(resources, default_tags(resources))
    assert kids or config.platform.network.mode == "existing"
    assert violations(config.stack, mandatory(config.stack), [*resources, *kids]) == {}
    if config.platform.cluster and config.platform.cluster.admin_role_arns:
        cluster = next(r for r in resources if r.typ == "eks:index:Cluster")
        assert cluster.inputs["accessEntries"]["admin-0"]["accessPolicies"]


def test_component_children_without_the_default_tags_fail():
    """The same children, had the provider no defaultTags: every taggable one is reported, and
    the untaggable ones (routes, associations, attachments) are not."""
    resources = recorded("optimized").mocks.resources
    kids = children(resources, {})
    found = violations("optimized", lambda scope: scope == "all", kids)["cost-tags"]
    reported = {message.split()[0] for message in found}
    assert "aws:ec2/subnet:Subnet" in reported and "aws:eks/accessEntry:AccessEntry" in reported
    assert not reported & {
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    }


def test_the_stack_aware_rules_read_the_validated_config():
    assert stack_config("optimized") == load_stack("optimized")
    assert stack_config("no-such-stack") is None


def test_unoptimized_gets_advisory_warnings_from_the_optimized_rules():
    advisory = violations("unoptimized", lambda scope: scope == "optimized")
    assert "stateless-tolerates-spot" in advisory
    assert not violations("unoptimized", lambda scope: scope == "all")


def one(stack: str, typ: str, name: str | None = None):
    return copy.deepcopy(next(r for r in recorded(stack).mocks.resources
                              if r.typ == typ and (name is None or r.name == name)))  # fmt: skip


def test_a_container_without_requests_fails():
    deployment = one("optimized", "kubernetes:apps/v1:StatefulSet", "workloads-statefulset-redis")
    deployment.inputs["spec"]["template"]["spec"]["containers"][0].pop("resources")
    _, check, _ = RULES["requests-and-limits"]
    assert check(deployment.typ, deployment.inputs, "optimized") == [
        "redis: container valkey has no cpu request, no memory request, no memory limit"
    ]


def test_an_untagged_bucket_fails():
    _, check, _ = RULES["cost-tags"]
    assert check("aws:s3/bucket:Bucket", {"bucket": "logs"}, "optimized") == [
        "aws:s3/bucket:Bucket lacks the cost tags project, stack, cost-center"
    ]


def test_a_nodepool_without_limits_fails():
    pool = one("optimized", "kubernetes:karpenter.sh/v1:NodePool")
    pool.inputs["spec"].pop("limits")
    _, check, _ = RULES["nodepool-limits"]
    assert check(pool.typ, pool.inputs, "optimized") == ["NodePool spot has no cpu or memory limit"]


def test_a_public_load_balancer_fails_and_an_internal_one_passes():
    service = one("optimized", "kubernetes:core/v1:Service", "workloads-service-ai-gateway")
    service.inputs["spec"]["type"] = "LoadBalancer"
    _, check, _ = RULES["no-public-exposure"]
    public = [
        "Service ai-gateway is an internet-facing LoadBalancer; use a port-forward or an "
        "internal load balancer (annotation service.beta.kubernetes.io/aws-load-balancer-internal: "
        '"true")'
    ]
    assert check(service.typ, service.inputs, "optimized") == public

    def annotated(annotations: dict[str, str], load_balancer_class: str | None = None):
        variant = copy.deepcopy(service)
        variant.inputs["metadata"]["annotations"] = annotations
        if load_balancer_class:
            variant.inputs["spec"]["loadBalancerClass"] = load_balancer_class
        return check(variant.typ, variant.inputs, "optimized")

    assert annotated({IN_TREE_INTERNAL: "true"}) == []
    # The scheme annotation is the AWS Load Balancer Controller's: EKS's own service controller
    # ignores it, so alone it leaves the load balancer internet-facing.
    assert annotated({LBC_SCHEME: "internal"}) == public
    assert annotated({LBC_SCHEME: "internal", LBC_TYPE: "external"}) == []
    assert annotated({LBC_SCHEME: "internal"}, "service.k8s.aws/nlb") == []
    assert annotated({LBC_SCHEME: "internet-facing", LBC_TYPE: "external"}) == public


def test_a_public_endpoint_without_allow_list_fails():
    cluster = one("optimized", "eks:index:Cluster")
    cluster.inputs["publicAccessCidrs"] = ["0.0.0.0/0"]
    _, check, _ = RULES["no-public-exposure"]
    assert check(cluster.typ, cluster.inputs, "optimized") == [PUBLIC_ENDPOINT]


@pytest.mark.parametrize(
    ("vpc_config", "open_"),
    [
        ({}, True),
        ({"endpointPublicAccess": True}, True),
        ({"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}, True),
        ({"endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.7/32"]}, False),
        ({"endpointPublicAccess": False}, False),
    ],
)
def test_the_endpoint_is_read_on_the_aws_cluster_the_component_creates(vpc_config, open_):
    """A real preview shows the eks component's inputs only when its plugin records them; the
    AWS cluster it creates always carries the endpoint (public by default, to all without an
    allow-list)."""
    _, check, _ = RULES["no-public-exposure"]
    found = check("aws:eks/cluster:Cluster", {"vpcConfig": vpc_config}, "optimized")
    assert found == ([PUBLIC_ENDPOINT] if open_ else [])
    assert check("eks:index:Cluster", {}, "optimized") == []


def test_pods_without_the_cost_labels_fail():
    """Kubecost allocates by the pods' labels: a workload labelled only on itself fails."""
    deployment = one(
        "optimized", "kubernetes:apps/v1:Deployment", "workloads-deployment-ai-gateway"
    )
    labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
    del labels["team"], labels["phase"]
    _, check, _ = RULES["cost-allocation-labels"]
    assert check(deployment.typ, deployment.inputs, "optimized") == [
        "ai-gateway's pods lack the cost-allocation labels team, phase"
    ]
    deployment.inputs["metadata"]["labels"].pop("cost-center")
    assert check(deployment.typ, deployment.inputs, "optimized") == [
        "ai-gateway lacks the cost-allocation labels cost-center",
        "ai-gateway's pods lack the cost-allocation labels team, phase",
    ]


def test_default_grafana_password_fails():
    release = one("optimized", "kubernetes:helm.sh/v3:Release", "observability-chart")
    release.inputs["values"]["grafana"].pop("admin")
    _, check, _ = RULES["grafana-admin-password"]
    assert check(release.typ, release.inputs, "optimized")


def test_overprovisioned_requests_fail_the_optimized_ceiling():
    deployment = one(
        "unoptimized", "kubernetes:apps/v1:Deployment", "workloads-deployment-ai-gateway"
    )
    _, check, _ = RULES["rightsizing-ceiling"]
    from finops_sim.rightsize.stackfile import read_recommendations

    [ceiling] = [w["recommendation"] for w in read_recommendations("optimized")]
    measured = "(measured, rightsize.optimized.json)"  # the gateway's ceiling was measured
    assert check(deployment.typ, deployment.inputs, "optimized") == [
        f"ai-gateway: container gateway requests 1000m cpu, above the ceiling {ceiling['cpu']} "
        + measured,
        f"ai-gateway: container gateway requests 1Gi memory, above the ceiling "
        f"{ceiling['memory']} {measured}",
    ]
    redis = one("unoptimized", "kubernetes:apps/v1:StatefulSet", "workloads-statefulset-redis")
    assert check(redis.typ, redis.inputs, "optimized") == [  # not measured: the stack's ceiling
        "redis: container valkey requests 1000m cpu, above the ceiling 500m",
        "redis: container valkey requests 1Gi memory, above the ceiling 512Mi",
    ]


def test_only_workloads_the_list_calls_stateless_must_tolerate_spot():
    _, check, _ = RULES["stateless-tolerates-spot"]
    redis = one("unoptimized", "kubernetes:apps/v1:StatefulSet", "workloads-statefulset-redis")
    gateway = one("unoptimized", "kubernetes:apps/v1:Deployment", "workloads-deployment-ai-gateway")
    assert check(redis.typ, redis.inputs, "optimized") == []
    assert check(gateway.typ, gateway.inputs, "optimized") == [
        "stateless workload ai-gateway does not tolerate spot nodes"
    ]
