"""The exact-match response cache: a normalised request hash, shared through the store.

Each replica also keeps the answers it has just written or read in a small LRU table in front of
the store: an exact hit found there costs no round trip. An entry never changes once written, so
a kept copy is never stale; it expires when the shared one does (its TTL is read from the store
when a replica first reads the entry). The store does not see those hits, so under memory
pressure its LRU would take the hottest answers for idle ones: a kept hit touches the stored entry
once a minute at most, in the background, so a stalled store never delays the hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, fields

from .store import Clock, ExpiringLRU, Store, StoreUnavailable

# v2: exact entries carry their request's baseline. A replica of the version before reads an
# entry by its fields alone and fails on a new one: during a rolling update it never sees them.
NAMESPACE = "cache:exact:v2:"
# How often a kept answer that keeps being hit marks its stored entry as used (one TOUCH).
TOUCH_INTERVAL_S = 60.0


@dataclass(frozen=True)
class CachedCompletion:
    """What a hit needs to answer again, and what the original answer cost."""

    model: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    cost_usd: float
    label: str | None = None  # ground truth of the request that created it, for evaluation only
    stop_sequence: str | None = None  # the stop sequence that ended the answer, if one did
    tool_call: dict[str, str] | None = None  # a forced tool call's id, name and arguments
    # An exact entry only: what its request costs unoptimized, and the baseline model and prices
    # that figure is for (Catalog.baseline_of); a hit on the same request reuses it.
    baseline_usd: float | None = None
    baseline_of: str | None = None

    def baseline_for(self, baseline_of: str | None) -> float | None:
        """The stored baseline, if it was computed for ``baseline_of`` (None: no request shares
        this one's baseline, see ChatRequest.keyed_as_sent)."""
        return (
            self.baseline_usd
            if baseline_of is not None and baseline_of == self.baseline_of
            else None
        )

    def to_json(self) -> bytes:
        """The entry as stored, its unset fields left out: a semantic entry (no baseline) reads
        in a replica of the version before as it always has."""
        return json.dumps({k: v for k, v in vars(self).items() if v is not None}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CachedCompletion:
        """An entry as stored; fields a later version adds are left out, so that version's
        entries do not fail this one."""
        stored = json.loads(raw)
        return cls(**{name: stored[name] for name in _FIELDS if name in stored})


_FIELDS = tuple(field.name for field in fields(CachedCompletion))


def exact_key(team: str, canonical_request: str) -> str:
    """Scoped by team, so one tenant's answers are never served to another."""
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{NAMESPACE}{team}:{digest}"


@dataclass
class _Kept:
    answer: CachedCompletion
    touched_at: float  # when the stored entry was last read, written or touched


class KeptAnswers:
    """The answers one replica keeps in front of the store (``entries`` of them, least recently
    used out first; 0 keeps none): both caches read and write their answers through it."""

    def __init__(self, store: Store, entries: int, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._kept: ExpiringLRU[_Kept] | None = ExpiringLRU(entries, clock) if entries else None
        self._touching: set[asyncio.Task[None]] = set()  # referenced until done

    async def read(self, key: str, expires_at: float | None = None) -> CachedCompletion | None:
        """The answer under ``key``, kept until ``expires_at`` (when the caller does not know
        it, the key's remaining TTL is asked of the store, once)."""
        kept = None if self._kept is None else self._kept.get(key)
        if kept is not None:
            now = self._clock()
            if now - kept.touched_at >= TOUCH_INTERVAL_S:
                kept.touched_at = now
                touch = asyncio.ensure_future(self._touch(key))
                self._touching.add(touch)
                touch.add_done_callback(self._touching.discard)
            return kept.answer
        raw = await self._store.get(key)
        if not raw:
            return None
        answer = CachedCompletion.from_json(raw)
        if self._kept is not None and expires_at is None:
            try:
                left = await self._store.ttl(key)
            except StoreUnavailable:
                left = None  # served all the same, just not kept
            expires_at = None if left is None else self._clock() + left
        if self._kept is not None and expires_at is not None:
            self._kept.put(key, _Kept(answer, self._clock()), expires_at)
        return answer

    async def _touch(self, key: str) -> None:
        # A store that is down misses one touch; the next interval sends another.
        with contextlib.suppress(StoreUnavailable):
            await self._store.touch(key)

    async def write(self, key: str, answer: CachedCompletion, ttl_seconds: int) -> None:
        """Store ``answer`` under ``key``, and keep it."""
        if self._kept is not None:
            now = self._clock()
            self._kept.put(key, _Kept(answer, now), now + ttl_seconds)
        await self._store.set(key, answer.to_json(), ttl_seconds)


class ExactCache:
    def __init__(
        self, store: Store, ttl_seconds: int, local_entries: int = 0, clock: Clock = time.time
    ) -> None:
        """``local_entries``: how many answers this replica keeps in front of the store."""
        self._ttl = ttl_seconds
        self._answers = KeptAnswers(store, local_entries, clock)

    async def get(self, key: str) -> CachedCompletion | None:
        return await self._answers.read(key)

    async def put(self, key: str, entry: CachedCompletion) -> None:
        await self._answers.write(key, entry, self._ttl)
