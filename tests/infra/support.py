"""What the infra tests share: the stacks, the shared folders, the program recorded under mocks
once per stack, and the skip (or, where ../shared is required, failure) when a shared folder is
absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finops_platform.config import load_stack
from finops_platform.render import Recording, record
from tests.paths import SHARED

SCHEMAS = SHARED / "schemas"
CHARTS = SHARED / "charts"
IN_CI = os.environ.get("CI") == "true"
# Set by .ci/run, which has ../shared. Not CI=true: GitHub's runners set that and have no
# ../shared, so there the schema tests skip with their reason instead of failing.
SHARED_REQUIRED = os.environ.get("FINOPS_SHARED_REQUIRED") == "1"
STACKS = ("unoptimized", "optimized")  # the AWS stacks
ALL_STACKS = (*STACKS, "local")
_recordings: dict[str, Recording] = {}


def recorded(stack: str) -> Recording:
    """The program run under mocks (preview=False, so every output resolves), once per stack."""
    if stack not in _recordings:
        _recordings[stack] = record(load_stack(stack))
    return _recordings[stack]


def need_shared(folder: Path, holds: str) -> None:
    """Skip, saying why, when a shared folder is absent; .ci/run has it, so there it is a
    failure."""
    if folder.is_dir():
        return
    unchecked(f"{folder} is absent: it holds {holds}, which CI has and a plain clone does not")


def unchecked(message: str) -> None:
    """A check that cannot run without ../shared's data: skipped, saying why, or, where
    ../shared is required (.ci/run), a failure."""
    if SHARED_REQUIRED:
        pytest.fail(message + "; with FINOPS_SHARED_REQUIRED=1 (.ci/run) these checks must run")
    pytest.skip(message)
