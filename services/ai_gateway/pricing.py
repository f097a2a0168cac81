"""The price and model table (data/models.yaml) and the cost of a request."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from finops_common.config import StrictModel, read_yaml, validate

Tier = Literal["simple", "standard", "complex"]
TIERS: tuple[Tier, ...] = ("simple", "standard", "complex")


class Prices(StrictModel):
    """USD per 1M tokens."""

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)


class LatencyProfile(StrictModel):
    ttft_ms: float = Field(ge=0)
    tokens_per_second: float = Field(gt=0)


class OutputLength(StrictModel):
    median: int = Field(ge=1)
    sigma: float = Field(ge=0, le=3)


class ModelCard(StrictModel):
    """Everything the gateway knows about one model."""

    name: str = ""
    provider: Literal["openai", "anthropic"]
    tokenizer: Literal["cl100k_base", "o200k_base", "claude-approx"]
    aliases: tuple[str, ...] = ()
    tier: Tier
    context_window: int = Field(ge=1)
    max_output_tokens: int = Field(ge=1)
    price_per_1m: Prices
    price_source: str = Field(min_length=1)
    price_as_of: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    latency: LatencyProfile
    output_tokens: OutputLength

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        prices = self.price_per_1m
        return (prompt_tokens * prices.input + completion_tokens * prices.output) / 1_000_000


class _TableFile(StrictModel):
    version: Literal[1]
    models: dict[str, ModelCard]

    @model_validator(mode="after")
    def _unique_names(self) -> _TableFile:
        seen: dict[str, str] = {}
        for name, card in self.models.items():
            for alias in (name, *card.aliases):
                if alias in seen:
                    raise ValueError(
                        f"model name {alias!r} is used by {seen[alias]!r} and {name!r}"
                    )
                seen[alias] = name
        return self


class PriceTable:
    """Model cards by name, with aliases resolved to the canonical name."""

    def __init__(self, cards: dict[str, ModelCard]) -> None:
        self.models = {name: card.model_copy(update={"name": name}) for name, card in cards.items()}
        self._by_alias = {
            alias: name for name, card in cards.items() for alias in (name, *card.aliases)
        }

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
    table = validate(_TableFile, read_yaml(path), str(path))
    return PriceTable(table.models)


@cache
def default_price_table() -> PriceTable:
    return load_price_table()
