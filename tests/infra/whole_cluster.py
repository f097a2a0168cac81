"""A rehearsal's objects seen as one cluster: the program's own and the charts' together, each
with the resource (or release) that applies it. The whole-cluster checks read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finops_platform.render import BUILT_IN_GROUPS, Rehearsal, api_group, transitive
from tests.infra.subcharts import GRAFANA, GrafanaStandIn

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")


@dataclass(frozen=True)
class Applied:
    owner: str  # the resource id (a release's, for a chart's objects) that applies it
    manifest: dict[str, Any]
    from_crds_dir: bool = False
    project: bool = False  # one of the program's own objects (not a chart's)
    derived: bool = False  # a stand-in's, for a subchart the chart sources lack (subcharts.py)

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def name(self) -> str:
        return self.manifest["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.manifest["metadata"].get("namespace")

    @property
    def labels(self) -> dict[str, str]:
        return self.manifest["metadata"].get("labels") or {}

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        derived = ", derived" if self.derived else ""
        return f"{self.kind} {where}{self.name} ({self.owner}{derived})"


class Cluster:
    """``grafana_defaults``: Grafana's default values, for a stand-in of its subchart where a
    release's chart folder lacks it (without them, that subchart stays unrendered)."""

    def __init__(self, rehearsal: Rehearsal, grafana_defaults: Path | None = None) -> None:
        self.rehearsal = rehearsal
        self.stack = rehearsal.recording.stack
        self.objects = [Applied(owner, m, project=True) for owner, m in rehearsal.objects]
        for release in rehearsal.releases:
            namespace = release.release["namespace"]
            for obj in release.objects:
                manifest = obj.manifest
                metadata = manifest.setdefault("metadata", {})
                if namespace and _namespaced(manifest) and not metadata.get("namespace"):
                    metadata["namespace"] = namespace  # helm applies it in the release's
                self.objects.append(Applied(obj.release, manifest, obj.from_crds_dir))
        self.depends = transitive(rehearsal.dependencies)
        self.grafana_stand_ins = [
            GrafanaStandIn(release, grafana_defaults)
            for release in rehearsal.releases
            if grafana_defaults and GRAFANA in release.missing_subcharts
        ]

    def of_kind(self, *kinds: str) -> list[Applied]:
        return [o for o in self.objects if o.kind in kinds]

    def services(self) -> list[Applied]:
        """The Services applied, and those the cluster and the operator create at run time."""
        found = [*self.of_kind("Service"), *(_service(*s) for s in CLUSTER_SERVICES)]
        for stand_in in self.grafana_stand_ins:
            if manifest := stand_in.service():
                found.append(Applied(stand_in.release.release["id"], manifest, derived=True))
        for _, spec in self.pod_templates(project=False):
            for container in containers(spec):
                for arg in container.get("args") or ():
                    if arg.startswith("--kubelet-service="):
                        namespace, name = arg.split("=", 1)[1].split("/")
                        found.append(_service(namespace, name, *KUBELET_SERVICE))
        return found

    @property
    def unrendered_subcharts(self) -> list[str]:
        """The subcharts absent from the chart sources that no stand-in replaces."""
        stood_in = {id(s.release) for s in self.grafana_stand_ins}
        return [
            f"{r.chart_dir.name}/charts/{name}"
            for r in self.rehearsal.releases
            for name in r.missing_subcharts
            if not (name == GRAFANA and id(r) in stood_in)
        ]

    def aws(self, typ: str) -> list[dict[str, Any]]:
        """The inputs of every AWS resource of a type."""
        return [r.inputs for r in self.rehearsal.recording.mocks.of_type(typ)]

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        labels = {"kubernetes.io/metadata.name": namespace}
        for ns in self.of_kind("Namespace"):
            if ns.name == namespace:
                labels |= ns.labels
        return labels

    def pod_templates(self, project: bool | None = None) -> Iterator[tuple[Applied, dict]]:
        """(workload, pod spec) of every workload; only the project's, or only the charts'."""
        for workload in self.of_kind(*WORKLOAD_KINDS):
            if project is not None and workload.project != project:
                continue
            yield workload, pod_spec(workload.manifest)


# Services every cluster has (the API server's and CoreDNS's), as (namespace, name, labels, ports).
CLUSTER_SERVICES = (
    ("default", "kubernetes", {"component": "apiserver", "provider": "kubernetes"},
     {"https": 443}),
    ("kube-system", "kube-dns", {"k8s-app": "kube-dns"},
     {"dns": 53, "dns-tcp": 53, "metrics": 9153}),
)  # fmt: skip
# The Service the Prometheus operator keeps for the kubelets (its --kubelet-service flag).
KUBELET_SERVICE = (
    {"k8s-app": "kubelet", "app.kubernetes.io/name": "kubelet"},
    {"https-metrics": 10250, "http-metrics": 10255, "cadvisor": 4194},
)


def _service(namespace: str, name: str, labels: dict, ports: dict[str, int]) -> Applied:
    manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"ports": [{"name": k, "port": v} for k, v in ports.items()]},
    }
    return Applied("the cluster", manifest)


_CLUSTER_SCOPED = {
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "StorageClass",
    "PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "CSIDriver", "APIService", "NodePool", "EC2NodeClass", "NodeOverlay", "PersistentVolume",
}  # fmt: skip


def _namespaced(manifest: dict[str, Any]) -> bool:
    return manifest["kind"] not in _CLUSTER_SCOPED


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    if manifest["kind"] == "Pod":
        return spec
    if manifest["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions); an empty one selects
    everything, an absent (None) one nothing."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def is_custom(api_version: str) -> bool:
    return api_group(api_version) not in BUILT_IN_GROUPS
