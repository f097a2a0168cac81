"""The complexity router: a request -> the cheapest model tier expected to answer it as well.

Two routers share the same explainable features (request length, code, maths, reasoning verbs...).
They read the user turns, the request the model is asked to do: a long shared system prompt or
document is context (often provider-cached), not difficulty, so it does not push a prompt up. A
request with no user turn is read from its system or developer instructions.

The learned router scores each of the last ``CONTEXT_TURNS`` user turns alone, as it was trained,
and takes the highest tier, so a follow-up keeps its conversation's tier; a turn in a language
other than English (``languages.py``) is not scored and keeps the complex tier.

- the **learned router** (``classify``, used by the gateway): a multinomial logistic regression
  over those features plus the prompt's model2vec embedding (the semantic cache's own model),
  trained by bench/router_train.py on bench/data/routing_labelled.yaml and shipped as
  data/router.npz. When the embedder is not the one it was trained with (the lexical fallback,
  another model2vec model, or no embedder at all), it uses its features-only head, trained on the
  same set. Numpy only.
- the **keyword router** (``keyword_classify``): the original hand-weighted score, kept as the
  baseline the evaluation prints beside the learned one.

The threshold trades cost for quality as in RouteLLM: a prompt goes to the complex tier when
P(complex) >= threshold (``routing.threshold``; by default the one chosen on the training set),
else to the simple tier when P(simple) reaches the head's trained confidence, else to the standard
tier. A higher threshold sends more prompts to cheaper tiers, never fewer.
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

from .embeddings import Embedder
from .languages import outside_training_language
from .pricing import TIERS, Tier
from .tokens import PromptMessage

# The patterns are lowercase and read the lowercased prompt: three times cheaper than IGNORECASE.
_CODE = re.compile(
    r"```|\b(def|class|function|import|return|const|lambda|async|await|select|insert|join|"
    r"regex|regexp|sql|python|javascript|typescript|golang|rust|java|bash|script|code|"
    r"refactor|compile|stack ?trace|traceback|exception|segfault|null pointer|unit tests?|"
    r"api endpoint|dockerfile|kubernetes manifest|yaml|json schema)\b|[{};]\s*$|=>|\(\)",
    re.MULTILINE,
)
# A sum starts only where a run of digits does, and its digits are never given back: without
# both, a 4,000-digit turn was searched from each digit to its end (128 ms), for the same verdict.
_MATH = re.compile(
    r"(?<!\d)\d++\s*+[-+*/^=×÷]\s*+\d|\b(prove|proof|derive|derivative|integral|equation|theorem|"
    r"probability|expected value|regression|variance|optimi[sz]ation problem|big-?o|"
    r"complexity of)\b",
)
_REASONING = re.compile(
    r"\b(analy[sz](e|es|ed|ing)|analysis|assumptions?|compare|comparison|evaluate|assess|"
    r"design|architect(ure)?|"
    r"trade-?offs?|pros and cons|step[- ]by[- ]step|strategy|strategic|plan for|roadmap|"
    r"critique|root cause|investigate|diagnose|justify|recommend|migration plan|why does|"
    r"why is|implications|in depth|detailed|thorough|comprehensive|multi-?step)\b",
)
_TASK = re.compile(
    r"\b(write|rewrite|draft|summari[sz]e|summary|explain|describe|create|generate|compose|"
    r"suggest|propose|list|classify|extract|paraphrase|turn these|outline|brainstorm|ideas|"
    r"translate this|edit|proofread)\b",
)
_SIMPLE = re.compile(
    r"^\s*(what is|what's|who is|when is|when does|where is|where can|define|how many|"
    r"is it|is there|can i|do you|does|yes or no|true or false|translate|spell|convert|"
    r"what time|how do i (reset|change|cancel|update|find|track|log ?in|sign ?in))\b",
)
_PARTS = re.compile(
    r"(^|\s)(\(?\d\)|\d\.\s|part \d|first\b|then\b|also\b|finally\b)|;|\?\s+\S",
    re.MULTILINE,
)

# The explainable features, in the order of the learned model's feature vector.
FEATURES: tuple[str, ...] = (
    "request length",
    "writing task",
    "code markers",
    "math markers",
    "reasoning verbs",
    "multi-part request",
    "conversation depth",
    "long request",
    "large max_tokens",
    "small max_tokens",
    "simple question",
)
EMBEDDING_FEATURE = "meaning (embedding)"


@dataclass(frozen=True)
class RequestText:
    """What the routers read from a request: its request turns' texts, oldest first."""

    turns: tuple[str, ...]

    @classmethod
    def of(cls, messages: Sequence[PromptMessage]) -> RequestText:
        return cls(tuple(m.content for m in request_turns(messages)))

    @property
    def last(self) -> str:
        return self.turns[-1] if self.turns else ""


# Roles that carry instructions when a request has no user turn (a system- or developer-only
# prompt): read then, since an empty request text always read as simple.
INSTRUCTION_ROLES = frozenset({"system", "developer"})


def request_turn_indices(messages: Sequence[PromptMessage]) -> list[int]:
    """The positions of the turns the routers read: the user's turns, not the system or
    developer prompt (context, often provider-cached, not difficulty); those when no user turn
    has any text. A blank turn says nothing, and read, it always read as simple."""
    users = [i for i, m in enumerate(messages) if m.role == "user" and m.content.strip()]
    return users or [
        i for i, m in enumerate(messages) if m.role in INSTRUCTION_ROLES and m.content.strip()
    ]


def request_turns(messages: Sequence[PromptMessage]) -> list[PromptMessage]:
    """The turns the routers read (callers count their tokens)."""
    return [messages[i] for i in request_turn_indices(messages)]


# The request-length flag: a user request this long (in tokens) reads as more than a question.
LONG_REQUEST_TOKENS = 150
# The learned router reads a longer turn as this long: its training prompts are all shorter (a
# test holds it), and beyond them its length weight only extrapolates (a 1 MB prompt read as +18
# logits towards the complex tier).
LEARNED_LENGTH_CAP_TOKENS = LONG_REQUEST_TOKENS
# How many of the last request turns a decision reads (see LearnedRouter.decide).
CONTEXT_TURNS = 3
# How many turns' decisions the learned router remembers (LearnedRouter.decided_turn).
DECIDED_TURNS = 2048
# The learned router's markers are read from this much of a turn: every training prompt is
# shorter, and the patterns scanned the rest of a 50 KB turn for 6 ms, on every request of a
# conversation that carries it.
FEATURE_SAMPLE_CHARS = 4000
UNSCORED_LANGUAGE = (
    "it reads as a language other than English, which the router was not trained on, so it "
    "keeps the complex tier"
)


def _count_up_to(pattern: re.Pattern[str], text: str, cap: int) -> int:
    """``min(len(pattern.findall(text)), cap)`` without scanning past the cap-th match: a long
    pasted document has its markers early, and findall read all of it (about 60 ms a MiB)."""
    return sum(1 for _ in itertools.islice(pattern.finditer(text), cap))


def explainable_features(
    turn: str, request_tokens: int, max_tokens: int | None, earlier_turns: int = 0
) -> np.ndarray:
    """The features both routers read from one request turn, as numbers (counts are capped so
    no one dominates). ``request_tokens`` counts that turn; ``earlier_turns`` the request turns
    before it (the keyword router's conversation depth; the learned router scores turns alone)."""
    prompt = turn.lower()
    return np.array(
        [
            np.log1p(request_tokens),
            bool(_TASK.search(prompt)),
            bool(_CODE.search(prompt)),
            bool(_MATH.search(prompt)),
            _count_up_to(_REASONING, prompt, 4),
            _count_up_to(_PARTS, prompt, 4),
            min(earlier_turns, 4),
            request_tokens >= LONG_REQUEST_TOKENS,
            bool(max_tokens and max_tokens >= 1500),
            bool(max_tokens and max_tokens <= 120),
            bool(_SIMPLE.search(prompt)),
        ],
        dtype=np.float64,
    )


def tiers_for(probabilities: np.ndarray, threshold: float, simple_confidence: float) -> np.ndarray:
    """Tier index (0 simple, 1 standard, 2 complex) for rows of [P(simple), P(standard),
    P(complex)]: complex when P(complex) reaches the threshold, else simple when P(simple)
    reaches the head's trained confidence, else standard."""
    return np.where(
        probabilities[..., 2] >= threshold,
        2,
        np.where(probabilities[..., 0] >= simple_confidence, 0, 1),
    )


@dataclass(frozen=True)
class RouteDecision:
    """A routing decision and why. ``score`` is the learned router's P(complex) (the keyword
    router's weighted sum); ``contributions`` are each feature's share of the decision."""

    tier: Tier
    score: float
    top_feature: str
    contributions: dict[str, float]
    probabilities: dict[Tier, float] = field(default_factory=dict)
    threshold: float | None = None
    nearest: tuple[str, Tier, float] | None = None
    head: str = "keywords"
    turn: tuple[int, int] | None = None  # which request turn decided, of how many read
    unscored: str | None = None  # why the router kept the complex tier without scoring
    raised: str | None = None  # why the catalog served a higher tier than decided (its window)

    @property
    def reason(self) -> str:
        notes = (
            f"; decided by request turn {self.turn[0]} of the last {self.turn[1]}"
            if self.turn and self.turn[1] > 1
            else ""
        )
        if self.raised:
            notes += f"; {self.raised}"
        if self.unscored:
            return f"tier={self.tier}; not scored: {self.unscored}{notes}"
        if not self.probabilities:
            return f"tier={self.tier}; score={self.score:.2f}; top feature: {self.top_feature}"
        top = sorted(self.contributions.items(), key=lambda kv: -abs(kv[1]))[:3]
        parts = [
            f"tier={self.tier}",
            f"p(complex)={self.probabilities['complex']:.2f}",
            f"p(simple)={self.probabilities['simple']:.2f}",
            f"threshold={self.threshold:.2f}",
            "top features: " + ", ".join(f"{name} {value:+.2f}" for name, value in top),
        ]
        if self.nearest:
            example, label, similarity = self.nearest
            parts.append(f"nearest labelled: {example} ({label}, {similarity:.2f})")
        return "; ".join(parts) + notes


@dataclass(frozen=True)
class RouterHead:
    """Multinomial logistic regression, softmax(weights @ x + bias) over the three tiers, with
    the thresholds chosen for it on the training set (router_training.choose_thresholds) and its
    cross-validated training probabilities, from which a test re-derives those thresholds."""

    weights: np.ndarray
    bias: np.ndarray
    default_threshold: float = 0.5
    simple_confidence: float = 0.5
    cv_probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_weights": self.weights,
            f"{prefix}_bias": self.bias,
            f"{prefix}_default_threshold": np.array(self.default_threshold),
            f"{prefix}_simple_confidence": np.array(self.simple_confidence),
            f"{prefix}_cv_probabilities": self.cv_probabilities.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, data: Mapping[str, np.ndarray], prefix: str) -> RouterHead:
        return cls(
            weights=data[f"{prefix}_weights"],
            bias=data[f"{prefix}_bias"],
            default_threshold=float(data[f"{prefix}_default_threshold"]),
            simple_confidence=float(data[f"{prefix}_simple_confidence"]),
            cv_probabilities=data[f"{prefix}_cv_probabilities"].astype(np.float64),
        )

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = x @ self.weights.T + self.bias
        logits = logits - logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        probabilities: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
        return probabilities

    @cached_property
    def _pushes(self) -> np.ndarray:
        """Per tier, its weights minus the mean of the other two tiers' weights."""
        pushes: np.ndarray = 1.5 * (self.weights - self.weights.mean(axis=0))
        return pushes

    def contributions(self, x: np.ndarray, tier: int) -> np.ndarray:
        """Each input's push towards ``tier`` against the mean of the other tiers."""
        pushes: np.ndarray = self._pushes[tier] * x
        return pushes


# Embedded at training time and again by each embedder the gateway offers: equal vectors mean the
# same model, wherever it was loaded from.
PROBE_TEXT = "Compare two ways to route requests between a small model and a large one."
_ACCEPTED: WeakKeyDictionary[Embedder, bool] = WeakKeyDictionary()

ROUTER_MODEL_PATH = Path(str(resources.files("ai_gateway") / "data" / "router.npz"))
# Where `make embedding-model` writes the model the router was trained on (embedding-model/).
BUILT_MODEL_FOLDER = ".models/minilm-l6-m2v-256"


def scaled_inputs(
    features: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    embedding: np.ndarray | None,
) -> np.ndarray:
    """A head's input: the standardised features, then the embedding if there is one."""
    scaled: np.ndarray = (features - mean) / scale
    if embedding is None:
        return scaled
    # Unit vectors have entries near 1/sqrt(d): rescale them to the features' unit spread.
    inputs: np.ndarray = np.concatenate([scaled, embedding * np.sqrt(embedding.shape[-1])], axis=-1)
    return inputs


@dataclass(frozen=True)
class LearnedRouter:
    """The trained router file: both heads, the feature scaling, and the labelled examples'
    embeddings (to name the nearest one in the explanation)."""

    features_head: RouterHead
    embedding_head: RouterHead
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    embedder_model: str
    probe_vector: np.ndarray
    example_ids: tuple[str, ...]
    example_tiers: np.ndarray
    example_vectors: np.ndarray
    # Recent turns' decisions (see decided_turn): not part of the file.
    _decided: OrderedDict[tuple[Any, ...], RouteDecision] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            **self.features_head.arrays("features"),
            **self.embedding_head.arrays("embedding"),
            "feature_mean": self.feature_mean,
            "feature_scale": self.feature_scale,
            "embedder_model": np.array(self.embedder_model),
            "probe_vector": self.probe_vector.astype(np.float32),
            "example_ids": np.array(self.example_ids),
            "example_tiers": self.example_tiers.astype(np.int8),
            "example_vectors": self.example_vectors.astype(np.float16),
        }
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path = ROUTER_MODEL_PATH) -> LearnedRouter:
        with np.load(path) as data:
            return cls(
                features_head=RouterHead.from_arrays(data, "features"),
                embedding_head=RouterHead.from_arrays(data, "embedding"),
                feature_mean=data["feature_mean"],
                feature_scale=data["feature_scale"],
                embedder_model=str(data["embedder_model"]),
                probe_vector=data["probe_vector"],
                example_ids=tuple(str(i) for i in data["example_ids"]),
                example_tiers=data["example_tiers"].astype(np.int64),
                example_vectors=data["example_vectors"].astype(np.float32),
            )

    def accepts(self, embedder: Embedder | None) -> bool:
        """Whether ``embedder`` is the model the embedding head was trained on: it must embed a
        fixed probe sentence as that model did (checked once per embedder), whatever its path."""
        if embedder is None or embedder.dimensions != self.probe_vector.shape[0]:
            return False
        known = _ACCEPTED.get(embedder)
        if known is None:
            similarity = float(embedder.embed(PROBE_TEXT) @ self.probe_vector)
            known = _ACCEPTED[embedder] = similarity > 0.999
        return known

    def default_threshold(self, embedder: Embedder | None) -> float:
        """The threshold a null ``routing.threshold`` means: that of the head ``embedder``
        selects."""
        head = self.embedding_head if self.accepts(embedder) else self.features_head
        return head.default_threshold

    def embedding_head_refusal(self, embedder: Embedder | None) -> str | None:
        """Why ``embedder`` leaves routing on the features-only head, or None when it does not."""
        if self.accepts(embedder):
            return None
        trained = f"the learned router was trained on {self.embedder_model} vectors"
        fallback = (
            "so routing uses its features-only head, which sends fewer prompts to the cheaper "
            'tiers (README, "Routing")'
        )
        built = (
            f"`make embedding-model` builds that model into {BUILT_MODEL_FOLDER} under the "
            "repository"
        )
        if embedder is not None and embedder.name.startswith("model2vec:"):
            return (
                f"{trained} and {embedder.name} is another model, {fallback}. {built}; point "
                "GATEWAY_EMBEDDING_MODEL at it"
            )
        offered = (
            "the gateway opens no embedder"
            if embedder is None
            else f"the gateway embeds with {embedder.name}"
        )
        return (
            f"{trained} and {offered}, {fallback}. Set cache.semantic.embedder: model2vec; "
            f"{built}, for GATEWAY_EMBEDDING_MODEL"
        )

    def inputs(
        self, features: np.ndarray, embedding: np.ndarray | None
    ) -> tuple[RouterHead, np.ndarray]:
        """The head to use (the embedding head only with an embedding) and its input."""
        head = self.features_head if embedding is None else self.embedding_head
        return head, scaled_inputs(features, self.feature_mean, self.feature_scale, embedding)

    def decide(
        self,
        messages: Sequence[PromptMessage],
        turn_tokens: Sequence[int],
        max_tokens: int | None,
        embedder: Embedder | None = None,
        threshold: float | None = None,
        last_turn_vector: np.ndarray | None = None,
    ) -> RouteDecision:
        """The highest tier any of the last ``CONTEXT_TURNS`` request turns needs, each scored
        alone as the router was trained (one turn per example); ``turn_tokens`` counts each
        request turn. A follow-up such as "And for the EU region?" is as hard as the request it
        continues, and a trivial question after many short ones stays trivial."""
        turns = RequestText.of(messages).turns[-CONTEXT_TURNS:] or ("",)
        counts = list(turn_tokens[-CONTEXT_TURNS:]) or [0]
        use_embedding = embedder is not None and self.accepts(embedder)
        decision: RouteDecision | None = None
        for back, (turn, tokens) in enumerate(zip(reversed(turns), reversed(counts), strict=True)):
            known = last_turn_vector if back == 0 else None
            found = self.decided_turn(
                turn, tokens, max_tokens, embedder if use_embedding else None, threshold, known
            )
            if decision is None or TIERS.index(found.tier) > TIERS.index(decision.tier):
                decision = replace(found, turn=(len(turns) - back, len(turns)))
        assert decision is not None
        return decision

    def forget_turns(self) -> None:
        """Drop the remembered decisions (an evaluation times each decision from scratch)."""
        self._decided.clear()

    def decided_turn(
        self,
        turn: str,
        tokens: int,
        max_tokens: int | None,
        embedder: Embedder | None,
        threshold: float | None,
        vector: np.ndarray | None,
    ) -> RouteDecision:
        """``decide_turn``, remembered for the last ``DECIDED_TURNS`` turns: each request of a
        conversation carries the turns the requests before it were routed on (a chat of 2 KB turns
        cost 1.6 ms a request without it, mostly their patterns and embeddings, and 0.5 ms with
        it).
        ``vector`` is the turn's embedding when the caller has it (the same model's, so the same
        decision)."""
        # The text by its hash (computed once per string), not itself: 2,048 pasted documents
        # would hold 100 MB; two texts of one length colliding on 64 bits is not a risk here.
        key = (hash(turn), len(turn), tokens, max_tokens, threshold, embedder is not None)
        decision = self._decided.get(key)
        if decision is not None:
            self._decided.move_to_end(key)
            return decision
        embedding = None
        if embedder is not None:
            embedding = embedder.embed(turn) if vector is None else vector
        decision = self.decide_turn(turn, tokens, max_tokens, embedding, threshold)
        self._decided[key] = decision
        while len(self._decided) > DECIDED_TURNS:
            self._decided.popitem(last=False)
        return decision

    def decide_turn(
        self,
        turn: str,
        tokens: int,
        max_tokens: int | None,
        embedding: np.ndarray | None,
        threshold: float | None,
    ) -> RouteDecision:
        """One request turn's decision: its tier and why."""
        if outside_training_language(turn):
            return RouteDecision(
                "complex", 1.0, "language", {}, head="not scored", unscored=UNSCORED_LANGUAGE
            )
        features = explainable_features(
            turn[:FEATURE_SAMPLE_CHARS], min(tokens, LEARNED_LENGTH_CAP_TOKENS), max_tokens
        )
        head, x = self.inputs(features, embedding)
        probabilities = head.probabilities(x)
        threshold = head.default_threshold if threshold is None else threshold
        tier_index = int(tiers_for(probabilities, threshold, head.simple_confidence))
        pushes = head.contributions(x, tier_index)
        contributions = dict(zip(FEATURES, pushes[: len(FEATURES)].tolist(), strict=True))
        nearest = None
        if embedding is not None:
            contributions[EMBEDDING_FEATURE] = float(pushes[len(FEATURES) :].sum())
            similarities = self.example_vectors @ embedding
            best = int(np.argmax(similarities))
            nearest = (
                self.example_ids[best],
                TIERS[self.example_tiers[best]],
                float(similarities[best]),
            )
        return RouteDecision(
            tier=TIERS[tier_index],
            score=float(probabilities[2]),
            top_feature=max(contributions, key=lambda k: abs(contributions[k])),
            contributions=contributions,
            probabilities=dict(zip(TIERS, probabilities.tolist(), strict=True)),
            threshold=threshold,
            nearest=nearest,
            head="embedding+features" if embedding is not None else "features",
        )


@cache
def default_router() -> LearnedRouter:
    return LearnedRouter.load()


def classify(
    messages: Sequence[PromptMessage],
    turn_tokens: Sequence[int],
    max_tokens: int | None,
    *,
    embedder: Embedder | None = None,
    threshold: float | None = None,
    last_turn_vector: np.ndarray | None = None,
) -> RouteDecision:
    """Route with the shipped learned router (see the module docstring). ``turn_tokens`` counts
    each request turn (``request_turns``), not the system prompt. ``last_turn_vector`` is
    ``embedder``'s vector of the last request turn when the caller already has it (embed once)."""
    return default_router().decide(
        messages, turn_tokens, max_tokens, embedder, threshold, last_turn_vector
    )


@dataclass(frozen=True)
class RouterWeights:
    """The keyword router's hand-tuned contribution of each feature to its score."""

    length_per_100_tokens: float = 0.25
    length_cap: float = 0.45
    task_verb: float = 0.25
    code: float = 0.40
    math: float = 0.45
    reasoning_per_marker: float = 0.22
    reasoning_cap: float = 0.55
    turns_per_exchange: float = 0.06
    turns_cap: float = 0.24
    long_request: float = 0.08
    large_max_tokens: float = 0.15
    small_max_tokens: float = -0.12
    simple_opening: float = -0.25
    standard_boundary: float = 0.20
    complex_boundary: float = 0.50


def keyword_classify(
    messages: Sequence[PromptMessage],
    request_tokens: int,
    max_tokens: int | None,
    weights: RouterWeights = RouterWeights(),
) -> RouteDecision:
    """The original router: a weighted sum of the features and two fixed boundaries."""
    text = RequestText.of(messages)
    earlier = max(len(text.turns) - 1, 0)
    found = explainable_features(text.last, request_tokens, max_tokens, earlier)
    f = dict(zip(FEATURES, found, strict=True))
    w = weights
    contributions = {
        "request length": min(request_tokens / 100 * w.length_per_100_tokens, w.length_cap),
        "writing task": w.task_verb * f["writing task"],
        "code markers": w.code * f["code markers"],
        "math markers": w.math * f["math markers"],
        "reasoning verbs": min(
            len(_REASONING.findall(text.last.lower())) * w.reasoning_per_marker,
            w.reasoning_cap,
        ),
        "conversation depth": min(earlier * w.turns_per_exchange, w.turns_cap),
        "long request": w.long_request * f["long request"],
        "max_tokens": w.large_max_tokens * f["large max_tokens"]
        + w.small_max_tokens * f["small max_tokens"],
        "simple question": w.simple_opening * f["simple question"],
    }
    score = sum(contributions.values())
    tier: Tier = (
        "complex"
        if score >= w.complex_boundary
        else "standard"
        if score >= w.standard_boundary
        else "simple"
    )
    top = max(contributions, key=lambda k: abs(contributions[k]))
    if contributions[top] == 0:
        top = "no strong feature"
    return RouteDecision(tier, score, top, contributions)
