"""The exact-match response cache: a normalised request hash, shared through the store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .store import Store

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
    def __init__(self, store: Store, ttl_seconds: int) -> None:
        self._store = store
        self._ttl = ttl_seconds

    async def get(self, key: str) -> CachedCompletion | None:
        raw = await self._store.get(key)
        return CachedCompletion(**json.loads(raw)) if raw else None

    async def put(self, key: str, entry: CachedCompletion) -> None:
        await self._store.set(key, json.dumps(vars(entry)).encode(), self._ttl)
