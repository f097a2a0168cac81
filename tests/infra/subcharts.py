"""A stand-in for kube-prometheus-stack's Grafana subchart where the chart sources lack it.

../shared/charts holds kube-prometheus-stack without its grafana, kube-state-metrics and
node/windows exporter subcharts (nothing can be downloaded), so `helm template` cannot render
them. Two facts the rehearsal needs from Grafana follow from files that are there:

- its dashboard sidecar's settings (`label`, `labelValue`, `searchNamespace`, `resource`): Grafana's
  default values (../shared/schemas/grafana/values.yaml, chart 12.11.1, the exact version that
  kube-prometheus-stack pins), overlaid with the parent's `grafana:` values and then the program's,
  as Helm coalesces a subchart's values; what each setting means is what those defaults document;
- its Service's name, namespace and port: the `helm create` naming that the karpenter, kubecost
  and kube-prometheus-stack helpers in ../shared implement (`fullnameOverride`, else the release
  name if it holds the chart's name, else RELEASE-CHART, cut to 63 characters), which
  kube-prometheus-stack's NOTES.txt relies on for Grafana's objects (`RELEASE-grafana`), with
  `namespaceOverride`, `service.port` and `service.portName` from the coalesced values.

Nothing else of the absent subcharts (their workloads, ServiceMonitors, RBAC) can be derived
faithfully; checks that need it skip and name the subchart.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from finops_platform.render import RenderedRelease

GRAFANA = "grafana"
GRAFANA_DEFAULTS_VERSION = "12.11.1"  # the chart whose values.yaml ../shared/schemas/grafana holds


class NotDerivable(Exception):
    """A value the stand-in would need is a template: only the subchart's own `tpl` knows it."""


def coalesce(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Helm's merge of value layers, later ones winning: maps merge key by key, anything else
    replaces, and a null removes the key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if value is None:
                merged.pop(key, None)
            elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = coalesce(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def helm_fullname(release: str, chart: str, values: dict[str, Any]) -> str:
    """The `helm create` fullname of a chart's objects."""
    if values.get("fullnameOverride"):
        return str(values["fullnameOverride"])[:63].rstrip("-")
    name = values.get("nameOverride") or chart
    return (release if name in release else f"{release}-{name}")[:63].rstrip("-")


def _literal(value: Any, key: str) -> Any:
    if isinstance(value, str) and "{{" in value:
        raise NotDerivable(f"grafana `{key}` is a template ({value!r})")
    return value


class GrafanaStandIn:
    """Grafana as the absent subchart would install it with the release's values."""

    def __init__(self, release: RenderedRelease, defaults: Path) -> None:
        dependency = next(
            d
            for d in yaml.safe_load((release.chart_dir / "Chart.yaml").read_text())["dependencies"]
            if d["name"] == GRAFANA
        )
        if str(dependency["version"]) != GRAFANA_DEFAULTS_VERSION:
            raise AssertionError(
                f"{release.chart_dir.name} now pins grafana {dependency['version']}, but "
                f"{defaults} holds the defaults of {GRAFANA_DEFAULTS_VERSION}: refresh them"
            )
        parent = yaml.safe_load((release.chart_dir / "values.yaml").read_text())
        self.release = release
        self.enabled = coalesce(parent, release.release["values"]).get(GRAFANA, {}).get("enabled")
        self.values = coalesce(
            yaml.safe_load(defaults.read_text()),
            parent.get(GRAFANA),
            release.release["values"].get(GRAFANA),
        )

    @property
    def namespace(self) -> str:
        return self.values.get("namespaceOverride") or self.release.release["namespace"]

    def service(self) -> dict[str, Any] | None:
        """The Service manifest's name, namespace and port, as far as the naming tells."""
        service = self.values.get("service") or {}
        if not (self.enabled and service.get("enabled", True)):
            return None
        name = helm_fullname(self.release.release["name"], GRAFANA, self.values)
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": _literal(name, "fullnameOverride"), "namespace": self.namespace},
            "spec": {"ports": [{"name": service.get("portName"), "port": service.get("port")}]},
        }

    def dashboard_sidecar(self) -> dict[str, str] | None:
        """The dashboard sidecar's settings in the names of its environment (LABEL,
        LABEL_VALUE, NAMESPACE, RESOURCE); None when Grafana or the sidecar is off."""
        dashboards = (self.values.get("sidecar") or {}).get("dashboards") or {}
        if not (self.enabled and dashboards.get("enabled")):
            return None
        searched = dashboards.get("searchNamespace")
        if isinstance(searched, list):
            searched = ",".join(searched)
        return {
            "LABEL": _literal(dashboards.get("label") or "", "sidecar.dashboards.label"),
            "LABEL_VALUE": _literal(
                dashboards.get("labelValue") or "", "sidecar.dashboards.labelValue"
            ),
            "NAMESPACE": _literal(searched or "", "sidecar.dashboards.searchNamespace"),
            "RESOURCE": dashboards.get("resource") or "both",
        }
