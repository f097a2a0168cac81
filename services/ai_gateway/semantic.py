"""The semantic cache: nearest cached prompt by cosine similarity, then the guard.

Entries live in the store (Redis when shared): each answer under its own key with a TTL, and an
append-only log of (scope, vector, prompt, answer key) trimmed to the same TTL. Every replica
mirrors the log into in-memory HNSW indexes (usearch), one per scope, and reads new log entries
before each lookup, so an entry written by one replica is found by the others with one round trip
and no scan over Redis. A lookup is one approximate nearest-neighbour search in the request's scope.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np
from usearch.index import Index

from .cache import CachedCompletion
from .domain import ChatRequest
from .store import Clock, Store
from .verification import verify

LOG = "cache:semantic:log"
ENTRY_PREFIX = "cache:semantic:entry:"
CANDIDATES = 8
SYNC_BATCH = 1000


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
class _Entry:
    ref: str
    prompt: str
    added_at: float


class _Shard:
    def __init__(self, dimensions: int) -> None:
        self.index = Index(ndim=dimensions, metric="cos", dtype="f16")
        self.entries: dict[int, _Entry] = {}


def semantic_scope(team: str, tier: str, request: ChatRequest) -> str:
    """Team, model tier, answer-changing parameters and every message but the last user turn."""
    return f"{team}|{tier}|{request.context_digest()}"


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
    ) -> None:
        self._store = store
        self._clock = clock
        self._dimensions = dimensions
        self.threshold = threshold
        self.guard = guard
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._shards: dict[str, _Shard] = {}
        self._order: deque[tuple[float, str, int]] = deque()
        self._next_label = 0
        self._last_id = "0"
        self._sync_lock = asyncio.Lock()

    @property
    def size(self) -> int:
        return sum(len(shard.entries) for shard in self._shards.values())

    def _insert(self, scope: str, vector: np.ndarray, entry: _Entry) -> None:
        shard = self._shards.get(scope)
        if shard is None:
            shard = self._shards[scope] = _Shard(self._dimensions)
        label = self._next_label
        self._next_label += 1
        shard.index.add(label, vector)
        shard.entries[label] = entry
        self._order.append((entry.added_at, scope, label))

    def _evict(self) -> None:
        oldest_allowed = self._clock() - self._ttl
        while self._order and (
            self._order[0][0] < oldest_allowed or len(self._order) > self._max_entries
        ):
            _, scope, label = self._order.popleft()
            shard = self._shards[scope]
            shard.index.remove(label)
            del shard.entries[label]
            if not shard.entries:
                del self._shards[scope]

    async def sync(self) -> int:
        """Mirror log entries written since the last sync (by any replica); returns how many."""
        added = 0
        async with self._sync_lock:
            while True:
                batch = await self._store.log_read(LOG, self._last_id, SYNC_BATCH)
                for entry_id, fields in batch:
                    self._last_id = entry_id
                    vector = np.frombuffer(fields["vector"], dtype=np.float32)
                    if vector.shape[0] != self._dimensions:
                        continue  # written with another embedder; not comparable
                    added_at = int(entry_id.partition("-")[0]) / 1000
                    entry = _Entry(fields["ref"].decode(), fields["prompt"].decode(), added_at)
                    self._insert(fields["scope"].decode(), vector, entry)
                    added += 1
                if len(batch) < SYNC_BATCH:
                    break
            self._evict()
        return added

    async def lookup(self, scope: str, prompt: str, vector: np.ndarray) -> LookupOutcome:
        await self.sync()
        shard = self._shards.get(scope)
        if shard is None or not shard.entries:
            return LookupOutcome(None, None, ())
        matches = shard.index.search(vector, min(CANDIDATES, len(shard.entries)))
        best: float | None = None
        refusals: list[str] = []
        for label, distance in zip(matches.keys, matches.distances, strict=True):
            entry = shard.entries.get(int(label))
            if entry is None:
                continue
            similarity = float(1.0 - distance)
            best = similarity if best is None else max(best, similarity)
            if similarity < self.threshold:
                break
            if self.guard:
                verdict = verify(prompt, entry.prompt)
                if not verdict.ok:
                    refusals.append(verdict.reason)
                    continue
            raw = await self._store.get(entry.ref)
            if raw is None:
                continue
            hit = SemanticHit(CachedCompletion(**json.loads(raw)), similarity, entry.prompt)
            return LookupOutcome(hit, best, tuple(refusals))
        return LookupOutcome(None, best, tuple(refusals))

    async def add(
        self, scope: str, prompt: str, vector: np.ndarray, completion: CachedCompletion
    ) -> None:
        ref = f"{ENTRY_PREFIX}{scope}:{int(self._clock() * 1e9)}:{self._next_label}"
        await self._store.set(ref, json.dumps(asdict(completion)).encode(), self._ttl)
        await self._store.log_append(
            LOG,
            {
                "scope": scope.encode(),
                "vector": np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
                "prompt": prompt.encode(),
                "ref": ref.encode(),
            },
            self._ttl,
        )
