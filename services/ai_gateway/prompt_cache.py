"""The providers' own prompt caches, simulated: a repeated prompt prefix billed at the cached price.

Each provider caches a prompt prefix by its own rules (sources, read 2026-11):

* **OpenAI** (platform.openai.com/docs/guides/prompt-caching): automatic for prompts of 1,024
  tokens or more; the cached part is the longest previously seen prefix, counted in 1,024 tokens
  plus 128-token increments; entries are cleared after 5-10 minutes of inactivity. Reported as
  ``usage.prompt_tokens_details.cached_tokens``, billed at the cached-input price.
* **Anthropic** (platform.claude.com/docs/en/build-with-claude/prompt-caching): written only at
  ``cache_control`` breakpoints (a top-level ``cache_control`` puts one on the last block); the
  prefix up to a breakpoint is cacheable from a minimum that depends on the model (the model card's
  ``prompt_cache_min_tokens``: 4,096 for Opus 4.5 and later and Haiku 4.5, 1,024 for Sonnet 4.5 and
  4.6); an entry lives 5 minutes, or an hour for a ``ttl: "1h"`` mark, refreshed on each hit. A read
  may hit an entry at any block boundary up to 20 blocks before a breakpoint, so a breakpoint that
  moves to the newest turn of a conversation reads what the previous turn wrote and writes only the
  new part. A read is ``cache_read_input_tokens`` at 0.1x the input price; a write is
  ``cache_creation_input_tokens`` at 1.25x (the catalog's ``cache_write`` price), or 2x for what is
  written up to the last 1-hour mark (``cache_write_1h``), reported apart in
  ``usage.cache_creation``; ``input_tokens`` counts neither.
* **Google Gemini** (ai.google.dev/gemini-api/docs/caching, updated 2026-10-13): implicit caching,
  on by default for Gemini 2.5 and newer, minimum 2,048 input tokens for 2.5 Flash and 2.5 Pro. No
  lifetime or granularity is published; this simulation uses OpenAI's 5 minutes and whole tokens.

Simplifications, on purpose: a prefix ends at a message boundary (a system prompt or a document is
one message, which is where shared prefixes end in practice), and an Anthropic breakpoint sits at
the end of the message whose block carries ``cache_control`` (tool definitions are not counted as
prompt tokens by this gateway, so their breakpoints are not simulated).

The cache is per gateway replica, in memory: a real provider's cache is not shared by any
gateway either (OpenAI routes by a prefix hash to a machine), the lookups stay off the shared
store's hot path, and several replicas only lower the hit rate, as several provider machines do.
Entries are scoped by team and model, and time comes from the injectable clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .pricing import ModelCard
from .store import Clock
from .tokens import CacheTTL, PromptMessage, count_prompt
from .tool_prompt import ToolPrompt, definitions_tokens

MAX_ENTRIES = 100_000
# How many blocks before an Anthropic breakpoint a read looks for an entry (the docs' "about 20").
ANTHROPIC_LOOKBACK_BLOCKS = 20
TTL_SECONDS: dict[CacheTTL, float] = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True)
class CacheRules:
    """One provider's prompt-cache rules for one model."""

    minimum_tokens: int
    increment: int  # a read is minimum_tokens + k * increment tokens
    ttl_seconds: float  # idle lifetime, where no mark gives one; every hit refreshes it
    explicit: bool  # only at cache_control breakpoints, and writes are billed


# The minimum cacheable prefix of an Anthropic model whose card gives none (one added to a custom
# price table): the largest the docs list, so the simulation never claims a saving the provider
# might not give.
ANTHROPIC_UNLISTED_MINIMUM = 4096


def rules_for(card: ModelCard) -> CacheRules:
    if card.provider == "anthropic":
        minimum = card.prompt_cache_min_tokens or ANTHROPIC_UNLISTED_MINIMUM
        return CacheRules(minimum, 1, 300.0, explicit=True)
    if card.provider == "google":
        return CacheRules(2048, 1, 300.0, explicit=False)
    return CacheRules(1024, 128, 300.0, explicit=False)


@dataclass(frozen=True)
class Prefix:
    """The prompt up to the end of one message: its identity, length and breakpoint mark."""

    digest: str
    tokens: int
    mark: CacheTTL | None

    def lifetime(self, rules: CacheRules) -> float:
        """How long an entry written for this prefix lives idle: its mark's ttl, else the
        provider's."""
        return rules.ttl_seconds if self.mark is None else TTL_SECONDS[self.mark]


@dataclass(frozen=True)
class PromptCacheUse:
    """What the provider's cache did for one request, in prompt tokens."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written as 1-hour entries


NO_USE = PromptCacheUse()


def prefixes(
    card: ModelCard, messages: Sequence[PromptMessage], tools: ToolPrompt | None = None
) -> list[Prefix]:
    """Each message-boundary prefix, with its token count in the model's encoding. The tool
    definitions come first (the providers cache "from the first tool through the breakpoint"), so
    other tools make other prefixes; a message's tool calls and results are part of it."""
    out: list[Prefix] = []
    digest = hashlib.sha256()
    tokens = 0
    if tools is not None and tools.tools:
        digest.update("\x1d".join(tools.tools).encode() + b"\x1e")
        tokens = definitions_tokens(card, tools)
    empty = count_prompt(card, ())
    for message in messages:
        block = f"{message.role}\x1f{message.name or ''}\x1f{message.content}\x1f{message.keyed}"
        digest.update(block.encode() + b"\x1e")
        tokens += count_prompt(card, (message,)) - empty
        out.append(Prefix(digest.hexdigest()[:32], tokens, message.cache_mark))
    return out


def readable_tokens(rules: CacheRules, prefix_tokens: int) -> int:
    """How much of a cached prefix a read bills at the cached price (0 below the minimum)."""
    if prefix_tokens < rules.minimum_tokens:
        return 0
    steps = (prefix_tokens - rules.minimum_tokens) // rules.increment
    return rules.minimum_tokens + steps * rules.increment


def _boundaries(
    rules: CacheRules,
    card: ModelCard,
    messages: Sequence[PromptMessage],
    prompt_tokens: int,
    tools: ToolPrompt | None,
) -> list[Prefix]:
    """The message-boundary prefixes the provider considers caching: none below its minimum."""
    return [] if prompt_tokens < rules.minimum_tokens else prefixes(card, messages, tools)


def _written(rules: CacheRules, every: list[Prefix]) -> list[Prefix]:
    """The prefixes the provider would cache: long enough, and marked where marks are needed."""
    return [
        p
        for p in every
        if p.tokens >= rules.minimum_tokens and (p.mark is not None or not rules.explicit)
    ]


def _readable(rules: CacheRules, every: list[Prefix]) -> list[Prefix]:
    """The prefixes a read may hit: where entries are written, and for explicit caching every
    boundary within the lookback before a breakpoint."""
    if not rules.explicit:
        return _written(rules, every)
    marks = [at for at, p in enumerate(every) if p.mark is not None]
    return [
        p
        for at, p in enumerate(every)
        if p.tokens >= rules.minimum_tokens
        and any(0 <= mark - at <= ANTHROPIC_LOOKBACK_BLOCKS for mark in marks)
    ]


def _writes(written: list[Prefix], read_up_to: int) -> tuple[int, int]:
    """The tokens an explicit cache bills as writes, and how many of them as 1-hour entries:
    Anthropic bills from the hit (``read_up_to``, 0 without one) to the last 1-hour mark after it
    at the 1-hour price, and on to the last mark at the 5-minute price."""
    one_hour_up_to = max(
        (p.tokens for p in written if p.mark == "1h" and p.tokens > read_up_to), default=read_up_to
    )
    return max(written[-1].tokens - read_up_to, 0), one_hour_up_to - read_up_to


class ProviderPromptCache:
    """Prefix entries per (team, model) with an idle lifetime; see the module docstring."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (expires at, lifetime)

    def use(
        self,
        team: str,
        card: ModelCard,
        messages: Sequence[PromptMessage],
        prompt_tokens: int,
        tools: ToolPrompt | None = None,
    ) -> PromptCacheUse:
        if card.price_per_1m.cached_input is None:
            return NO_USE  # a model its provider lists no cached price for has no prompt cache
        rules = rules_for(card)
        every = _boundaries(rules, card, messages, prompt_tokens, tools)
        written = _written(rules, every)
        if not written:
            return NO_USE
        now = self._clock()
        scope = f"{team}\x1f{card.name}\x1f"
        hit = next(
            (p for p in reversed(_readable(rules, every)) if self._live(scope + p.digest, now)),
            None,
        )
        read_up_to = 0 if hit is None else hit.tokens
        read = 0 if hit is None else readable_tokens(rules, read_up_to)
        write, write_1h = _writes(written, read_up_to) if rules.explicit else (0, 0)
        self._purge(now)
        for prefix in ([] if hit is None else [hit]) + written:
            key = scope + prefix.digest
            if prefix.tokens > read_up_to:
                lifetime = prefix.lifetime(rules)
            elif self._live(key, now):
                # Read, not written: it keeps the lifetime it was written with (a mark that now
                # asks for another one is billed nothing, so it changes nothing).
                lifetime = self._entries[key][1]
            else:
                continue
            self._entries[key] = (now + lifetime, lifetime)
        return PromptCacheUse(read, write, write_1h)

    @staticmethod
    def worst_write_tokens(
        card: ModelCard,
        messages: Sequence[PromptMessage],
        prompt_tokens: int,
        tools: ToolPrompt | None = None,
    ) -> tuple[int, int]:
        """The most prompt tokens a request can be billed as cache writes (none cached yet), and
        how many of them as 1-hour entries: what a budget reserves at the write prices, which are
        above the input price."""
        rules = rules_for(card)
        if not rules.explicit:
            return 0, 0
        written = _written(rules, _boundaries(rules, card, messages, prompt_tokens, tools))
        return _writes(written, 0) if written else (0, 0)

    def _live(self, key: str, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry[0] > now

    def _purge(self, now: float) -> None:
        """Past ``MAX_ENTRIES``, drop the expired entries (once per request, not per entry)."""
        if len(self._entries) >= MAX_ENTRIES:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
