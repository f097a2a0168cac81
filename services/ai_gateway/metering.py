"""The metering stage: what each answer billed, saved and hit, as Prometheus counters."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from .domain import Completion
from .metrics import GatewayMetrics
from .store import StoreUnavailable

log = logging.getLogger("ai_gateway")
T = TypeVar("T")


class Meter:
    def __init__(self, metrics: GatewayMetrics, caching: bool) -> None:
        self.metrics = metrics
        self._caching = caching

    def record(self, completion: Completion) -> None:
        m, team, model = self.metrics, completion.team, completion.model.name
        if completion.cache == "miss":
            m.tokens.labels(type="input", model=model, team=team).inc(completion.prompt_tokens)
            m.tokens.labels(type="output", model=model, team=team).inc(completion.completion_tokens)
            m.cost.labels(model=model, team=team).inc(completion.cost_usd)
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
        """Run a cache operation; a store failure is logged, counted and treated as a miss."""
        try:
            result = await operation
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels(op=op).inc()
            self.metrics.store_up.set(0)
            log.warning("%s failed, continuing without it: %s", op, exc)
            return None
        self.metrics.store_up.set(1)
        return result
