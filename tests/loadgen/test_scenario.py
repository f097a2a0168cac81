"""The scenario model: validation with clear errors, and a deterministic request sequence."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import yaml

from ai_gateway.pricing import default_price_table
from finops_common.config import ConfigError
from loadgen.scenario import (
    DEFAULT_SCENARIO,
    MAX_OUTPUT_TOKENS,
    Arrival,
    generate,
    load_scenario,
    with_team_keys,
)


def take(scenario, n: int, seed: int | None = None):
    return list(itertools.islice(generate(scenario, seed), n))


def write_variant(tmp_path, change) -> object:
    data = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    change(data)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_scenario_is_valid_and_varied():
    scenario = load_scenario()
    assert len(scenario.intents) >= 25
    assert {i.difficulty for i in scenario.intents} == {"simple", "standard", "complex"}
    assert scenario.default_model == "gpt-5.4"


def test_the_original_gpt4_baseline_is_the_same_workload_on_gpt4():
    original = load_scenario(DEFAULT_SCENARIO.parent / "original-gpt4.yaml")
    default = load_scenario()
    assert original.default_model == "gpt-4"
    assert original.intents == default.intents and original.teams == default.teams
    assert {r.model for r in take(original, 200)} == {"gpt-4"}


def test_extends_that_loops_or_names_no_file_is_an_error(tmp_path):
    loop = tmp_path / "a.yaml"
    loop.write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: key `extends`: 'a\.yaml' extends itself"):
        load_scenario(loop)
    missing = tmp_path / "b.yaml"
    missing.write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"'nowhere\.yaml' names no file"):
        load_scenario(missing)


def test_same_seed_same_sequence_other_seed_other_sequence():
    scenario = load_scenario()
    assert take(scenario, 500) == take(scenario, 500)
    assert take(scenario, 500, seed=7) != take(scenario, 500)


def test_repeat_shares_follow_the_scenario():
    scenario = load_scenario()
    kinds = Counter(r.kind for r in take(scenario, 5000))
    assert kinds["exact"] / 5000 == pytest.approx(scenario.repeats.exact, abs=0.02)
    assert kinds["paraphrase"] / 5000 == pytest.approx(scenario.repeats.paraphrase, abs=0.02)


def test_repeats_keep_the_question_and_paraphrases_change_the_words():
    requests = take(load_scenario(), 3000)
    seen: dict[str, list] = {}
    changed_words = 0
    for r in requests:
        earlier = seen.get(r.question, [])
        if r.kind == "exact":
            assert any(
                (e.prompt, e.max_tokens, e.model, e.api, e.team)
                == (r.prompt, r.max_tokens, r.model, r.api, r.team)
                for e in earlier
            )
        if r.kind == "paraphrase":
            assert earlier, "a paraphrase re-asks an earlier question"
            assert r.max_tokens in {e.max_tokens for e in earlier}
            changed_words += all(e.prompt != r.prompt for e in earlier)
        seen.setdefault(r.question, []).append(r)
    assert changed_words > 0


def test_team_shares_and_ground_truth_headers():
    scenario = load_scenario()
    requests = take(scenario, 4000)
    share_a = sum(r.team == "team-a" for r in requests) / len(requests)
    assert share_a == pytest.approx(0.6, abs=0.03)
    headers = requests[0].headers()
    assert {"x-sim-intent", "x-sim-question", "x-sim-difficulty", "x-sim-kind"} <= set(headers)
    assert all(v.isascii() and "\n" not in v for v in headers.values())


def test_bodies_in_both_api_shapes():
    requests = take(load_scenario(), 200)
    openai = next(r for r in requests if r.api == "openai")
    anthropic = next(r for r in requests if r.api == "anthropic")
    assert openai.path() == "/v1/chat/completions"
    assert openai.body()["messages"][-1] == {"role": "user", "content": openai.prompt}
    # The field every OpenAI chat model takes: its reasoning models refuse max_tokens.
    assert openai.body()["max_completion_tokens"] == openai.max_tokens
    assert "max_tokens" not in openai.body()
    assert anthropic.path() == "/v1/messages"
    assert anthropic.body()["max_tokens"] == anthropic.max_tokens
    assert anthropic.headers()["x-api-key"] == anthropic.key


def test_arrival_patterns():
    steady = Arrival(pattern="steady", rate_per_second=10)
    assert steady.rate_at(0) == steady.rate_at(123) == 10
    diurnal = Arrival(pattern="diurnal", rate_per_second=10, period_seconds=60, amplitude=0.5)
    assert diurnal.rate_at(0) == pytest.approx(5)
    assert diurnal.rate_at(30) == pytest.approx(15)
    burst = Arrival(pattern="burst", rate_per_second=10, burst_every_seconds=20, burst_seconds=2,
                    burst_multiplier=5)  # fmt: skip
    assert burst.rate_at(1) == 50 and burst.rate_at(5) == 10


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["repeats"].update(exact=0.8, paraphrase=0.5), "exact + paraphrase"),
        (
            lambda d: d.update(default_model="gpt-5-turbo"),
            "key `default_model`: value 'gpt-5-turbo' is invalid: Value error, model 'gpt-5-turbo' "
            "is not in the price table",
        ),  # it was reported at `<root>`
        (lambda d: d["intents"][1].update(model="claude-9"), "key `intents[1].model`"),
        (lambda d: d["intents"][0]["templates"].append("Cancel {ordr}"), "undefined slots: ordr"),
        (lambda d: d["arrival"].update(pattern="sinus"), "`arrival.pattern`"),
        (lambda d: d.update(teams=[]), "`teams`"),
        (lambda d: d.update(colour="blue"), "unknown key `colour`"),
        (lambda d: d["intents"].append(dict(d["intents"][0])), "duplicate intent ids: cancel"),
        # Each was served a 400 by the gateway only once the run had started.
        (
            lambda d: d["max_tokens"].update(values=[0, 512, 1024]),
            "`max_tokens.values[0]`: value 0 is invalid",
        ),
        (
            lambda d: d["max_tokens"].update(values=[256, 10**12, 1024]),
            "`max_tokens.values[1]`: value 1000000000000 is invalid",
        ),
        (lambda d: d["context"].update(max_sentences=10**9), "`context.max_sentences`"),
    ],
)
def test_invalid_scenarios_name_the_problem(tmp_path, change, expected):
    with pytest.raises(ConfigError) as info:
        load_scenario(write_variant(tmp_path, change))
    assert "scenario.yaml" in str(info.value)
    assert expected in str(info.value)


def test_the_max_tokens_bound_is_the_model_tables_largest_output_limit():
    largest = max(card.max_output_tokens for card in default_price_table().models.values())
    assert largest == MAX_OUTPUT_TOKENS


def test_team_keys_from_a_file_replace_the_demo_keys_in_every_request(tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text("team-a: sk-deployed-a-0123\nteam-b: sk-deployed-b-0123\nteam-c: sk-c-0123\n")
    scenario = with_team_keys(load_scenario(), keys)
    requests = list(itertools.islice(generate(scenario), 200))
    assert {r.team for r in requests} == {"team-a", "team-b"}
    assert {r.api for r in requests} == {"openai", "anthropic"}
    for request in requests:
        headers = request.headers()
        sent = headers.get("x-api-key") or headers["authorization"].removeprefix("Bearer ")
        assert sent == f"sk-deployed-{request.team[-1]}-0123"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("team-a: sk-deployed-a-0123\n", "no key for team-b; the scenario's teams: team-a, team-b"),
        ("- sk-deployed-a-0123\n", "must be a mapping of team names to keys"),
        ("team-a: 12345678\nteam-b: sk-b-0123\n", "must be a mapping of team names to keys"),
        ("team-a: short\nteam-b: sk-b-0123\n", "key `team-a`: a team's key has at least 8"),
    ],
)
def test_a_bad_team_keys_file_names_itself_and_the_problem(tmp_path, text, expected):
    keys = tmp_path / "keys.yaml"
    keys.write_text(text)
    with pytest.raises(ConfigError) as info:
        with_team_keys(load_scenario(), keys)
    assert str(keys) in str(info.value) and expected in str(info.value)
