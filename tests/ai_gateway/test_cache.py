"""The exact cache: answers shared through the store, and each replica's kept copies."""

from __future__ import annotations

import asyncio
import json

from ai_gateway.cache import CachedCompletion, ExactCache, exact_key
from ai_gateway.store import MemoryStore, RedisStore

ANSWER = CachedCompletion("gpt-4o-mini", "Open Orders, then Cancel.", 12, 9, "stop", 0.0)
KEY = exact_key("team-a", '{"model":"gpt-4o-mini","messages":[]}')


async def test_a_repeated_hit_is_answered_from_the_kept_copy(store, clock):
    """Once read, an answer is found again without the store (here: after the store lost it),
    until the shared entry's own TTL ends."""
    writer = ExactCache(store, 60, local_entries=0, clock=clock)
    reader = ExactCache(store, 60, local_entries=8, clock=clock)
    await writer.put(KEY, ANSWER)
    assert await reader.get(KEY) == ANSWER
    await store.set(KEY, b"", 1)  # the shared entry is gone (an empty value is a miss)
    assert await writer.get(KEY) is None
    assert await reader.get(KEY) == ANSWER
    clock.advance(61)
    assert await reader.get(KEY) is None


async def test_the_kept_copy_expires_with_the_shared_entry(flush_valkey, clock):
    """A copy read 40 s into a 60 s entry's life lives 20 s more, not another 60."""
    writer_store, reader_store = RedisStore(flush_valkey, clock), RedisStore(flush_valkey, clock)
    try:
        await ExactCache(writer_store, 60, clock=clock).put(KEY, ANSWER)
        await writer_store.client.execute("PEXPIRE", "finops:" + KEY, 20_000)
        reader = ExactCache(reader_store, 60, local_entries=8, clock=clock)
        assert await reader.get(KEY) == ANSWER
        await writer_store.client.execute("DEL", "finops:" + KEY)
        clock.advance(19)
        assert await reader.get(KEY) == ANSWER
        clock.advance(2)
        assert await reader.get(KEY) is None
    finally:
        await writer_store.close()
        await reader_store.close()


async def test_without_kept_copies_every_read_asks_the_store(store, clock):
    cache = ExactCache(store, 60, local_entries=0, clock=clock)
    await cache.put(KEY, ANSWER)
    await store.set(KEY, b"", 1)
    assert await cache.get(KEY) is None


async def test_kept_copies_are_bounded_least_recently_used_first(store, clock):
    cache = ExactCache(store, 60, local_entries=2, clock=clock)
    keys = [exact_key("team-a", f"request {n}") for n in range(3)]
    for key in keys[:2]:
        await cache.put(key, ANSWER)
    assert await cache.get(keys[0]) == ANSWER  # keys[1] is now the least recently used
    await cache.put(keys[2], ANSWER)
    for key in keys:
        await store.set(key, b"", 1)
    assert [await cache.get(key) is not None for key in keys] == [True, False, True]


async def test_a_kept_hit_touches_the_stored_answer_once_a_minute(flush_valkey, clock):
    """The store does not see hits answered from a kept copy: without a touch, its LRU would take
    the hottest answer for an idle one (Valkey's OBJECT IDLETIME, in whole seconds)."""
    store = RedisStore(flush_valkey, clock)
    stored = "finops:" + KEY
    idle = lambda: store.client.execute("OBJECT", "IDLETIME", stored)  # noqa: E731
    try:
        cache = ExactCache(store, 3600, local_entries=8, clock=clock)
        await cache.put(KEY, ANSWER)
        await asyncio.sleep(3.1)
        assert await idle() >= 2
        clock.advance(59)
        assert await cache.get(KEY) == ANSWER  # within the minute: no round trip
        await asyncio.sleep(0.1)
        assert await idle() >= 2
        clock.advance(1)
        assert await cache.get(KEY) == ANSWER
        for _ in range(100):  # the touch runs in the background: wait for it, up to 2 s
            if await idle() <= 1:
                break
            await asyncio.sleep(0.02)
        assert await idle() <= 1
    finally:
        await store.close()


class StalledTouches(MemoryStore):
    """A store whose TOUCH never answers, as a partitioned Redis would not."""

    def __init__(self, clock) -> None:
        super().__init__(clock=clock)
        self.touches = 0

    async def touch(self, key: str) -> None:
        self.touches += 1
        await asyncio.Event().wait()


async def test_a_stalled_store_never_delays_a_kept_hit(clock):
    store = StalledTouches(clock)
    cache = ExactCache(store, 3600, local_entries=8, clock=clock)
    await cache.put(KEY, ANSWER)
    clock.advance(60)
    for _ in range(3):  # one touch a minute, whether or not the last one answered
        assert await asyncio.wait_for(cache.get(KEY), timeout=0.5) == ANSWER
    assert store.touches == 1
    clock.advance(60)
    assert await asyncio.wait_for(cache.get(KEY), timeout=0.5) == ANSWER
    await asyncio.sleep(0)
    assert store.touches == 2


def test_stored_entries_read_across_versions():
    """An entry's unset fields are left out when stored, so a semantic entry (no baseline) is
    what the version before reads; and fields a later version adds are ignored, not a failure."""
    stored = json.loads(ANSWER.to_json())
    assert "baseline_usd" not in stored and "label" not in stored
    assert CachedCompletion(**stored) == ANSWER  # as the version before builds it
    later = json.dumps({**stored, "added_by_a_later_version": 1}).encode()
    assert CachedCompletion.from_json(later) == ANSWER
    assert KEY.startswith("cache:exact:v2:")  # exact entries carry a baseline now
