"""The workloads' manifests: AI gateway, Redis (Valkey), Locust and the demo microservices.

Pure functions from the typed config to Kubernetes objects; secrets' values come in as arguments
(the component passes Pulumi secrets). Every object carries the cost-allocation labels.
"""

from __future__ import annotations

from typing import Any

import yaml

from ai_gateway.settings import resolve_settings

from ..config import ContainerResources, NodePoolConfig, WorkloadsConfig
from .placement import choose_pool, pod_placement

NAMESPACE = "finops"
GATEWAY = "ai-gateway"
REDIS = "redis"
LOCUST_MASTER = "locust-master"
LOCUST_WORKER = "locust-worker"
GATEWAY_PORT = 8080
# The Pod Security Standard "restricted": the namespace enforces it, and every container meets it.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def labels(app: str, team: str, cost_center: str, phase: str) -> dict[str, str]:
    """The cost-allocation labels Kubecost and the dashboards group by."""
    return {"app": app, "team": team, "cost-center": cost_center, "phase": phase}


def resources(spec: ContainerResources) -> dict[str, Any]:
    limits = {"memory": spec.limits.memory}
    if spec.limits.cpu:
        limits["cpu"] = spec.limits.cpu
    return {
        "requests": {"cpu": spec.requests.cpu, "memory": spec.requests.memory},
        "limits": limits,
    }


def gateway_settings_yaml(workloads: WorkloadsConfig) -> str:
    """The gateway's settings in its own schema (validated here), without team keys."""
    user = {"profile": workloads.gateway_profile, **workloads.gateway.settings}
    user.pop("teams", None)
    resolve_settings(
        None,
        {**user, "teams": {"placeholder": {"keys": ["sha256:" + "0" * 64]}}},
        "finops-sim:workloads.gateway.settings",
    )
    return yaml.safe_dump(user, sort_keys=True)


def team_keys_yaml(keys: dict[str, str]) -> str:
    return yaml.safe_dump({"teams": {team: {"keys": [key]} for team, key in keys.items()}})


class WorkloadBuilder:
    """Builds every manifest of one stack. The Locust master starts the run at once
    (--autostart) and keeps its web UI and results up afterwards."""

    def __init__(
        self,
        workloads: WorkloadsConfig,
        pools: tuple[NodePoolConfig, ...],
        cost_center: str,
        phase: str,
        images: dict[str, Any] | None = None,
    ) -> None:
        self.w = workloads
        self.pools = pools
        self.cost_center = cost_center
        self.phase = phase
        # The gateway and loadgen image references; built images are Pulumi outputs.
        self.images = images or {
            "gateway": workloads.images.gateway,
            "loadgen": workloads.images.loadgen,
        }

    def labels(self, app: str, team: str = "ai-platform") -> dict[str, str]:
        return labels(app, team, self.cost_center, self.phase)

    def meta(self, name: str, app: str, team: str = "ai-platform") -> dict[str, Any]:
        return {"name": name, "namespace": NAMESPACE, "labels": self.labels(app, team)}

    def _pod_spec(self, stateless: bool, containers: list[dict[str, Any]], **extra: Any) -> dict:
        pool, _ = choose_pool(stateless, self.w, self.pools) if self.pools else (None, None)
        spec: dict[str, Any] = {
            "automountServiceAccountToken": False,  # no workload here calls the Kubernetes API
            "securityContext": POD_SECURITY,
            "containers": [{**c, "securityContext": CONTAINER_SECURITY} for c in containers],
            **extra,
        }
        if pool is not None:
            spec |= pod_placement(pool)
        return spec

    def _deployment(
        self,
        name: str,
        app: str,
        replicas: int,
        stateless: bool,
        containers: list[dict[str, Any]],
        team: str = "ai-platform",
        **extra: Any,
    ) -> dict[str, Any]:
        selector = {"app": app}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.meta(name, app, team),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": self.labels(app, team)},
                    "spec": self._pod_spec(stateless, containers, **extra),
                },
            },
        }

    def _service(self, name: str, app: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(name, app),
            "spec": {"type": "ClusterIP", "selector": {"app": app}, "ports": ports},
        }

    # ---- the gateway ------------------------------------------------------------------------

    def gateway(self) -> list[dict[str, Any]]:
        g = self.w.gateway
        probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10}
        container = {
            "name": "gateway",
            "image": self.images["gateway"],
            "args": [
                "--config",
                "/etc/gateway/settings.yaml",
                "--config",
                "/etc/gateway-keys/teams.yaml",
            ],
            "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
            "env": [
                {
                    "name": "REDIS_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": REDIS, "key": "password"}},
                },
                {
                    "name": "REDIS_URL",
                    "value": f"redis://:$(REDIS_PASSWORD)@{REDIS}.{NAMESPACE}.svc:6379/0",
                },
            ],
            "readinessProbe": probe,
            "livenessProbe": {**probe, "httpGet": {"path": "/healthz", "port": "http"}},
            "resources": resources(g.resources),
            "volumeMounts": [
                {"name": "settings", "mountPath": "/etc/gateway"},
                {"name": "keys", "mountPath": "/etc/gateway-keys"},
            ],
        }
        volumes = [
            {"name": "settings", "configMap": {"name": f"{GATEWAY}-settings"}},
            {"name": "keys", "secret": {"secretName": f"{GATEWAY}-keys"}},
        ]
        objects = [
            self._deployment(GATEWAY, GATEWAY, g.replicas, True, [container], volumes=volumes),
            self._service(GATEWAY, GATEWAY, [{"name": "http", "port": 80, "targetPort": "http"}]),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": self.meta(f"{GATEWAY}-settings", GATEWAY),
                "data": {"settings.yaml": gateway_settings_yaml(self.w)},
            },
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": self.meta(GATEWAY, GATEWAY),
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": GATEWAY}}},
            },
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": self.meta(GATEWAY, GATEWAY),
                "spec": {
                    "selector": {"matchLabels": {"app": GATEWAY}},
                    "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
                },
            },
        ]
        if g.max_replicas:
            objects.append(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": self.meta(GATEWAY, GATEWAY),
                    "spec": {
                        "scaleTargetRef": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": GATEWAY,
                        },
                        "minReplicas": g.replicas,
                        "maxReplicas": max(g.max_replicas, g.replicas),
                        "metrics": [
                            {
                                "type": "Resource",
                                "resource": {
                                    "name": "cpu",
                                    "target": {"type": "Utilization", "averageUtilization": 70},
                                },
                            }
                        ],
                    },
                }
            )
        return objects

    # ---- Redis ------------------------------------------------------------------------------

    def redis(self) -> list[dict[str, Any]]:
        container = {
            "name": "valkey",
            "image": self.w.images.redis,
            "args": ["--requirepass", "$(REDIS_PASSWORD)", "--save", "", "--appendonly", "no"],
            "env": [
                {
                    "name": "REDIS_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": REDIS, "key": "password"}},
                }
            ],
            "ports": [{"name": "redis", "containerPort": 6379}],
            "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
            "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 20},
            "resources": resources(self.w.redis),
        }
        return [
            self._deployment(REDIS, REDIS, 1, False, [container]),
            self._service(REDIS, REDIS, [{"name": "redis", "port": 6379, "targetPort": "redis"}]),
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self.meta(REDIS, REDIS),
                "spec": {
                    "podSelector": {"matchLabels": {"app": REDIS}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"podSelector": {"matchLabels": {"app": GATEWAY}}}],
                            "ports": [{"protocol": "TCP", "port": 6379}],
                        }
                    ],
                },
            },
        ]

    # ---- Locust -----------------------------------------------------------------------------

    def locust(self) -> list[dict[str, Any]]:
        loc = self.w.locust
        host = f"http://{GATEWAY}.{NAMESPACE}.svc"
        master = {
            "name": "master",
            "image": self.images["loadgen"],
            "args": [
                "--master",
                "--autostart",
                "--expect-workers",
                str(loc.workers),
                "--sequence-workers",
                str(loc.workers),
                "-u",
                str(loc.users),
                "-r",
                str(loc.spawn_rate),
                "--run-time",
                loc.run_time,
                "--host",
                host,
                "--csv",
                "/reports/run",
                "--html",
                "/reports/run.html",
            ],
            "ports": [
                {"name": "workers", "containerPort": 5557},
                {"name": "web", "containerPort": 8089},
            ],
            "readinessProbe": {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 10},
            "livenessProbe": {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 20},
            "resources": resources(loc.master),
            "volumeMounts": [{"name": "reports", "mountPath": "/reports"}],
        }
        worker = {
            "name": "worker",
            "image": self.images["loadgen"],
            "args": ["--worker", "--master-host", f"{LOCUST_MASTER}.{NAMESPACE}.svc"],
            "resources": resources(loc.worker),
        }
        return [
            self._deployment(
                LOCUST_MASTER,
                LOCUST_MASTER,
                1,
                False,
                [master],
                team="load-testing",
                volumes=[{"name": "reports", "emptyDir": {}}],
            ),
            self._service(
                LOCUST_MASTER,
                LOCUST_MASTER,
                [
                    {"name": "workers", "port": 5557, "targetPort": "workers"},
                    {"name": "web", "port": 8089, "targetPort": "web"},
                ],
            ),
            self._deployment(
                LOCUST_WORKER, LOCUST_WORKER, loc.workers, True, [worker], team="load-testing"
            ),
        ]

    # ---- demo microservices -----------------------------------------------------------------

    def demo_services(self) -> list[dict[str, Any]]:
        demo = self.w.demo_services
        objects = []
        for i in range(demo.count):
            name = f"demo-service-{i}"
            container = {
                "name": "service",
                "image": self.w.images.demo_service,
                "args": ["netexec", "--http-port=8080"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 20},
                "resources": resources(demo.resources),
            }
            objects.append(
                self._deployment(name, name, demo.replicas, True, [container], team="storefront")
            )
            objects.append(
                self._service(name, name, [{"name": "http", "port": 80, "targetPort": "http"}])
            )
        return objects

    def manifests(self) -> list[dict[str, Any]]:
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NAMESPACE,
                "labels": {
                    **self.labels("finops-sim"),
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            },
        }
        return [namespace, *self.gateway(), *self.redis(), *self.locust(), *self.demo_services()]
