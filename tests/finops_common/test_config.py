"""Config errors name the file, the key and what is allowed, for every package's models."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from finops_common.config import ConfigError, StrictModel, read_yaml, validate


class Limits(StrictModel):
    usd: float
    period: str = "day"


class Team(StrictModel):
    name: str
    limits: Limits


def test_an_unknown_key_names_the_keys_allowed_there():
    with pytest.raises(ConfigError) as info:
        validate(Team, {"name": "a", "limits": {"usd": 1, "perod": "day"}}, "teams.yaml")
    assert str(info.value) == (
        "teams.yaml: unknown key `limits.perod`; allowed keys here: period, usd"
    )


class Teams(StrictModel):
    teams: dict[str, Team]


def test_an_unknown_key_under_a_named_entry_names_the_keys_allowed_there():
    """A team's name is the mapping's key, not a field: the hint was left out past it."""
    with pytest.raises(ConfigError) as info:
        validate(Teams, {"teams": {"ops": {"name": "a", "limitz": {}}}}, "teams.yaml")
    assert "teams.yaml: unknown key `teams.ops.limitz`; allowed keys here: limits, name" in str(
        info.value
    )


def test_every_bad_value_is_listed_with_its_key():
    with pytest.raises(ConfigError) as info:
        validate(Team, {"name": 3, "limits": {"usd": "lots"}}, "teams.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("teams.yaml: key `name`: value 3 is invalid")
    assert lines[1].startswith("teams.yaml: key `limits.usd`: value 'lots' is invalid")


def test_a_missing_key_is_named_as_missing_not_as_a_bad_value_of_its_parent():
    with pytest.raises(ConfigError) as info:
        validate(Team, {"name": "a", "limits": {"period": "day"}}, "teams.yaml")
    assert str(info.value) == "teams.yaml: key `limits.usd` is missing, and it is required"


def test_strict_models_are_immutable():
    team = validate(Team, {"name": "a", "limits": {"usd": 1}}, "teams.yaml")
    with pytest.raises(ValueError, match="frozen"):
        team.name = "b"


def test_yaml_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("teams:\n  a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML \(line 3, column 1\)"):
        read_yaml(path)
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found"):
        read_yaml(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\u00e9\n".encode("latin-1"))  # a traceback before
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text \(byte 9: b'\\xe9'\)"):
        read_yaml(latin)


def test_a_key_given_twice_in_one_mapping_is_refused_with_its_line(tmp_path):
    """The last one won without a word: an edit was overridden by a forgotten copy below it."""
    path = tmp_path / "settings.yaml"
    path.write_text("cache:\n  ttl: 10\n  ttl: 20\nother: {ttl: 1}\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert str(info.value) == (
        f"{path}: invalid YAML (line 3, column 3): key 'ttl' is given twice in one mapping"
    )
    path.write_text("a: {ttl: 1}\nb: {ttl: 1}\n")  # the same key in two mappings is fine
    assert read_yaml(path) == {"a": {"ttl": 1}, "b": {"ttl": 1}}


class Pool(StrictModel):
    kinds: tuple[Literal["spot", "on-demand"], ...] = Field(min_length=1)


def test_a_bad_item_of_a_list_that_must_not_be_empty_is_one_problem_not_two():
    """The list left without its bad item was also reported too short: a misleading line."""
    with pytest.raises(ConfigError) as info:
        validate(Pool, {"kinds": ["reserved"]}, "pools.yaml")
    assert str(info.value) == (
        "pools.yaml: key `kinds[0]`: value 'reserved' is invalid: "
        "Input should be 'spot' or 'on-demand'"
    )
    with pytest.raises(ConfigError, match="at least 1 item"):
        validate(Pool, {"kinds": []}, "pools.yaml")
