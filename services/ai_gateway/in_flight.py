"""Identical requests in flight on one replica: the first goes to the provider, the others wait
for its answer to reach the exact cache and are served from it.

Without this, a burst of the same request (a retry storm, a fan-out, a page many users load at
once) pays the provider once per copy: none of them finds the answer, since none has been written
yet. The register is per replica; copies that land on other replicas each pay once there.
"""

from __future__ import annotations

import asyncio

# How late a lead may run past the time its answer is due (a slow reader of its stream holds the
# answer back) before its copies stop waiting; also how long they wait for a lead whose answer is
# not drawn yet (it is still in the semantic cache or its budget's admission).
FOLLOW_GRACE_S = 5.0


class Lead:
    """The right to answer one key, held from the exact-cache miss until the answer is cached or
    will never be."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.done = asyncio.Event()
        self.due: float | None = None  # event-loop time when the provider's answer is whole
        self.answered = False  # whether the answer reached the cache


class InFlight:
    """Which exact-cache keys a request of this replica is answering right now."""

    def __init__(self, grace_s: float = FOLLOW_GRACE_S) -> None:
        self._leads: dict[str, Lead] = {}
        self._grace_s = grace_s

    def lead(self, key: str) -> Lead | None:
        """The lead of ``key`` for the caller, or None when another request holds it."""
        if key in self._leads:
            return None
        lead = self._leads[key] = Lead(key)
        return lead

    @staticmethod
    def expect(lead: Lead | None, seconds: float) -> None:
        """The lead's answer is due in ``seconds`` (the simulated provider's latency)."""
        if lead is not None:
            lead.due = asyncio.get_running_loop().time() + seconds

    async def follow(self, key: str) -> bool:
        """Wait for the request answering ``key``; True once its answer is cached. False at once
        when none answers it, and when its lead ends without an answer or runs later than its
        due time plus the grace: the caller then asks the provider itself."""
        lead = self._leads.get(key)
        if lead is None:
            return False
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not lead.done.is_set():
            due = started if lead.due is None else lead.due
            remaining = due + self._grace_s - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(lead.done.wait(), remaining)
            except TimeoutError:
                continue  # its answer may have been drawn meanwhile, and be due later
        return lead.answered

    def release(self, lead: Lead | None, answered: bool = False) -> None:
        """Wake the requests waiting on ``lead``; idempotent, and None is no lead."""
        if lead is not None and self._leads.get(lead.key) is lead:
            del self._leads[lead.key]
            lead.answered = answered
            lead.done.set()

    def __len__(self) -> int:
        return len(self._leads)
