"""The price and model table (data/models.yaml) and the cost of a request."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from finops_common.config import StrictModel, read_yaml, validate

Tier = Literal["simple", "standard", "complex"]
TIERS: tuple[Tier, ...] = ("simple", "standard", "complex")


class Prices(StrictModel):
    """USD per 1M tokens. ``cached_input``: a prompt prefix the provider serves from its prompt
    cache; ``cache_write``: writing a prompt-cache entry, where the provider bills it (Anthropic,
    5-minute entries); ``cache_write_1h``: writing a 1-hour entry (Anthropic's ``ttl: "1h"``).
    None where the provider lists no such price."""

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    cache_write_1h: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)


class LatencyProfile(StrictModel):
    ttft_ms: float = Field(ge=0)
    tokens_per_second: float = Field(gt=0)


class OutputLength(StrictModel):
    median: int = Field(ge=1)
    sigma: float = Field(ge=0, le=3)


# A dated snapshot name's date: gpt-5-2025-08-07, claude-haiku-4-5-20251001 (not gpt-4-0613).
_SNAPSHOT_DATE = re.compile(r"-(20\d\d)-?(\d\d)-?(\d\d)$")


def _snapshot_date(found: re.Match[str]) -> datetime:
    year, month, day = (int(part) for part in found.groups())
    return datetime(year, month, day, tzinfo=UTC)


class ModelCard(StrictModel):
    """Everything the gateway knows about one model."""

    name: str = ""
    provider: Literal["openai", "anthropic", "google"]
    tokenizer: Literal["cl100k_base", "o200k_base", "claude-approx", "gemini-approx"]
    aliases: tuple[str, ...] = ()
    tier: Tier
    context_window: int = Field(ge=1)
    max_output_tokens: int = Field(ge=1)
    price_per_1m: Prices
    price_source: str = Field(min_length=1)
    price_as_of: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    litellm_key: str | None = Field(
        default=None, description="the row of LiteLLM's price JSON that `prices import` reads"
    )
    deprecation_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    sampling: Literal["any", "reasoning", "temperature_or_top_p"] = Field(
        default="any",
        description="the provider's own API rules on sampling parameters: `reasoning` "
        "(OpenAI's reasoning models: max_completion_tokens only, the default temperature and "
        "top_p only), `temperature_or_top_p` (Anthropic models that refuse both together)",
    )
    assistant_prefill: bool = Field(
        default=True,
        description="whether the provider takes a conversation that ends with an assistant "
        "message (a prefill); Claude 4.6 and later refuse it",
    )
    stop_sequences: bool = Field(
        default=True,
        description="whether the provider takes stop sequences; OpenAI's gpt-5, 5.1 and 5.2 "
        "lines and o-series reasoning models refuse `stop`",
    )
    prompt_cache_min_tokens: int | None = Field(
        default=None,
        ge=1,
        description="the shortest prefix the provider's prompt cache writes, where it differs "
        "by model (Anthropic's); None: the provider's rule (prompt_cache.py)",
    )
    latency: LatencyProfile
    output_tokens: OutputLength

    @field_validator("aliases")
    @classmethod
    def _dated_aliases_are_dates(cls, aliases: tuple[str, ...]) -> tuple[str, ...]:
        """A dated snapshot name dates the model in /v1/models: gpt-4-20251301 would fail there."""
        for alias in aliases:
            if found := _SNAPSHOT_DATE.search(alias):
                try:
                    _snapshot_date(found)
                except ValueError as exc:
                    raise ValueError(f"alias {alias}: {found.group(0)[1:]} is no date") from exc
        return aliases

    @model_validator(mode="after")
    def _minimum_only_where_it_is_per_model(self) -> ModelCard:
        """Only Anthropic's prompt-cache minimum is per model: elsewhere it would be ignored."""
        if self.prompt_cache_min_tokens is not None and self.provider != "anthropic":
            raise ValueError(
                f"prompt_cache_min_tokens: {self.provider}'s prompt-cache minimum is the "
                "provider's, not the model's; only anthropic models may set it"
            )
        return self

    @property
    def released(self) -> datetime | None:
        """The date in the model's earliest dated snapshot name, midnight UTC, standing for the
        creation time the providers' model lists report; None for a model without one (a date
        is never made up)."""
        dates = [_snapshot_date(found) for a in self.aliases if (found := _SNAPSHOT_DATE.search(a))]
        return min(dates, default=None)

    def cost_usd(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached: int = 0,
        cache_write: int = 0,
        cache_write_1h: int = 0,
    ) -> float:
        """``prompt_tokens`` includes the ``cached`` (read) and ``cache_write`` tokens, and
        ``cache_write`` the ``cache_write_1h`` ones (written as 1-hour entries); a model without a
        listed price for one of them bills it at the price below it (1-hour writes at the
        5-minute write price, writes and reads at the input price)."""
        prices = self.price_per_1m
        cached_price = prices.input if prices.cached_input is None else prices.cached_input
        write_price = prices.input if prices.cache_write is None else prices.cache_write
        write_1h_price = write_price if prices.cache_write_1h is None else prices.cache_write_1h
        uncached = prompt_tokens - cached - cache_write
        return (
            uncached * prices.input
            + cached * cached_price
            + (cache_write - cache_write_1h) * write_price
            + cache_write_1h * write_1h_price
            + completion_tokens * prices.output
        ) / 1_000_000


class RetiredModel(StrictModel):
    """A name the provider no longer accepts, answered with a 404 naming the replacement."""

    aliases: tuple[str, ...] = ()
    retired_on: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    replacement: str = Field(min_length=1)
    source: str = Field(min_length=1)


class _TableFile(StrictModel):
    version: Literal[1]
    models: dict[str, ModelCard]
    retired: dict[str, RetiredModel] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> _TableFile:
        seen: dict[str, str] = {}
        named: list[tuple[str, tuple[str, ...]]] = [
            *((name, card.aliases) for name, card in self.models.items()),
            *((name, entry.aliases) for name, entry in self.retired.items()),
        ]
        for name, aliases in named:
            for alias in (name, *aliases):
                if alias in seen:
                    raise ValueError(
                        f"model name {alias!r} is used by {seen[alias]!r} and {name!r}"
                    )
                seen[alias] = name
        for name, retired in self.retired.items():
            if retired.replacement not in self.models:
                raise ValueError(
                    f"retired model {name!r}: replacement {retired.replacement!r} is not a model"
                )
        return self


class PriceTable:
    """Model cards by name, with aliases resolved to the canonical name."""

    def __init__(
        self, cards: dict[str, ModelCard], retired: dict[str, RetiredModel] | None = None
    ) -> None:
        self.models = {name: card.model_copy(update={"name": name}) for name, card in cards.items()}
        self._by_alias = {
            alias: name for name, card in cards.items() for alias in (name, *card.aliases)
        }
        self._retired = {
            alias: (name, entry)
            for name, entry in (retired or {}).items()
            for alias in (name, *entry.aliases)
        }

    def retirement_note(self, requested: str) -> str:
        """For a retired name, the sentence a 404 adds (when and what to use); else ''."""
        if requested not in self._retired:
            return ""
        name, entry = self._retired[requested]
        when = f" on {entry.retired_on}" if entry.retired_on else ""
        return (
            f" {name!r} was retired by its provider{when} and is no longer accepted; "
            f"use {entry.replacement!r} instead."
        )

    def resolve(self, requested: str) -> ModelCard | None:
        name = self._by_alias.get(requested)
        return self.models[name] if name else None

    def __contains__(self, requested: str) -> bool:
        return requested in self._by_alias

    def names(self) -> list[str]:
        return list(self.models)


DEFAULT_TABLE_PATH = Path(str(resources.files("ai_gateway") / "data" / "models.yaml"))


def load_price_table(path: Path | None = None) -> PriceTable:
    path = path or DEFAULT_TABLE_PATH
    return price_table(read_yaml(path), str(path))


def price_table(data: Any, source: str) -> PriceTable:
    """The table a model file's parsed YAML holds, validated; errors name ``source``."""
    table = validate(_TableFile, data, source)
    return PriceTable(table.models, table.retired)


@cache
def default_price_table() -> PriceTable:
    return load_price_table()
