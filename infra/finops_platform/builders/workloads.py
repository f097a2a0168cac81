"""The workloads' manifests: AI gateway, Redis (Valkey), Locust and the demo microservices.

Pure functions from the typed config to Kubernetes objects; secrets' values come in as arguments
(the component passes Pulumi secrets). Every object carries the cost-allocation labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from ai_gateway.settings import deep_merge, resolve_settings
from finops_common.config import ConfigError
from finops_common.labels import COST_LABELS
from loadgen.scenario import KEY_MIN_CHARS

from ..config import (
    GATEWAY_METRICS_PORT,
    SETTINGS_SOURCE,
    TEAM_KEYS,
    ContainerResources,
    NodePoolConfig,
    WorkloadsConfig,
    gateway_settings_without_teams,
    memory_mib,
    stack_team_settings,
)
from ..workload_list import (
    DEMO_SERVICE_PREFIX,
    GATEWAY,
    GATEWAY_CONTAINER,
    LOCUST_MASTER,
    LOCUST_WORKER,
    PLATFORM_TEAM,
    REDIS,
    workloads_by_name,
)
from . import observability
from .placement import choose_pool, pod_placement

if TYPE_CHECKING:  # the type only: the builders import no Pulumi
    from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

NAMESPACE = "finops"
GATEWAY_PORT = 8080  # the container's, from the image's entrypoint
SERVICE_HTTP_PORT = 80  # the gateway's and demo services' Services
LOCUST_WORKERS_PORT = 5557
LOCUST_WEB_PORT = 8089
REDIS_PORT = 6379
VALKEY_UID = 10001
# The Pod Security Standard "restricted": the namespace enforces it, and every container meets it.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def labels(app: str, team: str, cost_center: str, phase: str) -> dict[str, str]:
    """The cost-allocation labels Kubecost and the dashboards group by, in COST_LABELS order."""
    return dict(zip(COST_LABELS, (app, team, cost_center, phase), strict=True))


# Valkey's data may fill this share of its container's memory limit; the rest is its own
# overhead and the append-only file's rewrite (a fork whose copied pages count against the limit).
VALKEY_MAXMEMORY_SHARE = 0.75


def valkey_maxmemory(resources: ContainerResources) -> str:
    """Valkey's maxmemory, in its own unit (mb = MiB), from the container's memory limit."""
    return f"{int(memory_mib(resources.limits.memory) * VALKEY_MAXMEMORY_SHARE)}mb"


def resources(spec: ContainerResources) -> dict[str, Any]:
    limits = {"memory": spec.limits.memory}
    if spec.limits.cpu:
        limits["cpu"] = spec.limits.cpu
    return {
        "requests": {"cpu": spec.requests.cpu, "memory": spec.requests.memory},
        "limits": limits,
    }


def _redis_password_env() -> dict[str, Any]:
    """REDIS_PASSWORD, from the store's Secret: Valkey requires it and the gateway sends it."""
    return {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": REDIS, "key": "password"}},
    }


# The Locust pods read the teams' keys from this Secret (locust_keys_yaml).
LOCUST_KEYS_SECRET = f"{LOCUST_MASTER}-keys"
LOCUST_KEYS_DIR = "/etc/locust-keys"
LOCUST_KEYS_FILE = "keys.yaml"
# A generated team key: this prefix, then a random password of this length (letters and digits).
GENERATED_KEY_PREFIX = "sk-"
GENERATED_KEY_LENGTH = 40


def gateway_settings_yaml(workloads: WorkloadsConfig) -> str:
    """The gateway's settings in its own schema (checked as the stack was parsed), without the
    teams: they go with their keys into the keys Secret (team_keys_yaml)."""
    settings_yaml: str = yaml.safe_dump(gateway_settings_without_teams(workloads), sort_keys=True)
    return settings_yaml


def external_store_url(host: str) -> str:
    """ElastiCache Serverless: TLS only (rediss), the password of its `default` user."""
    return f"rediss://:$(REDIS_PASSWORD)@{host}:{REDIS_PORT}/0"


def team_keys(generated: dict[str, str], configured: object) -> dict[str, str]:
    """Every team's key: the one set in ``finops-sim:teamKeys``, else a generated one (the random
    part of it in ``generated``), so no deployed gateway accepts the scenario's public demo keys
    and the Locust load always has a key for each team it sends."""
    configured = configured or {}
    if not isinstance(configured, dict):
        raise ConfigError(f"{TEAM_KEYS}: must be a mapping of team names to keys")
    for team, key in configured.items():
        if not isinstance(key, str) or len(key) < KEY_MIN_CHARS:
            raise ConfigError(
                f"{TEAM_KEYS}.{team}: must be a key of at least {KEY_MIN_CHARS} characters"
            )
        if key.startswith("sha256:"):
            # The gateway accepts a key's digest, but the Locust pods send the key itself.
            raise ConfigError(
                f"{TEAM_KEYS}.{team}: set the key itself, not its sha256 digest: the Locust "
                "load sends it"
            )
    return {
        **{team: GENERATED_KEY_PREFIX + random for team, random in generated.items()},
        **configured,
    }


def locust_keys_yaml(keys: dict[str, str]) -> str:
    """The file ``--team-keys`` reads: team name to key."""
    keys_yaml: str = yaml.safe_dump(keys, sort_keys=True)
    return keys_yaml


def team_keys_yaml(keys: dict[str, str], workloads: WorkloadsConfig) -> str:
    """The gateway's teams, each with its key. The gateway serves only the teams a config file
    names and takes nothing else of the profile's for them, so each carries in full the routing
    and limits of the stack's gateway profile, under those the stack sets."""
    stack_teams = stack_team_settings(workloads)
    keyless = sorted(set(stack_teams) - set(keys))
    if keyless:
        raise ConfigError(
            f"{SETTINGS_SOURCE}.teams: {', '.join(keyless)} has no key in {TEAM_KEYS}: set one "
            f"with `pulumi config set --secret --path '{TEAM_KEYS}.{keyless[0]}' <key>`"
        )
    user = gateway_settings_without_teams(workloads)
    profile = resolve_settings(workloads.gateway_profile, user, SETTINGS_SOURCE).teams
    teams: dict[str, Any] = {}
    for name, key in keys.items():
        base = profile[name].model_dump(mode="json", exclude={"keys"}) if name in profile else {}
        teams[name] = {**deep_merge(base, stack_teams.get(name, {})), "keys": [key]}
    teams_yaml: str = yaml.safe_dump({"teams": teams}, sort_keys=True)
    return teams_yaml


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
        external_store_url: Any | None = None,
    ) -> None:
        self.w = workloads
        self.workloads = workloads_by_name(workloads)
        # The URL of ElastiCache (a Pulumi output, see external_store_url), or None for the
        # in-cluster Valkey StatefulSet.
        self.external_store_url = external_store_url
        self.pools = pools
        self.cost_center = cost_center
        self.phase = phase
        # The gateway and loadgen image references; built images are Pulumi outputs.
        self.images = images or {
            "gateway": workloads.images.gateway,
            "loadgen": workloads.images.loadgen,
        }

    def team_of(self, app: str) -> str:
        """A listed workload's team, on every object it owns, so Kubecost puts a Service's or a
        volume's cost where it puts the pods'; the platform team owns the rest (the namespace,
        and the password Secret of an external store, which is not a workload here)."""
        workload = self.workloads.get(app)
        return workload.team if workload else PLATFORM_TEAM

    def labels(self, app: str) -> dict[str, str]:
        return labels(app, self.team_of(app), self.cost_center, self.phase)

    def meta(self, name: str, app: str) -> ObjectMetaArgsDict:
        return {"name": name, "namespace": NAMESPACE, "labels": self.labels(app)}

    def _pod_spec(
        self, stateless: bool, containers: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        pool, capacity = choose_pool(stateless, self.w, self.pools) if self.pools else (None, "")
        spec: dict[str, Any] = {
            "automountServiceAccountToken": False,  # no workload here calls the Kubernetes API
            "securityContext": dict(POD_SECURITY),
            "containers": [{**c, "securityContext": CONTAINER_SECURITY} for c in containers],
            **extra,
        }
        if pool is not None:
            spec |= pod_placement(pool, capacity)
        return spec

    def _workload(
        self, name: str, containers: list[dict[str, Any]], kind: str = "Deployment", **extra: Any
    ) -> dict[str, Any]:
        """The Deployment (or StatefulSet) of the listed workload ``name``: its replicas, team
        and cost labels, placed by the stack's rule."""
        workload = self.workloads[name]
        app, stateless = name, workload.stateless
        selector = {"app": app}
        template_meta: dict[str, Any] = {"labels": self.labels(app)}
        if not stateless:
            # Consolidation would restart Valkey or the Locust master mid-run (the master's
            # stats and CSVs are lost, and --autostart begins a new run): Karpenter leaves the
            # node of such a pod alone.
            template_meta["annotations"] = {DO_NOT_DISRUPT: "true"}
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": self.meta(name, app),
            "spec": {
                "replicas": workload.replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": template_meta,
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

    def store_url(self) -> Any:
        """The gateway's REDIS_URL: the in-cluster Service, or ElastiCache."""
        if self.external_store_url is None:
            return f"redis://:$(REDIS_PASSWORD)@{REDIS}.{NAMESPACE}.svc:{REDIS_PORT}/0"
        return self.external_store_url

    def gateway(self) -> list[dict[str, Any]]:
        """The gateway's Deployment, Service, NetworkPolicy, settings, disruption budget and
        ServiceMonitor, and its HPA when it may scale out (workloads.gateway.maxReplicas)."""
        objects = [
            self._gateway_deployment(),
            self._service(
                GATEWAY,
                GATEWAY,
                [
                    {"name": "http", "port": SERVICE_HTTP_PORT, "targetPort": "http"},
                    {"name": "metrics", "port": GATEWAY_METRICS_PORT, "targetPort": "metrics"},
                ],
            ),
            self._gateway_network_policy(),
            self._gateway_settings(),
            self._gateway_disruption_budget(),
            self._gateway_service_monitor(),
        ]
        if self.w.gateway.max_replicas:
            objects.append(self._gateway_autoscaler())
        return objects

    def _gateway_deployment(self) -> dict[str, Any]:
        """The gateway's pods, with its settings (a ConfigMap) and teams' keys (a Secret)."""
        volumes = [
            {"name": "settings", "configMap": {"name": f"{GATEWAY}-settings"}},
            {"name": "keys", "secret": {"secretName": f"{GATEWAY}-keys"}},
        ]
        return self._workload(GATEWAY, [self._gateway_container()], volumes=volumes)

    def _gateway_container(self) -> dict[str, Any]:
        """The gateway reads the settings, then the teams with their keys, and reaches the
        store with the store's password."""
        return {
            "name": GATEWAY_CONTAINER,
            "image": self.images["gateway"],
            "args": [
                "--config",
                "/etc/gateway/settings.yaml",
                "--config",
                "/etc/gateway-keys/teams.yaml",
            ],
            "ports": [
                {"name": "http", "containerPort": GATEWAY_PORT},
                {"name": "metrics", "containerPort": GATEWAY_METRICS_PORT},
            ],
            "env": [_redis_password_env(), {"name": "REDIS_URL", "value": self.store_url()}],
            **self._gateway_probes(),
            "resources": resources(self.workloads[GATEWAY].resources),
            "volumeMounts": [
                {"name": "settings", "mountPath": "/etc/gateway"},
                {"name": "keys", "mountPath": "/etc/gateway-keys"},
            ],
        }

    @staticmethod
    def _gateway_probes() -> dict[str, Any]:
        """Traffic once /readyz answers; a restart when /healthz stops answering."""
        probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10}
        return {
            "readinessProbe": probe,
            "livenessProbe": {**probe, "httpGet": {"path": "/healthz", "port": "http"}},
        }

    def _gateway_network_policy(self) -> dict[str, Any]:
        """Any pod may call the API; only the monitoring namespace's Prometheus may scrape
        /metrics, which shows every team's spend and budget."""
        prometheus = {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": observability.NAMESPACE}
            },
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": self.meta(GATEWAY, GATEWAY),
            "spec": {
                "podSelector": {"matchLabels": {"app": GATEWAY}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]},
                    {
                        "from": [prometheus],
                        "ports": [{"protocol": "TCP", "port": GATEWAY_METRICS_PORT}],
                    },
                ],
            },
        }

    def _gateway_settings(self) -> dict[str, Any]:
        """The gateway's settings, checked against its schema (config.check_gateway_settings)."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(f"{GATEWAY}-settings", GATEWAY),
            "data": {"settings.yaml": gateway_settings_yaml(self.w)},
        }

    def _gateway_disruption_budget(self) -> dict[str, Any]:
        """A voluntary disruption (Karpenter's consolidation, a node drain) keeps one gateway
        pod serving."""
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": self.meta(GATEWAY, GATEWAY),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": GATEWAY}}},
        }

    def _gateway_service_monitor(self) -> dict[str, Any]:
        """Prometheus scrapes the gateway's /metrics (every team's spend and budget) every 15
        seconds."""
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": self.meta(GATEWAY, GATEWAY),
            "spec": {
                "selector": {"matchLabels": {"app": GATEWAY}},
                "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
            },
        }

    def _gateway_autoscaler(self) -> dict[str, Any]:
        """From workloads.gateway.replicas up to maxReplicas pods, keeping CPU near 70% of the
        requests."""
        g = self.w.gateway
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": self.meta(GATEWAY, GATEWAY),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": GATEWAY},
                "minReplicas": g.replicas,
                "maxReplicas": g.max_replicas,
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

    # ---- Redis ------------------------------------------------------------------------------

    def redis(self) -> list[dict[str, Any]]:
        """Valkey as a one-replica StatefulSet whose append-only file (fsync every second) lives
        on an EBS volume: a restart replays the ledger, and a crash loses at most the last
        one to two seconds of writes."""
        if self.external_store_url is not None:
            return []
        return [
            self._valkey_statefulset(),
            self._service(
                REDIS, REDIS, [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis"}]
            ),
            self._valkey_network_policy(),
        ]

    def _valkey_statefulset(self) -> dict[str, Any]:
        """A StatefulSet, so Valkey's pod keeps its volume (from the claim template) across
        restarts."""
        statefulset = self._workload(REDIS, [self._valkey_container()], kind="StatefulSet")
        # The volume is group-writable for the non-root Valkey user.
        statefulset["spec"]["template"]["spec"]["securityContext"]["fsGroup"] = VALKEY_UID
        statefulset["spec"] |= {
            "serviceName": REDIS,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": self.labels(REDIS)},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": self.w.store.volume_size}},
                    },
                }
            ],
        }
        return statefulset

    def _valkey_container(self) -> dict[str, Any]:
        """Valkey, password-protected, its data in /data (the claim's volume)."""
        return {
            "name": "valkey",
            "image": self.w.images.redis,
            "args": self._valkey_args(),
            "env": [_redis_password_env()],
            "ports": [{"name": "redis", "containerPort": REDIS_PORT}],
            "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
            "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 20},
            "resources": resources(self.workloads[REDIS].resources),
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        }

    def _valkey_args(self) -> list[str]:
        """Durable through the append-only file alone (fsync every second, no RDB snapshots),
        its data capped below the container's memory limit."""
        return [
            "--requirepass",
            "$(REDIS_PASSWORD)",
            "--dir",
            "/data",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            # At the memory cap, evict what has a TTL (the caches), never the budget ledger,
            # instead of growing into the container's limit and being OOM-killed.
            "--maxmemory",
            valkey_maxmemory(self.workloads[REDIS].resources),
            "--maxmemory-policy",
            "volatile-lru",
        ]

    def _valkey_network_policy(self) -> dict[str, Any]:
        """Only the gateway's pods may connect to Valkey."""
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": self.meta(REDIS, REDIS),
            "spec": {
                "podSelector": {"matchLabels": {"app": REDIS}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": GATEWAY}}}],
                        "ports": [{"protocol": "TCP", "port": REDIS_PORT}],
                    }
                ],
            },
        }

    # ---- Locust -----------------------------------------------------------------------------

    def locust(self) -> list[dict[str, Any]]:
        """The Locust master (web UI and CSV reports) and its workers, all reading the teams'
        keys from one Secret."""
        # The gateway's keys, which are secrets; the image's scenario holds only demo keys. A
        # worker takes the master's options, so both read the file at the same path.
        keys_mount = {"name": "keys", "mountPath": LOCUST_KEYS_DIR, "readOnly": True}
        keys_volume = {"name": "keys", "secret": {"secretName": LOCUST_KEYS_SECRET}}
        keys_args = ["--team-keys", f"{LOCUST_KEYS_DIR}/{LOCUST_KEYS_FILE}"]
        master = self._locust_master_container(keys_args, keys_mount)
        worker = self._locust_worker_container(keys_args, keys_mount)
        master_volumes = [{"name": "reports", "emptyDir": {}}, keys_volume]
        return [
            self._workload(LOCUST_MASTER, [master], volumes=master_volumes),
            self._service(
                LOCUST_MASTER,
                LOCUST_MASTER,
                [
                    {"name": "workers", "port": LOCUST_WORKERS_PORT, "targetPort": "workers"},
                    {"name": "web", "port": LOCUST_WEB_PORT, "targetPort": "web"},
                ],
            ),
            self._workload(LOCUST_WORKER, [worker], volumes=[keys_volume]),
        ]

    def _locust_master_container(
        self, keys_args: list[str], keys_mount: dict[str, Any]
    ) -> dict[str, Any]:
        """The master: it waits for the workers, then runs the load and serves the web UI."""
        return {
            "name": "master",
            "image": self.images["loadgen"],
            "args": self._locust_master_args(keys_args),
            "ports": [
                {"name": "workers", "containerPort": LOCUST_WORKERS_PORT},
                {"name": "web", "containerPort": LOCUST_WEB_PORT},
            ],
            "readinessProbe": {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 10},
            "livenessProbe": {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 20},
            "resources": resources(self.workloads[LOCUST_MASTER].resources),
            "volumeMounts": [{"name": "reports", "mountPath": "/reports"}, keys_mount],
        }

    def _locust_master_args(self, keys_args: list[str]) -> list[str]:
        """The run the stack sets (workers, users, spawn rate, run time) against the gateway's
        Service, started at once."""
        loc = self.w.locust
        host = f"http://{GATEWAY}.{NAMESPACE}.svc"
        return [
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
            # CSVs are rewritten every few seconds. No --html: Locust writes that file only
            # when it quits, and this master keeps its web UI (with the HTML report) up.
            "--csv",
            "/reports/run",
            *keys_args,
        ]

    def _locust_worker_container(
        self, keys_args: list[str], keys_mount: dict[str, Any]
    ) -> dict[str, Any]:
        """A worker: it takes its orders from the master's Service."""
        return {
            "name": "worker",
            "image": self.images["loadgen"],
            "args": ["--worker", "--master-host", f"{LOCUST_MASTER}.{NAMESPACE}.svc", *keys_args],
            "resources": resources(self.workloads[LOCUST_WORKER].resources),
            "volumeMounts": [keys_mount],
        }

    # ---- demo microservices -----------------------------------------------------------------

    def demo_services(self) -> list[dict[str, Any]]:
        objects = []
        for name in (n for n in self.workloads if n.startswith(DEMO_SERVICE_PREFIX)):
            container = {
                "name": "service",
                "image": self.w.images.demo_service,
                "args": ["netexec", "--http-port=8080"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 20},
                "resources": resources(self.workloads[name].resources),
            }
            objects.append(self._workload(name, [container]))
            objects.append(
                self._service(
                    name, name, [{"name": "http", "port": SERVICE_HTTP_PORT, "targetPort": "http"}]
                )
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
