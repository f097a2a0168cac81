"""The rightsizing ceiling reads what `finops-sim rightsize --write` measured, where it exists."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from finops_platform import config as platform_config
from finops_rules import RULES
from tests.infra.support import recorded


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    copied = tmp_path / "stacks"
    shutil.copytree(platform_config.STACKS_DIR, copied)
    monkeypatch.setattr(platform_config, "STACKS_DIR", copied)
    return copied


def deployment(app: str, cpu: str, memory: str):
    resource = next(
        r
        for r in recorded("optimized").mocks.resources
        if (r.typ, r.name)
        in {
            ("kubernetes:apps/v1:Deployment", f"workloads-deployment-{app}"),
            ("kubernetes:apps/v1:StatefulSet", f"workloads-statefulset-{app}"),
        }
    )
    props = copy.deepcopy(resource.inputs)
    container = props["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"] = {"cpu": cpu, "memory": memory}
    return resource.typ, props


def measured(stacks, app: str, container: str, cpu: str, memory: str) -> None:
    workload = {"apps": [app], "container": container}
    workload["recommendation"] = {"cpu": cpu, "memory": memory}
    (stacks / "rightsize.optimized.json").write_text(json.dumps({"workloads": [workload]}))


def test_a_measured_recommendation_is_the_containers_ceiling(stacks):
    _, check, _ = RULES["rightsizing-ceiling"]
    measured(stacks, "ai-gateway", "gateway", "245m", "688Mi")
    # Above the stack's 500m / 512Mi, but within what was measured: allowed.
    assert check(*deployment("ai-gateway", "245m", "688Mi"), "optimized") == []
    assert check(*deployment("ai-gateway", "300m", "688Mi"), "optimized") == [
        "ai-gateway: container gateway requests 300m cpu, above the ceiling 245m "
        "(measured, rightsize.optimized.json)"
    ]
    # Redis has no measurement: the stack's ceiling still applies to it.
    assert check(*deployment("redis", "600m", "256Mi"), "optimized") == [
        "redis: container valkey requests 600m cpu, above the ceiling 500m"
    ]


def test_without_measurements_the_stacks_ceiling_applies(stacks):
    _, check, _ = RULES["rightsizing-ceiling"]
    (stacks / "rightsize.optimized.json").unlink(missing_ok=True)
    assert check(*deployment("ai-gateway", "450m", "400Mi"), "optimized") == []
    assert len(check(*deployment("ai-gateway", "600m", "600Mi"), "optimized")) == 2
