"""`finops-sim render`: dependencies.json, and the charts rendered with a real `helm template`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from finops_platform.helm import HelmError
from finops_platform.render import (
    dependency_rows,
    helm_releases,
    load_manifests,
    render_charts,
    resource_id,
    transitive,
)
from finops_sim.cli import main
from tests.infra.support import CHARTS, need_shared, recorded


def test_dependencies_have_a_row_for_every_registered_resource(recording):
    rows = dependency_rows(recording.monitor)
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))
    registered = {resource_id(r.typ, r.name) for r in recording.mocks.resources}
    assert registered <= set(ids)
    assert "finops:platform:Karpenter::karpenter" in ids  # components too
    known = set(ids)
    assert all(set(row["dependsOn"]) <= known for row in rows)


def test_dependencies_hold_depends_on_inputs_and_providers(recording):
    rows = {row["id"]: set(row["dependsOn"]) for row in dependency_rows(recording.monitor)}
    release = "kubernetes:helm.sh/v3:Release::karpenter-chart"
    pool = next(i for i in rows if i.startswith("kubernetes:karpenter.sh/v1:NodePool::"))
    assert release in rows[pool]  # explicit depends_on
    provider = "pulumi:providers:kubernetes::cluster-k8s"
    assert provider in rows[release]  # the provider that applies it
    assert "eks:index:Cluster::cluster-eks" in rows[provider]  # its kubeconfig input
    assert "eks:index:Cluster::cluster-eks" in transitive(list(_rows(rows)))[pool]


def _rows(rows: dict[str, set[str]]):
    for node, deps in rows.items():
        yield {"id": node, "dependsOn": sorted(deps)}


def test_transitive_follows_chains_and_survives_cycles():
    rows = [
        {"id": "a", "dependsOn": ["b"]},
        {"id": "b", "dependsOn": ["c"]},
        {"id": "c", "dependsOn": ["a"]},
    ]
    assert transitive(rows)["a"] == {"a", "b", "c"}


def test_render_cli_writes_the_charts_and_dependencies(tmp_path, capsys):
    need_shared(CHARTS, "the sources of the charts the platform installs")
    out = tmp_path / "local"
    args = ["render", "--stack", "local", "--out", str(out), "--helm-charts", str(CHARTS)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "chart objects in" in printed
    manifest = (out / "charts" / "kube-prometheus-stack.yaml").read_text()
    assert "# Source: kube-prometheus-stack/templates/prometheus/prometheus.yaml" in manifest
    kinds = {d["kind"] for d in load_manifests(manifest) if d}
    assert {"Prometheus", "CustomResourceDefinition", "ServiceMonitor"} <= kinds
    rows = json.loads((out / "dependencies.json").read_text())["resources"]
    assert {"id", "dependsOn"} == set(rows[0])
    assert any(r["id"] == "kubernetes:helm.sh/v3:Release::observability-chart" for r in rows)


def test_render_cli_names_a_chart_folder_without_the_chart(tmp_path, capsys):
    empty = tmp_path / "charts"
    empty.mkdir()
    args = ["render", "--stack", "local", "--out", str(tmp_path / "o"), "--helm-charts", str(empty)]
    assert main(args) == 2
    assert f"{empty}/kube-prometheus-stack: no Chart.yaml" in capsys.readouterr().err


def test_a_chart_of_another_version_is_refused(tmp_path):
    folder = tmp_path / "kube-prometheus-stack"
    folder.mkdir()
    (folder / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 1.0.0\n")
    with pytest.raises(HelmError, match=r"version 1\.0\.0, but the program installs .* 88\.5\.3"):
        render_charts(helm_releases(recorded("local").mocks), tmp_path)


def tiny_chart(root: Path) -> Path:
    """A chart with a subchart it does not carry, as a partial copy of a chart would be."""
    folder = root / "tiny"
    (folder / "templates").mkdir(parents=True)
    (folder / "crds").mkdir()
    (folder / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "tiny",
                "version": "1.0.0",
                "dependencies": [{"name": "absent", "version": "1.0.0", "condition": "absent.on"}],
            }
        )
    )
    (folder / "values.yaml").write_text("greeting: hello\nabsent: {on: true}\n")
    (folder / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tiny}\n"
        "data: {greeting: {{ .Values.greeting | quote }}, "
        'absent: {{ .Values.absent.on | quote }}, ops: "="}\n'
    )
    (folder / "crds" / "widget.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.org"},
                "spec": {
                    "group": "example.org",
                    "names": {"kind": "Widget", "plural": "widgets"},
                    "scope": "Namespaced",
                    "versions": [{"name": "v1", "served": True, "storage": True}],
                },
            }
        )
    )
    return folder


def tiny_release(**fields: object) -> dict:
    """The recorded Release of the tiny chart, with ``fields`` set."""
    return {
        "id": "kubernetes:helm.sh/v3:Release::tiny",
        "name": "tiny",
        "namespace": "demo",
        "chart": "tiny",
        "version": "1.0.0",
        **fields,
    }


def test_helm_template_renders_a_chart_that_lacks_a_subchart(tmp_path):
    tiny_chart(tmp_path)
    [rendered] = render_charts([tiny_release(values={"greeting": "from the program"})], tmp_path)
    assert rendered.missing_subcharts == ["absent"]
    by_kind = {o.manifest["kind"]: o for o in rendered.objects}
    config = by_kind["ConfigMap"]
    expected = {"greeting": "from the program", "absent": "false", "ops": "="}
    assert config.manifest["data"] == expected
    assert not config.from_crds_dir and by_kind["CustomResourceDefinition"].from_crds_dir
    assert "name: absent" in (tmp_path / "tiny" / "Chart.yaml").read_text()  # source untouched


def test_a_release_that_skips_its_crds_renders_none(tmp_path):
    tiny_chart(tmp_path)
    [rendered] = render_charts([tiny_release(values={}, skip_crds=True)], tmp_path)
    assert [o.manifest["kind"] for o in rendered.objects] == ["ConfigMap"]
