"""Wiring: typed config in, components out, and the stack's outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .builders import kubecost as kubecost_build
from .builders import observability as observability_build
from .builders import workloads as workloads_build
from .components.cluster import Cluster, ClusterArgs
from .components.images import Images, ImagesArgs
from .components.karpenter import Karpenter, KarpenterArgs
from .components.kubecost import Kubecost, KubecostArgs
from .components.network import Network, NetworkArgs
from .components.observability import Observability, ObservabilityArgs
from .components.store import ManagedStore, ManagedStoreArgs
from .components.workloads import ExternalStore, Workloads, WorkloadsArgs
from .config import (
    GRAFANA_PASSWORD_SECRET,
    PROJECT,
    SLACK_WEBHOOK_SECRET,
    STORE_TOKEN_SECRET,
    TEAM_KEYS_SECRET,
    NetworkConfig,
    StackConfig,
    parse_stack_config,
    refuse_unknown_keys,
    require_alert_secret,
    require_user_values,
)
from .workload_list import GATEWAY, LOCUST_MASTER


def _config_keys() -> set[str]:
    """Every config key the engine gave this program: set explicitly, or through the
    environment (the two places ``pulumi.Config`` reads)."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def load_config() -> StackConfig:
    """Read the stack's config through Pulumi and validate it once, placeholders refused, before
    any resource exists."""
    refuse_unknown_keys(_config_keys(), f"stack {pulumi.get_stack()!r}")
    values = {
        "aws:region": pulumi.Config("aws").get("region"),
        "aws:profile": pulumi.Config("aws").get("profile"),
        f"{PROJECT}:platform": pulumi.Config(PROJECT).get_object("platform"),
        f"{PROJECT}:workloads": pulumi.Config(PROJECT).get_object("workloads"),
    }
    config = parse_stack_config(pulumi.get_stack(), values)
    require_user_values(config)
    webhook_url_set = pulumi.Config(PROJECT).get_secret(SLACK_WEBHOOK_SECRET) is not None
    unused = require_alert_secret(config, webhook_url_set)
    if unused is not None:
        pulumi.log.warn(unused)
    return config


def grafana_password() -> pulumi.Output[str] | None:
    return pulumi.Config(PROJECT).get_secret(GRAFANA_PASSWORD_SECRET)


# What a mocked run (`finops-sim render`, the tests) mounts: it reads no secrets.
MOCKED_WEBHOOK_URL = "https://hooks.slack.invalid/mocked-run"


def slack_webhook_url(config: StackConfig) -> pulumi.Output[str] | None:
    """The Slack receiver's webhook URL; load_config refused a stack that needs it and lacks it,
    so only a mocked run, which reads no secrets, gets the stand-in."""
    if config.platform.observability.alerts.receiver != "slack":
        return None
    url = pulumi.Config(PROJECT).get_secret(SLACK_WEBHOOK_SECRET)
    return url if url is not None else pulumi.Output.secret(MOCKED_WEBHOOK_URL)


# The local ports of the port-forwards, where the stack outputs' URLs point.
GRAFANA_LOCAL_PORT = 3000
KUBECOST_LOCAL_PORT = 9091  # Prometheus has 9090
GATEWAY_LOCAL_PORT = 8080  # the port the README's SDK examples call


def port_forward_commands(
    cluster_name: str, region: str, aws_profile: str | None = None
) -> dict[str, str]:
    profile = "" if aws_profile is None else f" --profile {aws_profile}"
    finops = f"kubectl -n {workloads_build.NAMESPACE} port-forward svc"
    return {
        "kubeconfig": f"aws eks update-kubeconfig --name {cluster_name} --region {region}{profile}",
        "grafana": f"kubectl -n {observability_build.NAMESPACE} port-forward "
        f"svc/{observability_build.RELEASE_NAME}-grafana {GRAFANA_LOCAL_PORT}:80",
        "prometheus": f"kubectl -n {observability_build.NAMESPACE} port-forward "
        f"svc/{observability_build.FULLNAME}-prometheus 9090:9090",
        "kubecost": f"kubectl -n {kubecost_build.NAMESPACE} port-forward "
        f"svc/{kubecost_build.RELEASE_NAME}-frontend {KUBECOST_LOCAL_PORT}:9090",
        "locust": f"{finops}/{LOCUST_MASTER} {workloads_build.LOCUST_WEB_PORT}:"
        f"{workloads_build.LOCUST_WEB_PORT}",
        "gateway": f"{finops}/{GATEWAY} {GATEWAY_LOCAL_PORT}:{workloads_build.SERVICE_HTTP_PORT}",
    }


def _after_port_forward(app: str, port: int) -> str:
    return f"http://localhost:{port} (after the {app} port-forward)"


def deploy_workloads(
    config: StackConfig,
    provider: k8s.Provider,
    depends_on: list[pulumi.Resource],
    opts: pulumi.ResourceOptions | None = None,
    external_store: ExternalStore | None = None,
) -> Workloads:
    """The images (built or prebuilt) and the workloads, on whatever cluster the stack has."""
    tags = config.tags if config.platform.mode == "aws" else {}
    images = Images("images", ImagesArgs(config.workloads.images, config.cluster_name, tags), opts)
    return Workloads(
        "workloads",
        WorkloadsArgs(
            config=config.workloads,
            pools=config.platform.node_pools,
            cost_center=config.platform.cost_center,
            phase=config.stack,
            provider=provider,
            team_keys=pulumi.Config(PROJECT).get_secret_object(TEAM_KEYS_SECRET),
            images={"gateway": images.gateway, "loadgen": images.loadgen},
            depends_on=depends_on,
            external_store=external_store,
        ),
    )


def build(config: StackConfig, grafana_admin_password: pulumi.Input[str] | None) -> dict[str, Any]:
    if config.platform.mode == "local":
        return build_local(config, grafana_admin_password)
    return build_aws(config, grafana_admin_password)


def build_local(
    config: StackConfig, grafana_admin_password: pulumi.Input[str] | None
) -> dict[str, Any]:
    """The original design's "local K8s" path: an existing cluster, no AWS, no Karpenter."""
    platform = config.platform
    provider = k8s.Provider(
        "local", context=platform.local.kubeconfig_context, enable_server_side_apply=True
    )
    observability = Observability(
        "observability",
        ObservabilityArgs(
            platform.observability,
            None,
            provider,
            grafana_admin_password,
            slack_webhook_url(config),
            [],
            on_eks=False,
        ),
    )
    workloads = deploy_workloads(config, provider, [observability.release])
    commands = port_forward_commands(config.cluster_name, config.region, config.aws_profile)
    return {
        "team_keys": workloads.team_keys,
        "grafana_admin_password": observability.grafana_admin_password,
        "grafana_url": _after_port_forward("grafana", GRAFANA_LOCAL_PORT),
        "port_forward": {k: v for k, v in commands.items() if k not in ("kubeconfig", "kubecost")},
    }


def existing_private_subnets(network: NetworkConfig) -> tuple[str, ...]:
    """An existing VPC's private subnets do not carry the discovery tag the created ones do."""
    return network.private_subnet_ids if network.mode == "existing" else ()


def build_aws(
    config: StackConfig, grafana_admin_password: pulumi.Input[str] | None
) -> dict[str, Any]:
    platform = config.platform
    assert platform.cluster is not None and platform.karpenter is not None
    aws_provider = default_tagged_provider(config)
    with_aws = pulumi.ResourceOptions(providers={"aws": aws_provider})
    invoke = pulumi.InvokeOptions(provider=aws_provider)
    partition = aws.get_partition_output(opts=invoke).partition
    account_id = aws.get_caller_identity_output(opts=invoke).account_id
    network = Network(
        "network",
        NetworkArgs(platform.network, config.cluster_name, config.region, config.tags),
        with_aws,
    )
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            config=platform.cluster,
            cluster_name=config.cluster_name,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            public_subnet_ids=network.public_subnet_ids,
            partition=partition,
            tags=config.tags,
            aws_profile=config.aws_profile,
        ),
        with_aws,
    )
    # Monitoring runs on the system nodes, so it comes first: Karpenter's chart needs its CRDs.
    observability = observability_on_eks(config, cluster, grafana_admin_password)
    karpenter = Karpenter(
        "karpenter",
        KarpenterArgs(
            config=platform.karpenter,
            cluster=cluster,
            controller_identity=platform.cluster.controller_identity,
            region=config.region,
            account_id=account_id,
            partition=partition,
            tags=config.tags,
            subnet_ids=existing_private_subnets(platform.network),
            depends_on=[observability.release],
        ),
        with_aws,
    )
    workloads = deploy_workloads(
        config,
        cluster.provider,
        [*karpenter.node_pools, observability.release],
        with_aws,
        managed_store(config, network, cluster, with_aws),
    )
    outputs: dict[str, Any] = {
        "cluster_name": config.cluster_name,
        "region": config.region,
        "kubeconfig": cluster.kubeconfig,
        "team_keys": workloads.team_keys,
        "grafana_admin_password": observability.grafana_admin_password,
        "grafana_url": _after_port_forward("grafana", GRAFANA_LOCAL_PORT),
        "port_forward": port_forward_commands(
            config.cluster_name, config.region, config.aws_profile
        ),
        "node_pools": [pool.name for pool in platform.karpenter.node_pools],
    }
    if platform.kubecost.enabled:
        install_kubecost(config, network, cluster, observability)
        outputs["kubecost_url"] = _after_port_forward("kubecost", KUBECOST_LOCAL_PORT)
    return outputs


def default_tagged_provider(config: StackConfig) -> aws.Provider:
    """The AWS provider every AWS resource goes through, inside the eks and awsx components
    too, so each gets the cost tags by default."""
    return aws.Provider(
        "aws",
        region=config.region,
        profile=config.aws_profile,
        default_tags=aws.ProviderDefaultTagsArgs(tags=config.tags),
    )


def observability_on_eks(
    config: StackConfig, cluster: Cluster, grafana_admin_password: pulumi.Input[str] | None
) -> Observability:
    """kube-prometheus-stack on the system nodes, with Karpenter's dashboards and alerts."""
    return Observability(
        "observability",
        ObservabilityArgs(
            config=config.platform.observability,
            karpenter=config.platform.karpenter,
            provider=cluster.provider,
            grafana_admin_password=grafana_admin_password,
            slack_webhook_url=slack_webhook_url(config),
            depends_on=cluster.system_ready,
            on_eks=True,
        ),
    )


def install_kubecost(
    config: StackConfig, network: Network, cluster: Cluster, observability: Observability
) -> Kubecost:
    """Kubecost, once the system nodes and the Prometheus it reads are up."""
    return Kubecost(
        "kubecost",
        KubecostArgs(
            config.cluster_name,
            network.vpc_cidrs,
            cluster.provider,
            depends_on=[*cluster.system_ready, observability.release],
        ),
    )


def managed_store(
    config: StackConfig, network: Network, cluster: Cluster, opts: pulumi.ResourceOptions
) -> ExternalStore | None:
    """ElastiCache Serverless when the stack asks for it; None keeps Valkey in the cluster."""
    store = config.workloads.store
    if store.mode == "in_cluster":
        return None
    managed = ManagedStore(
        "store",
        ManagedStoreArgs(
            config=store.elasticache,
            cluster_name=config.cluster_name,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            node_security_group_id=cluster.eks.cluster_security_group_id,
            auth_token=pulumi.Config(PROJECT).get_secret(STORE_TOKEN_SECRET),
            tags=config.tags,
        ),
        opts,
    )
    return ExternalStore(managed.host, managed.password)
