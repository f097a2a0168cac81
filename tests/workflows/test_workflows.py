"""The GitHub workflows, linted offline with actionlint (syntax, expressions, action inputs and
runtimes), and the preview's shape."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from finops_common.config import ConfigError
from finops_platform.config import PROJECT, require_user_values
from finops_platform.render import load_stack

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
USES = re.compile(r"^\s*-?\s*uses:\s*([\w.-]+/[\w.-]+)@v(\d+)\s*$", re.MULTILINE)


def actionlint() -> str:
    binary = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    assert Path(binary).exists(), "actionlint is installed by make setup (requirements-dev.txt)"
    return binary


def lint(tmp_path: Path, uses: str, with_: str = "") -> subprocess.CompletedProcess[str]:
    """actionlint on a one-step workflow that uses ``uses`` with the ``with:`` lines given."""
    workflow = tmp_path / "step.yml"
    workflow.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        f"      - uses: {uses}\n" + (f"        with:\n{with_}" if with_ else "")
    )
    return subprocess.run(
        [actionlint(), "-oneline", str(workflow)], capture_output=True, text=True, timeout=60
    )


def used_actions() -> set[tuple[str, int]]:
    """(action, major) of every ``uses:`` in the workflows."""
    return {
        (action, int(major))
        for path in WORKFLOWS.glob("*.yml")
        for action, major in USES.findall(path.read_text())
    }


def test_workflows_pass_actionlint():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 2
    result = subprocess.run([actionlint(), *files], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_bad_expression_and_input(tmp_path):
    result = lint(tmp_path, "actions/checkout@v7", "          not-an-input: 1\n")
    assert result.returncode != 0
    assert "not-an-input" in result.stdout
    bad = tmp_path / "expression.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.nope.nope }}\n"
    )
    result = subprocess.run([actionlint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "nope" in result.stdout


@pytest.mark.parametrize(
    "uses",
    [
        "actions/checkout@v4",
        "actions/setup-python@v5",
        "aws-actions/configure-aws-credentials@v4",
        "aws-actions/configure-aws-credentials@v5",
        "pulumi/actions@v6",
    ],
)
def test_actionlint_rejects_node20_actions(tmp_path, uses):
    result = lint(tmp_path, uses, "          aws-region: us-east-1\n" if "aws" in uses else "")
    assert result.returncode != 0
    assert 'runtime "node20" is deprecated' in result.stdout


def test_every_action_is_at_the_newest_major_actionlint_knows(tmp_path):
    """actionlint checks the inputs of the action versions it knows: the next major of each used
    action must be unknown to it (no input error), the used one known (an input error)."""
    used = used_actions()
    assert {action for action, _ in used} == {
        "actions/checkout",
        "actions/setup-python",
        "aws-actions/configure-aws-credentials",
        "pulumi/actions",
    }
    for action, major in used:
        assert "is not defined" in lint(tmp_path, f"{action}@v{major}", "          x: 1\n").stdout
        newer = lint(tmp_path, f"{action}@v{major + 1}", "          x: 1\n").stdout
        assert "is not defined" not in newer, f"{action} has a newer major than v{major}"


def preview_step(job: dict) -> dict:
    return next(s for s in job["steps"] if (s.get("with") or {}).get("command") == "preview")


def step_named(job: dict, name: str) -> tuple[int, dict]:
    return next((i, s) for i, s in enumerate(job["steps"]) if s.get("name") == name)


def test_preview_sets_the_allow_list_the_program_requires_before_previewing():
    """The program refuses the stack files' placeholder under this exact key (config.py)."""
    job = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())["jobs"]["preview"]
    key = f"{PROJECT}:platform.cluster.publicAccessCidrs[0]"
    at, setting = step_named(job, "Set the API allow-list")
    assert f"--path '{key}' \"$CIDR\"" in setting["run"]
    assert setting["env"]["CIDR"] == "${{ vars.PREVIEW_PUBLIC_ACCESS_CIDR }}"
    assert "pulumi stack select --create" in setting["run"]
    assert at < job["steps"].index(preview_step(job))
    guard_at, _ = step_named(job, "Require the API allow-list")
    assert guard_at == 0
    with pytest.raises(ConfigError, match=re.escape(key)):
        require_user_values(load_stack("optimized"))


@pytest.mark.parametrize(("cidr", "code"), [("", 1), ("198.51.100.7/32", 0)])
def test_the_allow_list_guard_fails_clearly_when_the_variable_is_unset(cidr, code):
    job = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())["jobs"]["preview"]
    _, guard = step_named(job, "Require the API allow-list")
    done = subprocess.run(
        ["bash", "-e", "-c", guard["run"]], env={"CIDR": cidr}, capture_output=True, text=True
    )
    assert done.returncode == code
    assert ("::error title=PREVIEW_PUBLIC_ACCESS_CIDR is not set::" in done.stdout) == bool(code)


def test_preview_workflow_shape():
    preview = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["unoptimized", "optimized"]
    assert preview["permissions"]["id-token"] == "write"
    assert preview["concurrency"]["cancel-in-progress"] is True
    assert "head.repo.full_name == github.repository" in job["if"]
    pulumi = preview_step(job)
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["policyPacks"] == "policy"
    # Without cluster access: no refresh, and an unreachable API found fast.
    assert pulumi["with"]["refresh"] is False
    assert int(pulumi["env"]["PULUMI_K8S_CLIENT_TIMEOUT"]) <= 30
    creds = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert "role-to-assume" in creds["with"] and "aws-access-key-id" not in creds["with"]
    tests = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    assert any(s.get("run") == "make test" for s in tests["jobs"]["test"]["steps"])
