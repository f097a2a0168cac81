"""The finops_sim tests' shared fixture: the default scenario, sped up."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loadgen.scenario import DEFAULT_SCENARIO


@pytest.fixture(scope="session")
def fast_scenario(tmp_path_factory) -> Path:
    """The default scenario at a steady, higher rate, so the test runs in seconds."""
    data = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    data["arrival"] = {"pattern": "steady", "rate_per_second": 150}
    path = tmp_path_factory.mktemp("scenario") / "fast.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
