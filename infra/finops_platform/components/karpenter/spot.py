"""The EC2 Spot service-linked role. A fresh account has none, and without it every spot launch
fails and Karpenter quietly buys on-demand capacity instead, so a stack whose NodePools allow
spot creates it, unless the account already has one that another stack or a person made."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

if TYPE_CHECKING:
    from . import KarpenterArgs

SPOT_SERVICE = "spot.amazonaws.com"
SPOT_ROLE = "AWSServiceRoleForEC2Spot"


def owned_by_stack(tags: dict[str, str] | None, stack_tags: dict[str, str]) -> bool:
    """Whether an existing role carries this stack's tags, i.e. this stack created it."""
    return tags is not None and all(tags.get(k) == stack_tags[k] for k in ("project", "stack"))


def existing_spot_role_tags() -> dict[str, str] | None:
    """The account's spot role's tags ({} when untagged), or None when the account has none."""
    found = aws.iam.get_roles(
        name_regex=f"^{SPOT_ROLE}$", path_prefix=f"/aws-service-role/{SPOT_SERVICE}/"
    )
    if not found.names:
        return None
    return dict(aws.iam.get_role(name=SPOT_ROLE).tags or {})


def spot_service_linked_role(
    name: str, args: KarpenterArgs, parent: pulumi.Resource
) -> list[pulumi.Resource]:
    """The role as a resource when this stack owns it; nothing when spot is off or the account
    already has the role from elsewhere (then it is only reported)."""
    if not any("spot" in pool.capacity_types for pool in args.config.node_pools):
        return []
    existing = existing_spot_role_tags()
    if existing is not None and not owned_by_stack(existing, args.tags):
        pulumi.log.info(
            f"{SPOT_ROLE} already exists in this account (not created by this stack): "
            "spot capacity can be launched",
            resource=parent,
        )
        return []
    role = aws.iam.ServiceLinkedRole(
        f"{name}-spot",
        aws_service_name=SPOT_SERVICE,
        description="lets EC2 launch the spot instances Karpenter asks for",
        tags=args.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return [role]
