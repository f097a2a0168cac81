"""The price table: current models of each provider, sourced and dated, retired names answered
with a clear 404, and `finops-gateway prices import` on LiteLLM's price JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from ai_gateway.cli import main as gateway_cli
from ai_gateway.pricing import DEFAULT_TABLE_PATH, TIERS, default_price_table, load_price_table
from finops_common.config import ConfigError

SHARED_JSON = Path(__file__).resolve().parents[3] / "shared" / "pricing"
LITELLM_JSON = SHARED_JSON / "litellm-model-prices-1.108.7.json"

# Flagship, mid and small of each provider (the list), and the original design's gpt-4.
CURRENT = {
    "openai": ["gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
               "gpt-4.1", "gpt-4.1-mini", "o3"],
    "anthropic": ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5"],
    "google": ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"],
}  # fmt: skip


def test_each_provider_has_a_flagship_a_mid_and_a_small_model_priced_with_source_and_date():
    table = default_price_table()
    for provider, names in CURRENT.items():
        cards = [table.resolve(n) for n in names]
        assert all(c is not None and c.provider == provider for c in cards), provider
        assert {c.tier for c in cards} == set(TIERS), provider
        for card in cards:
            prices = card.price_per_1m
            assert card.price_source and card.price_as_of and card.litellm_key
            assert prices.input > 0 and prices.output > 0
            assert prices.cached_input is not None and prices.cached_input < prices.input
            # Anthropic bills writing a prompt-cache entry (1.25x input); the others do not.
            if provider == "anthropic":
                assert prices.cache_write == pytest.approx(1.25 * prices.input)
            else:
                assert prices.cache_write is None
            assert card.context_window > card.max_output_tokens > 0


def test_original_design_model_and_dated_aliases_resolve():
    table = default_price_table()
    assert table.resolve("gpt-4").price_per_1m.input == 30.0  # the design's $0.03 / 1K
    assert table.resolve("gpt-4-0613").name == "gpt-4"
    assert table.resolve("claude-haiku-4-5-20251001").name == "claude-haiku-4-5"
    assert table.resolve("gpt-5-2025-08-07").name == "gpt-5"


def test_retired_names_do_not_resolve_and_say_what_to_use():
    table = default_price_table()
    for name, replacement in [
        ("claude-3-haiku-20240307", "claude-haiku-4-5"),
        ("gpt-3.5-turbo", "gpt-5.4-nano"),
        ("o4-mini", "gpt-5.4-mini"),
    ]:
        assert table.resolve(name) is None
        note = table.retirement_note(name)
        assert "retired" in note and repr(replacement) in note
    assert table.retirement_note("gpt-5.4") == ""


def test_cost_of_500_in_300_out_matches_hand_computation():
    table = default_price_table()
    assert table.resolve("gpt-4").cost_usd(500, 300) == pytest.approx(0.033)
    assert table.resolve("gpt-4o-mini").cost_usd(500, 300) == pytest.approx(0.000255)
    assert table.resolve("gpt-5.4").cost_usd(500, 300) == pytest.approx(0.00575)


ROW = (
    "    provider: openai\n    tokenizer: cl100k_base\n"
    "    aliases: [shared]\n    tier: simple\n"
    "    context_window: 10\n    max_output_tokens: 5\n"
    "    price_per_1m: {input: 1, output: 1}\n"
    "    price_source: x\n    price_as_of: '2026-01'\n"
    "    latency: {ttft_ms: 1, tokens_per_second: 1}\n"
    "    output_tokens: {median: 1, sigma: 0}\n"
)


def test_duplicate_alias_is_rejected(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("version: 1\nmodels:\n  a:\n" + ROW + "  b:\n" + ROW)
    with pytest.raises(ConfigError, match="'shared' is used by 'a' and 'b'"):
        load_price_table(path)


def test_a_dated_alias_must_name_a_real_date(tmp_path):
    """It dates the model in /v1/models, where a 13th month answered every request with a 500."""
    path = tmp_path / "models.yaml"
    path.write_text("version: 1\nmodels:\n  a:\n" + ROW.replace("[shared]", "[a-20251301]"))
    with pytest.raises(ConfigError, match="alias a-20251301: 20251301 is no date"):
        load_price_table(path)


def test_only_an_anthropic_model_sets_its_prompt_cache_minimum(tmp_path):
    """OpenAI's and Google's minimums are the provider's: one set on their model was ignored."""
    path = tmp_path / "models.yaml"
    minimum = "    prompt_cache_min_tokens: 512\n"
    path.write_text("version: 1\nmodels:\n  a:\n" + ROW + minimum)
    with pytest.raises(ConfigError, match="openai's prompt-cache minimum is the provider's"):
        load_price_table(path)
    anthropic = ROW.replace("openai", "anthropic").replace("cl100k_base", "claude-approx")
    path.write_text("version: 1\nmodels:\n  a:\n" + anthropic + minimum)
    assert load_price_table(path).models["a"].prompt_cache_min_tokens == 512


def test_a_model_is_dated_by_its_earliest_dated_alias(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(
        "version: 1\nmodels:\n  a:\n"
        + ROW.replace("[shared]", "[a-2025-08-07, a-20240101, a-0613, a-latest]")
    )
    released = load_price_table(path).models["a"].released
    assert released is not None and released.date().isoformat() == "2024-01-01"


def test_a_retired_name_must_point_at_a_model(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(
        "version: 1\nmodels:\n  a:\n" + ROW + "retired:\n  old: {replacement: nowhere, source: x}\n"
    )
    with pytest.raises(ConfigError, match="replacement 'nowhere' is not a model"):
        load_price_table(path)


def test_a_retired_model_gets_a_404_in_the_openai_error_shape(start_gateway):
    gateway = start_gateway(profile="unoptimized")
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "claude-3-haiku", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-demo-team-a"},
        timeout=30,
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "retired" in error["message"] and "'claude-haiku-4-5'" in error["message"]


@pytest.mark.skipif(not LITELLM_JSON.exists(), reason="../shared/pricing is not present")
def test_import_of_the_shared_litellm_json_finds_the_table_current(tmp_path, capsys):
    table = tmp_path / "models.yaml"
    shutil.copy(DEFAULT_TABLE_PATH, table)
    assert gateway_cli(["prices", "import", str(LITELLM_JSON), "--table", str(table)]) == 0
    out = capsys.readouterr().out
    assert out.count(": unchanged") == len(default_price_table().models)
    assert out.strip().endswith("no changes")
    assert table.read_text() == DEFAULT_TABLE_PATH.read_text()


def test_import_applies_changes_keeps_assumptions_and_reports_them(tmp_path, capsys):
    table = tmp_path / "models.yaml"
    shutil.copy(DEFAULT_TABLE_PATH, table)
    crafted = tmp_path / "prices.json"
    crafted.write_text(
        json.dumps(
            {
                "gpt-5.4": {
                    "input_cost_per_token": 3e-06,
                    "cache_read_input_token_cost": 3e-07,
                    "output_cost_per_token": 1.5e-05,
                    "max_input_tokens": 2000000,
                    "max_output_tokens": 128000,
                },
                "claude-haiku-4-5": {
                    "input_cost_per_token": 1e-06,
                    "cache_read_input_token_cost": 1e-07,
                    "cache_creation_input_token_cost": 1.5e-06,
                    "cache_creation_input_token_cost_above_1hr": 2.5e-06,
                    "output_cost_per_token": 5e-06,
                    "deprecation_date": "2027-06-01",
                },
            }
        )
    )
    args = ["prices", "import", str(crafted), "--table", str(table), "--as-of", "2026-12"]
    assert gateway_cli(args) == 0
    out = capsys.readouterr().out
    assert "gpt-5.4: price input 2.5 -> 3.0; price cached_input 0.25 -> 0.3; " in out
    assert "context_window 1050000 -> 2000000" in out
    assert (
        "claude-haiku-4-5: price cache_write 1.25 -> 1.5; price cache_write_1h 2.0 -> 2.5; "
        "deprecation_date None -> 2027-06-01" in out
    )
    assert "gpt-4: no `gpt-4` in prices.json; row kept as it is" in out
    assert "2 rows changed" in out
    before, after = default_price_table(), load_price_table(table)
    card = after.resolve("gpt-5.4")
    assert card.price_per_1m.input == 3.0 and card.context_window == 2_000_000
    assert card.price_as_of == "2026-12"
    assert card.latency == before.resolve("gpt-5.4").latency  # the project's assumptions stay
    assert card.output_tokens == before.resolve("gpt-5.4").output_tokens
    assert after.resolve("claude-haiku-4-5").deprecation_date == "2027-06-01"
    assert after.resolve("claude-haiku-4-5").price_per_1m.cache_write_1h == 2.5
    assert after.resolve("gpt-4") == before.resolve("gpt-4")
    assert "# The price and model table" in table.read_text()  # comments survive


@pytest.mark.parametrize("content", [b"[1, 2", b"\xff\xfe{}"])  # not JSON; not UTF-8
def test_import_of_a_file_that_is_not_price_json_fails_cleanly(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert gateway_cli(["prices", "import", str(bad), "--table", str(DEFAULT_TABLE_PATH)]) == 2
    assert "cannot read a LiteLLM price JSON" in capsys.readouterr().err


def test_import_of_a_price_that_is_not_a_number_names_the_model_and_field(tmp_path, capsys):
    """It was a ValueError traceback from float()."""
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"gpt-4": {"input_cost_per_token": "abc"}}))
    table = tmp_path / "models.yaml"
    table.write_text(DEFAULT_TABLE_PATH.read_text())
    assert gateway_cli(["prices", "import", str(bad), "--table", str(table), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: model 'gpt-4': `input_cost_per_token` is 'abc'" in err
    assert "Traceback" not in err


def test_an_import_that_would_break_the_table_names_both_files_and_writes_nothing(tmp_path, capsys):
    """It named a temporary table.import.yaml, deleted by then, and --dry-run wrote that file
    beside the table (inside the installed package by default)."""
    source = tmp_path / "prices.json"
    source.write_text(json.dumps({"gpt-4": {"input_cost_per_token": 3e-5,
                                            "output_cost_per_token": 6e-5,
                                            "max_input_tokens": -5}}))  # fmt: skip
    table = tmp_path / "models.yaml"
    table.write_text(DEFAULT_TABLE_PATH.read_text())
    assert gateway_cli(["prices", "import", str(source), "--table", str(table), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{table} as {source} would change it: key `models.gpt-4.context_window`" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["models.yaml", "prices.json"]


@pytest.mark.parametrize("as_of", ["2026-13", "yesterday", "2026-02-30"])
def test_import_refuses_an_as_of_that_is_not_a_date_naming_the_flag(tmp_path, capsys, as_of):
    source = tmp_path / "prices.json"
    source.write_text("{}")
    with pytest.raises(SystemExit):
        gateway_cli(["prices", "import", str(source), "--as-of", as_of, "--dry-run"])
    assert f"argument --as-of: '{as_of}' is not a date: use YYYY-MM or YYYY-MM-DD" in (
        capsys.readouterr().err
    )
