"""The semantic cache's evaluation on labelled data, through the real code path (the router's is
in router_evaluation.py).

- ``evaluate_semantic``: caches one prompt per group in a real SemanticCache (in-process store),
  then looks up each labelled query. A light rephrasing or a harder paraphrase should hit its own
  group's entry; a near-miss must not hit anything. A hit on another group's entry is wrong too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from finops_common.config import StrictModel, read_yaml, validate

from .cache import CachedCompletion
from .embeddings import Embedder
from .semantic import SemanticCache
from .store import MemoryStore

Label = Literal["light", "hard", "near"]


class SemanticGroup(StrictModel):
    cached: str = Field(min_length=1)
    light: tuple[str, ...] = ()
    hard: tuple[str, ...] = ()
    near: tuple[str, ...] = ()


class SemanticEvalSet(StrictModel):
    groups: tuple[SemanticGroup, ...] = Field(min_length=1)


def load_semantic_set(path: Path) -> SemanticEvalSet:
    return validate(SemanticEvalSet, read_yaml(path), str(path))


@dataclass
class SemanticScore:
    embedder: str
    guard: bool
    threshold: float
    queries: dict[Label, int] = field(default_factory=lambda: {"light": 0, "hard": 0, "near": 0})
    correct_hits: dict[Label, int] = field(default_factory=lambda: {"light": 0, "hard": 0})
    false_hits: dict[Label, int] = field(default_factory=lambda: {"light": 0, "hard": 0, "near": 0})

    def rate(self, label: Label) -> float:
        return self.correct_hits[label] / self.queries[label] if self.queries[label] else 0.0

    @property
    def near_miss_false_hit_rate(self) -> float:
        return self.false_hits["near"] / self.queries["near"] if self.queries["near"] else 0.0

    @property
    def false_hit_share(self) -> float:
        """Of all hits, the share that answered a different question."""
        wrong = sum(self.false_hits.values())
        hits = wrong + sum(self.correct_hits.values())
        return wrong / hits if hits else 0.0


async def _score(
    cache: SemanticCache, embedder: Embedder, data: SemanticEvalSet, score: SemanticScore
) -> SemanticScore:
    for group in data.groups:
        for label in ("light", "hard", "near"):
            for query in getattr(group, label):
                score.queries[label] += 1
                outcome = await cache.lookup("eval", query, embedder.embed(query))
                if outcome.hit is None:
                    continue
                if label != "near" and outcome.hit.cached_prompt == group.cached:
                    score.correct_hits[label] += 1
                else:
                    score.false_hits[label] += 1
    return score


async def _semantic_sweep(
    data: SemanticEvalSet, embedder: Embedder, thresholds: Iterable[float], guards: Iterable[bool]
) -> list[SemanticScore]:
    scores = []
    for guard in guards:
        # The guard decides how the cache files its entries (semantic_index): one cache each.
        cache = SemanticCache(MemoryStore(), embedder.dimensions, 1.0, guard, 3600, 100_000)
        for group in data.groups:
            answer = CachedCompletion("gpt-4", group.cached, 1, 1, "stop", 0.0)
            await cache.add("eval", group.cached, embedder.embed(group.cached), answer)
        for threshold in thresholds:
            cache.threshold = threshold
            score = SemanticScore(embedder.name, guard, threshold)
            scores.append(await _score(cache, embedder, data, score))
    return scores


MAX_FALSE_HITS = 0.03


def choose_default(scores: list[SemanticScore]) -> SemanticScore | None:
    """The rule the defaults come from: with the guard on and false hits within 3% (near-misses
    that hit, and wrong answers among hits), the most light plus hard hits; ties go to the
    higher threshold, which favours precision."""
    safe = [
        s
        for s in scores
        if s.guard
        and s.near_miss_false_hit_rate <= MAX_FALSE_HITS
        and s.false_hit_share <= MAX_FALSE_HITS
    ]
    if not safe:
        return None
    return max(safe, key=lambda s: (s.rate("light") + s.rate("hard"), s.threshold))


def evaluate_semantic(
    data: SemanticEvalSet,
    embedder: Embedder,
    thresholds: Iterable[float],
    guards: Iterable[bool] = (True, False),
) -> list[SemanticScore]:
    return asyncio.run(_semantic_sweep(data, embedder, list(thresholds), list(guards)))
