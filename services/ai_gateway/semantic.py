"""The semantic cache: the closest cached prompt by cosine similarity, then the guard.

Entries live in the store (Redis when shared): each answer under its own key with a TTL, and an
append-only log of (scope, vector, prompt, answer key) trimmed to the same TTL. Every replica
mirrors the log into an in-memory index (``semantic_index``: with the guard on, exact blocks of
the prompts the guard could accept; with it off, an HNSW graph per scope) and reads new log entries
before each lookup, so an entry written by one replica is found by the others with one round trip
and no scan over Redis.

Replaying a long log would keep a new replica cold (building an HNSW graph costs about 0.3 ms per
entry at 100k entries). Replicas therefore save a snapshot of their index (its own columns, and
usearch's serialisation for graphs) with the last log id read to the store, off the request path;
a new replica restores the newest snapshot, a memory copy, then replays only the log tail written
since. A snapshot is due when that tail is long or old (:class:`SnapshotPolicy`), counted from the
newest snapshot any replica saved, so replicas do not each save the same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .cache import CachedCompletion, KeptAnswers
from .domain import ChatRequest
from .resp import Buffer
from .semantic_index import BlockIndex, CandidateIndex, EntryRow, GraphIndex
from .store import Clock, Store, log_id_key, write_together
from .verification import verify

log = logging.getLogger("ai_gateway")
LOG = "cache:semantic:log"
ENTRY_PREFIX = "cache:semantic:entry:"
SNAPSHOT = "cache:semantic:snapshot"
# The last log id in the newest snapshot: a few bytes that tell every replica a snapshot was saved.
SNAPSHOT_MARK = "cache:semantic:snapshot:last-id"
SNAPSHOT_FORMAT = 3
CANDIDATES = 8
SYNC_BATCH = 1000
_LENGTH = struct.Struct(">Q")


@dataclass(frozen=True)
class SemanticHit:
    entry: CachedCompletion
    similarity: float
    cached_prompt: str


@dataclass(frozen=True)
class LookupOutcome:
    """The hit if any, the best similarity seen, and why candidates were refused."""

    hit: SemanticHit | None
    best_similarity: float | None
    refusals: tuple[str, ...]


@dataclass(frozen=True)
class SnapshotPolicy:
    """When a replica saves a snapshot. A new replica replays the log written since the newest
    snapshot, at about 0.05 ms an entry into blocks and 0.3 ms into a graph (100k entries; README
    "Benchmarks"), so ``max_tail`` bounds that replay (2,000 entries: 0.1-0.6 s);
    ``min_interval_s`` bounds what saving costs under a flood of misses (at 100k entries a
    snapshot is 0.2-0.4 s of CPU and 70-80 MB to the store), which lets the tail grow to that many
    seconds of misses; ``max_interval_s`` keeps a quiet log's snapshot fresh."""

    max_tail: int = 2000
    min_interval_s: float = 5.0
    max_interval_s: float = 60.0

    def due(self, tail: int, age_s: float) -> bool:
        if tail == 0:
            return False
        return age_s >= self.max_interval_s or (
            tail >= self.max_tail and age_s >= self.min_interval_s
        )


SNAPSHOT_POLICY = SnapshotPolicy()


class _Entry(NamedTuple):
    """How an entry is read; it is kept as a plain tuple of its fields (``EntryRow``)."""

    ref: str
    prompt: str
    added_at: float


def _frame(*parts: Buffer) -> list[Buffer]:
    """Each part after its length, as a list of buffers: joined only where it is stored."""
    return [piece for part in parts for piece in (_LENGTH.pack(len(part)), part)]


def _unframe(blob: bytes) -> list[memoryview]:
    view, parts, at = memoryview(blob), [], 0
    while at < len(view):
        (length,) = _LENGTH.unpack_from(view, at)
        parts.append(view[at + _LENGTH.size : at + _LENGTH.size + length])
        at += _LENGTH.size + length
    return parts


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Building 100k entries in one go sets off full garbage collections that scan them again
    and again: half of a snapshot restore's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def semantic_scope(team: str, models: str, request: ChatRequest) -> str:
    """Team, the models that may answer (``Catalog.answering_models``: a tier, "auto" or one
    model), answer-changing parameters and every message but the last user turn."""
    return f"{team}|{models}|{request.context_digest()}"


class SemanticCache:
    def __init__(
        self,
        store: Store,
        dimensions: int,
        threshold: float,
        guard: bool,
        ttl_seconds: int,
        max_entries: int,
        clock: Clock = time.time,
        local_entries: int = 0,
    ) -> None:
        """``guard``: whether candidates go through ``verify``; it also decides how entries are
        filed (``semantic_index``), so it is fixed for the cache's life. ``local_entries``: how
        many answers this replica keeps in front of the store."""
        self._store = store
        self._clock = clock
        self._dimensions = dimensions
        self.threshold = threshold
        self._guard = guard
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._index: CandidateIndex = BlockIndex(dimensions) if guard else GraphIndex(dimensions)
        self._order: deque[tuple[float, str, int]] = deque()
        self._next_label = 0
        self._last_id = "0"
        self._sync_lock = asyncio.Lock()
        self._restored = False
        self._snapshot_id = "0"
        self._snapshot_at = clock()
        self._tail = 0  # log entries read since the newest snapshot known (ours or another's)
        self._answers = KeptAnswers(store, local_entries, clock)

    @property
    def size(self) -> int:
        return len(self._index)

    @property
    def index(self) -> CandidateIndex:
        return self._index

    def _insert(self, scope: str, vector: np.ndarray, row: EntryRow) -> None:
        _, prompt, added_at = row
        key = self._index.key(scope, prompt)
        label = self._next_label
        self._next_label += 1
        self._index.insert(key, label, vector, row)
        self._order.append((added_at, key, label))

    def _evict(self) -> None:
        oldest_allowed = self._clock() - self._ttl
        while self._order and (
            self._order[0][0] < oldest_allowed or len(self._order) > self._max_entries
        ):
            _, key, label = self._order.popleft()
            self._index.remove(key, label)

    async def sync(self) -> int:
        """Mirror log entries written since the last sync (by any replica); returns how many.

        The first sync restores the store's snapshot, if any, and reads only the log after it."""
        added = 0
        async with self._sync_lock:
            if not self._restored:
                added += await self._restore()
                self._restored = True  # not if the store failed: the next sync tries again
            while True:
                batch = await self._store.log_read(LOG, self._last_id, SYNC_BATCH)
                for entry_id, fields in batch:
                    self._last_id = entry_id
                    vector = np.frombuffer(fields["vector"], dtype=np.float32)
                    if vector.shape[0] != self._dimensions:
                        continue  # written with another embedder; not comparable
                    added_at = int(entry_id.partition("-")[0]) / 1000
                    row = (fields["ref"].decode(), fields["prompt"].decode(), added_at)
                    self._insert(fields["scope"].decode(), vector, row)
                    added += 1
                    self._tail += 1
                if len(batch) < SYNC_BATCH:
                    break
            self._evict()
        return added

    def _snapshot_parts(self) -> list[Buffer]:
        """A header (layout, embedder size, the last log id read, the index's own fields), then
        the index's parts (``semantic_index``): columns, because encoding 100k entries as JSON
        rows took most of a second on the event loop."""
        fields, parts = self._index.snapshot()
        header = {
            "format": SNAPSHOT_FORMAT,
            "layout": self._index.layout,
            "dimensions": self._dimensions,
            "last_id": self._last_id,
            "next_label": self._next_label,
            **fields,
        }
        return _frame(json.dumps(header).encode(), *parts)

    async def save_snapshot(self) -> bool:
        """Write this replica's index to the store, if it read log entries since the last
        snapshot; returns whether it wrote one. The bytes are built on a worker thread while the
        sync lock keeps the index still (lookups meanwhile read it as it is): of the 0.2-0.4 s
        that 100k entries take, the event loop waits only for the calls that keep the GIL (for a
        graph, usearch's save, about 0.1 s)."""
        async with self._sync_lock:
            if self._last_id == self._snapshot_id or not self._restored:
                return False
            last_id, tail = self._last_id, self._tail
            build = asyncio.ensure_future(asyncio.to_thread(self._snapshot_parts))
            try:
                parts = await asyncio.shield(build)
            except asyncio.CancelledError:
                await build  # the thread still reads the indexes: hold the lock until it is done
                raise
        await self._store.set_bulk(SNAPSHOT, parts, self._ttl)
        await self._store.set(SNAPSHOT_MARK, last_id.encode(), self._ttl)
        self._snapshot_id, self._snapshot_at = last_id, self._clock()
        self._tail -= tail  # what was read while the snapshot was sent is still to save
        return True

    async def snapshot_due(self, policy: SnapshotPolicy) -> bool:
        """Whether this replica should save a snapshot now. A newer snapshot saved by another
        replica counts as this one's own: the tail restarts from it (the entries read in between,
        at most a check's interval of them, are counted as saved)."""
        mark = await self._store.get(SNAPSHOT_MARK)
        if mark is not None and log_id_key(mark.decode()) > log_id_key(self._snapshot_id):
            self._snapshot_id, self._snapshot_at, self._tail = mark.decode(), self._clock(), 0
        return policy.due(self._tail, self._clock() - self._snapshot_at)

    async def _restore(self) -> int:
        """Load the store's snapshot into empty indexes; returns how many entries it held."""
        blob = await self._store.get_bulk(SNAPSHOT)
        if blob is None or len(self._index):
            return 0
        try:
            header_bytes, *columns = _unframe(blob)
            header = json.loads(bytes(header_bytes))
            if (
                header.get("format") != SNAPSHOT_FORMAT
                or header.get("layout") != self._index.layout
                or header["dimensions"] != self._dimensions
            ):
                return 0  # another format, guard setting or embedder: replay the log instead
            with _collector_paused():
                return self._load_snapshot(header, columns)
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError, struct.error) as exc:
            log.warning("semantic snapshot unreadable, replaying the log instead: %r", exc)
            return 0

    def _load_snapshot(self, header: dict[str, Any], parts: list[memoryview]) -> int:
        """Everything is read before the cache is changed: a bad snapshot leaves it empty."""
        next_label, last_id = int(header["next_label"]), str(header["last_id"])
        index = type(self._index).restore(self._dimensions, header, parts)
        order = sorted((added_at, key, label) for key, label, (_, _, added_at) in index.rows())
        self._index = index
        self._order.extend(order)
        self._next_label = next_label
        self._last_id = self._snapshot_id = last_id
        self._snapshot_at = self._clock()
        return len(order)

    async def lookup(
        self,
        scope: str,
        prompt: str,
        vector: np.ndarray,
        may_answer: frozenset[str] | None = None,
    ) -> LookupOutcome:
        """The first candidate at or above the threshold that the guard passes and, when
        ``may_answer`` is given, that one of those models wrote."""
        if not self._sync_lock.locked():
            # Otherwise a sync or a snapshot is under way: what it reads is found by the next
            # lookup, and this one does not wait for it.
            await self.sync()
        candidates = self._index.nearest(self._index.key(scope, prompt), vector, CANDIDATES)
        best: float | None = None
        refusals: list[str] = []
        for row, similarity in candidates:
            entry = _Entry._make(row)
            best = similarity if best is None else max(best, similarity)
            if similarity < self.threshold:
                break
            if self._guard:
                verdict = verify(prompt, entry.prompt)
                if not verdict.ok:
                    refusals.append(verdict.reason)
                    continue
            # An answer never changes once written: a kept copy lives as long as its entry.
            answer = await self._answers.read(entry.ref, entry.added_at + self._ttl)
            if answer is None:
                continue
            if may_answer is not None and answer.model not in may_answer:
                refusals.append("model")
                continue
            hit = SemanticHit(answer, similarity, entry.prompt)
            return LookupOutcome(hit, best, tuple(refusals))
        return LookupOutcome(None, best, tuple(refusals))

    async def add(
        self, scope: str, prompt: str, vector: np.ndarray, completion: CachedCompletion
    ) -> None:
        """The answer under its own key, then its log entry; on one Redis connection the two are
        applied in that order, so a replica that reads the entry finds the answer."""
        ref = f"{ENTRY_PREFIX}{scope}:{int(self._clock() * 1e9)}:{self._next_label}"
        fields = {
            "scope": scope.encode(),
            "vector": np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
            "prompt": prompt.encode(),
            "ref": ref.encode(),
        }
        await write_together(
            self._store,
            [
                self._answers.write(ref, completion, self._ttl),
                self._store.log_append(LOG, fields, self._ttl),
            ],
        )
