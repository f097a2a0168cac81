"""The one way this program makes an EC2 node role: trust EC2, attach AWS-managed policies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import partial

import pulumi
import pulumi_aws as aws

from ..builders.iam import assume_role_by_service, managed_policy_arn


def node_role(
    name: str,
    policies: Iterable[str],
    partition: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
    role_name: str | None = None,
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        name,
        name=role_name,
        assume_role_policy=json.dumps(assume_role_by_service("ec2.amazonaws.com")),
        tags=tags,
        opts=child,
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}",
            role=role.name,
            policy_arn=pulumi.Output.from_input(partition).apply(
                partial(managed_policy_arn, name=policy)
            ),
            opts=child,
        )
        for policy in policies
    ]
    return role, attachments
