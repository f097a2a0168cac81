"""Routing on the held-out set: the learned router against the original keyword router.

Prints, over bench/data/routing_heldout.yaml (written separately, never used for training or for
choosing a threshold): each router's confusion matrix, the targets, the figures side by side
with the time per decision (and a baseline that reads length alone, its two cuts fitted on the
training set), then the learned router on each group of bench/data/routing_stress.yaml, and the
curve "complex prompts served below the complex tier" against "spend saved" across thresholds,
drawn as a PNG. Spend is priced on the optimized
profile's tier models with each model's own prompt count and median completion length. The
chart goes to out/bench/ unless ``--chart`` names another file: the README's copy,
docs/routing-tradeoff.png, is refreshed only on purpose (a run without the embedding model would
redraw it with the features-only head).

    .venv/bin/python bench/router_eval.py [--chart docs/routing-tradeoff.png]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ai_gateway.embeddings import EmbedderUnavailable, Model2VecEmbedder
from ai_gateway.pricing import TIERS, default_price_table
from ai_gateway.router import default_router
from ai_gateway.router_evaluation import (
    HELD_OUT_SET,
    MIN_COMPLEX_REACHING_COMPLEX,
    MIN_SIMPLE_TO_SIMPLE,
    STRESS_SET,
    TRAINING_SET,
    RouterScore,
    draw_tradeoff_chart,
    evaluate_keyword_router,
    evaluate_learned_router,
    evaluate_length_only,
    held_out_tradeoff,
    label_indices,
    length_only_cuts,
    load_routing_set,
    scores_by_group,
    spend_saved,
    tier_costs,
)
from ai_gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODEL = ROOT.parent / "shared" / "models" / "minilm-l6-m2v-256"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chart", type=Path, default=ROOT / "out" / "bench" / "routing-tradeoff.png"
    )
    parser.add_argument(
        "--model", default=os.environ.get("GATEWAY_EMBEDDING_MODEL", str(SHARED_MODEL))
    )
    args = parser.parse_args()
    examples = load_routing_set(HELD_OUT_SET).prompts
    tiers = load_settings("optimized").routing.tiers
    table = default_price_table()
    cards = {tier: table.models[tiers[tier]] for tier in TIERS}
    labels, costs, router = label_indices(examples), tier_costs(examples, cards), default_router()
    complex_ = cards["complex"]
    try:
        embedder = Model2VecEmbedder(args.model)
    except EmbedderUnavailable as exc:
        embedder = None
        print(f"no embedding model ({exc}): the learned router runs on its features only\n")

    counts = ", ".join(f"{int((labels == i).sum())} {t}" for i, t in enumerate(TIERS))
    print(f"held-out set: {len(examples)} prompts ({counts}); tier models {dict(tiers)}")
    print(
        f"targets: >= {MIN_COMPLEX_REACHING_COMPLEX:.0%} of complex prompts reach the complex "
        f"tier, none goes to the simple tier, >= {MIN_SIMPLE_TO_SIMPLE:.0%} of simple prompts go "
        "to the simple tier\n"
    )

    def fastest(evaluate) -> RouterScore:
        """Best of five passes: the machine is shared, and the decisions are the same each time."""
        return min((evaluate() for _ in range(5)), key=lambda s: s.seconds_per_decision)

    runs: list[tuple[str, RouterScore]] = [
        ("keyword router (before)", fastest(lambda: evaluate_keyword_router(examples, complex_)))
    ]
    heads = [("learned, features only", None)]
    if embedder is not None and router.accepts(embedder):
        heads.insert(0, ("learned, embedding + features", embedder))
    for name, head_embedder in heads:
        score = fastest(
            lambda e=head_embedder: evaluate_learned_router(examples, complex_, router, e)
        )
        runs.append((name, score))
    lines = [
        "| router | complex → complex tier | complex → simple tier | simple → simple tier "
        "| accuracy | spend saved | targets met | time per decision |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, score in runs:
        print(f"{name}:\n{score.table()}\n")
        lines.append(
            f"| {name} | {score.complex_reaching_complex:.1%} "
            f"| {score.share('complex', 'simple'):.1%} | {score.share('simple', 'simple'):.1%} "
            f"| {score.accuracy:.1%} | {spend_saved(score.routed, costs):.1%} "
            f"| {'yes' if score.meets_targets else 'no'} "
            f"| {score.seconds_per_decision * 1e6:.0f} µs |"
        )
    cuts = length_only_cuts(load_routing_set(TRAINING_SET).prompts, complex_)
    length_only = evaluate_length_only(examples, complex_, cuts)
    lines.append(
        f"| length only (simple <= {cuts[0]} tokens, complex >= {cuts[1]}, fitted on training) "
        f"| {length_only.complex_reaching_complex:.1%} "
        f"| {length_only.share('complex', 'simple'):.1%} "
        f"| {length_only.share('simple', 'simple'):.1%} | {length_only.accuracy:.1%} "
        f"| {spend_saved(length_only.routed, costs):.1%} "
        f"| {'yes' if length_only.meets_targets else 'no'} | |"
    )
    print("\n".join(lines))
    stress(router, complex_, heads[0][1])
    if embedder is not None:
        passes = []
        for _ in range(5):
            started = time.perf_counter()
            for example in examples:
                embedder.embed(example.prompt)
            passes.append((time.perf_counter() - started) / len(examples))
        per = min(passes)
        print(
            f"(of the embedding head's time, {per * 1e6:.0f} µs is embedding the prompt, which "
            "the semantic cache does for the same text)"
        )

    name, head_embedder = heads[0]
    head = router.embedding_head if head_embedder is not None else router.features_head
    tradeoff = held_out_tradeoff(examples, cards, router, head_embedder)
    curve, default, keyword = tradeoff.curve, tradeoff.default, tradeoff.keyword
    print(f"\n{name} across thresholds (simple confidence {head.simple_confidence}):")
    print("| threshold | complex below complex tier | complex → simple | simple → simple | saved |")
    print("|---:|---:|---:|---:|---:|")
    for point in sorted([*curve, default], key=lambda p: p.threshold):
        mark = " (default)" if point is default else ""
        print(
            f"| {point.threshold:.2f}{mark} | {point.complex_below_complex:.1%} "
            f"| {point.complex_to_simple:.1%} | {point.simple_to_simple:.1%} "
            f"| {point.spend_saved:.1%} |"
        )
    print(f"\nchart: {draw_tradeoff_chart(curve, args.chart, default, keyword)}")


def stress(router, card, embedder) -> None:
    """The learned router on each stress group, through the gateway's own path."""
    examples = load_routing_set(STRESS_SET).prompts
    print(f"\nstress set: {len(examples)} requests, by group (labels: rows; routed tier: columns)")
    header = "| group | requests | complex → complex | complex → simple | simple → simple |"
    print(f"{header} accuracy |\n|---|---:|---:|---:|---:|---:|")
    for group, score in scores_by_group(examples, card, router, embedder).items():
        cells = []
        for true, routed in (("complex", "complex"), ("complex", "simple"), ("simple", "simple")):
            row = score.confusion[TIERS.index(true)]
            share = row[TIERS.index(routed)]
            cells.append(f"{share} of {row.sum()}" if row.sum() else "")
        print(f"| {group} | {score.total} | {' | '.join(cells)} | {score.accuracy:.0%} |")


if __name__ == "__main__":
    main()
