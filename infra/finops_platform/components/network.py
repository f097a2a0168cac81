"""Network: a VPC over 2-3 AZs with public and private subnets and NAT, or an existing VPC; and
an S3 gateway endpoint on the private route tables, so that ECR image layers (served from S3)
do not pass, and get billed, through the NAT gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from ..config import PRIVATE_SUBNET_PREFIX, PUBLIC_SUBNET_PREFIX, NetworkConfig

# Zones where EKS does not create clusters (its VPC requirements page): us-east-1's use1-az3,
# which also lacks current (Nitro) instance types, us-west-1's usw1-az2 and ca-central-1's
# cac1-az3. A zone's name maps to a different zone in each account, so awsx's default (the
# region's first names) could land a subnet there and fail CreateCluster after the VPC is built.
EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")


def zone_names(count: int, opts: pulumi.InvokeOptions | None = None) -> list[str]:
    """The region's first ``count`` zones that EKS supports and need no opt-in (local zones and
    wavelength zones do). Not filtered by state: a zone reporting an impairment would drop out,
    and the next `pulumi up` would move the subnets, NAT and cluster mid-incident."""
    zones = aws.get_availability_zones(
        exclude_zone_ids=list(EKS_UNSUPPORTED_ZONE_IDS),
        filters=[
            aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])
        ],
        opts=opts,
    )
    if len(zones.names) < count:
        raise ValueError(
            f"network.availabilityZones is {count}, but the region has {len(zones.names)} zones "
            f"where EKS runs ({', '.join(zones.names) or 'none'})"
        )
    return list(zones.names[:count])


def subnets_route_tables(
    explicit_tables: Sequence[Sequence[str]], main_tables: Sequence[str]
) -> list[str]:
    """The route tables some subnets use, from each one's explicitly associated tables: those, or
    the VPC's main table for a subnet with none (an existing VPC's subnets often have none).
    Looking up explicit associations alone left such subnets off the S3 endpoint, silently."""
    return sorted({table for tables in explicit_tables for table in (tables or main_tables)})


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    cluster_name: str
    region: str
    tags: dict[str, str]


def subnet_tags(cluster_name: str) -> dict[str, dict[str, str]]:
    """Tags EKS load balancers and Karpenter's subnet discovery look for."""
    return {
        "public": {"kubernetes.io/role/elb": "1"},
        "private": {
            "kubernetes.io/role/internal-elb": "1",
            "karpenter.sh/discovery": cluster_name,
        },
    }


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    # Every IPv4 range of the VPC: the created one's, or an existing one's as AWS lists them.
    vpc_cidrs: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[Sequence[str]]
    public_subnet_ids: pulumi.Output[Sequence[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("finops:platform:Network", name, None, opts)
        config = args.config
        if config.mode == "existing":
            assert config.vpc_id is not None
            self.vpc_id = pulumi.Output.from_input(config.vpc_id)
            self.vpc_cidrs = self._existing_vpc_cidrs(config.vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(config.private_subnet_ids))
            self.public_subnet_ids = pulumi.Output.from_input(list(config.public_subnet_ids))
        else:
            tags = subnet_tags(args.cluster_name)
            vpc = awsx.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=config.cidr,
                # On the stack's own provider (its region and tags), as the component's children.
                availability_zone_names=zone_names(
                    config.availability_zones, pulumi.InvokeOptions(parent=self)
                ),
                enable_dns_hostnames=True,
                subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
                nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
                    strategy=awsx.ec2.NatGatewayStrategy.SINGLE
                    if config.nat_gateways == "single"
                    else awsx.ec2.NatGatewayStrategy.ONE_PER_AZ
                ),
                subnet_specs=[
                    awsx.ec2.SubnetSpecArgs(
                        type=awsx.ec2.SubnetType.PUBLIC,
                        cidr_mask=PUBLIC_SUBNET_PREFIX,
                        tags=tags["public"],
                    ),
                    awsx.ec2.SubnetSpecArgs(
                        type=awsx.ec2.SubnetType.PRIVATE,
                        cidr_mask=PRIVATE_SUBNET_PREFIX,
                        tags=tags["private"],
                    ),
                ],
                tags={**args.tags, "Name": f"{args.cluster_name}-vpc"},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.vpc_id = vpc.vpc_id
            self.vpc_cidrs = pulumi.Output.from_input([config.cidr])
            self.private_subnet_ids = vpc.private_subnet_ids
            self.public_subnet_ids = vpc.public_subnet_ids
        if config.wants_s3_gateway_endpoint:
            self._s3_gateway_endpoint(name, args)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )

    def _existing_vpc_cidrs(self, vpc_id: str) -> pulumi.Output[list[str]]:
        """An existing VPC's primary and secondary IPv4 ranges, read from AWS on each run; a
        range being removed, or whose association failed, is not the VPC's."""
        vpc = aws.ec2.get_vpc_output(id=vpc_id, opts=pulumi.InvokeOutputOptions(parent=self))
        return vpc.cidr_block_associations.apply(
            lambda associations: [a.cidr_block for a in associations if a.state == "associated"]
        )

    def _route_tables(
        self, filter_name: str, values: pulumi.Input[Sequence[str]]
    ) -> pulumi.Output[list[str]]:
        # pulumi_aws types a filter's values as a plain list: the filter is made once they resolve.
        filters = pulumi.Output.from_input(values).apply(
            lambda accepted: [aws.ec2.GetRouteTablesFilterArgs(name=filter_name, values=accepted)]
        )
        found = aws.ec2.get_route_tables_output(
            vpc_id=self.vpc_id, filters=filters, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        return found.ids

    def _private_route_tables(self, config: NetworkConfig) -> pulumi.Output[list[str]]:
        """The private subnets' route tables. A VPC the stack creates gives each subnet its own
        table (awsx); an existing VPC's subnets, listed in the config, are looked up one by one,
        and one with no table of its own is on the VPC's main table."""
        if config.mode == "create":
            return self._route_tables("association.subnet-id", self.private_subnet_ids)
        explicit = [
            self._route_tables("association.subnet-id", [subnet])
            for subnet in config.private_subnet_ids
        ]
        main = self._route_tables("association.main", ["true"])
        return pulumi.Output.all(main, *explicit).apply(
            lambda found: subnets_route_tables(found[1:], found[0])
        )

    def _s3_gateway_endpoint(self, name: str, args: NetworkArgs) -> aws.ec2.VpcEndpoint:
        return aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc_id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=self._private_route_tables(args.config),
            tags={**args.tags, "Name": f"{args.cluster_name}-s3"},
            opts=pulumi.ResourceOptions(parent=self),
        )
