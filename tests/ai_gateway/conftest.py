"""Fixtures of the gateway's tests."""

from __future__ import annotations

import pytest

from ai_gateway.store import MemoryStore, RedisStore


@pytest.fixture(params=["memory", "redis"])
async def store(request, flush_valkey):
    """Each store implementation in turn, so both are held to the same semantics."""
    store = MemoryStore() if request.param == "memory" else RedisStore(flush_valkey)
    yield store
    await store.close()
