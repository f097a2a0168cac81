"""The network component under mocks: the S3 gateway endpoint setting (issue 10, defect 12) and
the zones its subnets go to."""

from __future__ import annotations

import pulumi
import pytest

from finops_platform.components.network import (
    EKS_UNSUPPORTED_ZONE_IDS,
    subnets_route_tables,
    zone_names,
)
from finops_platform.config import NetworkConfig, load_stack
from finops_platform.render import MOCK_VPC_CIDR, RecordingMocks, record
from tests.infra.graph import one

ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def test_s3_gateway_endpoint_on_the_private_route_tables(recording):
    """ECR serves image layers from S3: through the endpoint they skip NAT's per-GB charge."""
    endpoint = one(recording, ENDPOINT).inputs
    assert endpoint["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert endpoint["vpcEndpointType"] == "Gateway"
    assert endpoint["vpcId"] == "vpc-0mock"
    assert endpoint["routeTableIds"] == ["rtb-0private1", "rtb-0private2"]
    assert endpoint["tags"]["stack"] == recording.stack


def test_the_endpoint_is_a_setting():
    config = load_stack("optimized")
    network = config.platform.network.model_copy(update={"s3_gateway_endpoint": False})
    platform = config.platform.model_copy(update={"network": network})
    recording = record(config.model_copy(update={"platform": platform}))
    assert not recording.mocks.of_type(ENDPOINT)


def test_a_subnet_without_its_own_route_table_gets_the_endpoint_on_the_main_one():
    """An existing VPC's subnet often has no explicit association and uses the main table: a
    look-up of explicit associations alone left it routing ECR's layers through NAT."""
    assert subnets_route_tables([["rtb-a"], ["rtb-shared"], ["rtb-shared"]], ["rtb-main"]) == [
        "rtb-a",
        "rtb-shared",
    ]  # every subnet has its own: the main table is left alone
    assert subnets_route_tables([["rtb-a"], []], ["rtb-main"]) == ["rtb-a", "rtb-main"]


def test_an_existing_vpcs_endpoint_looks_up_each_subnets_table(monkeypatch):
    """Through the program: one look-up per listed subnet, and the main table for the one
    without its own."""
    asked: list[list[dict]] = []
    answer = RecordingMocks.call
    tables = {"subnet-0a": ["rtb-0a"], "subnet-0b": [], "true": ["rtb-0main"]}

    def call(self, args):
        if args.token == "aws:ec2/getRouteTables:getRouteTables":
            asked.append(args.args["filters"])
            (value,) = args.args["filters"][0]["values"]
            return {"ids": tables[value], "id": "route-tables"}
        return answer(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    config = load_stack("optimized")
    network = config.platform.network.model_copy(
        update={"mode": "existing", "vpc_id": "vpc-0abc", "s3_gateway_endpoint": True,
                "private_subnet_ids": ("subnet-0a", "subnet-0b")}
    )  # fmt: skip
    platform = config.platform.model_copy(update={"network": network})
    recording = record(config.model_copy(update={"platform": platform}))
    assert one(recording, ENDPOINT).inputs["routeTableIds"] == ["rtb-0a", "rtb-0main"]
    assert sorted(f[0]["name"] for f in asked) == [
        "association.main",
        "association.subnet-id",
        "association.subnet-id",
    ]


@pytest.mark.parametrize(
    ("mode", "setting", "created"),
    [("create", None, True), ("existing", None, False), ("existing", True, True),
     ("create", False, False)],
)  # fmt: skip
def test_the_endpoint_is_on_by_default_only_in_a_vpc_the_stack_creates(mode, setting, created):
    """An existing VPC may route S3 through an endpoint already: a second one on the same route
    table fails with RouteAlreadyExists, after the stack has created other things."""
    ids = {"vpc_id": "vpc-0abc", "private_subnet_ids": ("subnet-a",)} if mode == "existing" else {}
    config = NetworkConfig(mode=mode, s3_gateway_endpoint=setting, **ids)
    assert config.wants_s3_gateway_endpoint is created


def zones_asked(monkeypatch, names: list[str]) -> list[dict]:
    """Answer the zone look-up with ``names``; return what the program asked for."""
    asked: list[dict] = []
    answer = RecordingMocks.call

    def call(self, args):
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            asked.append({**args.args, "provider": args.provider})
            return {"names": names, "zoneIds": [], "id": "zones"}
        return answer(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    return asked


def test_subnets_go_to_zones_where_eks_runs(monkeypatch):
    """Zone names map to different zones per account: the program asks for the ones EKS
    supports, without opt-in, and gives awsx their names, not a count of the region's first."""
    asked = zones_asked(monkeypatch, ["us-east-1b", "us-east-1c", "us-east-1d"])
    recording = record(load_stack("optimized"))
    vpc = one(recording, "awsx:ec2:Vpc").inputs
    assert vpc["availabilityZoneNames"] == ["us-east-1b", "us-east-1c"]
    assert "numberOfAvailabilityZones" not in vpc
    (query,) = asked
    # On the stack's explicit provider (its region and default tags), not a default one.
    assert query["provider"].split("::")[-2:] == ["aws", "aws-id"]
    # No state filter: an impaired zone dropping out would move the subnets on the next up.
    assert "state" not in query
    assert sorted(query["excludeZoneIds"]) == sorted(EKS_UNSUPPORTED_ZONE_IDS) != []
    assert query["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]


def test_too_few_supported_zones_is_an_error_naming_the_setting(monkeypatch):
    zones_asked(monkeypatch, ["us-west-1a"])
    pulumi.runtime.set_mocks(RecordingMocks(), preview=False)
    with pytest.raises(ValueError, match=r"network.availabilityZones is 2, but the region has 1 "):
        zone_names(2)


def existing_vpc_stack() -> object:
    config = load_stack("optimized")
    network = config.platform.network.model_copy(
        update={"mode": "existing", "vpc_id": "vpc-0abc",
                "private_subnet_ids": ("subnet-0a", "subnet-0b")}
    )  # fmt: skip
    platform = config.platform.model_copy(update={"network": network})
    return config.model_copy(update={"platform": platform})


def test_kubecost_prices_traffic_between_zones_of_an_existing_vpc_by_its_ranges(monkeypatch):
    """The program read no range of an existing VPC, so Kubecost's in-zone list lost all three
    private ranges, and traffic to other private networks (peered VPCs, on-premises) counted as
    crossing zones. The VPC's ranges are now read from EC2, each run."""
    asked: list[dict] = []
    answer = RecordingMocks.call

    def call(self, args):
        if args.token != "aws:ec2/getVpc:getVpc":
            return answer(self, args)
        asked.append(args.args)
        found = answer(self, args)
        removed = {"cidrBlock": "192.168.0.0/20", "associationId": "a-1", "state": "disassociating"}
        return {**found, "cidrBlockAssociations": [*found["cidrBlockAssociations"], removed]}

    monkeypatch.setattr(RecordingMocks, "call", call)
    recording = record(existing_vpc_stack())
    assert [a["id"] for a in asked] == ["vpc-0abc"]
    release = one(recording, "kubernetes:helm.sh/v3:Release", "kubecost-chart").inputs
    in_zone = release["values"]["networkCosts"]["config"]["destinations"]["in-zone"]
    assert MOCK_VPC_CIDR.startswith("10.") and "10.0.0.0/8" not in in_zone
    # A secondary range being removed is no longer the VPC's.
    assert {"172.16.0.0/12", "192.168.0.0/16"} <= set(in_zone)


def test_a_created_vpc_asks_ec2_for_no_range(monkeypatch):
    asked: list[str] = []
    answer = RecordingMocks.call

    def call(self, args):
        asked.append(args.token)
        return answer(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    recording = record(load_stack("optimized"))
    assert "aws:ec2/getVpc:getVpc" not in asked
    release = one(recording, "kubernetes:helm.sh/v3:Release", "kubecost-chart").inputs
    in_zone = release["values"]["networkCosts"]["config"]["destinations"]["in-zone"]
    assert "10.0.0.0/8" not in in_zone and "172.16.0.0/12" in in_zone
