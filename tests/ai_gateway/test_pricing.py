"""The price table: complete, sourced, and the original design's three models kept."""

from __future__ import annotations

import pytest

from ai_gateway.pricing import TIERS, default_price_table, load_price_table
from finops_common.config import ConfigError

REQUIRED = [
    "gpt-4",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-3.5-turbo",
    "claude-3-haiku",
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
]


def test_required_models_are_priced_with_source_and_date():
    table = default_price_table()
    for name in REQUIRED:
        card = table.resolve(name)
        assert card is not None, name
        assert card.price_source and card.price_as_of
        assert card.price_per_1m.input > 0 and card.price_per_1m.output > 0
        assert card.tier in TIERS


def test_original_design_models_resolve():
    table = default_price_table()
    assert table.resolve("gpt-4").price_per_1m.input == 30.0  # the design's $0.03 / 1K
    assert table.resolve("claude-haiku").name == "claude-3-haiku"


def test_cost_of_500_in_300_out_matches_hand_computation():
    table = default_price_table()
    assert table.resolve("gpt-4").cost_usd(500, 300) == pytest.approx(0.033)
    assert table.resolve("gpt-4o-mini").cost_usd(500, 300) == pytest.approx(0.000255)


def test_duplicate_alias_is_rejected(tmp_path):
    path = tmp_path / "models.yaml"
    row = (
        "    provider: openai\n    tokenizer: cl100k_base\n"
        "    aliases: [shared]\n    tier: simple\n"
        "    context_window: 10\n    max_output_tokens: 5\n"
        "    price_per_1m: {input: 1, output: 1}\n"
        "    price_source: x\n    price_as_of: '2026-01'\n"
        "    latency: {ttft_ms: 1, tokens_per_second: 1}\n"
        "    output_tokens: {median: 1, sigma: 0}\n"
    )
    path.write_text("version: 1\nmodels:\n  a:\n" + row + "  b:\n" + row)
    with pytest.raises(ConfigError, match="'shared' is used by 'a' and 'b'"):
        load_price_table(path)
