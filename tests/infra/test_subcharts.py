"""The Grafana stand-in (subcharts.py): Helm's value coalescing, and the `helm create` naming
checked against what a real `helm template` names for a chart that implements it."""

from __future__ import annotations

import pytest

from finops_platform.render import helm_template
from tests.infra.subcharts import coalesce, helm_fullname
from tests.infra.support import CHARTS, need_shared


def test_coalesce_merges_maps_replaces_the_rest_and_drops_nulls():
    defaults = {"sidecar": {"label": "a", "labelValue": "", "list": [1, 2]}, "keep": 1}
    parent = {"sidecar": {"labelValue": "1", "list": [3]}}
    program = {"sidecar": {"label": "b"}, "keep": None}
    assert coalesce(defaults, parent, program) == {
        "sidecar": {"label": "b", "labelValue": "1", "list": [3]}
    }
    assert defaults["sidecar"]["list"] == [1, 2]  # the layers are left alone


@pytest.mark.parametrize(
    ("release", "values", "expected"),
    [
        ("karpenter", {}, "karpenter"),
        ("my-karpenter-release", {}, "my-karpenter-release"),
        ("demo", {}, "demo-karpenter"),
        ("demo", {"nameOverride": "kp"}, "demo-kp"),
        ("demo", {"fullnameOverride": "fixed"}, "fixed"),
    ],
)
def test_the_naming_rule_matches_a_real_render(tmp_path, release, values, expected):
    """Karpenter's chart names its Service with the same `helm create` rule as Grafana's."""
    need_shared(CHARTS, "the sources of the charts the platform installs")
    folder = CHARTS / "karpenter"
    settings = {"settings": {"clusterName": "c", "interruptionQueue": "q"}}
    row = {"id": "x", "name": release, "namespace": "kube-system", "values": settings | values}
    rendered = helm_template(row, folder, [], tmp_path)
    services = [
        o.manifest["metadata"]["name"] for o in rendered.objects if o.manifest["kind"] == "Service"
    ]
    assert services == [expected] == [helm_fullname(release, "karpenter", values)]
