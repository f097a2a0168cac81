"""The EC2 Spot service-linked role. A fresh account has none, and without it every spot launch
fails and Karpenter quietly buys on-demand capacity instead, so a stack whose NodePools allow
spot creates it, unless the account already has one that another stack or a person made.

The role is the account's, shared by every region and stack, and free: `pulumi destroy` leaves
it, so another stack's spot launches keep working, and the stack that made it adopts it again
(by import) on its next `pulumi up`, where creating it would be refused as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

if TYPE_CHECKING:
    from . import KarpenterArgs

SPOT_SERVICE = "spot.amazonaws.com"
SPOT_ROLE = "AWSServiceRoleForEC2Spot"
SPOT_ROLE_DESCRIPTION = "lets EC2 launch the spot instances Karpenter asks for"


@dataclass(frozen=True)
class ExistingRole:
    arn: str
    tags: dict[str, str]


def owned_by_stack(tags: dict[str, str] | None, stack_tags: dict[str, str]) -> bool:
    """Whether an existing role carries this stack's tags, i.e. this stack created it."""
    return tags is not None and all(tags.get(k) == stack_tags[k] for k in ("project", "stack"))


def existing_spot_role(parent: pulumi.Resource) -> ExistingRole | None:
    """The account's spot role, or None when the account has none; asked through ``parent``'s
    AWS provider (the stack's account)."""
    through = pulumi.InvokeOptions(parent=parent)
    found = aws.iam.get_roles(
        name_regex=f"^{SPOT_ROLE}$", path_prefix=f"/aws-service-role/{SPOT_SERVICE}/", opts=through
    )
    if not found.names:
        return None
    role = aws.iam.get_role(name=SPOT_ROLE, opts=through)
    return ExistingRole(role.arn, dict(role.tags or {}))


def spot_service_linked_role(
    name: str, args: KarpenterArgs, parent: pulumi.Resource
) -> list[pulumi.Resource]:
    """The role as a resource when this stack owns it (imported when it already exists, as
    after a destroy); nothing when spot is off or the account has the role from elsewhere
    (then it is only reported)."""
    if not any("spot" in pool.capacity_types for pool in args.config.node_pools):
        return []
    existing = existing_spot_role(parent)
    if existing is not None and not owned_by_stack(existing.tags, args.tags):
        pulumi.log.info(
            f"{SPOT_ROLE} already exists in this account (not created by this stack): "
            "spot capacity can be launched",
            resource=parent,
        )
        return []
    role = aws.iam.ServiceLinkedRole(
        f"{name}-spot",
        aws_service_name=SPOT_SERVICE,
        description=SPOT_ROLE_DESCRIPTION,
        tags=args.tags,
        opts=pulumi.ResourceOptions(
            parent=parent,
            retain_on_delete=True,
            import_=None if existing is None else existing.arn,
        ),
    )
    return [role]
