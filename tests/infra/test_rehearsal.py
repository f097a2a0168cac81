"""An offline rehearsal of `pulumi up`: the program's objects together with the objects its Helm
releases render (a real `helm template` of the pinned charts with the program's values), checked
as one cluster: apply order, storage, monitoring, the README's commands, images, pod security."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from finops_platform.builders.karpenter import SYSTEM_NODES
from finops_platform.config import (
    SystemNodeGroupConfig,
    TaintConfig,
    cpu_millicores,
    load_stack,
    memory_mib,
)
from finops_platform.cost import InstanceType, Pod, load_instance_types, nodes_needed
from finops_platform.render import Rehearsal, api_group
from tests.infra.subcharts import GRAFANA, NotDerivable
from tests.infra.support import (
    ALL_STACKS,
    SCHEMAS,
    SHARED_REQUIRED,
    STACKS,
    need_shared,
    unchecked,
)
from tests.infra.whole_cluster import Applied, Cluster, containers, is_custom, pod_spec, selects
from tests.paths import REPO

# What every EKS cluster has before the program runs: the gp2 class (in-tree EBS provisioner,
# migrated to the EBS CSI driver; not the default since EKS 1.30) and no CSI driver at all.
EKS_STORAGE_CLASSES = {"gp2": {"provisioner": "kubernetes.io/aws-ebs", "default": False}}
IN_TREE_TO_CSI = {"kubernetes.io/aws-ebs": "ebs.csi.aws.com"}
CSI_ADDONS = {"aws-ebs-csi-driver": "ebs.csi.aws.com", "aws-efs-csi-driver": "efs.csi.aws.com"}
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
GRAFANA_DEFAULTS = SCHEMAS / "grafana" / "values.yaml"


@pytest.fixture
def cluster(request, rehearsed: Callable[[str], Rehearsal]) -> Cluster:
    """The stack's rehearsal as one cluster; where the chart sources lack Grafana's subchart, a
    stand-in derived from its default values gives its sidecar and Service (subcharts.py).
    Without those defaults, the checks that need Grafana skip, and .ci/run fails."""
    rehearsal = rehearsed(request.param)
    if SHARED_REQUIRED and any(GRAFANA in r.missing_subcharts for r in rehearsal.releases):
        need_shared(SCHEMAS / GRAFANA, "Grafana's default values, for its absent subchart")
    return Cluster(rehearsal, GRAFANA_DEFAULTS if GRAFANA_DEFAULTS.is_file() else None)


def on(*params) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("cluster", list(params), indirect=True)


# ---- the system node group ---------------------------------------------------------------------

# EKS's add-ons on the system nodes, which no chart here renders: CoreDNS (two replicas of 100m
# and 70Mi, its manifest's requests), the EBS CSI controller (two replicas of six containers of
# about 10m and 40Mi) and metrics-server (two replicas of 100m and 200Mi) come to about 520m and
# 1,020Mi. An allowance of 700m and 1.5Gi, as one pod.
EKS_ADDONS = Pod(
    "EKS add-ons (CoreDNS, the EBS CSI controller, metrics-server)", 700, 1536, stateless=False
)
# The gp3 each shipped stack's claims ask for, as the README's cost model section prices it.
README_VOLUMES_GIB = {"Prometheus": 20, "Kubecost": 162, "Valkey": 1}
# The Prometheus operator's memory request for an Alertmanager whose resources are unset.
ALERTMANAGER_DEFAULT_MEMORY_MIB = 200


def requests_of(containers: list[dict]) -> tuple[int, int]:
    """The containers' requests summed: millicores, MiB (what the scheduler places by)."""
    cpu = memory = 0
    for container in containers:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += cpu_millicores(requests["cpu"]) if "cpu" in requests else 0
        memory += memory_mib(requests["memory"]) if "memory" in requests else 0
    return cpu, memory


def pinned_to_system_nodes(spec: dict) -> bool:
    selector = spec.get("nodeSelector") or {}
    return all(selector.get(key) == value for key, value in SYSTEM_NODES.items())


def system_node_pods(cluster: Cluster) -> list[Pod]:
    """Every pod the system node selector pins, with its requests: the workloads times their
    replicas, and the pods the Prometheus operator makes from its custom objects."""
    pods = []
    for workload, spec in cluster.pod_templates():
        if workload.manifest["kind"] != "DaemonSet" and pinned_to_system_nodes(spec):
            cpu, memory = requests_of(containers(spec))
            replicas = workload.manifest["spec"].get("replicas", 1)
            pods += [Pod(str(workload), cpu, memory, stateless=False)] * replicas
    for custom in cluster.of_kind("Prometheus", "Alertmanager"):
        spec = custom.manifest["spec"]
        if pinned_to_system_nodes(spec):
            cpu, memory = requests_of([spec])
            if custom.kind == "Alertmanager" and not spec.get("resources"):
                memory = ALERTMANAGER_DEFAULT_MEMORY_MIB
            pods += [Pod(str(custom), cpu, memory, stateless=False)] * spec.get("replicas", 1)
    return pods


def daemonset_requests(cluster: Cluster) -> tuple[int, int]:
    """What the charts' daemonsets that land on a system node request there."""
    cpu = memory = 0
    for workload, spec in cluster.pod_templates():
        selector = spec.get("nodeSelector") or {}
        lands = all(SYSTEM_NODES.get(key, value) == value for key, value in selector.items())
        if workload.manifest["kind"] == "DaemonSet" and lands:
            pod_cpu, pod_memory = requests_of(containers(spec))
            cpu, memory = cpu + pod_cpu, memory + pod_memory
    return cpu, memory


@dataclass(frozen=True)
class SystemNodePacking:
    """The system node group, its pods with EKS's add-ons, and the nodes they need."""

    group: SystemNodeGroupConfig
    instance: InstanceType
    pods: list[Pod]
    needed: int | None

    @classmethod
    def of(cls, cluster: Cluster) -> SystemNodePacking:
        group = load_stack(cluster.stack).platform.cluster.system_node_group
        instance = next(t for t in load_instance_types() if t.name == group.instance_types[0])
        pods = [*system_node_pods(cluster), EKS_ADDONS]
        return cls(group, instance, pods, nodes_needed(pods, instance, daemonset_requests(cluster)))


@on(*STACKS)
def test_the_system_node_group_holds_what_is_pinned_to_it(cluster):
    """Karpenter, Prometheus, Kubecost's 3Gi aggregator and the rest may run only on the managed
    node group: packed first-fit on its nodes as the cost model sizes them (less the charts'
    daemonsets there), with EKS's add-ons, they must fit its desired size, or they stay Pending
    and Karpenter, which must run there, never starts."""
    packing = SystemNodePacking.of(cluster)
    assert any("karpenter" in pod.name for pod in packing.pods)
    assert any(pod.memory_mib >= 3072 for pod in packing.pods), "Kubecost's aggregator is there"
    desired = packing.group.desired_size
    assert packing.needed is not None and packing.needed <= desired, (
        f"{packing.needed} {packing.instance.name} nodes needed, the group has {desired}: "
        + ", ".join(f"{p.name} {p.cpu_m}m/{p.memory_mib}Mi" for p in packing.pods)
    )


@on("optimized")
def test_a_system_node_group_too_small_for_its_pods_is_caught(cluster):
    """One t3.large cannot hold them all: the check above would fail on such a stack."""
    assert SystemNodePacking.of(cluster).needed > 1


# ---- apply order ---------------------------------------------------------------------------------


def crd_sources(cluster: Cluster) -> dict[tuple[str, str], list[Applied]]:
    """(group/version, kind) -> the CRD objects that serve it."""
    found: dict[tuple[str, str], list[Applied]] = {}
    for crd in cluster.of_kind("CustomResourceDefinition"):
        spec = crd.manifest["spec"]
        for version in spec["versions"]:
            if version.get("served", True):
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                found.setdefault(key, []).append(crd)
    return found


def applied_before(crd: Applied, obj: Applied, cluster: Cluster) -> bool:
    """Helm applies a chart's crds/ first (Pulumi's helm.v4.Chart applies all of a chart's CRDs
    first); otherwise the CRD's owner must come first."""
    if crd.owner == obj.owner:
        return crd.from_crds_dir or crd.owner.startswith("kubernetes:helm.sh/v4:Chart::")
    return crd.owner in cluster.depends.get(obj.owner, set())


@on(*ALL_STACKS)
def test_every_custom_object_is_applied_after_its_crd(cluster):
    sources = crd_sources(cluster)
    custom = [
        o
        for o in cluster.objects
        if is_custom(o.manifest["apiVersion"]) and o.kind != "CustomResourceDefinition"
    ]
    assert {"ServiceMonitor", "PrometheusRule"} <= {o.kind for o in custom}
    problems = []
    for obj in custom:
        crds = sources.get((obj.manifest["apiVersion"], obj.kind), [])
        if not crds:
            problems.append(f"{obj}: no CRD serves {obj.manifest['apiVersion']} {obj.kind}")
        elif not any(applied_before(crd, obj, cluster) for crd in crds):
            owners = sorted({crd.owner for crd in crds})
            problems.append(f"{obj}: its CRD comes from {owners}, which it does not depend on")
    assert problems == []


def test_a_custom_object_whose_crd_comes_later_is_caught(rehearsed):
    """The check above fails when a project object's dependency on its CRD's release is lost."""
    cluster = Cluster(rehearsed("local"))
    monitor = next(o for o in cluster.of_kind("ServiceMonitor") if o.project)
    crd = next(c for c in crd_sources(cluster)[("monitoring.coreos.com/v1", "ServiceMonitor")])
    assert applied_before(crd, monitor, cluster)
    cluster.depends[monitor.owner] = set()
    assert not applied_before(crd, monitor, cluster)


def read_objects(spec: dict) -> Iterator[tuple[str, str]]:
    """(kind, name) of each Secret and ConfigMap a pod mounts or reads into its environment,
    unless the pod marks it optional (it then starts without it)."""
    for volume in spec.get("volumes") or []:
        for kind, source, name_field in (("Secret", "secret", "secretName"),
                                         ("ConfigMap", "configMap", "name")):  # fmt: skip
            ref = volume.get(source)
            if ref and not ref.get("optional"):
                yield kind, ref[name_field]
    for container in [*containers(spec), *(spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            for kind, source in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                ref = value_from.get(source)
                if ref and not ref.get("optional"):
                    yield kind, ref["name"]
        for env_from in container.get("envFrom") or []:
            for kind, source in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                ref = env_from.get(source)
                if ref and not ref.get("optional"):
                    yield kind, ref["name"]


def missing_reads(cluster: Cluster) -> list[str]:
    """Each project pod's Secret or ConfigMap that is not applied before it in its namespace: the
    pod would wait in ContainerCreating (or CreateContainerConfigError) until it exists."""
    applied = {(o.kind, o.namespace, o.name): o for o in cluster.of_kind("Secret", "ConfigMap")}
    problems = []
    for workload, spec in cluster.pod_templates(project=True):
        for kind, name in sorted(set(read_objects(spec))):
            source = applied.get((kind, workload.namespace, name))
            if source is None:
                problems.append(f"{workload}: reads {kind} {name}, which nothing applies")
            elif source.owner != workload.owner and source.owner not in cluster.depends.get(
                workload.owner, set()
            ):
                problems.append(f"{workload}: reads {source}, which it does not wait for")
    return problems


@on(*ALL_STACKS)
def test_every_secret_and_config_map_a_project_pod_reads_is_applied_before_it(cluster):
    reads = [read for _, spec in cluster.pod_templates(project=True) for read in read_objects(spec)]
    assert {("Secret", "locust-master-keys"), ("Secret", "ai-gateway-keys")} <= set(reads)
    assert missing_reads(cluster) == []


def test_a_pod_reading_a_secret_nothing_applies_is_caught(rehearsed):
    cluster = Cluster(rehearsed("local"))
    worker = next(o for o in cluster.of_kind("Deployment") if o.name == "locust-worker")
    pod_spec(worker.manifest)["volumes"][0]["secret"]["secretName"] = "locust-keys-misspelled"
    assert missing_reads(cluster) == [
        f"{worker}: reads Secret locust-keys-misspelled, which nothing applies"
    ]


def system_ready(cluster: Cluster) -> set[str]:
    """What the cluster needs before anything runs pods: the system node group, the Pod
    Identity agent (and CoreDNS where the program manages it)."""
    ids = {row["id"] for row in cluster.rehearsal.dependencies}
    groups = {i for i in ids if i.startswith("aws:eks/nodeGroup:NodeGroup::")}
    mocks = cluster.rehearsal.recording.mocks
    agents = {
        f"{r.typ}::{r.name}"
        for r in mocks.of_type("aws:eks/addon:Addon")
        if r.inputs["addonName"] == "eks-pod-identity-agent"
    }
    assert groups and agents
    return groups | agents


@on(*STACKS)
def test_releases_wait_for_the_system_nodes_and_the_pod_identity_agent(cluster):
    """On `up` the charts' pods need nodes and their identity; on destroy, the node group must
    outlive the controllers (dependents are deleted first)."""
    needed = system_ready(cluster)
    late = {
        r.release["id"]: sorted(needed - cluster.depends[r.release["id"]])
        for r in cluster.rehearsal.releases
    }
    assert {release: missing for release, missing in late.items() if missing} == {}


# ---- storage -------------------------------------------------------------------------------------


def claims(cluster: Cluster) -> list[tuple[str, dict]]:
    """(where, claim spec) of every PersistentVolumeClaim the cluster would create: plain claims,
    StatefulSets' claim templates, and the Prometheus and Alertmanager storage templates."""
    found = [(str(c), c.manifest["spec"]) for c in cluster.of_kind("PersistentVolumeClaim")]
    for sts in cluster.of_kind("StatefulSet"):
        for template in sts.manifest["spec"].get("volumeClaimTemplates") or ():
            found.append((f"{sts} claim {template['metadata']['name']}", template["spec"]))
    for server in cluster.of_kind("Prometheus", "Alertmanager"):
        template = (server.manifest["spec"].get("storage") or {}).get("volumeClaimTemplate")
        if template:
            found.append((f"{server} storage", template.get("spec") or {}))
    return found


@on(*STACKS)
def test_the_stacks_volumes_are_the_ones_the_readme_prices(cluster):
    """No cost estimate prices storage, so the README states what the claims ask for; Kubecost's
    chart alone asks 162 GiB, its defaults, kept so that an upgrade of a running stack does not
    try to shrink a claim (Kubernetes refuses)."""
    by_owner: dict[str, int] = {}
    for where, spec in claims(cluster):
        owner = next(name for name in README_VOLUMES_GIB if name.lower() in where.lower()
                     or (name == "Valkey" and "redis" in where))  # fmt: skip
        gib = memory_mib(spec["resources"]["requests"]["storage"]) // 1024
        by_owner[owner] = by_owner.get(owner, 0) + gib
    assert by_owner == README_VOLUMES_GIB


def storage_classes(cluster: Cluster) -> dict[str, dict]:
    classes = dict(EKS_STORAGE_CLASSES)
    for sc in cluster.of_kind("StorageClass"):
        annotations = sc.manifest["metadata"].get("annotations") or {}
        classes[sc.name] = {
            "provisioner": sc.manifest["provisioner"],
            "default": annotations.get(DEFAULT_CLASS) == "true",
            "reclaimPolicy": sc.manifest.get("reclaimPolicy", "Delete"),
        }
    return classes


def csi_drivers(cluster: Cluster) -> set[str]:
    """CSI drivers installed: EKS add-ons that have an IAM identity, and CSIDriver objects."""
    drivers = {d.name for d in cluster.of_kind("CSIDriver")}
    identities = {
        (a["namespace"], a["serviceAccount"])
        for a in cluster.aws("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    for addon in cluster.aws("aws:eks/addon:Addon"):
        driver = CSI_ADDONS.get(addon["addonName"])
        has_iam = (
            addon.get("serviceAccountRoleArn")
            or addon.get("podIdentityAssociations")
            or any(ns == "kube-system" and "csi" in sa for ns, sa in identities)
        )
        if driver and has_iam:
            drivers.add(driver)
    return drivers


def tolerates(tolerations: list[dict], taint: TaintConfig) -> bool:
    """Whether a pod with these tolerations may run on a node with this taint (the scheduler's
    rule: a key matches, or none is given with Exists; Equal also matches the value; an empty
    effect matches every effect)."""
    for toleration in tolerations:
        operator = toleration.get("operator", "Equal")
        key_matches = (
            toleration.get("key") in (None, "", taint.key)
            if operator == "Exists"
            else (toleration.get("key") == taint.key and toleration.get("value", "") == taint.value)
        )
        if key_matches and toleration.get("effect") in (None, "", taint.effect):
            return True
    return False


@on(*STACKS)
def test_every_node_daemonset_tolerates_every_node_pools_taint(cluster):
    """A DaemonSet that meters or serves each node must run on the NodePools' tainted nodes too:
    Kubecost's network-costs DaemonSet stayed off the optimized stack's spot pool, where the
    workloads run, so their traffic went unmetered."""
    pools = load_stack(cluster.stack).platform.karpenter.node_pools
    taints = [taint for pool in pools for taint in pool.taints]
    missed = [
        f"{workload} does not tolerate {taint.key}={taint.value}:{taint.effect}"
        for workload, spec in cluster.pod_templates()
        if workload.manifest["kind"] == "DaemonSet" and not pinned_to_system_nodes(spec)
        for taint in taints
        if not tolerates(spec.get("tolerations") or [], taint)
    ]
    assert missed == []


def test_the_toleration_check_follows_the_schedulers_rule():
    spot = TaintConfig(key="finops-sim/spot", value="true", effect="NoSchedule")
    assert tolerates([{"operator": "Exists"}], spot)
    assert tolerates([{"key": "finops-sim/spot", "operator": "Exists"}], spot)
    assert tolerates([{"key": "finops-sim/spot", "value": "true", "effect": "NoSchedule"}], spot)
    assert not tolerates([], spot)
    assert not tolerates([{"key": "finops-sim/spot", "value": "false"}], spot)
    assert not tolerates([{"operator": "Exists", "effect": "NoExecute"}], spot)
    assert not tolerates([{"key": "other", "operator": "Exists"}], spot)


@on(*STACKS)
def test_every_claim_can_be_provisioned(cluster):
    found = claims(cluster)
    assert found, "kubecost and Prometheus keep data on volumes"
    classes, drivers = storage_classes(cluster), csi_drivers(cluster)
    defaults = [name for name, c in classes.items() if c["default"]]
    problems = []
    for where, spec in found:
        name = spec.get("storageClassName") or (defaults[0] if len(defaults) == 1 else None)
        if name is None:
            problems.append(f"{where}: no storageClassName and {len(defaults)} default classes")
            continue
        if name not in classes:
            problems.append(f"{where}: StorageClass {name} does not exist")
            continue
        provisioner = classes[name]["provisioner"]
        driver = IN_TREE_TO_CSI.get(provisioner, provisioner)
        if driver not in drivers:
            problems.append(f"{where}: class {name} needs CSI driver {driver}, not installed")
        if classes[name].get("reclaimPolicy", "Delete") != "Delete":
            problems.append(f"{where}: class {name} keeps its volumes after the claim goes")
    assert problems == []


def claims_left_by_uninstall(cluster: Cluster) -> list[tuple[str, str | None]]:
    """(claim, namespace) of the claims that deleting their release leaves behind: those Helm
    keeps (helm.sh/resource-policy: keep) and StatefulSet claims not deleted with the set."""
    left = []
    for claim in cluster.of_kind("PersistentVolumeClaim"):
        annotations = claim.manifest["metadata"].get("annotations") or {}
        if not claim.project and annotations.get("helm.sh/resource-policy") == "keep":
            left.append((str(claim), claim.namespace))
    for sts in cluster.of_kind("StatefulSet"):
        spec = sts.manifest["spec"]
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        if spec.get("volumeClaimTemplates") and policy.get("whenDeleted") != "Delete":
            left.append((f"{sts} claims", sts.namespace))
    for server in cluster.of_kind("Prometheus", "Alertmanager"):
        spec = server.manifest["spec"]
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        if (spec.get("storage") or {}).get("volumeClaimTemplate") and (
            policy.get("whenDeleted") != "Delete"
        ):
            left.append((f"{server} storage", server.namespace))  # the operator keeps them
    return left


@on(*STACKS)
def test_destroy_removes_every_claim(cluster):
    """A claim that outlives its release keeps its EBS volume (and its bill) after `pulumi
    destroy`, unless the program deletes its whole namespace."""
    managed = {ns.name for ns in cluster.of_kind("Namespace") if ns.project}
    assert [claim for claim, namespace in claims_left_by_uninstall(cluster)
            if namespace not in managed] == []  # fmt: skip


@on(*STACKS)
def test_prometheus_deletes_its_claim_with_its_release(cluster):
    """Its namespace's deletion, near the end of `pulumi destroy`, deleted the claim seconds
    before the EBS CSI driver went: the volume could be left `available`, billed. Deleted with
    the release, at the start, the driver has minutes to delete it."""
    (prometheus,) = [p for p in cluster.of_kind("Prometheus") if not p.project]
    assert prometheus.manifest["spec"]["storage"]["volumeClaimTemplate"]
    assert not [claim for claim, _ in claims_left_by_uninstall(cluster) if "Prometheus" in claim]


# ---- monitoring ----------------------------------------------------------------------------------


def the_one(cluster: Cluster, kind: str) -> Applied:
    found = [o for o in cluster.of_kind(kind) if not o.project]
    assert len(found) == 1, f"{kind}: {[str(o) for o in found]}"
    return found[0]


def in_namespaces(cluster: Cluster, selector: dict | None, obj: Applied, home: str) -> bool:
    """The operator's rule: no namespace selector means only the Prometheus's own namespace."""
    if selector is None:
        return obj.namespace == home
    return selects(selector, cluster.namespace_labels(obj.namespace or "default"))


@on(*ALL_STACKS)
def test_prometheus_selects_every_project_monitor_and_rule(cluster):
    prometheus = the_one(cluster, "Prometheus")
    spec, home = prometheus.manifest["spec"], prometheus.namespace
    wanted = {"ServiceMonitor": "serviceMonitor", "PrometheusRule": "rule"}
    missed = []
    for kind, field in wanted.items():
        project = [o for o in cluster.of_kind(kind) if o.project]
        assert project, kind
        for obj in project:
            chosen = selects(spec.get(f"{field}Selector"), obj.labels) and in_namespaces(
                cluster, spec.get(f"{field}NamespaceSelector"), obj, home
            )
            if not chosen:
                missed.append(str(obj))
    assert missed == []


@on(*ALL_STACKS)
def test_every_monitor_port_exists_on_the_service_it_selects(cluster):
    services = cluster.services()
    problems = []
    for monitor in cluster.of_kind("ServiceMonitor"):
        spec = monitor.manifest["spec"]
        names = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor.namespace]
        if (spec.get("namespaceSelector") or {}).get("any"):
            names = [s.namespace for s in services]
        targets = [
            s for s in services if s.namespace in names and selects(spec["selector"], s.labels)
        ]
        if not targets:
            problems.append(f"{monitor}: selects no Service")
        for endpoint in spec.get("endpoints") or ():
            port = endpoint.get("port")
            for service in targets:
                if port and port not in {p.get("name") for p in service.manifest["spec"]["ports"]}:
                    problems.append(f"{monitor}: port {port} is not on {service}")
    unverifiable = [p for p in problems if any(m in p for m in _missing(cluster))]
    assert sorted(set(problems) - set(unverifiable)) == []
    skip_if_unverifiable(cluster, unverifiable)


def skip_if_unverifiable(cluster: Cluster, unverifiable: list[str]) -> None:
    """The rest held; say what could not be checked because a subchart was not rendered (and no
    stand-in replaces it)."""
    if unverifiable:
        unchecked(f"not rendered ({', '.join(cluster.unrendered_subcharts)}): {unverifiable}")


def _missing(cluster: Cluster) -> list[str]:
    return [name.rsplit("/", 1)[-1] for name in cluster.unrendered_subcharts]


def dashboard_sidecar(cluster: Cluster) -> tuple[dict[str, str], str | None]:
    """The settings of Grafana's dashboard sidecar, in the names of its env, and Grafana's
    namespace: as the chart renders them, or else as the stand-in derives them."""
    for workload, spec in cluster.pod_templates(project=False):
        for container in containers(spec):
            env = {e["name"]: e.get("value", "") for e in container.get("env") or ()}
            if "k8s-sidecar" in container.get("image", "") and "dashboard" in container["name"]:
                return env, workload.namespace
    for stand_in in cluster.grafana_stand_ins:
        try:
            env = stand_in.dashboard_sidecar()
        except NotDerivable as reason:
            unchecked(f"Grafana's subchart is absent and {reason}")
        if env is not None:
            return env, stand_in.namespace
    missing = [m for m in cluster.unrendered_subcharts if m.endswith(f"/{GRAFANA}")]
    if missing:
        unchecked(f"Grafana is not rendered: {missing[0]} is absent from the chart sources")
    raise AssertionError("no Grafana dashboard sidecar in the cluster")


def unloaded_dashboards(cluster: Cluster) -> list[str]:
    dashboards = [
        c
        for c in cluster.of_kind("ConfigMap")
        if c.project and any(k.endswith(".json") for k in c.manifest.get("data") or {})
    ]
    assert len(dashboards) == 2
    env, grafana_ns = dashboard_sidecar(cluster)
    namespaces = env.get("NAMESPACE") or grafana_ns or ""
    problems = []
    if env.get("RESOURCE", "both") not in ("both", "configmap"):
        problems.append(f"the sidecar reads {env['RESOURCE']} only, not ConfigMaps")
    for dashboard in dashboards:
        label = dashboard.labels.get(env["LABEL"])
        if label is None:
            problems.append(f"{dashboard}: no label {env['LABEL']}")
        elif env.get("LABEL_VALUE") and label != env["LABEL_VALUE"]:
            problems.append(f"{dashboard}: {env['LABEL']}={label}, not {env['LABEL_VALUE']}")
        if namespaces != "ALL" and dashboard.namespace not in namespaces.split(","):
            problems.append(f"{dashboard}: the sidecar searches {namespaces}")
    return problems


@on(*ALL_STACKS)
def test_grafana_sidecar_loads_every_project_dashboard(cluster):
    """The sidecar's label, label value, namespaces and resource kind, from the rendered
    Grafana Deployment; where the chart sources lack the subchart, from Grafana's default values
    coalesced with the parent chart's and the program's (subcharts.py)."""
    assert unloaded_dashboards(cluster) == []


def test_the_sidecar_check_catches_a_label_value_the_dashboards_lack(rehearsed):
    """The stand-in follows the program's values: another label value leaves both out."""
    rehearsal = rehearsed("local")
    if not any(GRAFANA in r.missing_subcharts for r in rehearsal.releases):
        pytest.skip("Grafana's subchart is rendered: the stand-in is not used")
    need_shared(SCHEMAS / GRAFANA, "Grafana's default values, for its absent subchart")
    values = next(r.release["values"] for r in rehearsal.releases if GRAFANA in r.release["values"])
    sidecar = values[GRAFANA]["sidecar"]["dashboards"]
    original, sidecar["labelValue"] = sidecar["labelValue"], "2"
    try:
        assert len(unloaded_dashboards(Cluster(rehearsal, GRAFANA_DEFAULTS))) == 2
    finally:
        sidecar["labelValue"] = original


# ---- what the README and the outputs tell users to run -------------------------------------------

PORT_FORWARD = re.compile(r"kubectl -n (\S+) port-forward svc/(\S+) (\d+):(\d+)")


def port_forwards(text: str) -> list[tuple[str, str, int]]:
    return [(ns, svc, int(remote)) for ns, svc, _, remote in PORT_FORWARD.findall(text)]


def check_port_forwards(cluster: Cluster, commands: list[tuple[str, str, int]]) -> None:
    services = {(s.namespace, s.name): s for s in cluster.services()}
    problems = []
    for namespace, name, port in commands:
        service = services.get((namespace, name))
        if service is None:
            problems.append(f"svc/{name} in {namespace} does not exist")
        elif port not in {p["port"] for p in service.manifest["spec"]["ports"]}:
            problems.append(f"svc/{name} in {namespace} has no port {port}")
    unverifiable = [p for p in problems if any(m in p for m in _missing(cluster))]
    assert sorted(set(problems) - set(unverifiable)) == []
    skip_if_unverifiable(cluster, unverifiable)


@on(*ALL_STACKS)
def test_port_forward_outputs_name_real_services(cluster):
    outputs = cluster.rehearsal.recording.outputs["port_forward"]
    commands = port_forwards("\n".join(outputs.values()))
    assert len(commands) == len(outputs) - (cluster.stack != "local")  # all but the kubeconfig
    check_port_forwards(cluster, commands)


@on(*STACKS)
def test_readme_port_forwards_name_real_services(cluster):
    commands = port_forwards((REPO / "README.md").read_text())
    assert len(commands) >= 5
    check_port_forwards(cluster, commands)


# ---- images --------------------------------------------------------------------------------------

DOC_ACCOUNT = "123456789012"  # the account id in AWS's documentation; nobody can pull from it


def built_images(cluster: Cluster) -> set[str]:
    """The references of the images the stack builds and pushes itself."""
    return {tag for image in cluster.aws("docker-build:index:Image") for tag in image["tags"]}


def image_problem(image: str, built: set[str]) -> str | None:
    if image.split("@", 1)[0] in built:
        return None
    name, _, digest = image.partition("@")
    host = name.split("/", 1)[0] if "/" in name else ""
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    if not (tag or digest) or tag == "latest":
        return "not pinned"
    if "example" in host or host.startswith(f"{DOC_ACCOUNT}."):
        return "a documentation placeholder registry"
    return None


@on(*STACKS)
def test_no_workload_pulls_an_image_that_cannot_exist(cluster):
    built = built_images(cluster)
    problems = [
        f"{workload} {container['name']}: {container['image']} ({problem})"
        for workload, spec in cluster.pod_templates()
        for container in containers(spec)
        if (problem := image_problem(container["image"], built))
    ]
    assert problems == []


def test_image_rules():
    assert image_problem("valkey/valkey:8.1.3-alpine", set()) is None
    assert image_problem("public.ecr.aws/karpenter/controller:1.14.1@sha256:ab", set()) is None
    assert image_problem("busybox", set()) == "not pinned"
    assert image_problem("quay.io/x/y:latest", set()) == "not pinned"
    doc = f"{DOC_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/finops-gateway:0.1.0"
    assert image_problem(doc, set()) == "a documentation placeholder registry"
    assert image_problem(f"{doc}@sha256:00", {doc}) is None


# ---- pod security --------------------------------------------------------------------------------


def restricted_violations(spec: dict, container: dict) -> list[str]:
    """The Pod Security Standard "restricted" profile, for one container of a pod spec."""
    pod, own = spec.get("securityContext") or {}, container.get("securityContext") or {}
    found = []
    if own.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
        found.append("runAsNonRoot is not true")
    if 0 in (own.get("runAsUser"), pod.get("runAsUser")):
        found.append("runs as user 0")
    if own.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation is not false")
    if own.get("privileged"):
        found.append("privileged")
    capabilities = own.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or ()):
        found.append("capabilities: ALL is not dropped")
    if set(capabilities.get("add") or ()) - {"NET_BIND_SERVICE"}:
        found.append(f"adds capabilities {capabilities['add']}")
    seccomp = (own.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        found.append("seccompProfile is not RuntimeDefault")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        found.append("shares a host namespace")
    if any("hostPath" in v for v in spec.get("volumes") or ()):
        found.append("mounts a hostPath")
    return found


@on(*ALL_STACKS)
def test_every_project_container_meets_the_restricted_standard(cluster):
    problems = {
        f"{workload} {container['name']}": violations
        for workload, spec in cluster.pod_templates(project=True)
        for container in containers(spec)
        if (violations := restricted_violations(spec, container))
    }
    assert problems == {}
    namespaces = {w.namespace for w, _ in cluster.pod_templates(project=True)}
    for namespace in namespaces:
        labels = cluster.namespace_labels(namespace)
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", namespace


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(title)
    end = text.find("\n**", start + len(title))
    return text[start:end]


@on(*ALL_STACKS)
def test_upstream_containers_that_cannot_be_restricted_are_named_in_the_readme(cluster):
    section = readme_section("**Pod security.**")
    unnamed = sorted(
        {
            f"{workload.owner.rsplit('::', 1)[-1]}: {workload.name}"
            for workload, spec in cluster.pod_templates(project=False)
            for container in containers(spec)
            if restricted_violations(spec, container) and f"`{workload.name}`" not in section
        }
    )
    assert unnamed == []


def test_the_restricted_check_catches_a_root_container():
    spec = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
    good = {
        "name": "ok",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    assert restricted_violations(spec, good) == []
    root = {**good, "securityContext": {**good["securityContext"], "runAsUser": 0}}
    assert restricted_violations(spec, root) == ["runs as user 0"]
    assert "allowPrivilegeEscalation is not false" in restricted_violations(spec, {"name": "x"})


def test_api_groups():
    assert api_group("v1") == "" and api_group("apps/v1") == "apps"
    assert is_custom("monitoring.coreos.com/v1") and is_custom("autoscaling.x-k8s.io/v1alpha1")
    assert not is_custom("networking.k8s.io/v1") and not is_custom("policy/v1")


# ---- scrape targets and measurements -------------------------------------------------------------

EKS_HIDDEN = ("kube-controller-manager", "kube-scheduler", "kube-etcd", "kube-proxy")


@on(*STACKS)
def test_no_monitor_scrapes_a_target_eks_does_not_expose(cluster):
    """EKS runs the control plane out of reach, and kube-proxy serves metrics on localhost only:
    their monitors would find nothing and their alerts fire forever."""
    scraping = [str(m) for m in cluster.of_kind("ServiceMonitor") if m.name.endswith(EKS_HIDDEN)]
    assert scraping == []


def on_system_nodes(spec: dict, system_labels: list[dict[str, str]]) -> bool:
    selector = spec.get("nodeSelector") or {}
    return bool(selector) and any(selector.items() <= labels.items() for labels in system_labels)


def not_disrupted(metadata: dict | None) -> bool:
    annotations = (metadata or {}).get("annotations") or {}
    return annotations.get("karpenter.sh/do-not-disrupt") == "true"


@on(*STACKS)
def test_measurements_survive_consolidation(cluster):
    """Prometheus, Alertmanager, Grafana, Kubecost, Valkey and the Locust master run on the
    system node group (or Karpenter may not disrupt them), and Prometheus keeps its data on a
    volume."""
    system = [g.get("labels") or {} for g in cluster.aws("aws:eks/nodeGroup:NodeGroup")]
    moved = []
    for server in cluster.of_kind("Prometheus", "Alertmanager"):
        spec = server.manifest["spec"]
        if not (on_system_nodes(spec, system) or not_disrupted(spec.get("podMetadata"))):
            moved.append(str(server))
    measuring = ("grafana", "kubecost")
    for workload, spec in cluster.pod_templates(project=False):
        if workload.kind in ("Deployment", "StatefulSet") and workload.name.startswith(measuring):
            metadata = workload.manifest["spec"]["template"].get("metadata")
            if not (on_system_nodes(spec, system) or not_disrupted(metadata)):
                moved.append(str(workload))
    # The project's stateful pods: Valkey, and the Locust master that holds the run's stats.
    for workload, spec in cluster.pod_templates(project=True):
        if workload.name in ("redis", "locust-master"):
            metadata = workload.manifest["spec"]["template"].get("metadata")
            if not (on_system_nodes(spec, system) or not_disrupted(metadata)):
                moved.append(str(workload))
    assert moved == []
    prometheus = the_one(cluster, "Prometheus").manifest["spec"]
    assert (prometheus.get("storage") or {}).get("volumeClaimTemplate"), "Prometheus on emptyDir"
