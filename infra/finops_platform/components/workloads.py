"""Workloads: the AI gateway, Valkey, Locust and the demo services, from the pure builder.

The namespace is a resource of the program: deleting it on `pulumi destroy` deletes Valkey's
claim (a StatefulSet's claims outlive the StatefulSet), so its EBS volume goes too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from loadgen.scenario import load_scenario

from ..builders import workloads as build
from ..config import NodePoolConfig, WorkloadsConfig

# Kubernetes kinds the builder emits, and the typed resource class for each.
_KINDS: dict[str, Any] = {
    "Namespace": k8s.core.v1.Namespace,
    "ConfigMap": k8s.core.v1.ConfigMap,
    "Service": k8s.core.v1.Service,
    "Deployment": k8s.apps.v1.Deployment,
    "StatefulSet": k8s.apps.v1.StatefulSet,
    "PodDisruptionBudget": k8s.policy.v1.PodDisruptionBudget,
    "HorizontalPodAutoscaler": k8s.autoscaling.v2.HorizontalPodAutoscaler,
    "NetworkPolicy": k8s.networking.v1.NetworkPolicy,
}


@dataclass(frozen=True)
class WorkloadsArgs:
    config: WorkloadsConfig
    pools: tuple[NodePoolConfig, ...]
    cost_center: str
    phase: str
    provider: k8s.Provider
    team_keys: pulumi.Input[dict[str, str]] | None
    images: dict[str, pulumi.Input[str]]
    depends_on: list[pulumi.Resource]
    # ElastiCache's host and password; None runs Valkey in the cluster.
    external_store: ExternalStore | None = None


@dataclass(frozen=True)
class ExternalStore:
    host: pulumi.Output[str]
    password: pulumi.Output[str]


def demo_team_keys() -> dict[str, str]:
    """The default scenario's keys: public demo values, so the Locust load is accepted."""
    return {team.name: team.key for team in load_scenario().teams}


class Workloads(pulumi.ComponentResource):
    def __init__(self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("finops:platform:Workloads", name, None, opts)
        external = args.external_store
        builder = build.WorkloadBuilder(
            args.config,
            args.pools,
            args.cost_center,
            args.phase,
            args.images,
            external.host.apply(build.external_store_url) if external else None,
        )
        base = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=args.depends_on
        )
        manifests = builder.manifests()
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns", metadata=manifests[0]["metadata"], opts=base
        )
        in_ns = pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[namespace]))
        if external is None:
            redis_password = random.RandomPassword(
                f"{name}-redis-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result
        else:
            redis_password = external.password
        secrets = [
            k8s.core.v1.Secret(
                f"{name}-redis",
                metadata=builder.meta(build.REDIS, build.REDIS),
                string_data={"password": redis_password},
                opts=in_ns,
            ),
            k8s.core.v1.Secret(
                f"{name}-gateway-keys",
                metadata=builder.meta(f"{build.GATEWAY}-keys", build.GATEWAY),
                string_data={
                    "teams.yaml": pulumi.Output.secret(
                        pulumi.Output.from_input(args.team_keys or demo_team_keys())
                    ).apply(lambda keys: build.team_keys_yaml(keys, args.config))
                },
                opts=in_ns,
            ),
        ]
        with_secrets = pulumi.ResourceOptions.merge(
            in_ns, pulumi.ResourceOptions(depends_on=secrets)
        )
        for manifest in manifests[1:]:
            kind, meta = manifest["kind"], manifest["metadata"]
            resource_name = f"{name}-{kind.lower()}-{meta['name']}"
            fields = {
                k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")
            }
            if kind in _KINDS:
                _KINDS[kind](resource_name, metadata=meta, opts=with_secrets, **fields)
            else:
                k8s.apiextensions.CustomResource(
                    resource_name,
                    api_version=manifest["apiVersion"],
                    kind=kind,
                    metadata=meta,
                    opts=with_secrets,
                    **fields,
                )
        self.register_outputs({"namespace": build.NAMESPACE})
