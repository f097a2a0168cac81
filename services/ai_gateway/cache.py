"""The exact-match response cache: a normalised request hash, shared through the store.

Each replica also keeps the answers it has just written or read in a small LRU table in front of
the store: an exact hit found there costs no round trip. An entry never changes once written, so
a kept copy is never stale; it expires when the shared one does (its TTL is read from the store
when a replica first reads the entry).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from .store import Clock, ExpiringLRU, Store, StoreUnavailable

NAMESPACE = "cache:exact:"


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


def exact_key(team: str, canonical_request: str) -> str:
    """Scoped by team, so one tenant's answers are never served to another."""
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{NAMESPACE}{team}:{digest}"


class ExactCache:
    def __init__(
        self, store: Store, ttl_seconds: int, local_entries: int = 0, clock: Clock = time.time
    ) -> None:
        """``local_entries``: how many answers this replica keeps in front of the store."""
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock
        self._local: ExpiringLRU[CachedCompletion] | None = (
            ExpiringLRU(local_entries, clock) if local_entries else None
        )

    async def get(self, key: str) -> CachedCompletion | None:
        kept = None if self._local is None else self._local.get(key)
        if kept is not None:
            return kept
        raw = await self._store.get(key)
        if not raw:
            return None
        entry = CachedCompletion(**json.loads(raw))
        if self._local is not None:
            try:
                left = await self._store.ttl(key)
            except StoreUnavailable:
                left = None  # served all the same, just not kept
            if left is not None:
                self._local.put(key, entry, self._clock() + left)
        return entry

    async def put(self, key: str, entry: CachedCompletion) -> None:
        await self._store.set(key, json.dumps(vars(entry)).encode(), self._ttl)
        if self._local is not None:
            self._local.put(key, entry, self._clock() + self._ttl)
