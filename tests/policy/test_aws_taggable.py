"""Taggability as the pinned pulumi-aws schema says, through its generated Python SDK."""

from __future__ import annotations

import pytest

from aws_taggable import is_taggable, resource_classes
from tests.infra.support import ALL_STACKS, recorded


def test_the_registry_is_the_whole_provider():
    classes = resource_classes()
    assert len(classes) > 1000
    assert classes["aws:ec2/route:Route"] == ("pulumi_aws.ec2", "Route")


@pytest.mark.parametrize(
    "resource_type",
    [
        "aws:ec2/subnet:Subnet",
        "aws:ec2/natGateway:NatGateway",
        "aws:eks/accessEntry:AccessEntry",
        "aws:iam/role:Role",
        "aws:sqs/queue:Queue",
    ],
)
def test_resources_with_a_tags_map_are_taggable(resource_type):
    assert is_taggable(resource_type)


@pytest.mark.parametrize(
    "resource_type",
    [
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:ec2/tag:Tag",
        "aws:autoscaling/group:Group",  # its tags are a list, which defaultTags do not reach
        "aws:nosuch/thing:Thing",
    ],
)
def test_resources_without_one_are_not(resource_type):
    assert not is_taggable(resource_type)


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_the_pinned_sdk_knows_every_aws_type_the_program_registers(stack):
    types = {r.typ for r in recorded(stack).mocks.resources if r.typ.startswith("aws:")}
    assert types <= set(resource_classes())
