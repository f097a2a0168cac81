"""Shared state behind one interface: Redis for many replicas, or an in-process store for one.

Both implementations have the same semantics (values with a TTL); the in-process store is the
embedded default when ``REDIS_URL`` is not set and serves a single replica only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

KEY_PREFIX = "finops:"


class StoreUnavailable(RuntimeError):
    """The backing store did not answer."""


class Store(Protocol):
    kind: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """In-process store with TTLs and an LRU bound, for a single replica."""

    kind = "memory"

    def __init__(self, max_entries: int = 200_000) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires_at, value = item
        if expires_at <= time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._data[key] = (time.monotonic() + ttl_seconds, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max_entries:
            self._data.popitem(last=False)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()


class RedisStore:
    """Redis (or Valkey) store shared by every replica."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self._client = redis_asyncio.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
        )

    async def get(self, key: str) -> bytes | None:
        try:
            return await self._client.get(KEY_PREFIX + key)
        except RedisError as exc:
            raise StoreUnavailable(f"redis get failed: {exc}") from exc

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        try:
            await self._client.set(KEY_PREFIX + key, value, ex=ttl_seconds)
        except RedisError as exc:
            raise StoreUnavailable(f"redis set failed: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except RedisError as exc:
            raise StoreUnavailable(f"redis ping failed: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


def open_store(redis_url: str | None) -> Store:
    return RedisStore(redis_url) if redis_url else MemoryStore()
