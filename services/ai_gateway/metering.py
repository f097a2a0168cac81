"""The metering stage: what each answer billed, saved and hit, as Prometheus counters."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from .domain import Completion
from .metrics import GatewayMetrics
from .records import API_SHAPES
from .store import StoreUnavailable

log = logging.getLogger("ai_gateway")
# The answers' statuses an alert or panel divides by: the server-error alert's 500s and 503s
# must exist at 0 before each pod's first, or rate() loses it.
ANSWERS_FROM_START = ("200", "500", "503")
T = TypeVar("T")


def _billed(c: Completion) -> list[tuple[str, int, float]]:
    """Tokens and USD per token type; the types add up to the prompt and to the cost.

    "input" is the prompt at the plain input price, without the provider-cached ("cached_input")
    and cache-written ("cache_write") tokens, as Anthropic's ``input_tokens`` counts it.
    """
    card = c.model
    parts = [
        ("input", c.uncached_prompt_tokens, card.cost_usd(c.uncached_prompt_tokens, 0)),
        ("cached_input", c.cached_tokens, card.cost_usd(c.cached_tokens, 0, c.cached_tokens)),
        (
            "cache_write",
            c.cache_write_tokens,
            card.cost_usd(
                c.cache_write_tokens, 0, 0, c.cache_write_tokens, c.cache_write_1h_tokens
            ),
        ),
        ("output", c.completion_tokens, card.cost_usd(0, c.completion_tokens)),
    ]
    return [part for part in parts if part[1] > 0 or part[0] in ("input", "output")]


class Meter:
    def __init__(
        self,
        metrics: GatewayMetrics,
        cache_kinds: tuple[str, ...],
        teams: tuple[str, ...],
        routing: bool = False,
    ) -> None:
        """``cache_kinds``: the caches that are on ("exact", "semantic"). The series whose labels
        are known before any request exist from the start at 0: each team's hits and misses of
        those caches (and exact hits that waited for a request in flight) and its savings by
        cache and routing (when on), and each API's answers. increase() and rate() cannot see a
        series appear, so the hit-ratio alert could not fire before a pod's first hit, and the
        savings panel lost each pod's first saving."""
        self.metrics = metrics
        self._caching = bool(cache_kinds)
        saving_reasons = (*(("cache",) if cache_kinds else ()), *(("routing",) if routing else ()))
        for team in teams:
            for reason in saving_reasons:
                metrics.saved.labels(reason=reason, team=team)
            if cache_kinds:
                metrics.cache_misses.labels(team=team)
            for kind in cache_kinds:
                metrics.cache_hits.labels(kind=kind, team=team)
            if "exact" in cache_kinds:
                metrics.cache_coalesced.labels(team=team)
        for api in API_SHAPES:
            for status in ANSWERS_FROM_START:
                metrics.requests.labels(api=api, status=status)
            metrics.streams_aborted.labels(api=api)

    def record(self, completion: Completion) -> None:
        m, team, model = self.metrics, completion.team, completion.model.name
        if completion.cache == "miss":
            for kind, tokens, usd in _billed(completion):
                m.tokens.labels(type=kind, model=model, team=team).inc(tokens)
                m.cost.labels(type=kind, model=model, team=team).inc(usd)
            if completion.prompt_cache_saved_usd > 0:
                saved = completion.prompt_cache_saved_usd
                # The providers' own discount, which any application gets: not the gateway's.
                m.saved.labels(reason="provider_prompt_cache", team=team).inc(saved)
            if self._caching:
                m.cache_misses.labels(team=team).inc()
            if completion.routed_from is not None:
                m.routed.labels(requested=completion.routed_from, served=model).inc()
            if completion.saved_usd > 0:
                m.saved.labels(reason="routing", team=team).inc(completion.saved_usd)
        else:
            m.cache_hits.labels(kind=completion.cache, team=team).inc()
            m.saved.labels(reason="cache", team=team).inc(completion.saved_usd)

    async def guarded(self, operation: Awaitable[T], op: str) -> T | None:
        """Run a cache operation; a store failure is logged, counted and treated as a miss.

        A success does not set ``ai_store_up`` back to 1: a hit on the replica's own copy of an
        answer succeeds without asking the store, and during an outage it kept raising the
        gauge, which held off the store-down alert. The store watch's ping raises it."""
        try:
            return await operation
        except StoreUnavailable as exc:
            self.store_failed(op, exc, f"{op} failed, continuing without it")
            return None

    def store_failed(self, op: str, exc: StoreUnavailable, consequence: str) -> None:
        """A store operation that failed: counted by ``op``, the store marked down, and logged
        with what the gateway does instead."""
        self.metrics.store_failed(op)
        log.warning("%s: %s", consequence, exc)
