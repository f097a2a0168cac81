"""Workloads: the AI gateway, Valkey, Locust and the demo services, from the pure builder.

The namespace is a resource of the program: deleting it on `pulumi destroy` deletes Valkey's
claim (a StatefulSet's claims outlive the StatefulSet), so its EBS volume goes too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from loadgen.scenario import load_scenario

from ..builders import workloads as build
from ..config import NodePoolConfig, WorkloadsConfig
from ..workload_list import GATEWAY, LOCUST_MASTER, REDIS

# Kubernetes kinds the builder emits, and the typed resource class for each.
_KINDS: dict[str, Callable[..., pulumi.CustomResource]] = {
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
        self.team_keys = self._team_keys(name, args.team_keys)
        secrets = self._secrets(name, builder, args, in_ns)
        # What pods read (Secrets, ConfigMaps) is applied first, so no pod waits for it.
        config_maps = [
            self._apply(name, manifest, in_ns)
            for manifest in manifests[1:]
            if manifest["kind"] == "ConfigMap"
        ]
        after_inputs = pulumi.ResourceOptions.merge(
            in_ns, pulumi.ResourceOptions(depends_on=[*secrets, *config_maps])
        )
        for manifest in manifests[1:]:
            if manifest["kind"] != "ConfigMap":
                self._apply(name, manifest, after_inputs)
        self.register_outputs({"namespace": build.NAMESPACE, "team_keys": self.team_keys})

    def _secrets(
        self,
        name: str,
        builder: build.WorkloadBuilder,
        args: WorkloadsArgs,
        opts: pulumi.ResourceOptions,
    ) -> list[k8s.core.v1.Secret]:
        """The store's password (random, or ElastiCache's) and the teams' keys, for the gateway
        and for the Locust pods."""
        if args.external_store is None:
            redis_password = random.RandomPassword(
                f"{name}-redis-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result
        else:
            redis_password = args.external_store.password
        return [
            k8s.core.v1.Secret(
                f"{name}-redis",
                metadata=builder.meta(REDIS, REDIS),
                string_data={"password": redis_password},
                opts=opts,
            ),
            k8s.core.v1.Secret(
                f"{name}-gateway-keys",
                metadata=builder.meta(f"{GATEWAY}-keys", GATEWAY),
                string_data={
                    "teams.yaml": self.team_keys.apply(
                        lambda keys: build.team_keys_yaml(keys, args.config)
                    )
                },
                opts=opts,
            ),
            k8s.core.v1.Secret(
                f"{name}-locust-keys",
                metadata=builder.meta(build.LOCUST_KEYS_SECRET, LOCUST_MASTER),
                string_data={build.LOCUST_KEYS_FILE: self.team_keys.apply(build.locust_keys_yaml)},
                opts=opts,
            ),
        ]

    @staticmethod
    def _apply(
        name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions
    ) -> pulumi.Resource:
        """One builder manifest as its typed resource, or as a custom resource."""
        kind, meta = manifest["kind"], manifest["metadata"]
        resource_name = f"{name}-{kind.lower()}-{meta['name']}"
        fields = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
        if kind in _KINDS:
            return _KINDS[kind](resource_name, metadata=meta, opts=opts, **fields)
        return k8s.apiextensions.CustomResource(
            resource_name, api_version=manifest["apiVersion"], kind=kind, metadata=meta, opts=opts,
            **fields,
        )  # fmt: skip

    def _team_keys(
        self, name: str, configured: pulumi.Input[dict[str, str]] | None
    ) -> pulumi.Output[dict[str, str]]:
        """A random key for each team of the load's scenario, under the keys the stack sets."""
        generated = {
            team.name: random.RandomPassword(
                f"{name}-key-{team.name}",
                length=build.GENERATED_KEY_LENGTH,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result
            for team in load_scenario().teams
        }
        return pulumi.Output.secret(
            pulumi.Output.all(pulumi.Output.all(**generated), configured).apply(
                lambda both: build.team_keys(both[0], both[1])
            )
        )
