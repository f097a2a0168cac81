"""The stack config, parsed once into a typed, validated object.

A stack file (stacks/Pulumi.<stack>.yaml) holds ``aws:region``, the object ``finops-sim:platform``
and, as Pulumi secrets, ``finops-sim:grafanaAdminPassword`` (optional: random when absent) and
``finops-sim:alertSlackWebhookUrl`` (required with ``observability.alerts.receiver: slack``).
Keys are camelCase, as Pulumi config usually is. A bad value stops the program with the file, the
key path, the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ai_gateway.settings import GatewaySettings, resolve_settings
from finops_common.config import ConfigError, StrictModel, describe_validation_error
from finops_common.phases import Phase

from . import versions

PROJECT = "finops-sim"
# The Pulumi secret holding the Slack incoming-webhook URL of observability.alerts.receiver: slack.
SLACK_WEBHOOK_SECRET = "alertSlackWebhookUrl"
GRAFANA_PASSWORD_SECRET = "grafanaAdminPassword"
TEAM_KEYS_SECRET = "teamKeys"
STORE_TOKEN_SECRET = "storeAuthToken"
# Every ``finops-sim:`` key a stack may set: a misspelled secret would otherwise be ignored and its
# default (a random password, generated team keys) used instead.
STACK_KEYS = (
    "platform",
    "workloads",
    GRAFANA_PASSWORD_SECRET,
    TEAM_KEYS_SECRET,
    STORE_TOKEN_SECRET,
    SLACK_WEBHOOK_SECRET,
)
# The ``aws:`` keys the program reads. The AWS provider it creates takes its settings from its
# arguments, not from the stack's other ``aws:`` keys, which would otherwise be ignored: every
# resource would go to the account the environment's credentials name.
AWS_KEYS = ("region", "profile")
STACKS_DIR = Path(__file__).resolve().parents[2] / "stacks"
# The longest role name the program makes is KarpenterControllerRole-finops-<stack>; IAM allows 64.
MAX_AWS_STACK_NAME = 64 - len("KarpenterControllerRole-finops-")
# "Kubernetes version 1.32 is the last version for which Amazon EKS will release AL2 AMIs" (EKS
# user guide, "Build a custom Amazon Linux AMI"): a Karpenter alias `al2@...` resolves nothing on
# a later cluster.
AL2_LAST_MINOR = 32
CapacityType = Literal["spot", "on-demand"]


_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")  # whole value
# Above zero: a zero request or volume is refused by Kubernetes or prices nothing.
_MEMORY_PATTERN = r"^[1-9]\d*(Mi|Gi)$"


class _Config(StrictModel):
    """Stack config keys are camelCase, as Pulumi writes them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# Each zone's subnets in a created VPC (network.py lays them out with awsx).
PUBLIC_SUBNET_PREFIX = 22
PRIVATE_SUBNET_PREFIX = 20


def zone_block_addresses() -> int:
    """The addresses one zone's subnets take: awsx lays the public subnet first and the private
    one on its next own-size boundary (a /22 then a /20: a /19)."""
    public, private = 1 << (32 - PUBLIC_SUBNET_PREFIX), 1 << (32 - PRIVATE_SUBNET_PREFIX)
    return -(-public // private) * private + private


class NetworkConfig(_Config):
    mode: Literal["create", "existing"] = "create"
    cidr: str = "10.0.0.0/16"
    availability_zones: int = Field(default=2, ge=2, le=3)
    nat_gateways: Literal["single", "one_per_az"] = Field(
        default="single", description="one NAT gateway (cheaper) or one per AZ (resilient)"
    )
    s3_gateway_endpoint: bool | None = Field(
        default=None,
        description="an S3 gateway endpoint, so image layers from ECR do not go through NAT; "
        "by default on in a created VPC and off in an existing one, which may have one already "
        "(a second on the same route table fails with RouteAlreadyExists)",
    )
    vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()
    public_subnet_ids: tuple[str, ...] = ()

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, cidr: str) -> str:
        network = ipaddress.ip_network(cidr)
        if network.version != 4 or not 16 <= network.prefixlen <= 18:
            raise ValueError(
                f"{cidr}: allowed: an IPv4 range from /16 to /18 (a VPC is /16 at most, and each "
                "zone takes a /19 for its /22 public and /20 private subnets)"
            )
        return cidr

    @model_validator(mode="after")
    def _zones_fit(self) -> NetworkConfig:
        """awsx gives each zone an equal block (a power of two of them), which must hold the
        zone's subnets (``zone_block_addresses``): a /18 holds two zones' blocks, not three or
        four."""
        blocks = 1 << (self.availability_zones - 1).bit_length()
        room = 1 << (32 - ipaddress.ip_network(self.cidr).prefixlen)
        if self.mode == "create" and room // blocks < zone_block_addresses():
            raise ValueError(
                f"cidr {self.cidr} cannot hold {self.availability_zones} availability zones' "
                f"subnets; allowed: /17 or wider for {self.availability_zones} zones"
            )
        return self

    @property
    def wants_s3_gateway_endpoint(self) -> bool:
        if self.s3_gateway_endpoint is None:
            return self.mode == "create"
        return self.s3_gateway_endpoint

    @model_validator(mode="after")
    def _existing_needs_ids(self) -> NetworkConfig:
        if self.mode == "existing" and not (self.vpc_id and self.private_subnet_ids):
            raise ValueError("mode 'existing' needs vpcId and privateSubnetIds")
        if self.mode == "create" and (self.vpc_id or self.private_subnet_ids):
            raise ValueError("vpcId and subnet ids are only for mode 'existing'")
        return self


class SystemNodeGroupConfig(_Config):
    instance_types: tuple[str, ...] = Field(default=("t3.large",), min_length=1)
    desired_size: int = Field(default=2, ge=1, le=10)
    min_size: int = Field(default=2, ge=1, le=10)
    max_size: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodeGroupConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("sizes must satisfy minSize <= desiredSize <= maxSize")
        return self


def _cidr_range(cidr: str) -> str:
    """Checked per entry, so an error names the entry's index and says what is allowed. IPv4
    only: EKS refuses IPv6 blocks in an IPv4 cluster's public access list."""
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError as exc:
        raise ValueError(
            f"allowed: an IPv4 CIDR range with no host bits set, such as your address /32 ({exc})"
        ) from exc
    if network.version != 4:
        raise ValueError(
            f"{cidr}: allowed: an IPv4 CIDR range, such as your address /32 (EKS refuses IPv6 "
            "ranges in an IPv4 cluster's public access list)"
        )
    return cidr


# What the advice to turn the public endpoint off leaves out: Kubernetes is then reached from
# inside the VPC only, and `pulumi up` creates Kubernetes objects after the cluster.
PRIVATE_ENDPOINT_NEEDS = (
    "then `pulumi up` must run where the VPC is reachable: a VPN, a bastion or a CI runner in "
    "the VPC, since it creates the cluster's Kubernetes objects; publicAccessCidrs is then unused"
)


class ClusterConfig(_Config):
    kubernetes_version: str = Field(
        default=versions.KUBERNETES_VERSION, pattern=r"^1\.\d{2}$", description="e.g. 1.35"
    )
    endpoint_public_access: bool = True
    public_access_cidrs: tuple[Annotated[str, AfterValidator(_cidr_range)], ...] = Field(
        default=(),
        description="who may reach a public API endpoint; required when it is public",
    )
    controller_identity: Literal["pod_identity", "irsa"] = "pod_identity"
    admin_role_arns: tuple[str, ...] = ()
    system_node_group: SystemNodeGroupConfig = SystemNodeGroupConfig()
    upgrade_policy: Literal["STANDARD", "EXTENDED"] = Field(
        default="STANDARD", description="EXTENDED support costs six times the standard hourly fee"
    )
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90] = Field(
        default=7, description="retention of the control-plane log group"
    )

    @model_validator(mode="after")
    def _public_needs_allow_list(self) -> ClusterConfig:
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError(
                "a public API endpoint needs publicAccessCidrs (an explicit allow-list); "
                f"or set endpointPublicAccess: false ({PRIVATE_ENDPOINT_NEEDS})"
            )
        return self

    @property
    def api_allow_list(self) -> list[str] | None:
        """The public endpoint's allow-list, None for a private endpoint: EKS (and pulumi-eks,
        before it asks) refuses publicAccessCidrs without public access, and the stack files
        keep their placeholder when a user turns the public endpoint off."""
        if not self.endpoint_public_access:
            return None
        return list(self.public_access_cidrs) or None


# Kubernetes' rules for a label's (and a taint's) key and value: an optional DNS-subdomain
# prefix and a name of up to 63 characters; a value of up to 63, or empty. The API server refused
# anything else only at `pulumi up`.
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
LABEL_RULES = (
    "a key is an optional DNS prefix and `/`, then up to 63 letters, digits, `-`, `_` or `.`, "
    "starting and ending with a letter or digit; a value the same, or empty"
)


def _check_label(key: str, value: str) -> None:
    if not LABEL_KEY.match(key) or not LABEL_VALUE.match(value):
        raise ValueError(f"{key!r}: {value!r} is not a Kubernetes label: {LABEL_RULES}")


class TaintConfig(_Config):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    @model_validator(mode="after")
    def _kubernetes_taint(self) -> TaintConfig:
        _check_label(self.key, self.value)
        return self


# What each of a pool's EC2 name lists holds: its pattern, and an example of one.
_EC2_NAMES = {
    "instance_categories": (r"^[a-z]$", "instance category such as c, m or r"),
    "instance_families": (r"^[a-z][a-z0-9-]*[a-z0-9]$", "instance family such as m7i or c6a"),
}


class NodePoolConfig(_Config):
    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="lowercase letters, digits and -, e.g. spot-general",
    )
    capacity_types: tuple[CapacityType, ...] = Field(min_length=1)
    # An empty list is Kubernetes' refused `In` requirement with no values.
    instance_categories: tuple[str, ...] = Field(default=("c", "m", "r"), min_length=1)
    instance_families: tuple[str, ...] = ()
    # amd64 only: the gateway, load generator and demo images are built for linux/amd64
    # (components/images.py), so a Graviton node would fail them with "exec format error".
    architectures: tuple[Literal["amd64"], ...] = ("amd64",)
    cpu_limit: int = Field(ge=1, le=10_000, description="vCPUs the pool may buy in total")
    memory_limit_gib: int = Field(ge=1, le=100_000)
    consolidation_policy: Literal["WhenEmptyOrUnderutilized", "WhenEmpty", "Balanced"] = (
        "WhenEmptyOrUnderutilized"
    )
    consolidate_after: str = Field(
        default="1m", pattern=r"^(Never|\d+(s|m|h))$", description="e.g. 30s, 1m, 2h or Never"
    )
    expire_after: str = Field(
        default="720h", pattern=r"^(Never|\d+(s|m|h))$", description="e.g. 720h or Never"
    )
    weight: int = Field(default=10, ge=1, le=100)  # the NodePool CRD's range
    labels: dict[str, str] = Field(default_factory=dict)
    taints: tuple[TaintConfig, ...] = ()

    @field_validator("instance_categories", "instance_families")
    @classmethod
    def _ec2_names(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        pattern, example = _EC2_NAMES[info.field_name or ""]
        for name in names:
            if not re.match(pattern, name):
                raise ValueError(f"{name!r} is not an {example}")
        return names

    @field_validator("labels")
    @classmethod
    def _kubernetes_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            _check_label(key, value)
        return labels

    @property
    def consolidation_enabled(self) -> bool:
        return self.consolidate_after != "Never"


class KarpenterConfig(_Config):
    ami_alias: str = Field(
        default=versions.AMI_ALIAS,
        pattern=r"^(al2023|al2|bottlerocket)@(v\d{8}|v\d+\.\d+\.\d+)$",
        description="a pinned release, e.g. al2023@v20261020 or bottlerocket@v1.30.0",
    )
    root_volume_gib: int = Field(default=30, ge=20, le=500)
    replicas: int = Field(default=1, ge=1, le=3)
    node_pools: tuple[NodePoolConfig, ...] = Field(min_length=1)

    @field_validator("node_pools")
    @classmethod
    def _unique(cls, pools: tuple[NodePoolConfig, ...]) -> tuple[NodePoolConfig, ...]:
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise ValueError("node pool names must be unique")
        if not any("on-demand" in p.capacity_types for p in pools):
            # Valkey and the Locust master never run on spot (builders/placement.py).
            raise ValueError(
                "at least one node pool must allow on-demand capacity (capacityTypes: "
                "[on-demand] or [spot, on-demand]) for the stateful pods"
            )
        return pools


class AlertConfig(_Config):
    ai_spend_per_hour_usd: float = Field(default=5.0, gt=0)
    budget_warning_ratio: float = Field(default=0.8, gt=0, lt=1)
    cache_hit_ratio_min: float = Field(default=0.05, ge=0, lt=1)
    server_error_ratio_max: float = Field(default=0.05, gt=0, lt=1)
    receiver: Literal["none", "slack"] = Field(
        default="none",
        description="where Alertmanager sends the alerts: nowhere, or to the Slack incoming "
        f"webhook whose URL is the secret {PROJECT}:{SLACK_WEBHOOK_SECRET}",
    )
    slack_channel: str | None = Field(
        default=None,
        pattern=r"^#?[a-z0-9_-]{1,80}$",
        description="overrides the webhook's channel (legacy webhooks only: a Slack app's "
        "webhook always posts to the channel it was created for)",
    )


class ObservabilityConfig(_Config):
    retention: str = Field(default="7d", pattern=r"^\d+[dh]$", description="e.g. 7d or 48h")
    storage_size: str = Field(
        default="20Gi",
        pattern=_MEMORY_PATTERN,
        description="Prometheus's volume (AWS stacks), e.g. 20Gi; a change on a running stack "
        "recreates the volume empty",
    )
    alerts: AlertConfig = AlertConfig()

    @field_validator("storage_size")
    @classmethod
    def _fits_a_volume(cls, size: str) -> str:
        return bounded_memory(size, GP3_MAX_MIB)


class KubecostConfig(_Config):
    enabled: bool = True


_CPU = re.compile(r"^([1-9]\d*m|[1-9]\d*(\.\d+)?|0\.\d*[1-9]\d*)$")
_MEMORY = re.compile(_MEMORY_PATTERN)


_MEMORY_UNITS_MIB = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}


def cpu_millicores_exact(quantity: str | float) -> float:
    """A Kubernetes CPU quantity ("400m", "0.5", 2) in millicores, unrounded."""
    text = str(quantity)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def cpu_millicores(quantity: str | float) -> int:
    """A Kubernetes CPU quantity in millicores."""
    return round(cpu_millicores_exact(quantity))


def memory_mib_exact(quantity: str | float) -> float:
    """A Kubernetes memory quantity ("400Mi", "1Gi", "512Ki", bytes) in MiB, unrounded."""
    text = str(quantity)
    unit = text[-2:]
    if unit in _MEMORY_UNITS_MIB:
        return float(text[:-2]) * _MEMORY_UNITS_MIB[unit]
    return float(text) / 2**20


def memory_mib(quantity: str | float) -> int:
    """A Kubernetes memory quantity in MiB, rounded up."""
    return math.ceil(memory_mib_exact(quantity))


# No container gets more than the largest EC2 instance has (448 vCPUs, 32 TiB of memory): a
# quantity of 400 digits was an OverflowError's traceback.
MAX_CPU_CORES = 448
MAX_MEMORY_MIB = 32 * 1024**2
GP3_MAX_MIB = 16 * 1024**2  # the largest gp3 volume, the default storage class's


def bounded_cpu(quantity: str | None) -> str | None:
    if quantity is not None and not cpu_millicores_exact(quantity) <= MAX_CPU_CORES * 1000:
        raise ValueError(f"at most {MAX_CPU_CORES} cores ({MAX_CPU_CORES * 1000}m)")
    return quantity


def bounded_memory(quantity: str, most_mib: int = MAX_MEMORY_MIB) -> str:
    if not memory_mib_exact(quantity) <= most_mib:
        raise ValueError(f"at most {most_mib // 1024**2}Ti")
    return quantity


class Quantities(_Config):
    cpu: str = Field(pattern=_CPU.pattern, description="e.g. 400m or 1")
    memory: str = Field(pattern=_MEMORY.pattern, description="e.g. 400Mi or 1Gi")

    _cpu_bound = field_validator("cpu")(bounded_cpu)
    _memory_bound = field_validator("memory")(bounded_memory)


class MemoryLimit(_Config):
    memory: str = Field(pattern=_MEMORY.pattern, description="e.g. 400Mi or 1Gi")
    cpu: str | None = Field(default=None, pattern=_CPU.pattern, description="e.g. 400m or 1")

    _cpu_bound = field_validator("cpu")(bounded_cpu)
    _memory_bound = field_validator("memory")(bounded_memory)


class ContainerResources(_Config):
    requests: Quantities
    limits: MemoryLimit

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ContainerResources:
        """Kubernetes refuses a container whose limit is below its request."""
        if memory_mib(self.limits.memory) < memory_mib(self.requests.memory):
            raise ValueError(
                f"limits.memory {self.limits.memory} is below requests.memory "
                f"{self.requests.memory}: Kubernetes refuses such a container"
            )
        if self.limits.cpu is not None and cpu_millicores(self.limits.cpu) < cpu_millicores(
            self.requests.cpu
        ):
            raise ValueError(
                f"limits.cpu {self.limits.cpu} is below requests.cpu {self.requests.cpu}: "
                "Kubernetes refuses such a container"
            )
        return self


class WorkloadConfig(_Config):
    replicas: int = Field(ge=1, le=100)
    resources: ContainerResources


class GatewayWorkloadConfig(WorkloadConfig):
    max_replicas: int | None = Field(
        default=None, ge=1, le=100, description="set to add a CPU-based HorizontalPodAutoscaler"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="gateway settings over its profile (same schema)"
    )

    @model_validator(mode="after")
    def _autoscales_above_replicas(self) -> GatewayWorkloadConfig:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) is below replicas ({self.replicas}), the "
                "autoscaler's minimum: set it to at least replicas, or leave it out"
            )
        return self


class DemoServicesConfig(WorkloadConfig):
    count: int = Field(ge=1, le=50, description="how many demo microservices")


class LocustConfig(_Config):
    workers: int = Field(ge=1, le=50)
    users: int = Field(default=20, ge=1, le=10_000)
    spawn_rate: int = Field(default=5, ge=1, le=1_000)
    run_time: str = Field(default="15m", pattern=r"^\d+[smh]$", description="e.g. 90s, 15m or 1h")
    master: ContainerResources
    worker: ContainerResources


_IMAGE = r"^[^\s:]+(:[\w][\w.-]{0,127})$"
_IMAGE_EXAMPLE = "an image with its tag pinned, e.g. registry.example.com/finops-gateway:0.1.0"
# AWS's documentation account: an image under it is a placeholder that can never be pulled.
DOCUMENTATION_ACCOUNT = "123456789012"


class ImagesConfig(_Config):
    """Either build the gateway and load-generator images from the repo's Dockerfiles into ECR
    repositories the stack creates (``build: true``, needs a Docker engine where pulumi runs),
    or use prebuilt images with pinned tags (how CI preview runs without Docker)."""

    build: bool = False
    tag: str = Field(
        default="0.1.0",
        pattern=r"^[\w][\w.-]{0,127}$",
        description="a Docker tag: letters, digits, _, . and -, e.g. 0.1.0",
    )
    gateway: str | None = Field(default=None, pattern=_IMAGE, description=_IMAGE_EXAMPLE)
    loadgen: str | None = Field(default=None, pattern=_IMAGE, description=_IMAGE_EXAMPLE)
    demo_service: str = Field(
        default=versions.DEMO_SERVICE_IMAGE, pattern=_IMAGE, description=_IMAGE_EXAMPLE
    )
    redis: str = Field(default=versions.VALKEY_IMAGE, pattern=_IMAGE, description=_IMAGE_EXAMPLE)

    @model_validator(mode="after")
    def _prebuilt_needs_refs(self) -> ImagesConfig:
        if not self.build and not (self.gateway and self.loadgen):
            raise ValueError("without build: true, give the prebuilt gateway and loadgen images")
        return self

    @field_validator("gateway", "loadgen")
    @classmethod
    def _pullable(cls, image: str | None) -> str | None:
        if image and image.startswith(f"{DOCUMENTATION_ACCOUNT}."):
            raise ValueError(
                f"{DOCUMENTATION_ACCOUNT} is AWS's documentation account, so this image cannot be "
                "pulled; set build: true, or name an image in a registry your nodes can pull from"
            )
        return image


class ElastiCacheConfig(_Config):
    """Amazon ElastiCache Serverless for Valkey: its usage limits, and the usage the cost model
    prices (the ledger and the caches hold a few MB, so the 100 MB minimum is what is billed)."""

    max_data_storage_gb: int = Field(default=1, ge=1, le=5000)
    max_ecpu_per_second: int = Field(default=5000, ge=1000, le=15_000_000)
    data_stored_gb: float = Field(default=0.1, ge=0, le=5000)
    average_ecpu_per_second: float = Field(default=200, ge=0)


class StoreConfig(_Config):
    """Where the gateway's Valkey runs: a StatefulSet in the cluster with an append-only file on
    an EBS volume, or Amazon ElastiCache Serverless for Valkey (AWS stacks only)."""

    mode: Literal["in_cluster", "elasticache_serverless"] = "in_cluster"
    volume_size: str = Field(default="1Gi", pattern=_MEMORY.pattern, description="e.g. 1Gi")
    elasticache: ElastiCacheConfig = ElastiCacheConfig()

    @field_validator("volume_size")
    @classmethod
    def _fits_a_volume(cls, size: str) -> str:
        return bounded_memory(size, GP3_MAX_MIB)


class WorkloadsConfig(_Config):
    """What runs on the cluster, and how big each pod asks to be."""

    gateway_profile: Phase
    rightsizing_ceiling: Quantities | None = Field(
        default=None, description="the policy pack's limit on any container's requests"
    )
    stateless_on_spot: bool = Field(
        description="gateway, Locust workers and demo services may run on spot nodes"
    )
    images: ImagesConfig
    gateway: GatewayWorkloadConfig
    redis: ContainerResources
    store: StoreConfig = StoreConfig()
    locust: LocustConfig
    demo_services: DemoServicesConfig


class LocalConfig(_Config):
    kubeconfig_context: str | None = Field(
        default=None, description="context of your kubeconfig to deploy to (default: current)"
    )


class PlatformConfig(_Config):
    """``mode: aws`` builds the whole platform; ``mode: local`` deploys only Prometheus/Grafana
    and the workloads to an existing cluster (kind, minikube, k3d, any kubeconfig)."""

    mode: Literal["aws", "local"] = "aws"
    cost_center: str = "finops-lab"
    network: NetworkConfig = NetworkConfig()
    cluster: ClusterConfig | None = None
    karpenter: KarpenterConfig | None = None
    local: LocalConfig = LocalConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    kubecost: KubecostConfig = KubecostConfig()

    @field_validator("cost_center")
    @classmethod
    def _label_value(cls, cost_center: str) -> str:
        """A Kubernetes label value too: the namespace and every pod carry it, and a value
        Kubernetes refuses would fail `pulumi up` after the cluster is built."""
        if len(cost_center) > 63 or not _LABEL_VALUE.fullmatch(cost_center):
            raise ValueError(
                f"{cost_center!r}: allowed: up to 63 letters, digits, '-', '_' and '.', starting "
                "and ending with a letter or digit (it is a Kubernetes label value)"
            )
        return cost_center

    @model_validator(mode="after")
    def _mode_needs(self) -> PlatformConfig:
        if self.mode == "aws" and (self.cluster is None or self.karpenter is None):
            raise ValueError("mode 'aws' needs the cluster and karpenter sections")
        if self.cluster and self.karpenter and self.karpenter.ami_alias.startswith("al2@"):
            minor = int(self.cluster.kubernetes_version.split(".")[1])
            if minor > AL2_LAST_MINOR:
                raise ValueError(
                    f"karpenter.amiAlias {self.karpenter.ami_alias!r}: AWS publishes no Amazon "
                    f"Linux 2 EKS AMI for Kubernetes {self.cluster.kubernetes_version} (the last "
                    f"is 1.{AL2_LAST_MINOR}); allowed: al2023@... or bottlerocket@..."
                )
        if self.mode == "local" and (self.cluster or self.karpenter or self.kubecost.enabled):
            raise ValueError(
                "mode 'local' deploys no cluster, Karpenter or Kubecost: drop those sections "
                "and set kubecost.enabled: false"
            )
        return self

    @property
    def node_pools(self) -> tuple[NodePoolConfig, ...]:
        return self.karpenter.node_pools if self.karpenter else ()


class _StackFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    region: str = Field(
        alias="aws:region", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="e.g. us-east-1"
    )
    profile: str | None = Field(default=None, alias="aws:profile", min_length=1)
    platform: PlatformConfig = Field(alias=f"{PROJECT}:platform")
    workloads: WorkloadsConfig = Field(alias=f"{PROJECT}:workloads")

    @model_validator(mode="after")
    def _managed_store_needs_aws(self) -> _StackFile:
        if self.platform.mode == "local" and self.workloads.store.mode != "in_cluster":
            raise ValueError(
                "mode 'local' has no AWS account: finops-sim:workloads.store.mode must be "
                "'in_cluster'"
            )
        return self


class StackConfig(BaseModel):
    """Everything one stack deploys, plus the names derived from it."""

    model_config = ConfigDict(frozen=True)
    stack: str
    region: str
    platform: PlatformConfig
    workloads: WorkloadsConfig
    aws_profile: str | None = None  # a profile of the AWS shared config files, else the environment

    @property
    def cluster_name(self) -> str:
        return f"finops-{self.stack}"

    @property
    def tags(self) -> dict[str, str]:
        """Cost-allocation tags on every AWS resource."""
        return {
            "project": PROJECT,
            "stack": self.stack,
            "cost-center": self.platform.cost_center,
            "managed-by": "pulumi",
        }


# RFC 5737's documentation ranges: what a stack file holds until the user puts their own.
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def require_user_values(config: StackConfig) -> None:
    """Refuse the stack file's placeholders before anything is created: `pulumi up` with the
    documentation range as the API allow-list would build a cluster its user cannot reach."""
    cluster = config.platform.cluster
    if cluster is None or not cluster.endpoint_public_access:
        return
    source = str(stack_file(config.stack).relative_to(STACKS_DIR.parent))
    for index, cidr in enumerate(cluster.public_access_cidrs):
        network = ipaddress.ip_network(cidr, strict=False)
        if isinstance(network, ipaddress.IPv4Network) and any(
            network.subnet_of(doc) for doc in DOCUMENTATION_RANGES
        ):
            key = f"{PROJECT}:platform.cluster.publicAccessCidrs[{index}]"
            raise ConfigError(
                f"{source}: `{key}`: {cidr} is a documentation address (RFC 5737), a placeholder; "
                "allowed: the CIDR ranges you reach the cluster's API from (your address /32). "
                f"Set it with:\n  pulumi config set --stack {config.stack} --path '{key}' "
                '"$(curl -s https://checkip.amazonaws.com)/32"\n'
                f"or set endpointPublicAccess: false ({PRIVATE_ENDPOINT_NEEDS})"
            )


def require_alert_secret(config: StackConfig, webhook_url_set: bool) -> str | None:
    """Refuse a Slack receiver without its webhook secret before anything is created; returns a
    warning when the secret is set but no receiver uses it."""
    receiver = config.platform.observability.alerts.receiver
    key = f"{PROJECT}:{SLACK_WEBHOOK_SECRET}"
    if receiver == "slack" and not webhook_url_set:
        source = str(stack_file(config.stack).relative_to(STACKS_DIR.parent))
        raise ConfigError(
            f"{source}: `{PROJECT}:platform.observability.alerts.receiver` is 'slack', so the "
            f"secret `{key}` is required (a Slack incoming-webhook URL). Set it with:\n"
            f"  pulumi config set --stack {config.stack} --secret {key} "
            "https://hooks.slack.com/services/...\nor set the receiver to 'none'"
        )
    if receiver == "none" and webhook_url_set:
        return (
            f"the secret `{key}` is set but `{PROJECT}:platform.observability.alerts.receiver` "
            "is 'none': the alerts are sent nowhere"
        )
    return None


def stack_file(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


SETTINGS_SOURCE = f"{PROJECT}:workloads.gateway.settings"
TEAM_KEYS = f"{PROJECT}:{TEAM_KEYS_SECRET}"
# The gateway's default `metrics_port`, the one port its Service, NetworkPolicy and
# ServiceMonitor open and scrape.
GATEWAY_METRICS_PORT: int = GatewaySettings.model_fields["metrics_port"].default
# Stands in for the secret keys wherever the settings are checked before the keys are known.
_PLACEHOLDER_KEY = "sha256:" + "0" * 64


def stack_team_settings(workloads: WorkloadsConfig, where: str = "") -> dict[str, Any]:
    """The routing and limits the stack sets per team (``teams`` in the gateway settings);
    ``where`` names the stack file in the errors."""
    teams = workloads.gateway.settings.get("teams")
    if teams is None:
        return {}
    if not isinstance(teams, dict):
        raise ConfigError(
            f"{where}{SETTINGS_SOURCE}.teams: must be a mapping of team names to settings"
        )
    for name, team in teams.items():
        if not isinstance(team, dict):
            raise ConfigError(
                f"{where}{SETTINGS_SOURCE}.teams.{name}: must be a mapping of the team's settings "
                f"(routing, limits), not {team!r}"
            )
        if "keys" in team:
            raise ConfigError(
                f"{where}{SETTINGS_SOURCE}.teams.{name}.keys: keys are secrets, not stack "
                f"settings: set them with `pulumi config set --secret --path "
                f"'{TEAM_KEYS}.{name}' <key>`"
            )
    return teams


def gateway_settings_without_teams(workloads: WorkloadsConfig) -> dict[str, Any]:
    """The stack's gateway settings over its profile, as the gateway's ConfigMap holds them: the
    teams go with their keys into the keys Secret."""
    settings = {"profile": workloads.gateway_profile, **workloads.gateway.settings}
    settings.pop("teams", None)
    return settings


def check_gateway_settings(workloads: WorkloadsConfig, stack_source: str) -> None:
    """The stack's gateway settings against the gateway's own schema, as the stack is parsed:
    a bad one failed only when the program built the gateway's ConfigMap, and the other readers
    of a stack (finops-sim, the policy pack) took it."""
    where = f"{stack_source}: "
    if "profile" in workloads.gateway.settings:
        raise ConfigError(
            f"{where}{SETTINGS_SOURCE}.profile: the stack's profile is "
            f"finops-sim:workloads.gatewayProfile ({workloads.gateway_profile}), which the cost "
            "model and the policy pack read too: set it there, not in the gateway settings"
        )
    user = gateway_settings_without_teams(workloads)
    if user.get("metrics_port", GATEWAY_METRICS_PORT) != GATEWAY_METRICS_PORT:
        raise ConfigError(
            f"{where}{SETTINGS_SOURCE}.metrics_port: value {user['metrics_port']!r} is invalid: "
            f"the Service, NetworkPolicy and ServiceMonitor scrape {GATEWAY_METRICS_PORT}, the "
            "only value allowed here"
        )
    teams = stack_team_settings(workloads, where) or {"placeholder": {}}
    keyed = {name: {**team, "keys": [_PLACEHOLDER_KEY]} for name, team in teams.items()}
    resolve_settings(None, {**user, "teams": keyed}, f"{stack_source} ({SETTINGS_SOURCE})")


def parse_stack_config(stack: str, values: dict[str, Any]) -> StackConfig:
    """Validate the stack's config values (``project:key`` -> value)."""
    from pydantic import ValidationError

    source = str(stack_file(stack).relative_to(STACKS_DIR.parent))
    try:
        parsed = _StackFile.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, _StackFile)) from exc
    if parsed.platform.mode == "aws" and len(stack) > MAX_AWS_STACK_NAME:
        raise ConfigError(
            f"stack {stack!r}: an AWS stack's name has at most {MAX_AWS_STACK_NAME} characters "
            f"(it has {len(stack)}): IAM role names, which carry it, have at most 64"
        )
    check_gateway_settings(parsed.workloads, source)
    return StackConfig(
        stack=stack,
        region=parsed.region,
        platform=parsed.platform,
        workloads=parsed.workloads,
        aws_profile=parsed.profile,
    )


def load_stack(stack: str) -> StackConfig:
    """stacks/Pulumi.<stack>.yaml as the program validates it (secrets left out)."""
    return parse_stack_config(stack, read_stack_file(stack))


def refuse_unknown_keys(keys: Iterable[str], source: str) -> None:
    """A ``finops-sim:`` key the program does not read is an error, not a silent default."""
    prefix = f"{PROJECT}:"
    unknown = sorted(
        key for key in keys if key.startswith(prefix) and key[len(prefix) :] not in STACK_KEYS
    )
    if unknown:
        allowed = ", ".join(f"{PROJECT}:{key}" for key in STACK_KEYS)
        raise ConfigError(f"{source}: unknown key `{unknown[0]}`; allowed keys are {allowed}")
    unread = sorted(key for key in keys if key.startswith("aws:") and key[4:] not in AWS_KEYS)
    if unread:
        raise ConfigError(
            f"{source}: `{unread[0]}` is not read: the program's AWS provider takes only "
            f"{', '.join('aws:' + key for key in AWS_KEYS)}. Give other settings (credentials, "
            "a role to assume) through a profile of your AWS config files or the AWS_* "
            "environment variables"
        )


def read_stack_file(stack: str) -> dict[str, Any]:
    """The plain (non-secret) config values of a stack file, for render and tests."""
    from finops_common.config import read_yaml

    if not stack_file(stack).exists():
        stacks = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in STACKS_DIR.glob("Pulumi.*.yaml")
        )
        raise ConfigError(
            f"{stack_file(stack)}: file not found; the stacks are {', '.join(stacks)}"
        )
    data = read_yaml(stack_file(stack)) or {}
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{stack_file(stack)}: `config` must be a mapping")
    refuse_unknown_keys(config, str(stack_file(stack).relative_to(STACKS_DIR.parent)))
    return {key: value for key, value in config.items() if not _is_secret(value)}


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}
