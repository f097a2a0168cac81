"""checkov on the program's own Kubernetes objects of every stack, and on the images' Dockerfile:
0 failed checks, apart from the skips in checkov-skips.yaml, each with its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from finops_platform.render import kubernetes_objects
from tests.infra.support import ALL_STACKS, IN_CI, recorded
from tests.paths import REPO

CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"  # its own environment: see Makefile
SKIPS = Path(__file__).with_name("checkov-skips.yaml")
DOCKERFILE = REPO / "Dockerfile"


def skips() -> dict[str, dict]:
    return yaml.safe_load(SKIPS.read_text())


@pytest.fixture(scope="session")
def findings(tmp_path_factory) -> dict[str, list[tuple[str, str]]]:
    """(check id, resource) of every failed check, per stack; checkov runs once for all."""
    if not CHECKOV.is_file():
        message = f"{CHECKOV} is absent: `make setup` installs checkov in its own environment"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("checkov")
    for stack in ALL_STACKS:
        (root / stack).mkdir()
        for i, manifest in enumerate(kubernetes_objects(recorded(stack).mocks)):
            (root / stack / f"{i:03}-{manifest['kind'].lower()}.yaml").write_text(
                yaml.safe_dump(manifest)
            )
    done = subprocess.run(
        [str(CHECKOV), "-d", str(root), "--framework", "kubernetes", "--skip-download",
         "--output", "json", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: some check failed
    report = json.loads(done.stdout)
    assert report["summary"]["parsing_errors"] == 0
    failed: dict[str, list[tuple[str, str]]] = {stack: [] for stack in ALL_STACKS}
    for check in report["results"]["failed_checks"]:
        stack = check["file_path"].strip("/").split("/")[0]
        failed[stack].append((check["check_id"], check["resource"]))
    failed[DOCKERFILE.name] = dockerfile_findings()
    return failed


def dockerfile_findings() -> list[tuple[str, str]]:
    """(check id, resource) of every failed check on the images' Dockerfile."""
    done = subprocess.run(
        [str(CHECKOV), "-f", str(DOCKERFILE), "--framework", "dockerfile", "--skip-download",
         "--output", "json", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0
    return [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]


def accepted(check_id: str, resource: str) -> bool:
    skip = skips().get(check_id)
    return skip is not None and resource in skip.get("resources", [resource])


@pytest.mark.parametrize("scanned", [*ALL_STACKS, DOCKERFILE.name])
def test_checkov_finds_nothing_beyond_the_reasoned_skips(findings, scanned):
    assert [f for f in findings[scanned] if not accepted(*f)] == []


def test_every_skip_has_a_reason_and_is_needed(findings):
    used = {check_id for scanned in findings.values() for check_id, _ in scanned}
    for check_id, skip in skips().items():
        assert len(skip.get("reason", "").split()) >= 8, f"{check_id}: give the reason"
        assert check_id in used, f"{check_id} is skipped but no object fails it any more"


def resources(stack: str) -> Iterator[str]:
    for manifest in kubernetes_objects(recorded(stack).mocks):
        meta = manifest["metadata"]
        yield f"{manifest['kind']}.{meta.get('namespace', 'default')}.{meta['name']}"


def test_scoped_skips_name_real_objects():
    known = {r for stack in ALL_STACKS for r in resources(stack)}
    for check_id, skip in skips().items():
        assert set(skip.get("resources", ())) <= known, check_id
