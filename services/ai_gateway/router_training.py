"""Training the learned router (numpy only): multinomial logistic regression, cross-validated
regularisation, and the rule that picks each head's default thresholds on the training set.

bench/router_train.py runs ``train_router`` on bench/data/routing_labelled.yaml and writes
data/router.npz; tests/ai_gateway/test_router.py re-applies ``choose_thresholds`` to the shipped
cross-validated probabilities and checks the shipped defaults against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .embeddings import Embedder
from .pricing import ModelCard
from .router import PROBE_TEXT, LearnedRouter, RouterHead, scaled_inputs, tiers_for
from .router_evaluation import (
    MIN_COMPLEX_REACHING_COMPLEX,
    MIN_SIMPLE_TO_SIMPLE,
    RouterScore,
    RoutingExample,
    embedding_matrix,
    feature_matrix,
    label_indices,
    request_tokens,
)

# The defaults are chosen with a margin over the held-out targets: thresholds that only just
# meet them on training data would miss them on new prompts.
COMPLEX_MARGIN = 0.03
SIMPLE_MARGIN = 0.03
GRID = tuple(round(float(t), 2) for t in np.arange(0.05, 0.96, 0.01))
L2_GRID = (0.003, 0.01, 0.03)
FOLDS = 5


def fit_head(x: np.ndarray, labels: np.ndarray, l2: float, steps: int = 1500) -> RouterHead:
    """Softmax regression by full-batch gradient descent with Nesterov momentum. The problem is
    convex; the step is 1/L for L the curvature bound (half the largest eigenvalue of x'x/n, plus
    the bias and the penalty), so it converges for any input scale."""
    n, d = x.shape
    onehot = np.eye(3)[labels]
    weights, bias = np.zeros((3, d)), np.zeros(3)
    velocity_w, velocity_b = np.zeros_like(weights), np.zeros_like(bias)
    rate = 1.0 / (0.5 * (np.linalg.norm(x, 2) ** 2 / n + 1.0) + l2)
    momentum = 0.9
    for _ in range(steps):
        look_w, look_b = weights + momentum * velocity_w, bias + momentum * velocity_b
        error = RouterHead(look_w, look_b).probabilities(x) - onehot
        velocity_w = momentum * velocity_w - rate * (error.T @ x / n + l2 * look_w)
        velocity_b = momentum * velocity_b - rate * error.mean(axis=0)
        weights, bias = weights + velocity_w, bias + velocity_b
    return RouterHead(weights, bias)


def out_of_fold(x: np.ndarray, labels: np.ndarray, l2: float, seed: int = 13) -> np.ndarray:
    """Each example's probabilities from a model trained without its fold."""
    folds = np.random.default_rng(seed).permutation(len(labels)) % FOLDS
    probs = np.zeros((len(labels), 3))
    for k in range(FOLDS):
        held = folds == k
        probs[held] = fit_head(x[~held], labels[~held], l2).probabilities(x[held])
    return probs


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def _quality_ok(score: RouterScore) -> bool:
    return (
        score.complex_reaching_complex >= MIN_COMPLEX_REACHING_COMPLEX + COMPLEX_MARGIN
        and score.share("complex", "simple") == 0
    )


def choose_thresholds(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float, bool]:
    """The rule behind the defaults, on cross-validated training probabilities: the highest
    threshold (fewest prompts on the complex tier) at which complex prompts reach the complex
    tier (target + margin), none goes to the simple tier, and simple prompts stay simple
    (target + margin); with it, the highest simple confidence that still meets those targets,
    so standard prompts stay off the simple tier where they can. Returns (threshold,
    simple_confidence, all_targets_met). If no pair meets the simple target, the quality targets
    alone decide, with the lowest confidence they allow (a weaker head saves less rather than
    answer worse)."""
    confidences = (*GRID, 0.99)
    for need_simple in (True, False):
        for threshold in sorted(GRID, reverse=True):
            for confidence in sorted(confidences, reverse=need_simple):
                score = RouterScore.of(labels, tiers_for(probs, threshold, confidence))
                simple_ok = score.share("simple", "simple") >= MIN_SIMPLE_TO_SIMPLE + SIMPLE_MARGIN
                if _quality_ok(score) and (simple_ok or not need_simple):
                    return threshold, confidence, need_simple
    return min(GRID), 1.0, False


@dataclass(frozen=True)
class HeadFit:
    head: RouterHead
    l2: float
    cv_log_loss: float
    meets_all_targets: bool


def fit_with_cv(x: np.ndarray, labels: np.ndarray) -> HeadFit:
    """Pick the regularisation by cross-validated log loss, then the thresholds by the rule."""
    trials = {l2: out_of_fold(x, labels, l2) for l2 in L2_GRID}
    l2 = min(trials, key=lambda k: log_loss(trials[k], labels))
    threshold, confidence, all_met = choose_thresholds(trials[l2], labels)
    head = replace(
        fit_head(x, labels, l2),
        default_threshold=threshold,
        simple_confidence=confidence,
        cv_probabilities=trials[l2],
    )
    return HeadFit(head, l2, log_loss(trials[l2], labels), all_met)


@dataclass(frozen=True)
class TrainingResult:
    router: LearnedRouter
    features: HeadFit
    embedding: HeadFit


def train_router(
    examples: Sequence[RoutingExample], card: ModelCard, embedder: Embedder, embedder_model: str
) -> TrainingResult:
    """Both heads on the same examples. ``embedder`` is the model2vec model the gateway's semantic
    cache loads; ``embedder_model`` names it for people (the router recognises the model by the
    vector it gives the probe sentence)."""
    labels = label_indices(examples)
    features = feature_matrix(examples, request_tokens(examples, card))
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    embeddings = embedding_matrix(examples, embedder)
    by_features = fit_with_cv(scaled_inputs(features, mean, scale, None), labels)
    by_embedding = fit_with_cv(scaled_inputs(features, mean, scale, embeddings), labels)
    router = LearnedRouter(
        features_head=by_features.head,
        embedding_head=by_embedding.head,
        feature_mean=mean,
        feature_scale=scale,
        embedder_model=embedder_model,
        probe_vector=embedder.embed(PROBE_TEXT),
        example_ids=tuple(e.id for e in examples),
        example_tiers=labels,
        example_vectors=embeddings,
    )
    return TrainingResult(router, by_features, by_embedding)
