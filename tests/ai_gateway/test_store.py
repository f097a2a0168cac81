"""The store: values with a TTL and append-only logs, with the same semantics in both stores."""

from __future__ import annotations

import pytest

from ai_gateway.store import MemoryStore, StoreUnavailable, write_together


async def test_values_round_trip_and_missing_keys_are_none(store):
    assert await store.get("absent") is None
    await store.set("k", b"value", 60)
    assert await store.get("k") == b"value"
    await store.set("k", b"newer", 60)
    assert await store.get("k") == b"newer"


async def test_ttl_is_the_time_left_and_none_once_the_key_is_gone(store, clock):
    assert await store.ttl("absent") is None
    await store.set("k", b"value", 60)
    left = await store.ttl("k")
    assert left is not None and 59 <= left <= 60


async def test_log_reads_after_an_id_in_order(store):
    ids = [await store.log_append("log", {"n": str(i).encode()}, 3600) for i in range(5)]
    assert ids == sorted(ids, key=lambda e: tuple(int(p) for p in e.split("-")))
    everything = await store.log_read("log", "0", 100)
    assert [fields["n"] for _, fields in everything] == [b"0", b"1", b"2", b"3", b"4"]
    after = await store.log_read("log", ids[2], 1)
    assert [entry_id for entry_id, _ in after] == [ids[3]]
    assert await store.log_read("other", "0", 10) == []


async def test_memory_values_expire_with_the_clock(clock):
    store = MemoryStore(clock=clock)
    await store.set("k", b"v", 10)
    clock.advance(9.9)
    assert await store.get("k") == b"v"
    clock.advance(0.2)
    assert await store.get("k") is None


async def test_memory_store_evicts_the_least_recently_used(clock):
    store = MemoryStore(max_entries=2, clock=clock)
    await store.set("a", b"1", 60)
    await store.set("b", b"2", 60)
    await store.get("a")
    await store.set("c", b"3", 60)
    assert (await store.get("a"), await store.get("b"), await store.get("c")) == (b"1", None, b"3")


async def test_memory_log_is_trimmed_by_age(clock):
    store = MemoryStore(clock=clock)
    await store.log_append("log", {"n": b"old"}, 60)
    clock.advance(61)
    await store.log_append("log", {"n": b"new"}, 60)
    assert [fields["n"] for _, fields in await store.log_read("log", "0", 10)] == [b"new"]


async def test_bulk_values_share_the_keys_of_small_ones(store):
    """A snapshot goes through get_bulk/set_bulk (on Redis, a connection of its own, its parts
    sent without joining them) and is the same key as through get/set."""
    parts = [bytes(range(256)) * 20_000, b"", b"tail" * 1000]  # 10 MB in three parts
    await store.set_bulk("snapshot", parts, 60)
    assert await store.get("snapshot") == b"".join(parts)
    await store.set("snapshot", b"small", 60)
    assert await store.get_bulk("snapshot") == b"small"


async def test_written_together_every_write_runs_and_the_first_failure_is_raised(store):
    async def failing() -> None:
        raise StoreUnavailable("the store did not answer")

    with pytest.raises(StoreUnavailable):
        await write_together(store, [failing(), store.set("after", b"written", 60)])
    assert await store.get("after") == b"written"
