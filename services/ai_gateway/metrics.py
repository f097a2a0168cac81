"""Prometheus metrics, with the original design's names so its dashboards keep working.

One gateway process per pod: the counters live in that process's registry, and replicas are
summed by Prometheus. The CLI therefore always runs a single worker process.
"""

from __future__ import annotations

from typing import Self

import prometheus_client
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics import MetricWrapperBase


class _RememberedChildren(MetricWrapperBase):
    """prometheus_client checks the label names, converts the values and takes a lock on every
    ``labels()`` call; a request asks for the same few children again and again, so each call's
    child is remembered by its arguments (the gateway never removes a child)."""

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Self:
        key = (labelvalues, tuple(labelkwargs.items()))
        children: dict[object, Self] = self.__dict__.setdefault("_children_by_arguments", {})
        child = children.get(key)
        if child is None:
            child = children[key] = super().labels(*labelvalues, **labelkwargs)
        return child


class Counter(_RememberedChildren, prometheus_client.Counter):
    pass


class Gauge(_RememberedChildren, prometheus_client.Gauge):
    pass


class Histogram(_RememberedChildren, prometheus_client.Histogram):
    pass


DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        self.tokens = Counter(
            "ai_tokens",
            "Tokens billed by the simulated providers.",
            ["type", "model", "team"],
            registry=r,
        )
        self.cost = Counter(
            "ai_cost",
            "Provider spend in USD, by token type (input, cached_input, cache_write, output).",
            ["type", "model", "team"],
            registry=r,
        )
        self.duration = Histogram(
            "ai_request_duration_seconds",
            "Time to serve a completion, to the last byte.",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "ai_cache_hits", "Requests answered from the cache.", ["kind", "team"], registry=r
        )
        self.cache_coalesced = Counter(
            "ai_cache_coalesced",
            "Exact hits that shared the answer of an identical request in flight on the replica.",
            ["team"],
            registry=r,
        )
        self.cache_misses = Counter(
            "ai_cache_misses",
            "Cacheable requests the cache could not answer.",
            ["team"],
            registry=r,
        )
        self.active = Gauge("ai_active_requests", "Requests in flight.", registry=r)
        self.saved = Counter(
            "ai_cost_saved",
            "USD not spent thanks to an optimization.",
            ["reason", "team"],
            registry=r,
        )
        self.requests = Counter(
            "ai_requests",
            "Requests answered, by API and HTTP status.",
            ["api", "status"],
            registry=r,
        )
        self.store_errors = Counter(
            "ai_store_errors",
            "Store operations that failed (cache: served as misses; budgets: as configured).",
            ["op"],
            registry=r,
        )
        self.store_up = Gauge(
            "ai_store_up",
            "1 while the store answers, 0 after a failed operation or ping.",
            registry=r,
        )
        self.store_up.set(1)

        self.routed = Counter(
            "ai_routed_requests",
            "Requests the router served with another model than the one asked for ('auto' "
            "included), by requested and served model.",
            ["requested", "served"],
            registry=r,
        )
        self.budget_rejections = Counter(
            "ai_budget_rejections",
            "Requests refused by a team's budget or rate limit.",
            ["team", "reason"],
            registry=r,
        )
        self.budget_limit = Gauge(
            "ai_budget_limit_usd",
            "The team's budget for its current period.",
            ["team"],
            registry=r,
        )
        self.budget_remaining = Gauge(
            "ai_budget_remaining_usd",
            "Budget left in the team's current period.",
            ["team"],
            registry=r,
        )
        self.budget_unsettled = Gauge(
            "ai_budget_unsettled",
            "Settlements the store did not answer, kept by this replica for a retry.",
            registry=r,
        )
        self.budget_settlements_dropped = Counter(
            "ai_budget_settlements_dropped",
            "Settlements dropped unrecorded: past the replica's limit of waiting ones.",
            registry=r,
        )
        self.streams_aborted = Counter(
            "ai_streams_aborted",
            "Streams the client left before their end: billed and settled as far as delivered, "
            "and not cached.",
            ["api"],
            registry=r,
        )
        self.semantic_similarity = Histogram(
            "ai_semantic_similarity",
            "Best cosine similarity among each semantic lookup's candidates (hits and misses); "
            "with the guard on, the candidates are the cached prompts sharing the terms it "
            "requires equal, and a lookup with none observes nothing.",
            buckets=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0),
            registry=r,
        )
        self.semantic_refusals = Counter(
            "ai_semantic_refusals",
            "Semantic candidates refused, by check: the guard's (on candidates that already "
            "share the terms it requires equal) or model.",
            ["reason"],
            registry=r,
        )
        self.semantic_skips = Counter(
            "ai_semantic_skips",
            "Requests the semantic cache neither looked up nor stored: too long for the embedder "
            "to read whole, or nothing to embed.",
            ["reason"],
            registry=r,
        )

    def store_failed(self, op: str) -> None:
        """A store operation that failed: counted by ``op``, and the store marked down."""
        self.store_errors.labels(op=op).inc()
        self.store_up.set(0)
