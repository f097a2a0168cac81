"""The routers' evaluation on labelled prompts: confusion, the held-out targets, and the curve of
quality risk against spend saved across thresholds (drawn as a chart for the README and report).

The labelled sets are bench/data/routing_labelled.yaml (training), routing_heldout.yaml (written
separately, never used for training or choosing a threshold) and routing_stress.yaml (requests of
shapes neither has: follow-ups, instructions without a user turn, other languages, long easy and
short hard requests, reported by group).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from finops_common.config import StrictModel, read_yaml, validate

from .embeddings import Embedder
from .pricing import TIERS, ModelCard, Tier
from .router import (
    LEARNED_LENGTH_CAP_TOKENS,
    LearnedRouter,
    RequestText,
    RouteDecision,
    explainable_features,
    keyword_classify,
    request_turns,
    tiers_for,
)
from .tokens import PromptMessage, count_prompt

# The held-out targets at the default threshold (issue "Routing that holds on unseen prompts").
MIN_COMPLEX_REACHING_COMPLEX = 0.95
MAX_COMPLEX_TO_SIMPLE = 0.0
MIN_SIMPLE_TO_SIMPLE = 0.85


class EarlierTurn(StrictModel):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class RoutingExample(StrictModel):
    id: str = Field(pattern=r"^[a-z]\d{4}$")
    label: Tier
    prompt: str = Field(min_length=1)
    system: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    # The stress set's: a conversation's earlier turns, the prompt's own role when the request
    # has no user turn, and the group it is reported in.
    history: tuple[EarlierTurn, ...] = ()
    role: Literal["user", "system", "developer"] = "user"
    group: str | None = None

    def messages(self) -> list[PromptMessage]:
        system = [PromptMessage("system", self.system)] if self.system else []
        earlier = [PromptMessage(turn.role, turn.content) for turn in self.history]
        return [*system, *earlier, PromptMessage(self.role, self.prompt)]


class RoutingSet(StrictModel):
    prompts: tuple[RoutingExample, ...] = Field(min_length=1)


def load_routing_set(path: Path) -> RoutingSet:
    return validate(RoutingSet, read_yaml(path), str(path))


def label_indices(examples: Sequence[RoutingExample]) -> np.ndarray:
    return np.array([TIERS.index(e.label) for e in examples])


def request_tokens(examples: Sequence[RoutingExample], card: ModelCard) -> np.ndarray:
    """What the routers read as each example's length: its user turns' tokens."""
    return np.array([count_prompt(card, request_turns(e.messages())) for e in examples])


def turn_tokens(examples: Sequence[RoutingExample], card: ModelCard) -> list[list[int]]:
    """Each example's request turns, each counted as a prompt alone (as the gateway counts)."""
    return [[count_prompt(card, [m]) for m in request_turns(e.messages())] for e in examples]


def feature_matrix(examples: Sequence[RoutingExample], tokens: np.ndarray) -> np.ndarray:
    """The learned router's features of single-turn examples, read as the gateway reads them."""
    return np.stack(
        [
            explainable_features(
                RequestText.of(e.messages()).last,
                min(int(n), LEARNED_LENGTH_CAP_TOKENS),
                e.max_tokens,
            )
            for e, n in zip(examples, tokens, strict=True)
        ]
    )


def embedding_matrix(examples: Sequence[RoutingExample], embedder: Embedder) -> np.ndarray:
    return np.stack([embedder.embed(RequestText.of(e.messages()).last) for e in examples])


@dataclass
class RouterScore:
    """Confusion of true label (rows) against routed tier (columns), each example's routed tier,
    and the mean time per decision."""

    confusion: np.ndarray
    routed: np.ndarray
    seconds_per_decision: float = 0.0

    @classmethod
    def of(cls, labels: np.ndarray, routed: np.ndarray, seconds: float = 0.0) -> RouterScore:
        confusion = np.zeros((3, 3), dtype=int)
        np.add.at(confusion, (labels, routed), 1)
        return cls(confusion, routed, seconds)

    def share(self, true: Tier, routed: Tier) -> float:
        row = self.confusion[TIERS.index(true)]
        return float(row[TIERS.index(routed)] / max(row.sum(), 1))

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / self.total)

    @property
    def complex_reaching_complex(self) -> float:
        return self.share("complex", "complex")

    @property
    def meets_targets(self) -> bool:
        return (
            self.complex_reaching_complex >= MIN_COMPLEX_REACHING_COMPLEX
            and self.share("complex", "simple") <= MAX_COMPLEX_TO_SIMPLE
            and self.share("simple", "simple") >= MIN_SIMPLE_TO_SIMPLE
        )

    def table(self) -> str:
        lines = ["| true \\ routed | " + " | ".join(TIERS) + " |", "|---|" + "---:|" * 3]
        for i, true in enumerate(TIERS):
            lines.append(f"| {true} | " + " | ".join(str(c) for c in self.confusion[i]) + " |")
        return "\n".join(lines)


Decide = Callable[[Sequence[PromptMessage], Any, int | None], RouteDecision]


def _timed(
    decide: Decide, examples: Sequence[RoutingExample], tokens: Sequence[Any]
) -> RouterScore:
    routed, elapsed = [], 0.0
    for example, n in zip(examples, tokens, strict=True):
        messages = example.messages()
        started = time.perf_counter()
        decision: RouteDecision = decide(messages, n, example.max_tokens)
        elapsed += time.perf_counter() - started
        routed.append(TIERS.index(decision.tier))
    return RouterScore.of(label_indices(examples), np.array(routed), elapsed / len(examples))


def evaluate_keyword_router(examples: Sequence[RoutingExample], card: ModelCard) -> RouterScore:
    return _timed(keyword_classify, examples, request_tokens(examples, card).tolist())


def evaluate_learned_router(
    examples: Sequence[RoutingExample],
    card: ModelCard,
    router: LearnedRouter,
    embedder: Embedder | None,
    threshold: float | None = None,
) -> RouterScore:
    """Through ``LearnedRouter.decide``, the gateway's own path (embedding included in the time)."""

    def decide(
        messages: Sequence[PromptMessage], tokens: list[int], max_tokens: int | None
    ) -> RouteDecision:
        return router.decide(messages, tokens, max_tokens, embedder, threshold)

    router.forget_turns()  # each pass decides every prompt afresh, as its first request would
    return _timed(decide, examples, turn_tokens(examples, card))


def probabilities(
    examples: Sequence[RoutingExample],
    card: ModelCard,
    router: LearnedRouter,
    embedder: Embedder | None,
) -> np.ndarray:
    features = feature_matrix(examples, request_tokens(examples, card))
    embeddings = (
        embedding_matrix(examples, embedder)
        if embedder is not None and router.accepts(embedder)
        else None
    )
    head, x = router.inputs(features, embeddings)
    return head.probabilities(x)


@dataclass(frozen=True)
class CurvePoint:
    threshold: float
    complex_below_complex: float
    complex_to_simple: float
    simple_to_simple: float
    spend_saved: float


def tier_costs(examples: Sequence[RoutingExample], tier_cards: dict[Tier, ModelCard]) -> np.ndarray:
    """USD of each prompt on each tier's model: its own prompt count and the model's median
    completion length (the simulation's assumption in data/models.yaml)."""
    return np.stack(
        [
            [
                tier_cards[t].cost_usd(
                    count_prompt(tier_cards[t], e.messages()), tier_cards[t].output_tokens.median
                )
                for t in TIERS
            ]
            for e in examples
        ]
    )


def spend_saved(routed: np.ndarray, costs: np.ndarray) -> float:
    """Share of the spend saved against sending every prompt to the complex tier."""
    spent = costs[np.arange(len(routed)), routed].sum()
    return float(1 - spent / costs[:, 2].sum())


def curve_point(
    threshold: float, labels: np.ndarray, routed: np.ndarray, costs: np.ndarray
) -> CurvePoint:
    score = RouterScore.of(labels, routed)
    return CurvePoint(
        threshold=threshold,
        complex_below_complex=1 - score.complex_reaching_complex,
        complex_to_simple=score.share("complex", "simple"),
        simple_to_simple=score.share("simple", "simple"),
        spend_saved=spend_saved(routed, costs),
    )


def tradeoff_curve(
    probs: np.ndarray,
    labels: np.ndarray,
    costs: np.ndarray,
    thresholds: Sequence[float],
    simple_confidence: float,
) -> list[CurvePoint]:
    """Quality risk and spend saved per threshold, for one head's probabilities."""
    return [
        curve_point(t, labels, tiers_for(probs, t, simple_confidence), costs) for t in thresholds
    ]


def draw_tradeoff_chart(
    curve: Sequence[CurvePoint],
    path: Path,
    default: CurvePoint,
    keyword: CurvePoint | None = None,
    title: str = "Routing on the held-out set",
    marked: str = "default threshold",
) -> Path:
    """The RouteLLM-style chart: spend saved (x) against complex prompts served below the complex
    tier (y), one point per threshold; the default threshold and the keyword router marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.plot(
        [100 * p.spend_saved for p in curve],
        [100 * p.complex_below_complex for p in curve],
        marker=".",
        label="learned router, threshold 0.05 to 0.95",
    )
    ax.scatter(
        [100 * default.spend_saved],
        [100 * default.complex_below_complex],
        color="tab:green",
        zorder=3,
        label=f"{marked} {default.threshold:.2f}",
    )
    if keyword is not None:
        ax.scatter(
            [100 * keyword.spend_saved],
            [100 * keyword.complex_below_complex],
            color="tab:red",
            marker="x",
            zorder=3,
            label="keyword router (before)",
        )
    ax.axhline(100 * (1 - MIN_COMPLEX_REACHING_COMPLEX), color="grey", ls="--", lw=0.8)
    ax.set_xlabel("spend saved vs. all requests on the complex tier (%)")
    ax.set_ylabel("complex prompts served below complex tier (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


CURVE_THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.05, 0.96, 0.05))
_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"
TRAINING_SET = _DATA / "routing_labelled.yaml"
HELD_OUT_SET = _DATA / "routing_heldout.yaml"
STRESS_SET = _DATA / "routing_stress.yaml"


def scores_by_group(
    examples: Sequence[RoutingExample],
    card: ModelCard,
    router: LearnedRouter,
    embedder: Embedder | None,
) -> dict[str, RouterScore]:
    """The learned router through the gateway's own path, one score per group, in file order."""
    groups: dict[str, list[RoutingExample]] = {}
    for example in examples:
        groups.setdefault(example.group or "(none)", []).append(example)
    return {
        group: evaluate_learned_router(members, card, router, embedder)
        for group, members in groups.items()
    }


def length_only_cuts(examples: Sequence[RoutingExample], card: ModelCard) -> tuple[int, int]:
    """The baseline that reads nothing but length: simple up to the first cut, complex from the
    second, standard between; the pair of cuts most accurate on ``examples``."""
    tokens, labels = request_tokens(examples, card), label_indices(examples)
    lengths = sorted(set(tokens.tolist()))
    best, cuts = -1, (lengths[0], lengths[-1])
    for low in lengths:
        for high in (n for n in lengths if n > low):
            correct = int((length_only_tiers(tokens, (low, high)) == labels).sum())
            if correct > best:
                best, cuts = correct, (low, high)
    return cuts


def length_only_tiers(tokens: np.ndarray, cuts: tuple[int, int]) -> np.ndarray:
    low, high = cuts
    return np.where(tokens <= low, 0, np.where(tokens >= high, 2, 1))


def evaluate_length_only(
    examples: Sequence[RoutingExample], card: ModelCard, cuts: tuple[int, int]
) -> RouterScore:
    routed = length_only_tiers(request_tokens(examples, card), cuts)
    return RouterScore.of(label_indices(examples), routed)


@dataclass(frozen=True)
class Tradeoff:
    """The chart's data: the learned router across thresholds, at its default, and the keyword
    router it replaced, all on the same prompts and tier models."""

    curve: list[CurvePoint]
    default: CurvePoint
    keyword: CurvePoint


def held_out_tradeoff(
    examples: Sequence[RoutingExample],
    tier_cards: dict[Tier, ModelCard],
    router: LearnedRouter,
    embedder: Embedder | None,
    thresholds: Sequence[float] = CURVE_THRESHOLDS,
    threshold: float | None = None,
) -> Tradeoff:
    """The embedding head when the embedder fits it, else the features head; ``default`` is the
    point at ``threshold`` (``routing.threshold``), or at the head's trained one when None."""
    labels, costs = label_indices(examples), tier_costs(examples, tier_cards)
    complex_card = tier_cards["complex"]
    fits = embedder if embedder is not None and router.accepts(embedder) else None
    head = router.embedding_head if fits is not None else router.features_head
    probs = probabilities(examples, complex_card, router, fits)
    marked = head.default_threshold if threshold is None else threshold
    default_routed = tiers_for(probs, marked, head.simple_confidence)
    keyword_routed = evaluate_keyword_router(examples, complex_card).routed
    return Tradeoff(
        curve=tradeoff_curve(probs, labels, costs, thresholds, head.simple_confidence),
        default=curve_point(marked, labels, default_routed, costs),
        keyword=curve_point(float("nan"), labels, keyword_routed, costs),
    )
