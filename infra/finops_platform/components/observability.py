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
        namespace = self._namespace(name, args)
        in_namespace = self._k8s_opts(args, [namespace])
        self.grafana_admin_password = self._grafana_password(name, args)
        secret = self._grafana_admin_secret(name, in_namespace)
        receivers = self._receivers_secret(name, args, in_namespace)
        dashboards = self._dashboards(name, in_namespace)
        self.release = self._chart(name, args, secret, [*receivers, *dashboards])
        self._alert_rules(name, args)
        self.register_outputs({"grafana_admin_password": self.grafana_admin_password})

    def _k8s_opts(
        self, args: ObservabilityArgs, depends_on: list[pulumi.Resource]
    ) -> pulumi.ResourceOptions:
        """A child in the cluster (through its provider), after ``depends_on``."""
        return pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=depends_on)

    def _namespace(self, name: str, args: ObservabilityArgs) -> k8s.core.v1.Namespace:
        """The namespace outlives the release and goes before the storage driver on destroy,
        taking any claim left in it (and so its EBS volume) with it; Prometheus's goes earlier,
        with the release."""
        return k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": build.NAMESPACE},
            opts=self._k8s_opts(args, args.depends_on),
        )

    def _grafana_password(self, name: str, args: ObservabilityArgs) -> pulumi.Output[str]:
        """Grafana's admin password, a secret: the stack's, else a generated one."""
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
        return pulumi.Output.secret(password)

    def _grafana_admin_secret(self, name: str, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
        """The Secret the chart's Grafana takes its admin login from (its existingSecret)."""
        return k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": build.GRAFANA_SECRET, "namespace": build.NAMESPACE},
            string_data={"admin-user": "admin", "admin-password": self.grafana_admin_password},
            opts=opts,
        )

    @staticmethod
    def _receivers_secret(
        name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions
    ) -> list[k8s.core.v1.Secret]:
        """The Secret Alertmanager mounts for its Slack receiver."""
        if args.config.alerts.receiver != "slack":
            return []
        assert args.slack_webhook_url is not None  # program.load_config refuses a stack without
        url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.from_input(args.slack_webhook_url)
        )
        return [
            k8s.core.v1.Secret(
                f"{name}-alertmanager-receivers",
                metadata={"name": build.RECEIVERS_SECRET, "namespace": build.NAMESPACE},
                string_data={build.SLACK_URL_KEY: url},
                opts=opts,
            )
        ]

    @staticmethod
    def _dashboards(name: str, opts: pulumi.ResourceOptions) -> list[k8s.core.v1.ConfigMap]:
        """The project's dashboards, a ConfigMap each, labelled for the Grafana sidecar."""
        return [
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{stem}",
                metadata={
                    "name": f"finops-dashboard-{stem}",
                    "namespace": build.NAMESPACE,
                    "labels": {"grafana_dashboard": "1"},
                },
                data={f"{stem}.json": json.dumps(dashboard)},
                opts=opts,
            )
            for stem, dashboard in build.dashboards().items()
        ]

    def _chart(
        self,
        name: str,
        args: ObservabilityArgs,
        login: k8s.core.v1.Secret,
        reads: list[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        """kube-prometheus-stack, after the Secrets and dashboards its pods read and what the
        cluster must have ready first (``args.depends_on``). Grafana's pod carries the login
        Secret's version, so a new password restarts it (it reads the Secret at start only)."""
        return k8s.helm.v3.Release(
            f"{name}-chart",
            name=build.RELEASE_NAME,
            chart=versions.KUBE_PROMETHEUS_STACK_CHART,
            version=versions.KUBE_PROMETHEUS_STACK_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(
                repo=versions.KUBE_PROMETHEUS_STACK_REPO
            ),
            namespace=build.NAMESPACE,
            values=build.helm_values(args.config, args.on_eks, login.metadata.resource_version),
            opts=self._k8s_opts(args, [login, *reads, *args.depends_on]),
        )

    def _alert_rules(self, name: str, args: ObservabilityArgs) -> k8s.apiextensions.CustomResource:
        """The FinOps alert rules, after the release that installs the PrometheusRule CRD."""
        return k8s.apiextensions.CustomResource(
            f"{name}-finops-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={
                "name": "finops-alerts",
                "namespace": build.NAMESPACE,
                "labels": {"app.kubernetes.io/part-of": "finops-sim"},
            },
            spec=build.alert_rules(args.config, args.karpenter),
            opts=self._k8s_opts(args, [self.release]),
        )
