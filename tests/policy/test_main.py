"""The pack module (policy/__main__.py): every rule as a policy, stack-aware ones twice."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pulumi_policy


def test_the_pack_loads_with_both_enforcement_levels(monkeypatch):
    """The pack module builds every policy; stack-aware ones twice (mandatory and advisory)."""
    created = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: created.append(kwargs))
    path = Path(__file__).resolve().parents[2] / "policy" / "__main__.py"
    spec = importlib.util.spec_from_file_location("finops_policy_pack", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    names = {p.name: p.enforcement_level for p in created[0]["policies"]}
    assert names["rightsizing-ceiling"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert names["rightsizing-ceiling-advisory"] == pulumi_policy.EnforcementLevel.ADVISORY
    assert names["cost-tags"] == pulumi_policy.EnforcementLevel.MANDATORY
