"""The Pulumi program under mocks (preview=False, so assertions really run), for both stacks."""

from __future__ import annotations

import json
import re

import pulumi
import pytest

from finops_common.config import ConfigError
from finops_platform import versions
from finops_platform.builders.observability import GRAFANA_LOGIN_VERSION
from finops_platform.config import load_stack, require_alert_secret
from finops_platform.render import RecordingMocks, record
from tests.infra.graph import one
from tests.infra.support import recorded
from tests.paths import REPO

TAGGABLE_AWS = (
    "aws:iam/role:Role", "aws:sqs/queue:Queue", "aws:cloudwatch/eventRule:EventRule",
    "aws:eks/addon:Addon", "aws:eks/accessEntry:AccessEntry", "aws:eks/nodeGroup:NodeGroup",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation", "eks:index:Cluster", "awsx:ec2:Vpc",
    "aws:cloudwatch/logGroup:LogGroup", "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:iam/serviceLinkedRole:ServiceLinkedRole",
)  # fmt: skip


def test_one_component_per_concern(recording):
    components = {r.typ for r in recording.mocks.resources if r.typ.startswith("finops:platform:")}
    assert components == {
        "finops:platform:Network", "finops:platform:Cluster", "finops:platform:Karpenter",
        "finops:platform:Observability", "finops:platform:Kubecost", "finops:platform:Workloads",
        "finops:platform:Images",
    }  # fmt: skip


def test_cluster_uses_api_auth_private_nodes_and_pinned_version(recording):
    cluster = one(recording, "eks:index:Cluster").inputs
    assert cluster["authenticationMode"] == "API"
    assert cluster["version"] == versions.KUBERNETES_VERSION
    assert cluster["skipDefaultNodeGroup"] is True
    assert cluster["privateSubnetIds"] == ["subnet-0private1", "subnet-0private2"]
    assert cluster["publicAccessCidrs"] == ["203.0.113.10/32"]
    group = one(recording, "aws:eks/nodeGroup:NodeGroup").inputs
    assert group["capacityType"] == "ON_DEMAND"
    addon = one(recording, "aws:eks/addon:Addon", "cluster-pod-identity-agent").inputs
    assert addon["addonName"] == "eks-pod-identity-agent"


def test_vpc_has_nat_and_discovery_tags(recording):
    vpc = one(recording, "awsx:ec2:Vpc").inputs
    assert vpc["availabilityZoneNames"] == ["us-east-1a", "us-east-1b"]  # the mocks' first two
    assert vpc["natGateways"] == {"strategy": "Single"}
    private = next(s for s in vpc["subnetSpecs"] if s["type"] == "Private")
    public = next(s for s in vpc["subnetSpecs"] if s["type"] == "Public")
    # The layout the config's CIDR rule sizes each zone's block for (a /19 a zone).
    assert (public["cidrMask"], private["cidrMask"]) == (22, 20)
    assert private["tags"]["karpenter.sh/discovery"] == recording.outputs["cluster_name"]
    assert private["tags"]["kubernetes.io/role/internal-elb"] == "1"


def test_every_taggable_aws_resource_carries_the_cost_tags(recording):
    stack = recording.outputs["cluster_name"].removeprefix("finops-")
    for resource in recording.mocks.resources:
        if resource.typ in TAGGABLE_AWS:
            tags = resource.inputs.get("tags") or {}
            assert tags.get("cost-center") == "finops-lab", resource.name
            assert tags.get("stack") == stack and tags.get("project") == "finops-sim"
    provider = one(recording, "pulumi:providers:aws").inputs
    assert json.loads(provider["defaultTags"])["tags"]["cost-center"] == "finops-lab"


def test_karpenter_pieces_and_fixed_release_name(recording):
    release = one(recording, "kubernetes:helm.sh/v3:Release", "karpenter-chart").inputs
    assert release["name"] == "karpenter"
    assert release["chart"] == versions.KARPENTER_CHART
    assert release["version"] == versions.KARPENTER_VERSION
    cluster_name = recording.outputs["cluster_name"]
    settings = release["values"]["settings"]
    assert (settings["clusterName"], settings["interruptionQueue"]) == (
        cluster_name, f"Karpenter-{cluster_name}"
    )  # fmt: skip
    entry = one(recording, "aws:eks/accessEntry:AccessEntry").inputs
    assert entry["type"] == "EC2_LINUX"
    assert entry["principalArn"].endswith(f"role/KarpenterNodeRole-{cluster_name}")
    association = one(
        recording, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-controller"
    ).inputs
    assert (association["namespace"], association["serviceAccount"]) == ("kube-system", "karpenter")
    assert len(recording.mocks.of_type("aws:cloudwatch/eventRule:EventRule")) == 5
    policy = json.loads(one(recording, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert any(s["Sid"] == "AllowInterruptionQueueActions" for s in policy["Statement"])


def test_destroy_order_nodepools_before_controller_before_iam(recording):
    deps = recording.monitor.dependencies
    release = ("kubernetes:helm.sh/v3:Release", "karpenter-chart")
    for pool in recording.mocks.of_type("kubernetes:karpenter.sh/v1:NodePool"):
        assert release in deps(pool.typ, pool.name)
    node_class = one(recording, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    assert release in deps(node_class.typ, node_class.name)
    release_deps = deps(*release)
    assert ("aws:iam/rolePolicy:RolePolicy", "karpenter-controller") in release_deps
    assert ("aws:eks/podIdentityAssociation:PodIdentityAssociation",
            "karpenter-controller") in release_deps  # fmt: skip
    assert ("aws:eks/accessEntry:AccessEntry", "karpenter-node") in release_deps


def test_stacks_differ_in_capacity_and_consolidation():
    def pools(stack):
        return {
            r.inputs["metadata"]["name"]: r.inputs["spec"]
            for r in recorded(stack).mocks.of_type("kubernetes:karpenter.sh/v1:NodePool")
        }

    unoptimized, optimized = pools("unoptimized"), pools("optimized")
    capacity = lambda spec: spec["template"]["spec"]["requirements"][0]["values"]  # noqa: E731
    assert [capacity(s) for s in unoptimized.values()] == [["on-demand"]]
    assert unoptimized["on-demand"]["disruption"]["consolidateAfter"] == "Never"
    assert capacity(optimized["spot"]) == ["spot", "on-demand"]
    assert optimized["spot"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    for spec in [*unoptimized.values(), *optimized.values()]:
        assert set(spec["limits"]) == {"cpu", "memory"}


def test_grafana_password_is_random_secret_and_never_admin(recording):
    assert recording.mocks.of_type("random:index/randomPassword:RandomPassword")
    secret = one(recording, "kubernetes:core/v1:Secret", "observability-grafana-admin").inputs
    assert secret["stringData"]["admin-password"] == "mock-password-observability-grafana-admin"
    values = one(recording, "kubernetes:helm.sh/v3:Release", "observability-chart").inputs["values"]
    assert values["grafana"]["admin"]["existingSecret"] == secret["metadata"]["name"]
    assert "adminPassword" not in values["grafana"]
    assert values["grafana"]["service"]["type"] == "ClusterIP"
    assert (
        values["prometheus"]["prometheusSpec"]["serviceMonitorSelectorNilUsesHelmValues"] is False
    )


def test_a_new_grafana_password_restarts_grafana():
    """Grafana reads its admin password at start, and the chart's checksum does not cover an
    existingSecret: the pod carries the login Secret's version, so a new password rolls it."""

    def login_version(password: str | None) -> str:
        recording = record(load_stack("optimized"), grafana_password=password)
        release = one(recording, "kubernetes:helm.sh/v3:Release", "observability-chart")
        return release.inputs["values"]["grafana"]["podAnnotations"][GRAFANA_LOGIN_VERSION]

    first, again, changed = login_version("first-pw"), login_version("first-pw"), login_version("x")
    assert first == again != changed


def test_on_demand_for_spot_alert_only_where_spot_is_allowed():
    def alerts(stack):
        rule = recorded(stack).mocks.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")[
            0
        ]
        return {r["alert"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]}

    assert "KarpenterOnDemandWhereSpotAllowed" in alerts("optimized")
    assert "KarpenterOnDemandWhereSpotAllowed" not in alerts("unoptimized")
    assert {"AITeamBudget80PercentUsed", "AITeamBudgetExhausted", "AISpendPerHourHigh",
            "AICacheHitRatioCollapsed"} <= alerts("unoptimized")  # fmt: skip


def test_kubecost_recognises_spot_nodes(recording):
    values = one(recording, "kubernetes:helm.sh/v3:Release", "kubecost-chart").inputs["values"]
    assert values["global"]["clusterId"] == recording.outputs["cluster_name"]
    kubecost = values["finopsagent"]["agent"]["kubecost"]
    assert (kubecost["spotLabel"], kubecost["spotLabelValue"]) == (
        "karpenter.sh/capacity-type",
        "spot",
    )


def test_the_outputs_are_those_the_readme_lists(recording):
    outputs = recording.outputs
    listed = re.search(r"\*\*Outputs:\*\*(.*?)\.\n", (REPO / "README.md").read_text(), re.S)
    assert listed is not None
    assert set(re.findall(r"`(\w+)`", listed.group(1))) == set(outputs)
    assert "port-forward" in outputs["port_forward"]["grafana"]


def test_local_stack_creates_no_aws_resources_and_no_karpenter():
    local = recorded("local")
    types = {r.typ for r in local.mocks.resources}
    assert not any(t.startswith(("aws:", "eks:", "awsx:", "pulumi:providers:aws")) for t in types)
    assert not any("karpenter" in t for t in types)
    assert {"kubernetes:helm.sh/v3:Release", "kubernetes:apps/v1:Deployment"} <= types


SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXX"


def with_slack_receiver(config):
    observability = config.platform.observability
    alerts = observability.alerts.model_copy(update={"receiver": "slack"})
    platform = config.platform.model_copy(
        update={"observability": observability.model_copy(update={"alerts": alerts})}
    )
    return config.model_copy(update={"platform": platform})


def test_a_slack_receiver_without_its_secret_is_refused_before_anything_is_created():
    config = with_slack_receiver(load_stack("optimized"))
    with pytest.raises(ConfigError) as info:
        require_alert_secret(config, webhook_url_set=False)
    message = str(info.value)
    assert "stacks/Pulumi.optimized.yaml" in message
    assert "`finops-sim:platform.observability.alerts.receiver` is 'slack'" in message
    assert "pulumi config set --stack optimized --secret finops-sim:alertSlackWebhookUrl" in message
    assert require_alert_secret(config, webhook_url_set=True) is None
    unused = require_alert_secret(load_stack("optimized"), webhook_url_set=True)
    assert unused is not None and "sent nowhere" in unused


def test_the_slack_receiver_mounts_the_webhook_secret_the_release_waits_for():
    config = with_slack_receiver(load_stack("optimized"))
    pulumi.runtime.set_config("finops-sim:alertSlackWebhookUrl", SLACK_URL)
    try:
        recording = record(config)
    finally:
        pulumi.runtime.config.CONFIG.get().pop("finops-sim:alertSlackWebhookUrl")
    secret = one(recording, "kubernetes:core/v1:Secret", "observability-alertmanager-receivers")
    assert secret.inputs["metadata"]["name"] == "alertmanager-receivers"
    assert secret.inputs["metadata"]["namespace"] == "monitoring"
    assert secret.inputs["stringData"] == {"slack-webhook-url": SLACK_URL}
    release = one(recording, "kubernetes:helm.sh/v3:Release", "observability-chart")
    values = release.inputs["values"]
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == ["alertmanager-receivers"]
    assert SLACK_URL not in json.dumps(values)
    waits_for = recording.monitor.dependencies(release.typ, release.name)
    assert (secret.typ, secret.name) in waits_for


def test_a_mocked_run_of_a_slack_stack_mounts_a_stand_in_it_never_sends_to():
    """`finops-sim render` and the tests read no secrets: a committed receiver must not stop
    them."""
    recording = record(with_slack_receiver(load_stack("optimized")))
    secret = one(recording, "kubernetes:core/v1:Secret", "observability-alertmanager-receivers")
    assert secret.inputs["stringData"]["slack-webhook-url"].endswith(".invalid/mocked-run")


def test_the_aws_provider_takes_the_stacks_profile_and_carries_every_aws_invoke(monkeypatch):
    """Invokes without a provider used the default one, which reads the stack's aws: config
    while the resources went through the program's own: an account lookup (the spot role) could
    ask another account than the one the stack deploys to."""
    providers: dict[str, str] = {}
    answer = RecordingMocks.call

    def call(self, args):
        if args.token.startswith("aws:"):
            providers[args.token] = args.provider
        return answer(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    recording = record(load_stack("optimized").model_copy(update={"aws_profile": "finops-lab"}))
    provider = one(recording, "pulumi:providers:aws").inputs
    assert provider["profile"] == "finops-lab" and provider["region"] == "us-east-1"
    # The Kubernetes provider logs in through the cluster's kubeconfig, with the same profile.
    cluster = one(recording, "eks:index:Cluster").inputs
    assert cluster["providerCredentialOpts"] == {"profileName": "finops-lab"}
    assert recording.outputs["port_forward"]["kubeconfig"].endswith("--profile finops-lab")
    assert "aws:iam/getRoles:getRoles" in providers
    assert all("pulumi:providers:aws::aws::" in via for via in providers.values()), providers
