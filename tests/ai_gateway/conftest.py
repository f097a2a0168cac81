"""Fixtures of the gateway's tests: both stores, a clock tests move by hand, the in-process app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from ai_gateway.app import create_app
from ai_gateway.pipeline import Gateway
from ai_gateway.store import MemoryStore, RedisStore
from ai_gateway.wiring import build_gateway
from tests.ai_gateway.support import ManualClock, settings_for


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "redis"])
async def store(request, flush_valkey, clock):
    """Each store implementation in turn, so both are held to the same semantics."""
    store = (
        MemoryStore(clock=clock) if request.param == "memory" else RedisStore(flush_valkey, clock)
    )
    yield store
    await store.close()


@pytest.fixture
def make_gateway(clock) -> Callable[..., Gateway]:
    """A gateway over the in-process store (or the one given), on the test's clock."""

    def make(profile: str = "optimized", store=None, **overrides: Any) -> Gateway:
        return build_gateway(settings_for(profile, **overrides), store, clock=clock)

    return make


@pytest.fixture
async def app_client(
    make_gateway,
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """The FastAPI app in this process, spoken to over httpx's ASGI transport."""
    opened: list[tuple[httpx.AsyncClient, Gateway]] = []

    async def open_client(profile: str = "unoptimized", store=None, **overrides: Any):
        gateway = make_gateway(profile, store, **overrides)
        transport = httpx.ASGITransport(app=create_app(gateway))
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30)
        opened.append((client, gateway))
        return client

    yield open_client
    for client, gateway in opened:
        await client.aclose()
        await gateway.close()
