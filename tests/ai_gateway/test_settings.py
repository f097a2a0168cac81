"""Settings: profiles, config-file overrides, and errors that name the file, key and value."""

from __future__ import annotations

import pytest

from ai_gateway.settings import load_settings
from finops_common.config import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_default_profile_has_demo_teams_and_cache_on():
    settings = load_settings()
    assert settings.profile == "optimized"
    assert settings.cache.exact.enabled
    assert settings.team_by_key_digest()  # demo keys present
    assert set(settings.teams) == {"team-a", "team-b"}


def test_unoptimized_profile_turns_the_cache_off():
    assert not load_settings("unoptimized").cache.exact.enabled


def test_config_file_overrides_one_key_and_keeps_the_rest(tmp_path):
    path = write(tmp_path, "cache:\n  exact:\n    ttl_seconds: 60\nlatency_scale: 0\n")
    settings = load_settings("optimized", path)
    assert settings.cache.exact.ttl_seconds == 60
    assert settings.cache.exact.enabled
    assert settings.latency_scale == 0


def test_routing_threshold_defaults_to_the_trained_value_and_can_be_set(tmp_path):
    settings = load_settings("optimized")
    assert settings.routing.threshold is None  # the router's own default, chosen in training
    assert settings.routing.tiers == {
        "simple": "gpt-5.4-nano",
        "standard": "gpt-5.4-mini",
        "complex": "gpt-5.4",
    }
    path = write(tmp_path, "routing:\n  threshold: 0.4\n")
    assert load_settings("optimized", path).routing.threshold == 0.4


def test_profile_named_in_the_file_is_used_unless_the_cli_overrides(tmp_path):
    path = write(tmp_path, "profile: unoptimized\n")
    assert load_settings(None, path).profile == "unoptimized"
    assert load_settings("optimized", path).profile == "optimized"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latency_scale: -1\n", ["gateway.yaml", "`latency_scale`", "-1", "greater than or equal"]),
        ("cache:\n  exact:\n    ttl_seconds: soon\n", ["`cache.exact.ttl_seconds`", "'soon'"]),
        (
            "cache:\n  exakt: {}\n",
            ["unknown key `cache.exakt`", "allowed keys here: exact, semantic"],
        ),
        ("routing:\n  tiers: {simple: gpt-9}\n", ["`routing.tiers`", "unknown model 'gpt-9'"]),
        ("routing:\n  threshold: 1.5\n", ["`routing.threshold`", "1.5", "less than or equal to 1"]),
        ("routing:\n  threshold: high\n", ["`routing.threshold`", "'high'"]),
        (
            "cache:\n  semantic:\n    embedder: bert\n",
            ["`cache.semantic.embedder`", "'model2vec' or 'lexical'"],
        ),
        ("budgets:\n  on_store_error: maybe\n", ["`budgets.on_store_error`", "'open' or 'closed'"]),
        (
            "teams:\n  ops:\n    keys: [sk-abcdefgh]\n    limits: {usd: -5}\n",
            ["`teams.ops.limits.usd`", "-5"],
        ),
        ("profile: cheap\n", ["`profile`", "'cheap'", "unoptimized, optimized"]),
        ("teams:\n  Team A:\n    keys: [sk-abcdefgh]\n", ["`teams`", "lowercase"]),
        ("teams:\n  ops:\n    keys: ['sha256:xyz']\n", ["`teams.ops.keys`", "64 lowercase hex"]),
        (
            "teams:\n  a1:\n    keys: [sk-shared-key]\n  b1:\n    keys: [sk-shared-key]\n",
            ["same key", "'a1'", "'b1'"],
        ),
        ("- just\n- a list\n", ["top level must be a mapping"]),
        ("cache: [unclosed\n", ["invalid YAML", "line"]),
    ],
)
def test_errors_name_file_key_value_and_what_is_allowed(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(None, write(tmp_path, text))
    for fragment in expected:
        assert fragment in str(info.value)


def test_teams_in_a_config_replace_the_demo_teams(tmp_path):
    path = write(tmp_path, "teams:\n  ops:\n    keys: [sk-ops-team-key]\n")
    settings = load_settings("optimized", path)
    assert set(settings.teams) == {"ops"}
    assert settings.teams["ops"].routing == "auto_only"


def test_embedding_model_env_overrides_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_EMBEDDING_MODEL", "/models/mine")
    path = write(tmp_path, "cache:\n  semantic:\n    model: other\n")
    assert load_settings("optimized", path).cache.semantic.model == "/models/mine"


@pytest.mark.parametrize(
    ("text", "key"),
    [("cache: 5\n", "`cache`"), ("cache:\n  semantic: on\n", "`cache.semantic`")],
)
def test_the_embedding_model_env_does_not_mend_a_bad_cache_setting(
    tmp_path, monkeypatch, text, key
):
    """With GATEWAY_EMBEDDING_MODEL set (as the image sets it), the model went in over the bad
    value, which became a valid mapping: the error was lost."""
    monkeypatch.setenv("GATEWAY_EMBEDDING_MODEL", "/models/mine")
    with pytest.raises(ConfigError, match=key):
        load_settings(None, write(tmp_path, text))


@pytest.mark.parametrize("text", ["profile: ''\n", "profile: false\n", "profile:\n"])
def test_an_empty_or_false_profile_is_refused_not_read_as_the_default(tmp_path, text):
    with pytest.raises(ConfigError, match=r"key `profile`: value .* is invalid"):
        load_settings(None, write(tmp_path, text))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(None, tmp_path / "absent.yaml")


def test_several_config_files_merge_in_order(tmp_path):
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("latency_scale: 0.5\ncache:\n  exact:\n    ttl_seconds: 120\n")
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text("teams:\n  ops:\n    keys: [sk-ops-team-key]\nlatency_scale: 0\n")
    settings = load_settings("optimized", settings_file, keys_file)
    assert set(settings.teams) == {"ops"}
    assert settings.latency_scale == 0
    assert settings.cache.exact.ttl_seconds == 120


def test_with_several_config_files_each_problem_names_the_file_that_sets_it(tmp_path):
    """Every problem named all the files ("a.yaml + b.yaml"), so the reader had to search."""
    first, second = tmp_path / "settings.yaml", tmp_path / "keys.yaml"
    first.write_text("latency_scale: -1\ncache:\n  exakt: {}\n")
    second.write_text("teams:\n  ops:\n    keys: [sk-ops-team-key]\n    limits: {usd: -5}\n")
    with pytest.raises(ConfigError) as info:
        load_settings("optimized", first, second)
    lines = sorted(str(info.value).splitlines())
    assert [line.split(": ", 1)[0] for line in lines] == [str(second), str(first), str(first)]
    assert "`teams.ops.limits.usd`" in lines[0]
    second.write_text("latency_scale: -2\n")  # set in both: the later file's value was merged
    with pytest.raises(ConfigError) as info:
        load_settings("optimized", first, second)
    assert f"{second}: key `latency_scale`: value -2" in str(info.value)


@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan"])
def test_an_infinite_or_nan_number_is_refused_naming_the_key(tmp_path, text):
    """YAML reads `.inf` as a float: an infinite team budget passed `gt=0` and crashed start-up."""
    path = tmp_path / "gateway.yaml"
    path.write_text(f"teams:\n  ops:\n    keys: [sk-ops-0123]\n    limits: {{usd: {text}}}\n")
    with pytest.raises(ConfigError) as info:
        load_settings("unoptimized", path)
    assert f"{path}: key `teams.ops.limits.usd`" in str(info.value)
    assert "finite number" in str(info.value)
