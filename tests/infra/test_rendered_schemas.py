"""What the program would deploy, against real schemas: kubernetes-validate for core types, the
CRDs' openAPIV3Schema for custom resources, and the charts' default values key by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ai_gateway.settings import deep_merge
from finops_platform import versions
from finops_platform.config import load_stack
from finops_platform.render import (
    MOCK_VPC_CIDR,
    helm_releases,
    kubernetes_objects,
    stand_ins,
    write,
)

CRDS = {
    ("karpenter.sh/v1", "NodePool"): "karpenter/karpenter.sh_nodepools.yaml",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "karpenter/karpenter.k8s.aws_ec2nodeclasses.yaml",
    (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    ): "kube-prometheus-stack/crd-servicemonitors.yaml",
    (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    ): "kube-prometheus-stack/crd-prometheusrules.yaml",
}
CHART_DEFAULTS = {
    "karpenter": ["karpenter/values.yaml"],
    "kube-prometheus-stack": ["kube-prometheus-stack/values.yaml"],
    "kubecost": ["kubecost/values.yaml"],
}
# Subcharts whose default values are not in ../shared: only these keys are accepted unchecked.
UNVERIFIABLE = {
    ("kube-prometheus-stack", "kube-state-metrics", "metricLabelsAllowlist"),
}
FREE_FORM = {"annotations", "labels", "nodeSelector", "podLabels", "podAnnotations", "resources"}


def validate_against_crd(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    """The CRD's schema as JSON Schema; its Go-flavoured regexes are compiled only when used."""
    jsonschema.Draft7Validator(schema).validate(manifest)


def crd_schema(schemas: Path, api_version: str, kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((schemas / CRDS[(api_version, kind)]).read_text())
    version = api_version.split("/")[1]
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version and v["served"])
    return served["schema"]["openAPIV3Schema"]


def test_core_objects_pass_kubernetes_validate(any_recording):
    version = versions.KUBERNETES_VERSION
    core = [
        o
        for o in kubernetes_objects(any_recording.mocks)
        if "." not in o["apiVersion"].split("/")[0]
    ]
    assert {o["kind"] for o in core} >= {"Namespace", "Secret", "ConfigMap"}
    for manifest in core:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_custom_resources_pass_their_crd_schema(any_recording, schemas):
    custom = [
        o for o in kubernetes_objects(any_recording.mocks) if (o["apiVersion"], o["kind"]) in CRDS
    ]
    expected = {"ServiceMonitor", "PrometheusRule"}
    if any_recording.stack != "local":
        expected |= {"NodePool", "EC2NodeClass"}
    assert {o["kind"] for o in custom} == expected
    for manifest in custom:
        validate_against_crd(
            manifest, crd_schema(schemas, manifest["apiVersion"], manifest["kind"])
        )


def test_a_broken_nodepool_fails_its_schema(recording, schemas):
    pool = next(o for o in kubernetes_objects(recording.mocks) if o["kind"] == "NodePool")
    pool["spec"]["disruption"]["consolidationPolicy"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError):
        validate_against_crd(pool, crd_schema(schemas, "karpenter.sh/v1", "NodePool"))


def unknown_keys(values: Any, defaults: Any, path: tuple[str, ...]) -> list[str]:
    """Key paths in ``values`` that the chart's defaults do not have."""
    if not isinstance(values, dict):
        return []
    if not isinstance(defaults, dict) or not defaults:
        return []  # a scalar, an empty map or null default: free-form below
    problems = []
    for key, value in values.items():
        here = (*path, key)
        if here in UNVERIFIABLE or key in FREE_FORM:
            continue
        if key not in defaults:
            problems.append(".".join(here[1:]))
            continue
        problems += unknown_keys(value, defaults[key], here)
    return problems


def chart_defaults(schemas: Path, chart: str) -> dict[str, Any]:
    defaults = yaml.safe_load((schemas / CHART_DEFAULTS[chart][0]).read_text())
    if chart == "kube-prometheus-stack":  # its grafana subchart's own defaults, under "grafana"
        grafana = yaml.safe_load((schemas / "grafana" / "values.yaml").read_text())
        defaults["grafana"] = deep_merge(grafana, defaults["grafana"])
    return defaults


def test_helm_values_keys_exist_in_the_charts_defaults(any_recording, schemas):
    releases = {
        r["chart"].rsplit("/", 1)[-1]: r
        for r in helm_releases(any_recording.mocks)
        if r["values"]  # the karpenter-crd chart takes none
    }
    expected = {"kube-prometheus-stack"} if any_recording.stack == "local" else set(CHART_DEFAULTS)
    assert set(releases) == expected
    for chart, release in releases.items():
        assert unknown_keys(release["values"], chart_defaults(schemas, chart), (chart,)) == [], (
            chart
        )


def test_a_misspelt_values_key_is_caught(schemas):
    defaults = chart_defaults(schemas, "kube-prometheus-stack")
    bad = {"grafana": {"sidecar": {"dashboard": {"enabled": True}}}}
    assert unknown_keys(bad, defaults, ("kube-prometheus-stack",)) == ["grafana.sidecar.dashboard"]


def test_a_render_names_the_mock_values_that_stand_in_for_live_look_ups():
    """What the program reads from EC2 as it runs, a render shows as the mocks answer it."""
    config = load_stack("optimized")
    assert stand_ins(config) == []
    network = config.platform.network.model_copy(
        update={"mode": "existing", "vpc_id": "vpc-0abc", "private_subnet_ids": ("subnet-0a",)}
    )

    def variant(network=network, kubecost=True, region="us-east-1"):
        platform = config.platform.model_copy(
            update={
                "network": network,
                "kubecost": config.platform.kubecost.model_copy(update={"enabled": kubecost}),
            }
        )
        return config.model_copy(update={"platform": platform, "region": region})

    (ranges,) = stand_ins(variant())
    assert MOCK_VPC_CIDR in ranges and "Kubecost" in ranges
    assert stand_ins(variant(kubecost=False)) == []  # nothing reads the ranges
    endpoint = network.model_copy(update={"s3_gateway_endpoint": True})
    assert ["route tables" in found for found in stand_ins(variant(endpoint))] == [False, True]
    (zones,) = stand_ins(variant(config.platform.network, region="eu-west-1"))
    assert "us-east-1" in zones and "eu-west-1" in zones


def test_finops_sim_render_writes_every_object(tmp_path):
    counts = write("optimized", tmp_path)
    assert counts["stand_ins"] == []
    files = list((tmp_path / "kubernetes").glob("*.yaml"))
    assert len(files) == counts["kubernetes"] >= 8
    assert {p.name for p in (tmp_path / "helm").glob("*.yaml")} == {
        "karpenter-crd.yaml", "karpenter.yaml", "kube-prometheus-stack.yaml", "kubecost.yaml"
    }  # fmt: skip
    secret = yaml.safe_load(
        (tmp_path / "kubernetes" / "secret-monitoring-grafana-admin.yaml").read_text()
    )
    assert set(secret["stringData"].values()) == {"<secret>"}
    aws = (tmp_path / "aws-resources.json").read_text()
    assert "KarpenterNodeRole-finops-optimized" in aws
