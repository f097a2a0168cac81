"""The composition root: every stage of the pipeline is built here, and only here."""

from __future__ import annotations

import time

from .budgets import Budgets, Ledger, MemoryLedger, RedisLedger, team_limits
from .cache import ExactCache
from .catalog import Catalog
from .embeddings import Embedder, open_embedder
from .identity import Identity
from .metering import Meter
from .metrics import GatewayMetrics
from .pipeline import Gateway
from .pricing import PriceTable, default_price_table
from .prompt_cache import ProviderPromptCache
from .semantic import SemanticCache
from .settings import GatewaySettings, StoreSettings
from .simulator import SimulatedProvider
from .store import Clock, MemoryStore, RedisStore, Store


def open_store(
    redis_url: str | None, clock: Clock = time.time, settings: StoreSettings | None = None
) -> Store:
    """Redis (shared by replicas) when a URL is given, else the in-process store."""
    if not redis_url:
        return MemoryStore(clock=clock)
    return RedisStore(redis_url, clock, (settings or StoreSettings()).timeout_s)


def ledger_for(store: Store, clock: Clock = time.time) -> Ledger:
    """Budget counters live next to the store: in the same Redis, or in this process."""
    return RedisLedger(store.client) if isinstance(store, RedisStore) else MemoryLedger(clock)


def open_gateway_embedder(settings: GatewaySettings) -> Embedder | None:
    """One embedder serves the semantic cache and the learned router (each request is embedded
    once). The cache cannot work without it; the router can (its features-only head), so routing
    alone opens one only when a model2vec model is configured."""
    semantic = settings.cache.semantic
    if semantic.enabled:
        return open_embedder(semantic.embedder, semantic.model)
    if settings.routing.enabled and semantic.embedder == "model2vec" and semantic.model:
        return open_embedder(semantic.embedder, semantic.model)
    return None


def build_gateway(
    settings: GatewaySettings,
    store: Store | None = None,
    *,
    metrics: GatewayMetrics | None = None,
    table: PriceTable | None = None,
    embedder: Embedder | None = None,
    clock: Clock = time.time,
) -> Gateway:
    """The gateway for these settings; the in-process store unless one is given."""
    store = store if store is not None else MemoryStore(clock=clock)
    metrics = metrics or GatewayMetrics()
    provider = SimulatedProvider(settings.latency_scale)
    exact = settings.cache.exact
    semantic = settings.cache.semantic
    embedder = embedder or open_gateway_embedder(settings)
    semantic_cache = (
        SemanticCache(
            store,
            embedder.dimensions,
            semantic.effective_threshold,
            semantic.verify,
            semantic.ttl_seconds,
            semantic.max_entries,
            clock,
            semantic.local_entries,
        )
        if semantic.enabled and embedder is not None
        else None
    )
    return Gateway(
        settings=settings,
        store=store,
        identity=Identity(settings),
        catalog=Catalog(table or default_price_table(), settings.routing, provider, embedder),
        budgets=Budgets(
            team_limits(settings),
            ledger_for(store, clock),
            metrics,
            fail_open=settings.budgets.on_store_error == "open",
        ),
        meter=Meter(
            metrics,
            cache_kinds=tuple(
                kind
                for kind, on in (("exact", exact.enabled), ("semantic", semantic.enabled))
                if on
            ),
            teams=tuple(settings.teams),
            routing=settings.routing.enabled,
        ),
        provider=provider,
        exact=(
            ExactCache(store, exact.ttl_seconds, exact.local_entries, clock)
            if exact.enabled
            else None
        ),
        semantic=semantic_cache,
        embedder=embedder,
        clock=clock,
        prompt_cache=ProviderPromptCache(clock) if settings.provider_prompt_cache else None,
    )
