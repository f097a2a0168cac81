"""The semantic cache against both stores, and across two gateway processes sharing Valkey."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time

from ai_gateway.cache import CachedCompletion
from ai_gateway.embeddings import LexicalEmbedder
from ai_gateway.semantic import (
    LOG,
    SNAPSHOT,
    SemanticCache,
    SnapshotPolicy,
)
from ai_gateway.semantic_index import CONNECTIVITY, EXPANSION_ADD, GraphIndex
from ai_gateway.store import MemoryStore, RedisStore

EMBEDDER = LexicalEmbedder()
ANSWER = CachedCompletion(
    "gpt-4", "Open Orders, pick the order, press Cancel.", 12, 9, "stop", 0.01
)


def cache_on(store, ttl: int = 3600, clock=time.time) -> SemanticCache:
    return SemanticCache(store, EMBEDDER.dimensions, 0.6, True, ttl, 10_000, clock)


async def remember(cache: SemanticCache, scope: str, prompt: str) -> None:
    await cache.add(scope, prompt, EMBEDDER.embed(prompt), ANSWER)


async def ask(cache: SemanticCache, scope: str, prompt: str):
    return await cache.lookup(scope, prompt, EMBEDDER.embed(prompt))


async def test_paraphrase_hits_and_near_miss_is_refused(store):
    cache = cache_on(store)
    await remember(cache, "team-a|complex|x", "How do I cancel my order?")
    hit = await ask(cache, "team-a|complex|x", "hi, how can I cancel my order please")
    assert hit.hit is not None
    assert hit.hit.entry == ANSWER
    assert hit.hit.similarity >= 0.6
    miss = await ask(cache, "team-a|complex|x", "How do I track my order?")
    assert miss.hit is None
    # Another action: the guard would refuse the cached prompt, so it is never a candidate.
    assert miss.refusals == () and miss.best_similarity is None


async def test_the_guard_refuses_a_candidate_its_agreement_key_cannot_tell_apart(store):
    """The same terms in another direction share a block (the key holds no order); the guard's
    own check refuses the candidate, and the refusal is reported."""
    cache = cache_on(store)
    await remember(cache, "s", "Convert 100 dollars to euros")
    outcome = await ask(cache, "s", "Convert 100 euros to dollars")
    assert outcome.hit is None
    assert outcome.refusals == ("direction differs",)
    assert outcome.best_similarity is not None and outcome.best_similarity >= 0.6


async def test_without_the_guard_the_closest_prompt_of_the_scope_is_served(store):
    """Off, the cache files a scope's prompts in one graph: the nearest neighbour is served
    whatever its terms (why the guard is on by default: README "Semantic cache")."""
    cache = SemanticCache(store, EMBEDDER.dimensions, 0.6, False, 3600, 10_000)
    await remember(cache, "s", "How do I cancel my order?")
    await remember(cache, "s", "Where is the nearest store?")
    outcome = await ask(cache, "s", "How do I track my order?")
    assert outcome.hit is not None and outcome.hit.cached_prompt == "How do I cancel my order?"
    assert isinstance(cache.index, GraphIndex)


async def test_entries_leave_nothing_for_the_garbage_collector_to_scan():
    """A full collection visits every object it tracks: at 30k entries that paused the server for
    0.15 s while the entries were objects. Kept as plain tuples of strings and numbers (entries,
    the in-process log, the guard's remembered terms), they are not tracked at all."""
    cache = cache_on(MemoryStore())

    async def add_entries(numbers: range) -> None:
        for n in numbers:
            # They share their numbers but not their words: three blocks, and every class of
            # each prompt's terms extracted for its agreement key.
            for prompt in (
                f"Please check invoice {n} for account {n * 7}.",
                f"Kindly check the Acme invoice {n} for account {n * 7}.",
                f"Please verify invoice {n} for account {n * 7}.",
            ):
                await ask(cache, "s", prompt)
                await remember(cache, "s", prompt)
        await cache.sync()
        gc.collect()
        gc.collect()  # a tuple of tuples is untracked one collection after its members

    await add_entries(range(50))  # whatever is allocated once
    before = len(gc.get_objects())
    await add_entries(range(50, 450))
    assert cache.size == 1350
    assert len(gc.get_objects()) - before < 40


async def test_lookup_is_scoped(store):
    cache = cache_on(store)
    await remember(cache, "team-a|complex|x", "How do I cancel my order?")
    assert (await ask(cache, "team-b|complex|x", "How do I cancel my order?")).hit is None
    assert (await ask(cache, "team-a|simple|x", "How do I cancel my order?")).hit is None


async def test_entries_expire_with_their_ttl(store, clock):
    cache = cache_on(store, ttl=60, clock=clock)
    await remember(cache, "s", "How do I cancel my order?")
    clock.advance(30)
    assert (await ask(cache, "s", "How do I cancel my order?")).hit is not None
    clock.advance(31)
    assert (await ask(cache, "s", "How do I cancel my order?")).hit is None
    assert cache.size == 0


async def test_an_entry_written_by_one_replica_is_found_by_another(flush_valkey):
    writer, reader = RedisStore(flush_valkey), RedisStore(flush_valkey)
    try:
        replica_a, replica_b = cache_on(writer), cache_on(reader)
        assert (await ask(replica_b, "s", "What is your refund policy?")).hit is None
        await remember(replica_a, "s", "What is your refund policy?")
        found = await ask(replica_b, "s", "what's your refund policy")
        assert found.hit is not None and found.hit.cached_prompt == "What is your refund policy?"
    finally:
        await writer.close()
        await reader.close()


async def test_a_new_replica_restores_the_snapshot_then_reads_the_log_tail(store):
    writer = cache_on(store)
    await remember(writer, "team-a|complex|x", "How do I cancel my order?")
    await remember(writer, "team-b|complex|x", "How do I upload a file to S3?")
    await writer.sync()
    assert await writer.save_snapshot()
    assert not await writer.save_snapshot()  # nothing new since
    await remember(writer, "team-a|complex|x", "How do I reset my password?")

    replica = cache_on(store)
    assert await replica.sync() == 3
    assert replica.size == 3
    for scope, prompt in (
        ("team-a|complex|x", "hi, how can I cancel my order please"),
        ("team-b|complex|x", "how do I upload a file to S3"),
        ("team-a|complex|x", "how do I reset my password please"),
    ):
        assert (await ask(replica, scope, prompt)).hit is not None, prompt


async def test_a_snapshot_alone_restores_every_entry_with_its_age(clock):
    """Restored from the snapshot only (the new replica's store holds no log): both scopes'
    entries answer, and each keeps the time it was written, so it expires on time."""
    writer_store = MemoryStore(clock=clock)
    writer = cache_on(writer_store, ttl=60, clock=clock)
    await remember(writer, "team-a|complex|x", "How do I cancel my order?")
    clock.advance(30)
    await remember(writer, "team-b|complex|x", "How do I upload a file to S3?")
    await writer.sync()
    assert await writer.save_snapshot()
    replica_store = MemoryStore(clock=clock)
    await replica_store.set(SNAPSHOT, await writer_store.get(SNAPSHOT) or b"", 60)
    for _, fields in await writer_store.log_read(LOG, "0", 10):  # the answers, not the log
        ref = fields["ref"].decode()
        await replica_store.set(ref, await writer_store.get(ref) or b"", 60)
    replica = cache_on(replica_store, ttl=60, clock=clock)
    assert await replica.sync() == 2
    asked = await ask(replica, "team-b|complex|x", "how do I upload a file to S3")
    assert asked.hit is not None and asked.hit.cached_prompt == "How do I upload a file to S3?"
    clock.advance(31)  # the first entry is now 61 s old, the second 31 s
    await replica.sync()
    assert replica.size == 1


async def test_a_restored_graph_adds_entries_as_a_built_one_does(store):
    """usearch's save keeps a graph's links, not its build-time search breadth: the restore sets
    it again, or the new replica would replay the log tail at twice the cost."""
    writer = SemanticCache(store, EMBEDDER.dimensions, 0.6, False, 3600, 10_000)
    await remember(writer, "s", "How do I cancel my order?")
    await writer.sync()
    assert await writer.save_snapshot()
    replica = SemanticCache(store, EMBEDDER.dimensions, 0.6, False, 3600, 10_000)
    await replica.sync()
    assert isinstance(writer.index, GraphIndex) and isinstance(replica.index, GraphIndex)
    (built,) = writer.index.graphs()
    (restored,) = replica.index.graphs()
    assert replica.size == 1
    assert restored.expansion_add == built.expansion_add == EXPANSION_ADD
    assert restored.connectivity == built.connectivity == CONNECTIVITY


async def test_a_snapshot_of_another_embedder_is_ignored(store):
    writer = SemanticCache(store, 8, 0.6, True, 3600, 10_000)
    await writer.add("s", "How do I cancel my order?", EMBEDDER.embed("x")[:8] + 1, ANSWER)
    await writer.sync()
    assert await writer.save_snapshot()
    replica = cache_on(store)
    assert await replica.sync() == 0  # the log's vectors have 8 dimensions, not the lexical 1024


async def test_a_snapshot_of_the_other_guard_setting_is_ignored_and_the_log_replayed(store):
    """The guard decides the layout (semantic_index): a replica with the other setting reads the
    log instead of a snapshot it cannot use."""
    writer = cache_on(store)
    await remember(writer, "s", "How do I cancel my order?")
    await writer.sync()
    assert await writer.save_snapshot()
    unguarded = SemanticCache(store, EMBEDDER.dimensions, 0.6, False, 3600, 10_000)
    assert await unguarded.sync() == 1
    assert isinstance(unguarded.index, GraphIndex)
    assert (await ask(unguarded, "s", "how do I cancel my order please")).hit is not None


async def test_a_lookup_does_not_wait_for_a_snapshot_under_way(store):
    """While a snapshot holds the indexes still, a lookup searches them as they are; what was
    written meanwhile is found once the snapshot is done."""
    cache = cache_on(store)
    await remember(cache, "s", "How do I cancel my order?")
    await cache.sync()
    async with cache._sync_lock:  # as save_snapshot holds it while the bytes are built
        await remember(cache, "s", "How do I upload a file to S3?")
        during = await asyncio.wait_for(ask(cache, "s", "how do I cancel my order please"), 5)
        unseen = await asyncio.wait_for(ask(cache, "s", "how do I upload a file to S3"), 5)
    assert during.hit is not None and unseen.hit is None
    assert (await ask(cache, "s", "how do I upload a file to S3")).hit is not None


async def test_a_snapshot_is_built_off_the_event_loop(store):
    """The bytes come from a worker thread: the loop keeps serving meanwhile."""
    cache = cache_on(store)
    await remember(cache, "s", "How do I cancel my order?")
    await cache.sync()
    threads: list[str] = []
    build = cache._snapshot_parts

    def recorded() -> list[bytes]:
        threads.append(threading.current_thread().name)
        return build()

    cache._snapshot_parts = recorded  # type: ignore[method-assign]
    assert await cache.save_snapshot()
    assert threads and threads[0] != threading.main_thread().name


async def test_an_unreadable_snapshot_is_skipped_and_the_log_replayed(store):
    writer = cache_on(store)
    await remember(writer, "s", "How do I cancel my order?")
    await store.set(SNAPSHOT, b"\x00\x00\x00\x00\x00\x00\x00\x09not json!", 60)
    replica = cache_on(store)
    assert await replica.sync() == 1
    assert (await ask(replica, "s", "how do I cancel my order please")).hit is not None


def test_the_snapshot_policy_bounds_the_log_tail_and_what_saving_costs():
    policy = SnapshotPolicy(max_tail=3, min_interval_s=10, max_interval_s=60)
    assert not policy.due(0, 3600)  # nothing read since the last snapshot
    assert not policy.due(2, 30)
    assert not policy.due(3, 9)  # a long tail, but a snapshot was saved a moment ago
    assert policy.due(3, 10)
    assert policy.due(1, 60)


async def test_a_snapshot_is_due_once_the_log_tail_is_long(store, clock):
    policy = SnapshotPolicy(max_tail=2, min_interval_s=10, max_interval_s=60)
    cache = cache_on(store, clock=clock)
    await remember(cache, "s", "How do I cancel my order?")
    await cache.sync()
    clock.advance(10)
    assert not await cache.snapshot_due(policy)
    await remember(cache, "s", "How do I reset my password?")
    await cache.sync()
    assert await cache.snapshot_due(policy)
    assert await cache.save_snapshot()
    assert not await cache.snapshot_due(policy)  # the tail starts again from the snapshot
    await remember(cache, "s", "How do I upload a file to S3?")
    await cache.sync()
    clock.advance(59)
    assert not await cache.snapshot_due(policy)
    clock.advance(1)
    assert await cache.snapshot_due(policy)  # a short tail, saved once it is a minute old


async def test_another_replicas_snapshot_restarts_the_tail(store, clock):
    """Replicas read the same log: once one has saved a snapshot, the others do not save it
    again."""
    policy = SnapshotPolicy(max_tail=2, min_interval_s=0, max_interval_s=60)
    writer, other = cache_on(store, clock=clock), cache_on(store, clock=clock)
    await remember(writer, "s", "How do I cancel my order?")
    await remember(writer, "s", "How do I reset my password?")
    assert await writer.sync() == 2 and await other.sync() == 2
    assert await writer.snapshot_due(policy) and await other.snapshot_due(policy)
    assert await writer.save_snapshot()
    assert not await other.snapshot_due(policy)
    await remember(writer, "s", "How do I upload a file to S3?")
    await other.sync()
    assert not await other.snapshot_due(policy)
    clock.advance(60)
    assert await other.snapshot_due(policy)  # one entry newer than the snapshot, a minute on


async def test_a_kept_answer_serves_a_repeated_semantic_hit_without_the_store(store, clock):
    """A replica keeps the answers it wrote or found; one without kept copies asks the store.
    The store's answer is replaced here to tell the two apart (answers never change in use)."""

    def replica(local_entries: int) -> SemanticCache:
        dims = EMBEDDER.dimensions
        return SemanticCache(store, dims, 0.6, True, 60, 10_000, clock, local_entries)

    writer, reader, plain = replica(8), replica(8), replica(0)
    await remember(writer, "s", "How do I cancel my order?")
    question = "hi, how can I cancel my order please"
    assert (await ask(reader, "s", question)).hit.entry == ANSWER
    (ref,) = [ref for _, _, (ref, _, _) in reader.index.rows()]
    other = CachedCompletion("gpt-4", "Another answer.", 12, 3, "stop", 0.01)
    await store.set(ref, json.dumps(vars(other)).encode(), 60)
    assert (await ask(writer, "s", question)).hit.entry == ANSWER
    assert (await ask(reader, "s", question)).hit.entry == ANSWER
    assert (await ask(plain, "s", question)).hit.entry == other
    kept = reader._answers._kept
    left = None if kept is None else kept.time_left(ref)
    # As long as the entry itself: its time is the log's (Valkey's own clock, to the millisecond).
    assert left is not None and 59 <= left <= 61
