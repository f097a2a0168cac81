"""The gateway's store as a managed service: Amazon ElastiCache Serverless for Valkey, for a team
that outgrows one Valkey pod (``workloads.store.mode: elasticache_serverless``).

Encrypted in transit (serverless caches only speak TLS) and at rest; the gateway authenticates as
the cache's ``default`` user, whose password is the Pulumi secret ``finops-sim:storeAuthToken``
or a random one; only the cluster's nodes (the EKS cluster security group, which the system
nodes and Karpenter's nodes use) reach its ports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ..builders.workloads import REDIS_PORT
from ..config import ElastiCacheConfig

VALKEY_MAJOR_VERSION = "8"
# Serverless caches serve on 6379 and their read replicas on 6380.
PORTS = (REDIS_PORT, REDIS_PORT + 1)


@dataclass(frozen=True)
class ManagedStoreArgs:
    config: ElastiCacheConfig
    cluster_name: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    node_security_group_id: pulumi.Input[str]
    auth_token: pulumi.Input[str] | None
    tags: dict[str, str]


class ManagedStore(pulumi.ComponentResource):
    host: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(
        self, name: str, args: ManagedStoreArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("finops:platform:ManagedStore", name, None, opts)
        self.password = self._password(name, args)
        users = self._users(name, args)
        group = self._security_group(name, args)
        from_nodes = self._ingress_from_nodes(name, args, group)
        cache = self._cache(name, args, users, group, from_nodes)
        self.host = cache.endpoints.apply(lambda endpoints: endpoints[0].address)
        self.register_outputs({"host": self.host})

    def _password(self, name: str, args: ManagedStoreArgs) -> pulumi.Output[str]:
        """The ``default`` user's password, a secret: the stack's storeAuthToken, else a random
        one."""
        if args.auth_token is None:
            token = random.RandomPassword(
                f"{name}-auth-token",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            return pulumi.Output.secret(token.result)
        return pulumi.Output.secret(pulumi.Output.from_input(args.auth_token))

    def _users(self, name: str, args: ManagedStoreArgs) -> aws.elasticache.UserGroup:
        """The user group the cache authenticates against: only the ``default`` user, the one
        the gateway connects as, with the password."""
        child = pulumi.ResourceOptions(parent=self)
        user = aws.elasticache.User(
            f"{name}-default",
            user_id=f"{args.cluster_name}-default",
            user_name="default",
            engine="valkey",
            access_string="on ~* +@all",
            passwords=[self.password],
            tags=args.tags,
            opts=child,
        )
        return aws.elasticache.UserGroup(
            f"{name}-users",
            user_group_id=f"{args.cluster_name}-users",
            engine="valkey",
            user_ids=[user.user_id],
            tags=args.tags,
            opts=child,
        )

    def _security_group(self, name: str, args: ManagedStoreArgs) -> aws.ec2.SecurityGroup:
        """The cache's own security group, whose one rule (_ingress_from_nodes) admits the
        cluster's nodes only."""
        return aws.ec2.SecurityGroup(
            f"{name}-access",
            vpc_id=args.vpc_id,
            description=f"Valkey for {args.cluster_name}: the cluster's nodes only",
            tags={**args.tags, "Name": f"{args.cluster_name}-valkey"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _ingress_from_nodes(
        self, name: str, args: ManagedStoreArgs, group: aws.ec2.SecurityGroup
    ) -> aws.vpc.SecurityGroupIngressRule:
        """Only the cluster's nodes (the EKS cluster security group) reach the cache's ports."""
        return aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-nodes",
            security_group_id=group.id,
            referenced_security_group_id=args.node_security_group_id,
            ip_protocol="tcp",
            from_port=PORTS[0],
            to_port=PORTS[-1],
            description="the EKS cluster security group (every node of the cluster)",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cache(
        self,
        name: str,
        args: ManagedStoreArgs,
        users: aws.elasticache.UserGroup,
        group: aws.ec2.SecurityGroup,
        from_nodes: aws.vpc.SecurityGroupIngressRule,
    ) -> aws.elasticache.ServerlessCache:
        """The serverless cache in the private subnets, within the stack's usage limits, after
        the rule that lets the nodes reach it."""
        limits = args.config
        return aws.elasticache.ServerlessCache(
            f"{name}-cache",
            name=args.cluster_name,
            engine="valkey",
            major_engine_version=VALKEY_MAJOR_VERSION,
            description="the AI gateway's budgets, rate limits and caches",
            subnet_ids=args.subnet_ids,
            security_group_ids=[group.id],
            user_group_id=users.user_group_id,
            cache_usage_limits=aws.elasticache.ServerlessCacheCacheUsageLimitsArgs(
                data_storage=aws.elasticache.ServerlessCacheCacheUsageLimitsDataStorageArgs(
                    maximum=limits.max_data_storage_gb, unit="GB"
                ),
                ecpu_per_seconds=[
                    aws.elasticache.ServerlessCacheCacheUsageLimitsEcpuPerSecondArgs(
                        maximum=limits.max_ecpu_per_second
                    )
                ],
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[from_nodes]),
        )
