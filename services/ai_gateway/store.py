"""Shared state behind one interface: Redis for many replicas, or an in-process store for one.

Both implementations have the same semantics (values with a TTL); the in-process store is the
embedded default when ``REDIS_URL`` is not set and serves a single replica only.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from datetime import datetime
from typing import Protocol

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from .budgets import Reason, Reservation, TeamLimits, ttl_seconds

KEY_PREFIX = "finops:"


class StoreUnavailable(RuntimeError):
    """The backing store did not answer."""


LogEntry = tuple[str, dict[str, bytes]]


def _log_id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Store(Protocol):
    kind: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def log_append(self, log: str, fields: dict[str, bytes], max_age_s: int) -> str:
        """Append to a shared append-only log; entries older than ``max_age_s`` are trimmed."""
        ...

    async def log_read(self, log: str, after: str, count: int) -> list[LogEntry]:
        """Entries after the id ``after`` ("0" for all), oldest first, at most ``count``."""
        ...

    async def reserve(
        self, reservation: Reservation, limits: TeamLimits, now: datetime
    ) -> tuple[Reason, int]:
        """Atomically check every limit and, if all pass, record the reservation.

        Returns the reason ("ok" when admitted) and the spend recorded before this request.
        """
        ...

    async def settle(self, reservation: Reservation, cost_nanos: int, tokens: int) -> int:
        """Replace a reservation by the actual cost and tokens; returns the spend after it."""
        ...

    async def budget_usage(self, budget_key: str) -> tuple[int, int]:
        """(spent, reserved) nano-dollars in a budget period."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """In-process store with TTLs and an LRU bound, for a single replica."""

    kind = "memory"

    def __init__(self, max_entries: int = 200_000) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._logs: dict[str, list[LogEntry]] = {}
        self._counters: dict[str, tuple[float, dict[str, int]]] = {}

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

    async def log_append(self, log: str, fields: dict[str, bytes], max_age_s: int) -> str:
        entries = self._logs.setdefault(log, [])
        now_ms = int(time.time() * 1000)
        last_ms, last_seq = _log_id_key(entries[-1][0]) if entries else (0, 0)
        entry_id = f"{now_ms}-0" if now_ms > last_ms else f"{last_ms}-{last_seq + 1}"
        entries.append((entry_id, dict(fields)))
        oldest = (now_ms - max_age_s * 1000, 0)
        del entries[: bisect.bisect_left(entries, oldest, key=lambda e: _log_id_key(e[0]))]
        return entry_id

    async def log_read(self, log: str, after: str, count: int) -> list[LogEntry]:
        entries = self._logs.get(log, [])
        start = bisect.bisect_right(entries, _log_id_key(after), key=lambda e: _log_id_key(e[0]))
        return entries[start : start + count]

    def _counter(self, key: str) -> dict[str, int]:
        item = self._counters.get(key)
        if item is None or item[0] <= time.monotonic():
            return {}
        return item[1]

    def _bump(self, key: str, field: str, delta: int, ttl: int) -> None:
        counter = self._counter(key)
        counter[field] = counter.get(field, 0) + delta
        self._counters[key] = (time.monotonic() + ttl, counter)

    async def reserve(
        self, reservation: Reservation, limits: TeamLimits, now: datetime
    ) -> tuple[Reason, int]:
        w = reservation.window
        budget = self._counter(w.budget_key)
        spent, reserved = budget.get("spent", 0), budget.get("reserved", 0)
        rpm = limits.requests_per_minute
        if rpm is not None and self._counter(w.requests_key).get("n", 0) + 1 > rpm:
            return "requests_per_minute", spent
        tpm, tokens = limits.tokens_per_minute, reservation.tokens
        if (
            tpm is not None
            and tokens > 0
            and self._counter(w.tokens_key).get("n", 0) + tokens > tpm
        ):
            return "tokens_per_minute", spent
        cost, limit = reservation.cost_nanos, limits.budget_nanos
        if limit is not None and cost > 0 and spent + reserved + cost > limit:
            return "budget", spent
        minute_ttl = ttl_seconds(w.minute_end, now)
        self._bump(w.requests_key, "n", 1, minute_ttl)
        if tokens > 0:
            self._bump(w.tokens_key, "n", tokens, minute_ttl)
        if cost > 0:
            self._bump(w.budget_key, "reserved", cost, ttl_seconds(w.period_end, now))
        return "ok", spent

    async def settle(self, reservation: Reservation, cost_nanos: int, tokens: int) -> int:
        w = reservation.window
        budget = self._counter(w.budget_key)
        budget["reserved"] = budget.get("reserved", 0) - reservation.cost_nanos
        budget["spent"] = budget.get("spent", 0) + cost_nanos
        if w.budget_key not in self._counters:
            self._counters[w.budget_key] = (time.monotonic() + 86_400, budget)
        if reservation.tokens > 0:
            used = self._counter(w.tokens_key)
            used["n"] = used.get("n", 0) + tokens - reservation.tokens
        return budget["spent"]

    async def budget_usage(self, budget_key: str) -> tuple[int, int]:
        budget = self._counter(budget_key)
        return budget.get("spent", 0), budget.get("reserved", 0)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()
        self._logs.clear()
        self._counters.clear()


_RESERVE_LUA = """
local budget_limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local tpm_limit, tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
local rpm_limit = tonumber(ARGV[5])
local budget_ttl, minute_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
if rpm_limit >= 0 and tonumber(redis.call('GET', KEYS[3]) or '0') + 1 > rpm_limit then
  return {'requests_per_minute', spent}
end
if tpm_limit >= 0 and tokens > 0
   and tonumber(redis.call('GET', KEYS[2]) or '0') + tokens > tpm_limit then
  return {'tokens_per_minute', spent}
end
if budget_limit >= 0 and cost > 0 and spent + reserved + cost > budget_limit then
  return {'budget', spent}
end
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], minute_ttl)
if tokens > 0 then
  redis.call('INCRBY', KEYS[2], tokens)
  redis.call('EXPIRE', KEYS[2], minute_ttl)
end
if cost > 0 then
  redis.call('HINCRBY', KEYS[1], 'reserved', cost)
  redis.call('EXPIRE', KEYS[1], budget_ttl)
end
return {'ok', spent}
"""

_SETTLE_LUA = """
local reserved_cost, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local reserved_tokens, tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HINCRBY', KEYS[1], 'reserved', -reserved_cost)
local spent = redis.call('HINCRBY', KEYS[1], 'spent', cost)
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], 86400) end
if reserved_tokens > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('INCRBY', KEYS[2], tokens - reserved_tokens)
end
return spent
"""


class RedisStore:
    """Redis (or Valkey) store shared by every replica."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self._client = redis_asyncio.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
        )
        self._reserve = self._client.register_script(_RESERVE_LUA)
        self._settle = self._client.register_script(_SETTLE_LUA)

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

    async def log_append(self, log: str, fields: dict[str, bytes], max_age_s: int) -> str:
        oldest_ms = int(time.time() * 1000) - max_age_s * 1000
        try:
            entry_id = await self._client.xadd(
                KEY_PREFIX + log, fields, minid=oldest_ms, approximate=True
            )
        except RedisError as exc:
            raise StoreUnavailable(f"redis xadd failed: {exc}") from exc
        return entry_id.decode()

    async def log_read(self, log: str, after: str, count: int) -> list[LogEntry]:
        try:
            reply = await self._client.xread({KEY_PREFIX + log: after}, count=count)
        except RedisError as exc:
            raise StoreUnavailable(f"redis xread failed: {exc}") from exc
        if not reply:
            return []
        return [
            (eid.decode(), {k.decode(): v for k, v in fields.items()})
            for eid, fields in reply[0][1]
        ]

    async def reserve(
        self, reservation: Reservation, limits: TeamLimits, now: datetime
    ) -> tuple[Reason, int]:
        w = reservation.window

        def limit(value: int | None) -> int:
            return -1 if value is None else value

        try:
            reason, spent = await self._reserve(
                keys=[KEY_PREFIX + w.budget_key, KEY_PREFIX + w.tokens_key,
                      KEY_PREFIX + w.requests_key],
                args=[limit(limits.budget_nanos), reservation.cost_nanos,
                      limit(limits.tokens_per_minute), reservation.tokens,
                      limit(limits.requests_per_minute),
                      ttl_seconds(w.period_end, now), ttl_seconds(w.minute_end, now)],
            )  # fmt: skip
        except RedisError as exc:
            raise StoreUnavailable(f"redis budget reservation failed: {exc}") from exc
        return reason.decode(), int(spent)

    async def settle(self, reservation: Reservation, cost_nanos: int, tokens: int) -> int:
        w = reservation.window
        try:
            spent = await self._settle(
                keys=[KEY_PREFIX + w.budget_key, KEY_PREFIX + w.tokens_key],
                args=[reservation.cost_nanos, cost_nanos, reservation.tokens, tokens],
            )
        except RedisError as exc:
            raise StoreUnavailable(f"redis budget settlement failed: {exc}") from exc
        return int(spent)

    async def budget_usage(self, budget_key: str) -> tuple[int, int]:
        try:
            values = await self._client.hmget(KEY_PREFIX + budget_key, ["spent", "reserved"])
        except RedisError as exc:
            raise StoreUnavailable(f"redis budget read failed: {exc}") from exc
        return int(values[0] or 0), int(values[1] or 0)

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except RedisError as exc:
            raise StoreUnavailable(f"redis ping failed: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


def open_store(redis_url: str | None) -> Store:
    return RedisStore(redis_url) if redis_url else MemoryStore()
