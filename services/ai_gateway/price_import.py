"""`finops-gateway prices import FILE`: refresh data/models.yaml from LiteLLM's price JSON.

LiteLLM's model_prices_and_context_window.json (MIT) gives per-token input, cached-input
(`cache_read_input_token_cost`), cache-write (`cache_creation_input_token_cost`, and
`cache_creation_input_token_cost_above_1hr` for 1-hour entries) and output prices, the context
and output limits and a deprecation date per model. The import updates exactly those fields of
each row found under its `litellm_key`, edits the YAML line by line so the file's comments and
the project's own assumptions (tier, tokenizer, latency, output length) stay as they are, and
prints what changed. The result is validated before it is written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from finops_common.config import ConfigError

from .pricing import DEFAULT_TABLE_PATH, ModelCard, load_price_table, price_table

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class RowUpdate:
    model: str
    changes: dict[str, tuple[Any, Any]]
    lines: dict[str, str]


def _per_million(entry: dict[str, Any], key: str, source: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{source}: `{key}` is {value!r}: a price per token must be a number")
    return round(float(value) * PER_MILLION, 6)


def year_month(text: str) -> str:
    """``--as-of``: a year and month (YYYY-MM), or a day (YYYY-MM-DD), that exist."""
    for layout in ("%Y-%m", "%Y-%m-%d"):
        try:
            datetime.strptime(text, layout)
        except ValueError:
            continue
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM or YYYY-MM-DD")


def _number(value: float | None) -> str:
    return "null" if value is None else f"{value:.6f}".rstrip("0").rstrip(".")


def _update_for(
    name: str, card: ModelCard, entry: dict[str, Any], as_of: str, source: str
) -> RowUpdate:
    row = f"{source}: model {name!r}"
    prices = {
        "input": _per_million(entry, "input_cost_per_token", row),
        "cached_input": _per_million(entry, "cache_read_input_token_cost", row),
        "cache_write": _per_million(entry, "cache_creation_input_token_cost", row),
        "cache_write_1h": _per_million(entry, "cache_creation_input_token_cost_above_1hr", row),
        "output": _per_million(entry, "output_cost_per_token", row),
    }
    # A price the JSON leaves out is kept: absent there means unknown, not free.
    current = card.price_per_1m.model_dump()
    merged = {**current, **{k: v for k, v in prices.items() if v is not None}}
    changes: dict[str, tuple[Any, Any]] = {
        f"price {k}": (current[k], merged[k]) for k in current if current[k] != merged[k]
    }
    limits = {
        "context_window": entry.get("max_input_tokens"),
        "max_output_tokens": entry.get("max_output_tokens"),
        "deprecation_date": entry.get("deprecation_date"),
    }
    for field, new in limits.items():
        if new is not None and getattr(card, field) != new:
            changes[field] = (getattr(card, field), new)
    lines = {"price_per_1m": "{" + ", ".join(f"{k}: {_number(v)}" for k, v in merged.items()) + "}"}
    for field in ("context_window", "max_output_tokens"):
        if field in changes:
            lines[field] = str(changes[field][1])
    if "deprecation_date" in changes:
        lines["deprecation_date"] = f'"{changes["deprecation_date"][1]}"'
    if changes:
        lines["price_as_of"] = f'"{as_of}"'
    return RowUpdate(name, changes, lines)


def _constant(line: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that inserts ``line`` verbatim (no backslash escapes)."""
    return lambda _: line


def _appended(line: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that keeps the match and puts ``line`` after it."""
    return lambda match: f"{match.group(1)}\n{line}"


def _apply(text: str, update: RowUpdate) -> str:
    """Rewrite the changed `    field: value` lines inside the row `  <model>:`."""
    start = re.search(rf"(?m)^  {re.escape(update.model)}:\s*$", text)
    assert start is not None, update.model
    end = re.search(r"(?m)^  \S|^\S", text[start.end() :])
    stop = start.end() + (end.start() if end else len(text) - start.end())
    row = text[start.end() : stop]
    for field, value in update.lines.items():
        line = f"    {field}: {value}"
        pattern = rf"(?m)^    {field}: .*$"
        if re.search(pattern, row):
            row = re.sub(pattern, _constant(line), row, count=1)
        else:
            after = r"(?m)^(    litellm_key: .*)$"
            row = re.sub(after, _appended(line), row, count=1)
    return text[: start.end()] + row + text[stop:]


def import_prices(
    source: Path, table_path: Path = DEFAULT_TABLE_PATH, as_of: str | None = None
) -> tuple[str, list[str]]:
    """The refreshed table's text and a report line per model (changed, unchanged or missing)."""
    try:
        prices = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read a LiteLLM price JSON ({exc})") from exc
    if not isinstance(prices, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of model names to prices")
    as_of = as_of or datetime.now(UTC).strftime("%Y-%m")
    table = load_price_table(table_path)
    text, report = table_path.read_text(), []
    for name, card in table.models.items():
        key = card.litellm_key or name
        entry = prices.get(key)
        if not isinstance(entry, dict) or "input_cost_per_token" not in entry:
            report.append(f"{name}: no `{key}` in {source.name}; row kept as it is")
            continue
        update = _update_for(name, card, entry, as_of, str(source))
        if not update.changes:
            report.append(f"{name}: unchanged")
            continue
        text = _apply(text, update)
        described = "; ".join(f"{f} {old} -> {new}" for f, (old, new) in update.changes.items())
        report.append(f"{name}: {described}")
    return text, report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="finops-gateway prices",
        description="Refresh the price table from LiteLLM's model_prices_and_context_window.json.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("import", help="update prices and limits, keep the project's assumptions")
    run.add_argument("file", type=Path, help="a LiteLLM model_prices_and_context_window.json")
    run.add_argument("--table", type=Path, default=DEFAULT_TABLE_PATH, help="models.yaml to edit")
    run.add_argument(
        "--as-of", type=year_month, help="price_as_of for changed rows (default: this month)"
    )
    run.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    args = parser.parse_args(argv)
    try:
        text, report = import_prices(args.file, args.table, args.as_of)
        # The refreshed table is checked before anything is written (nothing is, with --dry-run).
        price_table(yaml.safe_load(text), f"{args.table} as {args.file} would change it")
    except ConfigError as exc:
        print(f"finops-gateway prices: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report))
    changed = sum(1 for line in report if not line.endswith(("unchanged", "as it is")))
    if args.dry_run or not changed:
        print(f"{changed} rows would change; nothing written" if args.dry_run else "no changes")
        return 0
    args.table.write_text(text)
    print(f"{changed} rows changed; wrote {args.table}")
    return 0
