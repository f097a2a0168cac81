"""kube-prometheus-stack values, the FinOps alert rules and the Grafana dashboard ConfigMaps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finops_common.labels import COST_LABELS

from ..config import KarpenterConfig, ObservabilityConfig
from .karpenter import SYSTEM_NODES
from .storage import DEFAULT_CLASS

NAMESPACE = "monitoring"
RELEASE_NAME = "kube-prometheus-stack"
FULLNAME = "kps"
GRAFANA_SECRET = "grafana-admin"
GRAFANA_LOGIN_VERSION = "finops-sim/grafana-login-version"  # Grafana's pod annotation
# The Secret the Alertmanager pods mount (under /etc/alertmanager/secrets/) for its receivers.
RECEIVERS_SECRET = "alertmanager-receivers"
SLACK_URL_KEY = "slack-webhook-url"
SLACK_RECEIVER = "slack"
DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"
# Node labels kube-state-metrics exports (pods export COST_LABELS), for dashboards and alerts.
NODE_LABELS = (
    "karpenter.sh/capacity-type",
    "karpenter.sh/nodepool",
    "node.kubernetes.io/instance-type",
)
# Control-plane targets EKS does not expose (and kube-proxy's metrics listen on 127.0.0.1 only):
# scraped, they are down forever and their alerts never stop firing.
EKS_HIDDEN_TARGETS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")


def helm_values(
    config: ObservabilityConfig, on_eks: bool, grafana_login_version: Any = None
) -> dict[str, Any]:
    """Prometheus picks up ServiceMonitors and rules from every namespace; Grafana loads any
    ConfigMap labelled grafana_dashboard=1; nothing is exposed outside the cluster.

    ``grafana_login_version``, the login Secret's resourceVersion, goes on Grafana's pod: the
    chart's own checksum does not cover an existingSecret, and Grafana reads its admin password
    at start, so without it a new password reached the Secret and the stack output while Grafana
    kept the old one until its pod happened to restart.

    On EKS (``_on_eks``), every pod of the chart runs on the system node group, which Karpenter
    never consolidates, and Prometheus keeps its data on a gp3 volume, so a measurement survives
    a node replacement."""
    prometheus_spec: dict[str, Any] = {
        "retention": config.retention,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "probeSelectorNilUsesHelmValues": False,
        "resources": {
            "requests": {"cpu": "200m", "memory": "1Gi"},
            "limits": {"memory": "2Gi"},
        },
    }
    alertmanager_spec: dict[str, Any] = {}
    values: dict[str, Any] = {
        "fullnameOverride": FULLNAME,
        "prometheus": {"service": {"type": "ClusterIP"}, "prometheusSpec": prometheus_spec},
        "alertmanager": {
            "enabled": True,
            "service": {"type": "ClusterIP"},
            "alertmanagerSpec": alertmanager_spec,
        },
        "kube-state-metrics": {
            "metricLabelsAllowlist": [
                f"nodes=[{','.join(NODE_LABELS)}]",
                f"pods=[{','.join(COST_LABELS)}]",
            ]
        },
        "grafana": {
            "admin": {
                "existingSecret": GRAFANA_SECRET,
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "service": {"type": "ClusterIP"},
            "defaultDashboardsEnabled": True,
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": "grafana_dashboard",
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                }
            },
        },
    }
    if grafana_login_version is not None:
        values["grafana"]["podAnnotations"] = {GRAFANA_LOGIN_VERSION: grafana_login_version}
    if config.alerts.receiver == "slack":
        values["alertmanager"]["config"] = alertmanager_routing(config.alerts.slack_channel)
        alertmanager_spec["secrets"] = [RECEIVERS_SECRET]
    if on_eks:
        _on_eks(values, config.storage_size)
    return values


def _on_eks(values: dict[str, Any], storage_size: str) -> None:
    """Every pod on the system nodes, Prometheus's data on a gp3 volume, and the control-plane
    targets EKS hides turned off."""
    prometheus_spec = values["prometheus"]["prometheusSpec"]
    prometheus_spec["storageSpec"] = {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": DEFAULT_CLASS,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": storage_size}},
            }
        }
    }
    # The StatefulSet's claim goes with it, when the release is deleted at the start of
    # `pulumi destroy`, not with the namespace near its end: the EBS CSI driver, deleted just
    # after the namespaces, then has minutes, not seconds, to delete the volume.
    prometheus_spec["persistentVolumeClaimRetentionPolicy"] = {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    for spec in (prometheus_spec, values["alertmanager"]["alertmanagerSpec"]):
        spec["nodeSelector"] = dict(SYSTEM_NODES)
    for section in ("grafana", "kube-state-metrics"):
        values[section]["nodeSelector"] = dict(SYSTEM_NODES)
    values["prometheusOperator"] = {"nodeSelector": dict(SYSTEM_NODES)}
    values |= {target: {"enabled": False} for target in EKS_HIDDEN_TARGETS}


# The chart's alerts that are not news: Watchdog always fires (it proves the pipeline works) and
# InfoInhibitor only mutes info alerts. The chart routes them to its null receiver.
SILENT_ALERTS = ("Watchdog", "InfoInhibitor")


def alertmanager_routing(channel: str | None) -> dict[str, Any]:
    """Every alert but the silent ones to Slack, and again when it resolves. The webhook URL is
    read from the mounted Secret, so it is in neither the Helm values nor the Alertmanager config.
    Helm replaces lists, so the sub-routes and receivers are the chart's null ones plus Slack; its
    grouping, inhibit rules and templates stay."""
    slack: dict[str, Any] = {
        "api_url_file": f"/etc/alertmanager/secrets/{RECEIVERS_SECRET}/{SLACK_URL_KEY}",
        "send_resolved": True,
    }
    if channel is not None:
        slack["channel"] = channel if channel.startswith("#") else f"#{channel}"
    return {
        "route": {
            "receiver": SLACK_RECEIVER,
            "routes": [
                {"receiver": "null", "matchers": [f'alertname = "{name}"']}
                for name in SILENT_ALERTS
            ],
        },
        "receivers": [{"name": "null"}, {"name": SLACK_RECEIVER, "slack_configs": [slack]}],
    }


def _label(name: str) -> str:
    """kube-state-metrics' rendering of a node label as a metric label."""
    return "label_" + "".join(c if c.isalnum() else "_" for c in name)


# Each replica publishes the remaining budget it last saw (a restarted pod, the whole limit): the
# least of them is the freshest, and one series per team fires one alert per team.
TEAM_BUDGET_REMAINING = "min by (team) (ai_budget_remaining_usd)"


def alert_rules(
    observability: ObservabilityConfig, karpenter: KarpenterConfig | None
) -> dict[str, Any]:
    """The PrometheusRule spec: budgets, spend per hour, cache collapse, the gateway's errors and
    store, on-demand for spot."""
    a = observability.alerts
    hit = "sum(rate(ai_cache_hits_total[15m]))"
    miss = "sum(rate(ai_cache_misses_total[15m]))"
    answers = "sum(rate(ai_requests_total[5m]))"
    server_errors = 'sum(rate(ai_requests_total{status=~"5.."}[5m]))'
    rules: list[dict[str, Any]] = [
        {
            "alert": "AITeamBudget80PercentUsed",
            "expr": f"(1 - {TEAM_BUDGET_REMAINING} / max by (team) (ai_budget_limit_usd)) >= "
            f"{a.budget_warning_ratio}",
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Team {{ $labels.team }} has used "
                f"{a.budget_warning_ratio:.0%} of its AI budget"
            },
        },
        {
            # Refusals, not the gauge: admission refuses a request whose worst case no longer
            # fits, so spend stops short of the limit and the remaining budget rarely reads 0.
            "alert": "AITeamBudgetExhausted",
            "expr": 'sum by (team) (increase(ai_budget_rejections_total{reason="budget"}[5m])) > 0',
            "for": "1m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Team {{ $labels.team }}'s AI budget is spent: its requests are "
                "refused until the period resets"
            },
        },
        {
            "alert": "AISpendPerHourHigh",
            "expr": f"sum(increase(ai_cost_total[1h])) > {a.ai_spend_per_hour_usd}",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {"summary": f"AI spend is above ${a.ai_spend_per_hour_usd:g} per hour"},
        },
        {
            "alert": "AICacheHitRatioCollapsed",
            "expr": f"({hit} / ({hit} + {miss})) < {a.cache_hit_ratio_min} and {miss} > 0",
            "for": "15m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The AI gateway's cache hit ratio fell below "
                f"{a.cache_hit_ratio_min:.0%}"
            },
        },
        {
            # A symptom, whatever its cause: a store down with budgets failing closed, or a bug.
            "alert": "AIGatewayServerErrors",
            "expr": f"({server_errors} / {answers}) > {a.server_error_ratio_max}",
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "More than "
                f"{a.server_error_ratio_max:.0%} of the AI gateway's answers are server errors"
            },
        },
        {
            "alert": "AIGatewayStoreDown",
            "expr": "ai_store_up == 0",
            "for": "1m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "AI gateway pod {{ $labels.pod }} cannot reach Valkey: budgets "
                "fail as budgets.on_store_error says, and the caches are bypassed"
            },
        },
    ]
    pools = karpenter.node_pools if karpenter else ()
    flexible = [p.name for p in pools if set(p.capacity_types) >= {"spot", "on-demand"}]
    if flexible:
        capacity, pool = _label("karpenter.sh/capacity-type"), _label("karpenter.sh/nodepool")
        rules.append(
            {
                "alert": "KarpenterOnDemandWhereSpotAllowed",
                "expr": f'count by ({pool}) (kube_node_labels{{{capacity}="on-demand", '
                f'{pool}=~"{"|".join(flexible)}"}}) > 0',
                "for": "30m",
                # Not "info": kube-prometheus-stack's InfoInhibitor mutes info alerts that carry no
                # namespace while no warning is firing, which is nearly always.
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "NodePool {{ $labels." + pool + " }} runs on-demand "
                    "nodes although it allows spot"
                },
            }
        )
    return {"groups": [{"name": "finops", "rules": rules}]}


def dashboards() -> dict[str, dict[str, Any]]:
    """The project's Grafana dashboards, by file stem, from infra/dashboards/*.json."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }
