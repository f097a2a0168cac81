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
from finops_platform.config import PROJECT, load_stack, require_user_values

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
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


def preview_job() -> dict:
    return yaml.safe_load((WORKFLOWS / "preview.yml").read_text())["jobs"]["preview"]


def run_step(step: dict, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A step's script under bash -e, with a ``pulumi`` on PATH that logs its arguments to
    ``pulumi.log`` and fails ``stack select`` for a stack named ``missing``."""
    cli = tmp_path / "bin" / "pulumi"
    cli.parent.mkdir(exist_ok=True)
    cli.write_text(
        '#!/bin/bash\necho "$*" >> "$LOG"\n'
        '[ "$1 $2 $3" = "stack select missing" ] && exit 255\nexit 0\n'
    )
    cli.chmod(0o755)
    path = f"{cli.parent}:/usr/bin:/bin"
    full = {"PATH": path, "LOG": str(tmp_path / "pulumi.log"), **env}
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=full, capture_output=True, text=True, cwd=REPO
    )


def pulumi_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "pulumi.log"
    return log.read_text().splitlines() if log.exists() else []


def test_preview_sets_every_cidr_of_the_allow_list_before_previewing(tmp_path):
    """The program refuses the stack files' placeholder under this key (config.py); the step
    sets each comma-separated entry of the variable at its index."""
    job = preview_job()
    at, setting = step_named(job, "Set the API allow-list")
    assert at < job["steps"].index(preview_step(job))
    guard_at, _ = step_named(job, "Require the API allow-list")
    assert guard_at == 0
    key = f"{PROJECT}:platform.cluster.publicAccessCidrs"
    done = run_step(
        setting, {"STACK": "acme/optimized", "CIDRS": "198.51.100.7/32, ,203.0.113.0/24,"}, tmp_path
    )
    assert done.returncode == 0, done.stderr
    # The committed list is replaced whole (no stale entry past the variable's), empties skipped.
    assert pulumi_calls(tmp_path) == [
        "login",
        "stack select acme/optimized",
        f"config rm --stack acme/optimized --path {key}",
        f"config set --stack acme/optimized --path {key}[0] 198.51.100.7/32",
        f"config set --stack acme/optimized --path {key}[1] 203.0.113.0/24",
    ]
    (tmp_path / "pulumi.log").unlink()
    empty = run_step(setting, {"STACK": "acme/optimized", "CIDRS": " , "}, tmp_path)
    assert empty.returncode == 1 and "::error title=Empty allow-list::" in empty.stdout
    with pytest.raises(ConfigError, match=re.escape(f"{key}[0]")):
        require_user_values(load_stack("optimized"))


def test_preview_never_creates_a_stack(tmp_path):
    """A stack name that does not resolve fails with an error naming it, before any config is
    set; the preview step does not upsert either."""
    job = preview_job()
    _, setting = step_named(job, "Set the API allow-list")
    done = run_step(setting, {"STACK": "missing", "CIDRS": "198.51.100.7/32"}, tmp_path)
    assert done.returncode == 1
    assert "::error title=No stack missing::" in done.stdout
    assert pulumi_calls(tmp_path) == ["login", "stack select missing"]
    assert "--create" not in setting["run"]
    assert "upsert" not in preview_step(job)["with"]


def test_each_stack_reads_its_own_allow_list_and_name():
    env = preview_job()["env"]
    for stack in ("optimized", "unoptimized"):
        assert f"vars.PREVIEW_PUBLIC_ACCESS_CIDR_{stack.upper()}" in env["CIDRS"]
    assert env["CIDRS"].endswith("|| vars.PREVIEW_PUBLIC_ACCESS_CIDR }}")
    assert "format('{0}/{1}', vars.PULUMI_ORG, matrix.stack)" in env["STACK"]
    assert preview_step(preview_job())["with"]["stack-name"] == "${{ env.STACK }}"


@pytest.mark.parametrize(("cidr", "code"), [("", 1), ("198.51.100.7/32", 0)])
def test_the_allow_list_guard_fails_clearly_when_the_variable_is_unset(cidr, code, tmp_path):
    _, guard = step_named(preview_job(), "Require the API allow-list")
    done = run_step(guard, {"CIDRS": cidr}, tmp_path)
    assert done.returncode == code
    assert ("::error title=PREVIEW_PUBLIC_ACCESS_CIDR is not set::" in done.stdout) == bool(code)


def test_the_pulumi_cli_is_the_sdks_pinned_version(tmp_path):
    """Both pulumi/actions steps install the CLI at the version requirements.txt pins."""
    job = preview_job()
    _, versions = step_named(job, "Read the Pulumi version")
    output = tmp_path / "output"
    done = run_step(versions, {"GITHUB_OUTPUT": str(output)}, tmp_path)
    assert done.returncode == 0, done.stdout
    pin = next(
        line.split("==")[1].strip()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi==")
    )
    assert output.read_text() == f"pulumi={pin}\n"
    installs = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert len(installs) == 2
    for step in installs:
        assert step["with"]["pulumi-version"] == "${{ steps.versions.outputs.pulumi }}"


def test_preview_workflow_shape():
    preview = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["unoptimized", "optimized"]
    # Each job gets only what it uses: the fork notice nothing, the preview OIDC and comments.
    assert preview["permissions"] == {} and preview["jobs"]["fork-notice"]["permissions"] == {}
    assert job["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
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
    # A newer push cancels an older run of the same pull request; a push to main is its own
    # group (its commit), so no run on main is cancelled or replaced while pending.
    expected = "tests-${{ github.event_name == 'pull_request' && github.ref || github.sha }}"
    assert tests["concurrency"]["group"] == expected
