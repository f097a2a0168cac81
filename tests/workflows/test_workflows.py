"""The GitHub workflows, linted offline with actionlint (syntax, expressions, action inputs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def actionlint() -> str:
    binary = shutil.which("actionlint") or str(
        Path(__import__("sys").executable).parent / "actionlint"
    )
    assert Path(binary).exists(), "actionlint is installed by make setup (requirements-dev.txt)"
    return binary


def test_workflows_pass_actionlint():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 2
    result = subprocess.run([actionlint(), *files], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_bad_expression_and_input(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with:\n          not-an-input: 1\n"
        "      - run: echo ${{ github.nope.nope }}\n"
    )
    result = subprocess.run([actionlint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "not-an-input" in result.stdout


def test_preview_workflow_shape():
    preview = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["unoptimized", "optimized"]
    assert preview["permissions"]["id-token"] == "write"
    assert preview["concurrency"]["cancel-in-progress"] is True
    assert "head.repo.full_name == github.repository" in job["if"]
    pulumi = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["uses"] == "pulumi/actions@v7"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["policyPacks"] == "policy"
    creds = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert "role-to-assume" in creds["with"] and "aws-access-key-id" not in creds["with"]
    tests = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    assert any(s.get("run") == "make test" for s in tests["jobs"]["test"]["steps"])
