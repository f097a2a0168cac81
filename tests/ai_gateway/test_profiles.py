"""The built-in profiles: both serve the demo teams, which are defined once."""

from __future__ import annotations

from importlib import resources

import yaml

from ai_gateway.settings import load_settings
from finops_common.phases import PHASES

PROFILES_DIR = resources.files("ai_gateway") / "profiles"


def test_both_profiles_serve_the_demo_teams_with_the_same_keys():
    demo = yaml.safe_load((PROFILES_DIR / "demo-teams.yaml").read_text())["teams"]
    for phase in PHASES:
        settings = load_settings(phase)
        assert {team: spec.keys for team, spec in settings.teams.items()} == {
            team: tuple(spec["keys"]) for team, spec in demo.items()
        }
        assert "sk-demo" not in (PROFILES_DIR / f"{phase}.yaml").read_text()


def test_only_the_optimized_profile_limits_and_routes_the_demo_teams():
    unoptimized, optimized = (load_settings(phase) for phase in PHASES)
    for team in unoptimized.teams.values():
        assert (team.routing, team.limits.usd) == ("auto_only", None)
    assert {name: team.limits.usd for name, team in optimized.teams.items()} == {
        "team-a": 25.0,
        "team-b": 10.0,
    }
    assert {team.routing for team in optimized.teams.values()} == {"all"}


def test_a_configs_teams_replace_the_demo_teams(tmp_path):
    config = tmp_path / "teams.yaml"
    config.write_text(yaml.safe_dump({"teams": {"ops": {"keys": ["sk-ops-key-1"]}}}))
    assert list(load_settings("optimized", config).teams) == ["ops"]
