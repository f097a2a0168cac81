"""Identical requests in flight on one replica: the first goes to the provider, and the others
share its answer as the provider generates it.

Without this, a burst of the same request (a retry storm, a fan-out, a page many users load at
once) pays the provider once per copy: none of them finds the answer, since none has been written
yet. A copy is served the first request's answer at the first request's pace, as a gateway that
tees one upstream stream to several clients would: its first token comes when the first's does,
and its last when the first's does. The register is per replica; copies that land on other
replicas each pay once there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .cache import CachedCompletion
from .simulator import LatencyPlan

# How long a copy waits for the first request's answer to be drawn (it is still in the semantic
# cache or its budget's admission, usually for a millisecond) before it asks the provider itself.
FOLLOW_GRACE_S = 5.0


@dataclass(frozen=True)
class Drawn:
    """A lead's answer, as its copies are served it."""

    entry: CachedCompletion  # as the exact cache will hold it, its request's baseline included
    plan: LatencyPlan  # the provider's pace
    started: float  # event-loop time when the provider's answer began

    @property
    def due(self) -> float:
        """Event-loop time when the provider's answer is whole."""
        return self.started + self.plan.total_s(self.entry.completion_tokens)


class Lead:
    """The right to answer one key, held from the exact-cache miss until the answer is cached or
    will never be."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.drawn: Drawn | None = None  # shared with copies; None before it is drawn, or after
        self.changed = asyncio.Event()  # set once drawn, withdrawn or released
        self.sharers = 0  # copies reading this answer: the provider's stream runs on for them


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
    def draw(lead: Lead | None, drawn: Drawn) -> None:
        """The lead's answer is drawn: copies share it from now on."""
        if lead is not None:
            lead.drawn = drawn
            lead.changed.set()

    @staticmethod
    def withdraw(lead: Lead | None) -> None:
        """The lead's answer will not be whole (its client left, and no copy shares it): copies
        that come from now on ask the provider themselves."""
        if lead is not None:
            lead.drawn = None
            lead.changed.set()

    async def follow(self, key: str) -> Lead | None:
        """The lead of the request answering ``key``, once its answer is drawn, with the caller
        counted among its sharers until it ``unshare``s. None at once when no request answers
        it, and when its lead ends without an answer or draws none within the grace: the caller
        then asks the provider itself."""
        lead = self._leads.get(key)
        if lead is None:
            return None
        if not lead.changed.is_set():
            try:
                await asyncio.wait_for(lead.changed.wait(), self._grace_s)
            except TimeoutError:
                return None
        if lead.drawn is None:
            return None
        lead.sharers += 1
        return lead

    @staticmethod
    def unshare(lead: Lead) -> None:
        """A copy stops reading the lead's answer: it was refused, or its client left."""
        lead.sharers = max(lead.sharers - 1, 0)

    def release(self, lead: Lead | None) -> None:
        """End ``lead``: its answer is cached, or never will be. Idempotent; None is no lead."""
        if lead is not None and self._leads.get(lead.key) is lead:
            del self._leads[lead.key]
            lead.changed.set()

    def __len__(self) -> int:
        return len(self._leads)
