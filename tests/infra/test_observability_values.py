"""kube-prometheus-stack values (issue 10, defects 9 and 12) and the store alert (issue 14)."""

from __future__ import annotations

from finops_platform.builders.observability import alert_rules, helm_values
from finops_platform.config import ObservabilityConfig

SYSTEM = {"finops-sim/node-group": "system"}


def test_on_eks_everything_runs_on_the_system_nodes_and_prometheus_keeps_a_volume():
    """Defect 9: consolidation must not restart Prometheus, Alertmanager or Grafana, and a
    restart must not lose the measurements."""
    values = helm_values(ObservabilityConfig(storageSize="30Gi"), on_eks=True)
    prometheus = values["prometheus"]["prometheusSpec"]
    assert prometheus["nodeSelector"] == SYSTEM
    assert values["alertmanager"]["alertmanagerSpec"]["nodeSelector"] == SYSTEM
    assert values["grafana"]["nodeSelector"] == SYSTEM
    assert values["kube-state-metrics"]["nodeSelector"] == SYSTEM
    assert values["prometheusOperator"]["nodeSelector"] == SYSTEM
    claim = prometheus["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == "30Gi"


def test_on_eks_the_hidden_control_plane_targets_are_off():
    """Defect 12: EKS exposes no controller-manager, scheduler or etcd, and kube-proxy's metrics
    listen on localhost; their targets would be down, and their alerts firing, forever."""
    values = helm_values(ObservabilityConfig(), on_eks=True)
    for target in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert values[target] == {"enabled": False}, target


def test_an_existing_cluster_keeps_the_charts_defaults():
    values = helm_values(ObservabilityConfig(), on_eks=False)
    assert "storageSpec" not in values["prometheus"]["prometheusSpec"]
    assert "nodeSelector" not in values["grafana"] and "kubeEtcd" not in values


def test_a_store_outage_alerts():
    rules = alert_rules(ObservabilityConfig(), None)["groups"][0]["rules"]
    store = next(rule for rule in rules if rule["alert"] == "AIGatewayStoreDown")
    assert store["expr"] == "ai_store_up == 0"
    assert store["labels"]["severity"] == "critical"
