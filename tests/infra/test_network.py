"""The network component under mocks: the S3 gateway endpoint setting (issue 10, defect 12)."""

from __future__ import annotations

from finops_platform.render import load_stack, record
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
