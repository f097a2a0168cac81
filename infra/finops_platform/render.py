"""Run the program under Pulumi's unit-test mocks and write down what it would deploy.

No cloud account, cluster or Pulumi CLI is needed: ``set_mocks(..., preview=False)`` makes every
output resolve, so every resource is recorded with its real inputs. Remote components (the EKS
cluster, the awsx VPC) are one resource each with no children; their outputs come from
``RecordingMocks``. ``finops-sim render`` and the test suite both use this.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import _special_secret_sig as SECRET_SIG
from pulumi.runtime.rpc import _special_sig_key as SIG_KEY

from .config import PROJECT, StackConfig, parse_stack_config, read_stack_file

ACCOUNT_ID = "123456789012"
SECRET_PLACEHOLDER = "<secret>"


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]
    custom: bool


def unwrap_secrets(value: Any) -> Any:
    """Secret inputs reach the mocks wrapped in Pulumi's secret envelope; keep their values."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource, and gives the remote components plausible outputs."""

    cluster_name: str = "finops-test"
    resources: list[Recorded] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = unwrap_secrets(dict(args.inputs))
        self.resources.append(Recorded(args.typ, args.name, inputs, args.custom))
        # Remote components' outputs differ from their inputs; only the ones below are known.
        state = dict(args.inputs) if args.custom else {}
        arn = f"arn:aws:mock:us-east-1:{ACCOUNT_ID}:{args.name}"
        if args.typ == "awsx:ec2:Vpc":
            state |= {
                "vpcId": "vpc-0mock",
                "privateSubnetIds": ["subnet-0private1", "subnet-0private2"],
                "publicSubnetIds": ["subnet-0public1", "subnet-0public2"],
            }
        elif args.typ == "eks:index:Cluster":
            issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/MOCK"
            state |= {
                "kubeconfigJson": json.dumps({"apiVersion": "v1", "clusters": []}),
                "clusterSecurityGroupId": "sg-0cluster",
                "oidcProviderArn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{issuer[8:]}",
                "oidcIssuer": issuer,
            }
        elif args.typ == "aws:iam/role:Role":
            role = args.inputs.get("name") or f"{args.name}-role"
            state |= {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", "name": role}
        elif args.typ == "aws:sqs/queue:Queue":
            queue = args.inputs.get("name", args.name)
            state |= {
                "arn": f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{queue}",
                "url": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT_ID}/{queue}",
            }
        elif args.typ == "aws:ecr/repository:Repository":
            repo = args.inputs.get("name", args.name)
            state |= {
                "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/{repo}",
                "registryId": ACCOUNT_ID,
            }
        elif args.typ == "docker-build:index:Image":
            state["ref"] = f"{args.inputs['tags'][0]}@sha256:{'0' * 64}"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "mock-generated-password"
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state["latestVersion"] = 1
        elif args.typ == "aws:elasticache/serverlessCache:ServerlessCache":
            host = f"{args.inputs.get('name', args.name)}-mock.serverless.use1.cache.amazonaws.com"
            state["endpoints"] = [{"address": host, "port": 6379}]
        else:
            state.setdefault("arn", arn)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
                "userId": "MOCK",
                "id": ACCOUNT_ID,
            }
        if args.token == "aws:ec2/getRouteTables:getRouteTables":
            return {"ids": ["rtb-0private1", "rtb-0private2"], "id": "us-east-1"}
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
        response = super().RegisterResource(request)
        self.registrations[response.urn] = (request.type, request.name, list(request.dependencies))
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


def load_stack(stack: str) -> StackConfig:
    return parse_stack_config(stack, read_stack_file(stack))


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
        outputs.update(build(config, grafana_password))

    pulumi.runtime.test(program)()
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


def kubernetes_objects(mocks: RecordingMocks) -> list[dict[str, Any]]:
    """Every Kubernetes object the program creates directly, as a manifest."""
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
        objects.append(manifest)
    return objects


def helm_releases(mocks: RecordingMocks) -> list[dict[str, Any]]:
    releases = []
    for resource in mocks.of_type("kubernetes:helm.sh/v3:Release"):
        inputs = resource.inputs
        releases.append(
            {
                "name": inputs["name"],
                "namespace": inputs.get("namespace"),
                "chart": inputs["chart"],
                "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
                "version": inputs["version"],
                "values": integral(inputs.get("values", {})),
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


def _file_name(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    parts = [manifest["kind"].lower(), metadata.get("namespace"), metadata.get("name")]
    return "-".join(p for p in parts if p) + ".yaml"


def write(stack: str, out: Path) -> dict[str, int]:
    """Write what the stack would deploy into ``out``; returns how many of each were written."""
    mocks = record(load_stack(stack)).mocks
    (out / "kubernetes").mkdir(parents=True, exist_ok=True)
    (out / "helm").mkdir(parents=True, exist_ok=True)
    objects = kubernetes_objects(mocks)
    for manifest in objects:
        (out / "kubernetes" / _file_name(manifest)).write_text(
            yaml.safe_dump(manifest, sort_keys=False)
        )
    releases = helm_releases(mocks)
    for release in releases:
        (out / "helm" / f"{release['name']}.yaml").write_text(
            yaml.safe_dump(release, sort_keys=False)
        )
    resources = aws_resources(mocks)
    (out / "aws-resources.json").write_text(json.dumps(resources, indent=2, default=str) + "\n")
    return {"kubernetes": len(objects), "helm": len(releases), "aws": len(resources)}
