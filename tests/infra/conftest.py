"""Infra fixtures: the program recorded under mocks once per stack, the charts rendered with a
real Helm once per stack, and the shared schemas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from finops_platform.render import Recording, Rehearsal, rehearse
from tests.infra.support import ALL_STACKS, CHARTS, SCHEMAS, STACKS, need_shared, recorded


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
    need_shared(SCHEMAS, "the CRD, chart-values and CloudFormation references")
    return SCHEMAS


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
