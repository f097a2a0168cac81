"""Shared state behind one interface: Redis for many replicas, or an in-process store for one.

Both implementations have the same semantics: values with a TTL, and append-only logs trimmed by
age (the semantic cache's shared index). The in-process store is the embedded default when
``REDIS_URL`` is not set and serves a single replica only. Budget counters live in budgets.py.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, Protocol, TypeVar

from .resp import Buffer, RespClient, RespError

KEY_PREFIX = "finops:"
V = TypeVar("V")
BULK_TIMEOUT_S = 60.0


class StoreUnavailable(RuntimeError):
    """The backing store did not answer."""


Clock = Callable[[], float]
"""Seconds since the epoch; injected so that tests move time instead of sleeping."""


LogEntry = tuple[str, dict[str, bytes]]


def _as_bytes(value: object) -> bytes:
    """A Redis reply as bytes (the client does not decode responses)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise StoreUnavailable(f"unexpected reply from the store: {value!r:.80}")


def _fields(flat: list[Any]) -> dict[str, bytes]:
    """A stream entry's [field, value, field, value, ...] as a dict."""
    pairs = zip(flat[::2], flat[1::2], strict=True)
    return {_as_bytes(field).decode(): _as_bytes(value) for field, value in pairs}


def log_id_key(entry_id: str) -> tuple[int, int]:
    """A log entry id ("<ms>-<seq>") in the order the log holds it."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Store(Protocol):
    kind: str
    shared: bool  # seen by other replicas (Redis), not only this process

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; None when it is absent (or never expires)."""
        ...

    async def touch(self, key: str) -> None:
        """Mark ``key`` as just used, for the store's own LRU eviction, without reading it."""
        ...

    async def get_bulk(self, key: str) -> bytes | None:
        """:meth:`get` for a large value (a semantic snapshot, tens of MB)."""
        ...

    async def set_bulk(self, key: str, parts: list[Buffer], ttl_seconds: int) -> None:
        """:meth:`set` for a large value given in parts (stored joined, but on Redis sent without
        joining them: no copy of tens of MB), over a connection of its own, so the requests'
        commands are not queued behind its transfer."""
        ...

    async def log_append(self, log: str, fields: dict[str, bytes], max_age_s: int) -> str:
        """Append to a shared append-only log; entries older than ``max_age_s`` are trimmed."""
        ...

    async def log_read(self, log: str, after: str, count: int) -> list[LogEntry]:
        """Entries after the id ``after`` ("0" for all), oldest first, at most ``count``."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


async def write_together(store: Store, writes: Sequence[Coroutine[Any, Any, object]]) -> None:
    """Independent writes, every one of them run. On Redis they are issued together and share
    one round trip (resp.py); in process they run in order, since a task each would cost more
    than it saves. The first failure is raised once all have finished."""
    if not store.shared or len(writes) < 2:
        outcomes: list[object] = []
        for write in writes:
            try:
                outcomes.append(await write)
            except Exception as exc:  # raised below, once the other writes have run
                outcomes.append(exc)
    else:
        outcomes = list(await asyncio.gather(*writes, return_exceptions=True))
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if errors:
        raise errors[0]


class ExpiringLRU(Generic[V]):
    """Values that expire at a given time, the least recently used dropped first past
    ``max_entries``: the in-process store's values, and the caches' kept answers."""

    def __init__(self, max_entries: int, clock: Clock) -> None:
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires_at, value = item
        if expires_at <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V, expires_at: float) -> None:
        self._items[key] = (expires_at, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_entries:
            self._items.popitem(last=False)

    def time_left(self, key: str) -> float | None:
        item = self._items.get(key)
        left = None if item is None else item[0] - self._clock()
        return left if left is not None and left > 0 else None

    def clear(self) -> None:
        self._items.clear()


_FlatLogEntry = tuple[Any, ...]
"""A log entry in the in-process store, flat: its id's two numbers (``log_id_key``), then its
fields as field, value, field, value. One tuple of numbers, strings and bytes, which the garbage
collector stops tracking at its first pass; nested tuples take a pass per level, and a tuple that
holds a dict is tracked for as long as it lives (semantic.py's ``_Entry`` says why it matters)."""


def _flat_log_key(entry: _FlatLogEntry) -> tuple[int, int]:
    return entry[0], entry[1]


class MemoryStore:
    """In-process store with TTLs and an LRU bound, for a single replica."""

    kind = "memory"
    shared = False

    def __init__(self, max_entries: int = 200_000, clock: Clock = time.time) -> None:
        self._data: ExpiringLRU[bytes] = ExpiringLRU(max_entries, clock)
        self._logs: dict[str, list[_FlatLogEntry]] = {}
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._data.put(key, value, self._clock() + ttl_seconds)

    async def ttl(self, key: str) -> float | None:
        return self._data.time_left(key)

    async def touch(self, key: str) -> None:
        self._data.get(key)

    async def get_bulk(self, key: str) -> bytes | None:
        return await self.get(key)

    async def set_bulk(self, key: str, parts: list[Buffer], ttl_seconds: int) -> None:
        await self.set(key, b"".join(parts), ttl_seconds)

    async def log_append(self, log: str, fields: dict[str, bytes], max_age_s: int) -> str:
        entries = self._logs.setdefault(log, [])
        now_ms = int(self._clock() * 1000)
        last_ms, last_seq = _flat_log_key(entries[-1]) if entries else (0, 0)
        ms, seq = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        entries.append((ms, seq, *(part for pair in fields.items() for part in pair)))
        oldest = (now_ms - max_age_s * 1000, 0)
        del entries[: bisect.bisect_left(entries, oldest, key=_flat_log_key)]
        return f"{ms}-{seq}"

    async def log_read(self, log: str, after: str, count: int) -> list[LogEntry]:
        entries = self._logs.get(log, [])
        start = bisect.bisect_right(entries, log_id_key(after), key=_flat_log_key)
        return [
            (f"{entry[0]}-{entry[1]}", _fields(list(entry[2:])))
            for entry in entries[start : start + count]
        ]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()
        self._logs.clear()


class RedisStore:
    """Redis (or Valkey) store shared by every replica, over one pipelining connection."""

    kind = "redis"
    shared = True

    def __init__(self, url: str, clock: Clock = time.time, timeout_s: float = 5.0) -> None:
        """``timeout_s`` bounds both connecting and each command's reply: past it the store counts
        as unavailable."""
        self.client = RespClient(url, timeout_s=timeout_s, connect_timeout_s=timeout_s)
        # Large values take a connection of their own, with time to cross a slow network.
        self._bulk = RespClient(
            url, timeout_s=max(timeout_s, BULK_TIMEOUT_S), connect_timeout_s=timeout_s
        )
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        return await self._get(self.client, key)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._set(self.client, key, value, ttl_seconds)

    async def ttl(self, key: str) -> float | None:
        try:
            left_ms = await self.client.execute("PTTL", KEY_PREFIX + key)
        except RespError as exc:
            raise StoreUnavailable(f"redis pttl failed: {exc}") from exc
        return int(left_ms) / 1000 if int(left_ms) >= 0 else None

    async def touch(self, key: str) -> None:
        try:
            await self.client.execute("TOUCH", KEY_PREFIX + key)
        except RespError as exc:
            raise StoreUnavailable(f"redis touch failed: {exc}") from exc

    async def get_bulk(self, key: str) -> bytes | None:
        return await self._get(self._bulk, key)

    async def set_bulk(self, key: str, parts: list[Buffer], ttl_seconds: int) -> None:
        await self._set(self._bulk, key, parts, ttl_seconds)

    @staticmethod
    async def _get(client: RespClient, key: str) -> bytes | None:
        try:
            value = await client.execute("GET", KEY_PREFIX + key)
        except RespError as exc:
            raise StoreUnavailable(f"redis get failed: {exc}") from exc
        return None if value is None else _as_bytes(value)

    @staticmethod
    async def _set(
        client: RespClient, key: str, value: bytes | list[Buffer], ttl_seconds: int
    ) -> None:
        try:
            await client.execute("SET", KEY_PREFIX + key, value, "EX", ttl_seconds)
        except RespError as exc:
            raise StoreUnavailable(f"redis set failed: {exc}") from exc

    async def log_append(self, log: str, fields: dict[str, bytes], max_age_s: int) -> str:
        oldest_ms = int(self._clock() * 1000) - max_age_s * 1000
        pairs = [part for field, value in fields.items() for part in (field, value)]
        try:
            entry_id = await self.client.execute(
                "XADD", KEY_PREFIX + log, "MINID", "~", oldest_ms, "*", *pairs
            )
        except RespError as exc:
            raise StoreUnavailable(f"redis xadd failed: {exc}") from exc
        return _as_bytes(entry_id).decode()

    async def log_read(self, log: str, after: str, count: int) -> list[LogEntry]:
        try:
            reply: Any = await self.client.execute(
                "XREAD", "COUNT", count, "STREAMS", KEY_PREFIX + log, after
            )
        except RespError as exc:
            raise StoreUnavailable(f"redis xread failed: {exc}") from exc
        if not reply:
            return []
        return [(_as_bytes(entry_id).decode(), _fields(flat)) for entry_id, flat in reply[0][1]]

    async def ping(self) -> None:
        try:
            await self.client.execute("PING")
        except RespError as exc:
            raise StoreUnavailable(f"redis ping failed: {exc}") from exc

    async def close(self) -> None:
        await self.client.close()
        await self._bulk.close()
