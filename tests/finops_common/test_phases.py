"""The phase names: one list, and every consumer agrees with it."""

from __future__ import annotations

from importlib import resources

from ai_gateway.settings import PROFILES, load_settings
from finops_common.phases import PHASES
from finops_sim.results import Phases


def test_every_phase_is_a_gateway_profile_and_a_half_of_the_results():
    assert PHASES == ("unoptimized", "optimized")
    assert PROFILES == PHASES
    assert tuple(Phases.model_fields) == PHASES
    profiles = resources.files("ai_gateway") / "profiles"
    for phase in PHASES:
        assert (profiles / f"{phase}.yaml").is_file()
        assert load_settings(phase).profile == phase
