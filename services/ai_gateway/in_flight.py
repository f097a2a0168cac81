"""Identical requests in flight on one replica: the first goes to the provider, the others wait
for its answer to reach the exact cache and are served from it.

Without this, a burst of the same request (a retry storm, a fan-out, a page many users load at
once) pays the provider once per copy: none of them finds the answer, since none has been written
yet. The register is per replica; copies that land on other replicas each pay once there.
"""

from __future__ import annotations

import asyncio

# How long a copy waits for the request it follows before going to the provider itself: a slow
# reader of a long stream holds its answer back, and must not hold the others back with it.
FOLLOW_LIMIT_S = 30.0


class Lead:
    """The right to answer one key; released when the answer is cached, or will never be."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.done = asyncio.Event()


class InFlight:
    """Which exact-cache keys a request of this replica is answering right now."""

    def __init__(self, follow_limit_s: float = FOLLOW_LIMIT_S) -> None:
        self._leads: dict[str, Lead] = {}
        self._follow_limit_s = follow_limit_s

    def lead(self, key: str) -> Lead | None:
        """The lead of ``key`` for the caller, or None when another request holds it."""
        if key in self._leads:
            return None
        lead = self._leads[key] = Lead(key)
        return lead

    async def follow(self, key: str) -> bool:
        """Wait for the request answering ``key``; False when none was, or it took too long."""
        lead = self._leads.get(key)
        if lead is None:
            return False
        try:
            await asyncio.wait_for(lead.done.wait(), self._follow_limit_s)
        except TimeoutError:
            return False
        return True

    def release(self, lead: Lead | None) -> None:
        """Wake the requests waiting on ``lead``; idempotent, and None is no lead."""
        if lead is not None and self._leads.get(lead.key) is lead:
            del self._leads[lead.key]
            lead.done.set()

    def __len__(self) -> int:
        return len(self._leads)
