"""The SQS interruption queue and the EventBridge rules that feed it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from ...builders.iam import INTERRUPTION_EVENTS, event_pattern, interruption_queue_policy

if TYPE_CHECKING:
    from . import KarpenterArgs


def create_interruption_queue(
    name: str, args: KarpenterArgs, parent: pulumi.Resource
) -> aws.sqs.Queue:
    child = pulumi.ResourceOptions(parent=parent)
    queue = aws.sqs.Queue(
        f"{name}-interruptions",
        name=f"Karpenter-{args.cluster.name}",
        message_retention_seconds=300,
        sqs_managed_sse_enabled=True,
        tags=args.tags,
        opts=child,
    )
    aws.sqs.QueuePolicy(
        f"{name}-interruptions",
        queue_url=queue.id,
        policy=queue.arn.apply(lambda arn: json.dumps(interruption_queue_policy(arn))),
        opts=child,
    )
    for rule_name in INTERRUPTION_EVENTS:
        rule = aws.cloudwatch.EventRule(
            f"{name}-{rule_name}",
            event_pattern=pulumi.Output.json_dumps(event_pattern(rule_name)),
            tags=args.tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{rule_name}",
            rule=rule.name,
            target_id="KarpenterInterruptionQueueTarget",
            arn=queue.arn,
            opts=child,
        )
    return queue
