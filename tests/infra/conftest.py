"""Infra fixtures: the program recorded under mocks once per stack, and the shared schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from finops_platform.render import Recording, load_stack, record
from tests.conftest import SHARED

SCHEMAS = SHARED / "schemas"
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
