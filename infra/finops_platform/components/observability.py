"""Observability: kube-prometheus-stack with Grafana (admin password a Pulumi secret), the
project's dashboards through the Grafana sidecar, and the FinOps alert rules."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from .. import versions
from ..builders import observability as build
from ..config import KarpenterConfig, ObservabilityConfig


@dataclass(frozen=True)
class ObservabilityArgs:
    config: ObservabilityConfig
    karpenter: KarpenterConfig | None
    provider: k8s.Provider
    grafana_admin_password: pulumi.Input[str] | None
    # The Slack incoming-webhook URL, a Pulumi secret; set when alerts.receiver is slack.
    slack_webhook_url: pulumi.Input[str] | None
    # On EKS: the system node group, add-ons and StorageClass; none on an existing cluster.
    depends_on: list[pulumi.Resource]
    on_eks: bool


class Observability(pulumi.ComponentResource):
    grafana_admin_password: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("finops:platform:Observability", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # The namespace outlives the release and goes before the storage driver on destroy,
        # taking Prometheus's claim (and so its EBS volume) with it.
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": build.NAMESPACE},
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(depends_on=args.depends_on)
            ),
        )
        in_namespace = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])
        )
        if args.grafana_admin_password is None:
            generated = random.RandomPassword(
                f"{name}-grafana-admin",
                length=24,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            password = generated.result
        else:
            password = pulumi.Output.from_input(args.grafana_admin_password)
        self.grafana_admin_password = pulumi.Output.secret(password)
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": build.GRAFANA_SECRET, "namespace": build.NAMESPACE},
            string_data={"admin-user": "admin", "admin-password": self.grafana_admin_password},
            opts=in_namespace,
        )
        receivers = self._receivers_secret(name, args, in_namespace)
        dashboards = [
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{stem}",
                metadata={
                    "name": f"finops-dashboard-{stem}",
                    "namespace": build.NAMESPACE,
                    "labels": {"grafana_dashboard": "1"},
                },
                data={f"{stem}.json": json.dumps(dashboard)},
                opts=in_namespace,
            )
            for stem, dashboard in build.dashboards().items()
        ]
        self.release = k8s.helm.v3.Release(
            f"{name}-chart",
            name=build.RELEASE_NAME,
            chart=versions.KUBE_PROMETHEUS_STACK_CHART,
            version=versions.KUBE_PROMETHEUS_STACK_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(
                repo=versions.KUBE_PROMETHEUS_STACK_REPO
            ),
            namespace=build.NAMESPACE,
            values=build.helm_values(args.config, args.on_eks),
            opts=pulumi.ResourceOptions.merge(
                k8s_opts,
                pulumi.ResourceOptions(
                    depends_on=[secret, *receivers, *dashboards, *args.depends_on]
                ),
            ),
        )
        rules = build.alert_rules(args.config, args.karpenter)
        k8s.apiextensions.CustomResource(
            f"{name}-finops-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={
                "name": "finops-alerts",
                "namespace": build.NAMESPACE,
                "labels": {"app.kubernetes.io/part-of": "finops-sim"},
            },
            spec=rules,
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(depends_on=[self.release])
            ),
        )
        self.register_outputs({"grafana_admin_password": self.grafana_admin_password})

    @staticmethod
    def _receivers_secret(
        name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions
    ) -> list[k8s.core.v1.Secret]:
        """The Secret Alertmanager mounts for its Slack receiver."""
        if args.config.alerts.receiver != "slack":
            return []
        assert args.slack_webhook_url is not None  # program.load_config refuses a stack without
        url = pulumi.Output.secret(pulumi.Output.from_input(args.slack_webhook_url))
        return [
            k8s.core.v1.Secret(
                f"{name}-alertmanager-receivers",
                metadata={"name": build.RECEIVERS_SECRET, "namespace": build.NAMESPACE},
                string_data={build.SLACK_URL_KEY: url},
                opts=opts,
            )
        ]
