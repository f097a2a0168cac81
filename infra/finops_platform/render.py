"""Run the program under Pulumi's unit-test mocks and write down what it would deploy.

No cloud account, cluster or Pulumi CLI is needed: ``set_mocks(..., preview=False)`` makes every
output resolve, so every resource is recorded with its real inputs. Remote components (the EKS
cluster, the awsx VPC) are one resource each with no children; their outputs come from
``RecordingMocks``. ``finops-sim render`` and the test suite both use this.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import _special_secret_sig as SECRET_SIG
from pulumi.runtime.rpc import _special_sig_key as SIG_KEY

from . import versions
from .config import PROJECT, StackConfig, load_stack
from .helm import HelmError, helm

ACCOUNT_ID = "123456789012"
# An existing VPC's range, as the mocked EC2 API reports it (a default VPC's would be 172.31/16).
MOCK_VPC_CIDR = "10.20.0.0/16"
MOCK_REGION = "us-east-1"
MOCK_ROUTE_TABLES = ("rtb-0private1", "rtb-0private2")
SECRET_PLACEHOLDER = "<secret>"


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    import_id: str | None = None  # the existing resource it adopts (the `import` option)


def unwrap_secrets(value: Any) -> Any:
    """Secret inputs reach the mocks wrapped in Pulumi's secret envelope; keep their values."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def _vpc(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "vpcId": "vpc-0mock",
        "privateSubnetIds": ["subnet-0private1", "subnet-0private2"],
        "publicSubnetIds": ["subnet-0public1", "subnet-0public2"],
    }


def _eks_cluster(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    issuer = f"https://oidc.eks.{MOCK_REGION}.amazonaws.com/id/MOCK"
    return {
        "kubeconfigJson": json.dumps({"apiVersion": "v1", "clusters": []}),
        "clusterSecurityGroupId": "sg-0cluster",
        "oidcProviderArn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{issuer[8:]}",
        "oidcIssuer": issuer,
    }


def _iam_role(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    role = inputs.get("name") or f"{name}-role"
    return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", "name": role}


def _sqs_queue(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    queue = inputs.get("name", name)
    return {
        "arn": f"arn:aws:sqs:{MOCK_REGION}:{ACCOUNT_ID}:{queue}",
        "url": f"https://sqs.{MOCK_REGION}.amazonaws.com/{ACCOUNT_ID}/{queue}",
    }


def _ecr_repository(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    repo = inputs.get("name", name)
    return {
        "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{MOCK_REGION}.amazonaws.com/{repo}",
        "registryId": ACCOUNT_ID,
    }


def _secret(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The API server's version of the object: it changes with the Secret's data."""
    data = json.dumps(inputs.get("stringData") or inputs.get("data"), sort_keys=True)
    version = hashlib.sha256(data.encode()).hexdigest()[:12]
    return {"metadata": {**(inputs.get("metadata") or {}), "resourceVersion": version}}


def _serverless_cache(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    host = f"{inputs.get('name', name)}-mock.serverless.use1.cache.amazonaws.com"
    return {"endpoints": [{"address": host, "port": 6379}]}


# What the mocks answer, from a resource's name and inputs (secrets unwrapped), for each type
# whose outputs the program reads; every other resource answers its inputs and an ARN.
_MOCK_OUTPUTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "awsx:ec2:Vpc": _vpc,
    "eks:index:Cluster": _eks_cluster,
    "aws:iam/role:Role": _iam_role,
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:ecr/repository:Repository": _ecr_repository,
    "docker-build:index:Image": lambda name, inputs: {
        "ref": f"{inputs['tags'][0]}@sha256:{'0' * 64}"
    },
    "kubernetes:core/v1:Secret": _secret,
    "random:index/randomPassword:RandomPassword": lambda name, inputs: {
        "result": f"mock-password-{name}"
    },
    "aws:ec2/launchTemplate:LaunchTemplate": lambda name, inputs: {"latestVersion": 1},
    "aws:elasticache/serverlessCache:ServerlessCache": _serverless_cache,
}


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource, and gives the remote components plausible outputs."""

    cluster_name: str = "finops-test"
    resources: list[Recorded] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = unwrap_secrets(dict(args.inputs))
        recorded = Recorded(
            args.typ, args.name, inputs, bool(args.custom), args.resource_id or None
        )
        self.resources.append(recorded)
        # Remote components' outputs differ from their inputs; only the ones below are known.
        state = dict(args.inputs) if args.custom else {}
        outputs = _MOCK_OUTPUTS.get(args.typ)
        if outputs is None:
            state.setdefault("arn", f"arn:aws:mock:{MOCK_REGION}:{ACCOUNT_ID}:{args.name}")
        else:
            state |= outputs(args.name, inputs)
        return f"{args.name}-id", state

    # Pulumi types Mocks.call's answer as (result, failures or None), but MockMonitor.Invoke takes
    # the result alone too, and would iterate a None: the result alone is what this returns.
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
                "userId": "MOCK",
                "id": ACCOUNT_ID,
            }
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{MOCK_REGION}{zone}" for zone in "abcd"]
            return {"names": names, "zoneIds": ["use1-az1", "use1-az2", "use1-az4", "use1-az6"],
                    "id": MOCK_REGION}  # fmt: skip
        if args.token == "aws:ec2/getVpc:getVpc":
            primary = {"cidrBlock": MOCK_VPC_CIDR, "associationId": "vpc-cidr-assoc-0",
                       "state": "associated"}  # fmt: skip
            return {"cidrBlock": MOCK_VPC_CIDR, "cidrBlockAssociations": [primary], "id": "vpc"}
        if args.token == "aws:ec2/getRouteTables:getRouteTables":
            return {"ids": list(MOCK_ROUTE_TABLES), "id": MOCK_REGION}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": "mock-token", "id": ACCOUNT_ID}
        return {}

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]


class RecordingMonitor(MockMonitor):
    """Also records each resource's dependencies (explicit and through its inputs)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registrations: dict[str, tuple[str, str, list[str]]] = {}

    def RegisterResource(self, request: Any) -> Any:
        # Pulumi's MockMonitor is unannotated.
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        deps = list(request.dependencies)
        if request.provider:  # "URN::ID": its resources need the provider (and what it takes)
            deps.append(request.provider.rsplit("::", 1)[0])
        self.registrations[response.urn] = (request.type, request.name, deps)
        return response

    def dependencies(self, typ: str, name: str) -> set[tuple[str, str]]:
        """(type, name) of every resource the given one depends on directly."""
        for urn_type, urn_name, deps in self.registrations.values():
            if (urn_type, urn_name) == (typ, name):
                return {self.registrations[d][:2] for d in deps if d in self.registrations}
        raise KeyError(f"{typ} {name} was not registered")


@dataclass
class Recording:
    stack: str
    mocks: RecordingMocks
    monitor: RecordingMonitor
    outputs: dict[str, Any]


def record(config: StackConfig, grafana_password: str | None = None) -> Recording:
    """Run the program for one stack under mocks and return what it registered."""
    from .program import build

    # Pulumi's runtime drives the program on the current event loop; give it a fresh one, since
    # the caller (a test runner, say) may have closed its own.
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = RecordingMocks(cluster_name=config.cluster_name)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=config.stack, preview=False, monitor=monitor
    )
    outputs: dict[str, Any] = {}

    def program() -> None:
        pulumi.Output.from_input(build(config, grafana_password)).apply(outputs.update)

    # Pulumi's runtime.test is unannotated.
    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    return Recording(config.stack, mocks, monitor, outputs)


def integral(value: Any) -> Any:
    """Numbers come back from the engine as floats; whole ones are written as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


# ---- writing it down ---------------------------------------------------------------------------

_NOT_OBJECTS = ("kubernetes:helm.sh/", "pulumi:providers:")
# A Helm release, as the program may register one: Helm installs it, or Pulumi applies the chart.
RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


def resource_id(typ: str, name: str) -> str:
    """How dependencies.json names a resource: its Pulumi type token and its name."""
    return f"{typ}::{name}"


def project_objects(mocks: RecordingMocks) -> list[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object the program creates directly: (resource id, manifest)."""
    objects = []
    for resource in mocks.resources:
        if not resource.typ.startswith("kubernetes:") or resource.typ.startswith(_NOT_OBJECTS):
            continue
        manifest = integral({k: v for k, v in resource.inputs.items() if k != "__defaults"})
        api_version, kind = resource.typ.removeprefix("kubernetes:").rsplit(":", 1)
        api_version = api_version.removeprefix("core/")
        manifest.setdefault("apiVersion", api_version)
        manifest.setdefault("kind", kind)
        if kind == "Secret":
            for key in ("data", "stringData"):
                if key in manifest:
                    manifest[key] = dict.fromkeys(manifest[key], SECRET_PLACEHOLDER)
        objects.append((resource_id(resource.typ, resource.name), manifest))
    return objects


def kubernetes_objects(mocks: RecordingMocks) -> list[dict[str, Any]]:
    """Every Kubernetes object the program creates directly, as a manifest."""
    return [manifest for _, manifest in project_objects(mocks)]


def helm_releases(mocks: RecordingMocks) -> list[dict[str, Any]]:
    releases = []
    for resource in mocks.resources:
        if resource.typ not in RELEASE_TYPES:
            continue
        inputs = resource.inputs
        releases.append(
            {
                "id": resource_id(resource.typ, resource.name),
                "name": inputs.get("name") or resource.name,
                "namespace": inputs.get("namespace"),
                "chart": inputs["chart"],
                "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
                "version": inputs["version"],
                "values": integral(inputs.get("values", {})),
                "skip_crds": bool(inputs.get("skipCrds")),
            }
        )
    return releases


def aws_resources(mocks: RecordingMocks) -> list[dict[str, Any]]:
    """AWS resources and the remote components (whose children the mocks cannot see)."""
    prefixes = ("aws:", "eks:", "awsx:")
    return [
        {"type": r.typ, "name": r.name, "inputs": r.inputs}
        for r in mocks.resources
        if r.typ.startswith(prefixes) and not r.typ.startswith("aws:index/provider")
    ]


# ---- the charts' own objects, from a real `helm template` -------------------------------------

DEFAULT_CHARTS = Path(__file__).resolve().parents[3] / "shared" / "charts"
# Groups served by the Kubernetes API server itself; any other group needs its CRD first.
BUILT_IN_GROUPS = frozenset(
    {
        "", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "storage.k8s.io",
        "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io",
        "apiregistration.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
        "discovery.k8s.io", "certificates.k8s.io", "events.k8s.io", "authentication.k8s.io",
        "authorization.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
    }
)  # fmt: skip
_CRDS_DIR = re.compile(r"(^|/)crds/[^/]+$")


# PyYAML's types are not installed (pyproject ignores its import), and its libyaml loader exists
# only in builds with libyaml: the base class is known at run time only.
class _ManifestLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1's `=` "value" tag is not Kubernetes': `- =` is the string "=" (a CRD's enum)."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_manifests(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_ManifestLoader))


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


@dataclass
class ChartObject:
    release: str  # the release's resource id
    source: str  # the template's path in the chart, as helm prints it
    manifest: dict[str, Any]

    @property
    def from_crds_dir(self) -> bool:
        """Helm applies a chart's crds/ before anything else of the release."""
        return bool(_CRDS_DIR.search(self.source))


@dataclass
class RenderedRelease:
    release: dict[str, Any]  # a helm_releases() row
    chart_dir: Path
    manifest: str  # helm's output, as it printed it
    objects: list[ChartObject]
    missing_subcharts: list[str]  # dependencies the chart folder lacks, so not rendered


def _chart_dir(charts: Path, release: dict[str, Any]) -> Path:
    chart: str = release["chart"].rstrip("/").rsplit("/", 1)[-1]
    folder = charts / chart
    meta_file = folder / "Chart.yaml"
    if not meta_file.is_file():
        raise HelmError(f"{folder}: no Chart.yaml; release {release['name']} needs chart {chart}")
    version = str(yaml.safe_load(meta_file.read_text())["version"])
    if version != release["version"]:
        raise HelmError(
            f"{meta_file}: version {version}, but the program installs {chart} {release['version']}"
        )
    return folder


def _chart_roots(folder: Path) -> list[Path]:
    """The chart and every subchart unpacked under its charts/, recursively."""
    roots = [folder]
    for sub in sorted((folder / "charts").glob("*/Chart.yaml")):
        roots += _chart_roots(sub.parent)
    return roots


def chart_crds(folder: Path) -> list[dict[str, Any]]:
    """The CRDs in the crds/ folders of a chart and its subcharts."""
    crds = []
    for root in _chart_roots(folder):
        for path in sorted((root / "crds").glob("*.y*ml")):
            crds += [d for d in load_manifests(path.read_text()) if d]
    return [c for c in crds if c.get("kind") == "CustomResourceDefinition"]


def served_api_versions(crds: list[dict[str, Any]]) -> list[str]:
    """ "group/version" and "group/version/Kind" of each CRD's served versions."""
    found = set()
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                found |= {f"{group}/{version['name']}", f"{group}/{version['name']}/{kind}"}
    return sorted(found)


def _missing_subcharts(folder: Path) -> dict[str, str | None]:
    """The subcharts the chart folder lacks, with the value that turns each off."""
    meta = yaml.safe_load((folder / "Chart.yaml").read_text())
    return {
        d["name"]: d.get("condition")
        for d in meta.get("dependencies") or ()
        if not (folder / "charts" / d["name"]).is_dir()
    }


def _without(folder: Path, missing: dict[str, str | None], work: Path) -> Path:
    """A copy of the chart whose Chart.yaml no longer names the subcharts it lacks (Helm
    refuses to render a chart with a missing dependency, even a disabled one)."""
    copy = work / folder.name
    shutil.copytree(folder, copy, copy_function=shutil.copyfile)
    meta = yaml.safe_load((copy / "Chart.yaml").read_text())
    meta["dependencies"] = [d for d in meta["dependencies"] if d["name"] not in missing]
    (copy / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return copy


def _parse(release_id: str, manifest: str) -> list[ChartObject]:
    """Helm heads each template's output with "# Source: PATH"; a file of several documents
    (a CRD file starting with its own "---") keeps that source for all of them."""
    objects, source = [], ""
    for document in re.split(r"^---\s*$", manifest, flags=re.MULTILINE):
        found = re.search(r"^# Source: (.+)$", document, flags=re.MULTILINE)
        source = found.group(1) if found else source
        body = (load_manifests(document) or [None])[0]
        if isinstance(body, dict) and body.get("kind"):
            objects.append(ChartObject(release_id, source, body))
    return objects


def helm_template(
    release: dict[str, Any], folder: Path, api_versions: list[str], work: Path
) -> RenderedRelease:
    """`helm template` of one release with the program's own values, CRDs included."""
    missing = _missing_subcharts(folder)
    source = _without(folder, missing, work) if missing else folder
    values = work / f"{release['name']}-values.yaml"
    values.write_text(yaml.safe_dump(release["values"]))
    command = [
        str(helm()), "template", release["name"], str(source),
        "--namespace", release["namespace"] or "default", "--values", str(values),
        "--skip-tests", "--kube-version", versions.KUBERNETES_VERSION,
    ]  # fmt: skip
    if not release.get("skip_crds"):
        command.append("--include-crds")
    for api_version in api_versions:
        command += ["--api-versions", api_version]
    for condition in filter(None, missing.values()):  # the parent's templates read them
        command += ["--set", f"{condition.split(',')[0]}=false"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise HelmError(f"helm template {release['name']} ({folder}) failed:\n{done.stderr}")
    return RenderedRelease(
        release, folder, done.stdout, _parse(release["id"], done.stdout), sorted(missing)
    )


def render_charts(releases: list[dict[str, Any]], charts: Path) -> list[RenderedRelease]:
    """Every release rendered from ``charts``. The API versions of every CRD the releases
    install are offered to every template, as on a second `pulumi up`; whether each custom
    object can really be applied in order is for dependencies.json to tell."""
    folders = [_chart_dir(charts, release) for release in releases]
    crds = [
        crd
        for release, folder in zip(releases, folders, strict=True)
        if not release.get("skip_crds")
        for crd in chart_crds(folder)
    ]
    api_versions = served_api_versions(crds)
    with tempfile.TemporaryDirectory(prefix="finops-helm-") as work:
        return [
            helm_template(release, folder, api_versions, Path(work))
            for release, folder in zip(releases, folders, strict=True)
        ]


# ---- dependencies.json ---------------------------------------------------------------------------


def dependency_rows(monitor: RecordingMonitor) -> list[dict[str, Any]]:
    """One row per resource the program registers, with its direct dependencies."""
    ids = {
        urn: resource_id(typ, name)
        for urn, (typ, name, _) in monitor.registrations.items()
        if typ != "pulumi:pulumi:Stack"
    }
    if len(set(ids.values())) != len(ids):
        raise ValueError("two resources share a type and a name; dependencies.json needs both")
    return [
        {"id": ids[urn], "dependsOn": sorted({ids[d] for d in deps if d in ids and d != urn})}
        for urn, (_, _, deps) in monitor.registrations.items()
        if urn in ids
    ]


def transitive(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Every resource's dependencies, direct or not (what must exist before it is created)."""
    direct = {row["id"]: set(row["dependsOn"]) for row in rows}
    closure: dict[str, set[str]] = {}

    def visit(node: str) -> set[str]:
        if node not in closure:
            closure[node] = set()
            for dep in direct.get(node, ()):
                closure[node] |= {dep, *visit(dep)}
        return closure[node]

    for node in direct:
        visit(node)
    return closure


# ---- the whole rehearsal, and writing it down ---------------------------------------------------


@dataclass
class Rehearsal:
    """What `pulumi up` of one stack would apply: the program's objects and the charts'."""

    recording: Recording
    objects: list[tuple[str, dict[str, Any]]]  # the program's own: (resource id, manifest)
    releases: list[RenderedRelease]  # empty when no chart folder was given
    dependencies: list[dict[str, Any]]


def rehearse(recording: Recording, charts: Path | None) -> Rehearsal:
    releases = render_charts(helm_releases(recording.mocks), charts) if charts else []
    return Rehearsal(
        recording,
        project_objects(recording.mocks),
        releases,
        dependency_rows(recording.monitor),
    )


def _file_name(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    parts = [manifest["kind"].lower(), metadata.get("namespace"), metadata.get("name")]
    return "-".join(p for p in parts if p) + ".yaml"


def stand_ins(config: StackConfig) -> list[str]:
    """What a render shows in place of a live look-up the mocks cannot make (beyond the mock
    account's id in ARNs), for users to read before they take the render for the deployment."""
    platform = config.platform
    if platform.mode != "aws":
        return []
    found = []
    if config.region != MOCK_REGION:
        found.append(
            f"the mocks answer in {MOCK_REGION}: the availability zones, ARNs and URLs that AWS "
            f"gives the program show it here, not {config.region}"
        )
    network = platform.network
    if network.mode == "existing" and platform.kubecost.enabled:
        found.append(
            f"the existing VPC's IPv4 ranges, read from EC2 on each run, are the mock's "
            f"{MOCK_VPC_CIDR} here (Kubecost's in-zone list)"
        )
    if network.mode == "existing" and network.wants_s3_gateway_endpoint:
        found.append(
            "the private subnets' route tables, read from EC2 on each run, are the mock's "
            f"{', '.join(MOCK_ROUTE_TABLES)} here (the S3 endpoint's)"
        )
    return found


def write(stack: str, out: Path, charts: Path | None = None) -> dict[str, Any]:
    """Write what the stack would deploy into ``out``; returns how many of each were written,
    and the stand-ins for live look-ups. With ``charts``, each release's objects from
    `helm template` go to charts/RELEASE.yaml."""
    config = load_stack(stack)
    rehearsal = rehearse(record(config), charts)
    mocks = rehearsal.recording.mocks
    for folder in ("kubernetes", "helm", "charts"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for _, manifest in rehearsal.objects:
        (out / "kubernetes" / _file_name(manifest)).write_text(
            yaml.safe_dump(manifest, sort_keys=False)
        )
    releases = helm_releases(mocks)
    for release in releases:
        (out / "helm" / f"{release['name']}.yaml").write_text(
            yaml.safe_dump(release, sort_keys=False)
        )
    for rendered in rehearsal.releases:
        (out / "charts" / f"{rendered.release['name']}.yaml").write_text(rendered.manifest)
    resources = aws_resources(mocks)
    (out / "aws-resources.json").write_text(json.dumps(resources, indent=2, default=str) + "\n")
    dependencies = {"resources": rehearsal.dependencies}
    (out / "dependencies.json").write_text(json.dumps(dependencies, indent=2) + "\n")
    return {
        "kubernetes": len(rehearsal.objects),
        "helm": len(releases),
        "chart_objects": sum(len(r.objects) for r in rehearsal.releases),
        "missing_subcharts": [
            f"{r.chart_dir.name}/charts/{name}"
            for r in rehearsal.releases
            for name in r.missing_subcharts
        ],
        "aws": len(resources),
        "resources": len(rehearsal.dependencies),
        "stand_ins": stand_ins(config),
    }
