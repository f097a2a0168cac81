"""Infra fixtures: the program recorded under mocks once per stack, the charts rendered with a
real Helm once per stack, and the shared schemas."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from finops_platform.render import Recording, Rehearsal, load_stack, record, rehearse
from tests.conftest import SHARED

SCHEMAS = SHARED / "schemas"
CHARTS = SHARED / "charts"
IN_CI = os.environ.get("CI") == "true"
STACKS = ("unoptimized", "optimized")  # the AWS stacks
ALL_STACKS = (*STACKS, "local")
_recordings: dict[str, Recording] = {}


def recorded(stack: str) -> Recording:
    """The program run under mocks (preview=False, so every output resolves), once per stack."""
    if stack not in _recordings:
        _recordings[stack] = record(load_stack(stack))
    return _recordings[stack]


@pytest.fixture(params=STACKS)
def recording(request) -> Recording:
    return recorded(request.param)


@pytest.fixture(params=ALL_STACKS)
def any_recording(request) -> Recording:
    """Every stack, the local one (no AWS, no Karpenter) included."""
    return recorded(request.param)


@pytest.fixture
def schemas() -> Path:
    """../shared/schemas, or a skip that says why (a user's clone does not have it)."""
    if not SCHEMAS.is_dir():
        pytest.skip(
            f"{SCHEMAS} is absent: the CRD, chart-values and CloudFormation references live in "
            "the project's shared folder, which CI has and a plain clone does not"
        )
    return SCHEMAS


def need_shared(folder: Path, holds: str) -> None:
    """Skip, saying why, when a shared folder is absent; CI has it, so there it is a failure."""
    if folder.is_dir():
        return
    message = f"{folder} is absent: it holds {holds}, which CI has and a plain clone does not"
    if IN_CI:
        pytest.fail(message + "; in CI (CI=true) these checks must run")
    pytest.skip(message)


@pytest.fixture(scope="session")
def rehearsed() -> Callable[[str], Rehearsal]:
    """The rehearsal of `pulumi up` for a stack: the program's objects and the charts' objects
    from `helm template` of ../shared/charts with the program's values, once per stack."""
    done: dict[str, Rehearsal] = {}

    def of(stack: str) -> Rehearsal:
        need_shared(CHARTS, "the sources of the charts the platform installs")
        if stack not in done:
            done[stack] = rehearse(recorded(stack), CHARTS)
        return done[stack]

    return of
