"""The composition root: which stages a profile gets, and where budget counters live."""

from __future__ import annotations

import os

import pytest

from ai_gateway.budgets import MemoryLedger, RedisLedger
from ai_gateway.settings import resolve_settings
from ai_gateway.store import MemoryStore, RedisStore
from ai_gateway.wiring import build_gateway, ledger_for, open_store

LEXICAL = {"cache": {"semantic": {"embedder": "lexical"}}}


def test_unoptimized_profile_has_no_caches_and_no_embedder():
    gateway = build_gateway(resolve_settings("unoptimized", {}, "test"))
    assert (gateway.exact, gateway.semantic, gateway.embedder) == (None, None, None)
    assert isinstance(gateway.store, MemoryStore)


def test_optimized_profile_has_both_caches_over_one_store():
    gateway = build_gateway(resolve_settings("optimized", LEXICAL, "test"))
    assert gateway.exact is not None and gateway.semantic is not None
    assert gateway.embedder is not None and gateway.embedder.name.startswith("lexical")


def test_routing_alone_opens_the_embedder_for_the_learned_router():
    model = os.environ.get("GATEWAY_EMBEDDING_MODEL")
    if not model:
        pytest.skip("needs GATEWAY_EMBEDDING_MODEL")
    no_semantic = {"cache": {"semantic": {"enabled": False, "model": model}}}
    gateway = build_gateway(resolve_settings("optimized", no_semantic, "test"))
    assert gateway.settings.routing.enabled and gateway.semantic is None
    assert gateway.embedder is not None and gateway.embedder.name == f"model2vec:{model}"


async def test_budget_counters_live_next_to_the_store(valkey_url):
    assert isinstance(ledger_for(MemoryStore()), MemoryLedger)
    redis = open_store(valkey_url)
    try:
        assert isinstance(redis, RedisStore)
        assert isinstance(ledger_for(redis), RedisLedger)
    finally:
        await redis.close()
    assert isinstance(open_store(None), MemoryStore)
