"""Karpenter's IAM, queue and EventBridge rules, compared with the official getting-started
CloudFormation of Karpenter 1.14 (../shared/schemas/karpenter), statement by statement."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from finops_platform.builders.iam import (
    INTERRUPTION_EVENTS,
    KARPENTER_NODE_MANAGED_POLICIES,
    controller_policy,
    event_pattern,
    interruption_queue_policy,
)

SUBSTITUTIONS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "ClusterName": "finops-optimized",
    "KarpenterNodeRole.Arn": "arn:aws:iam::123456789012:role/KarpenterNodeRole-finops-optimized",
    "KarpenterInterruptionQueue.Arn": "arn:aws:sqs:us-east-1:123456789012:Karpenter-finops",
}


class _CfnLoader(yaml.SafeLoader):
    pass


for tag in ("!Sub", "!GetAtt", "!Ref"):
    _CfnLoader.add_constructor(
        tag, lambda loader, node, tag=tag: {tag: loader.construct_scalar(node)}
    )


def _sub(text: str) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: SUBSTITUTIONS[m.group(1)], text)


@pytest.fixture
def cloudformation(schemas):
    return yaml.load(
        (schemas / "karpenter" / "getting-started-cloudformation.yaml").read_text(),
        Loader=_CfnLoader,
    )["Resources"]


def _normalise(value):
    """Order-insensitive: single values become one-item lists, lists are sorted."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted(json.dumps(_normalise(v), sort_keys=True) for v in value)
    return [json.dumps(value)] if not isinstance(value, bool) else [json.dumps(str(value).lower())]


def _statements(document: dict) -> dict[str, dict]:
    return {s["Sid"]: _normalise({k: v for k, v in s.items() if k != "Sid"})
            for s in document["Statement"]}  # fmt: skip


def test_controller_policy_matches_the_official_managed_policies(cloudformation):
    official: dict[str, dict] = {}
    for name, resource in cloudformation.items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and name != "ZonalShiftPolicy":
            document = json.loads(_sub(resource["Properties"]["PolicyDocument"]["!Sub"]))
            official |= _statements(document)
    ours = _statements(
        controller_policy(
            partition="aws", region="us-east-1", account_id="123456789012",
            cluster_name="finops-optimized",
            node_role_arn=SUBSTITUTIONS["KarpenterNodeRole.Arn"],
            queue_arn=SUBSTITUTIONS["KarpenterInterruptionQueue.Arn"],
        )
    )  # fmt: skip
    assert set(ours) == set(official)
    for sid, statement in official.items():
        assert ours[sid] == statement, sid


def test_node_role_policies_match(cloudformation):
    arns = cloudformation["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"]
    names = {_sub(a["!Sub"]).rsplit("/", 1)[1] for a in arns}
    assert names == set(KARPENTER_NODE_MANAGED_POLICIES)


def test_queue_settings_and_policy_match(cloudformation):
    queue = cloudformation["KarpenterInterruptionQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 300 and queue["SqsManagedSseEnabled"] is True
    official = cloudformation["KarpenterInterruptionQueuePolicy"]["Properties"]["PolicyDocument"]
    ours = interruption_queue_policy(SUBSTITUTIONS["KarpenterInterruptionQueue.Arn"])
    assert len(ours["Statement"]) == len(official["Statement"])
    for mine, theirs in zip(ours["Statement"], official["Statement"], strict=True):
        assert mine["Effect"] == theirs["Effect"]
        assert _normalise(mine["Action"]) == _normalise(theirs["Action"])
        assert _normalise(mine["Principal"]) == _normalise(theirs["Principal"])
        if "Condition" in theirs:
            assert _normalise(mine["Condition"]) == _normalise(theirs["Condition"])


def test_event_patterns_match_every_official_rule(cloudformation):
    official = sorted(
        json.dumps(r["Properties"]["EventPattern"], sort_keys=True)
        for r in cloudformation.values()
        if r["Type"] == "AWS::Events::Rule"
    )
    ours = sorted(json.dumps(event_pattern(name), sort_keys=True) for name in INTERRUPTION_EVENTS)
    assert ours == official
    assert all(t["Id"] == "KarpenterInterruptionQueueTarget" for r in cloudformation.values()
               if r["Type"] == "AWS::Events::Rule" for t in r["Properties"]["Targets"])  # fmt: skip
