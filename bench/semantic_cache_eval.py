"""Semantic cache evaluation: hit and false-hit rates per threshold, embedder and guard.

Runs the labelled set (bench/data/semantic_cache_eval.yaml) through the real SemanticCache and
prints one table per embedder, then the threshold the defaults come from
(evaluation.choose_default). The held-out set (semantic_cache_heldout.yaml), never used for
tuning, is then scored at that threshold.

    .venv/bin/python bench/semantic_cache_eval.py [--model PATH_OR_NAME]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ai_gateway.embeddings import LexicalEmbedder, Model2VecEmbedder
from ai_gateway.evaluation import (
    SemanticScore,
    choose_default,
    evaluate_semantic,
    load_semantic_set,
)

DATA = Path(__file__).resolve().parent / "data"
SHARED_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "minilm-l6-m2v-256"
THRESHOLDS = [round(0.50 + 0.05 * i, 2) for i in range(10)]


def row(s: SemanticScore) -> str:
    return (
        f"| {'on' if s.guard else 'off'} | {s.threshold:.2f} | {s.rate('light'):.1%} | "
        f"{s.rate('hard'):.1%} | {s.near_miss_false_hit_rate:.1%} | {s.false_hit_share:.1%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = os.environ.get("GATEWAY_EMBEDDING_MODEL") or (
        str(SHARED_MODEL) if SHARED_MODEL.is_dir() else None
    )
    parser.add_argument("--model", default=default_model, help="model2vec folder or name")
    args = parser.parse_args()
    dev = load_semantic_set(DATA / "semantic_cache_eval.yaml")
    heldout = load_semantic_set(DATA / "semantic_cache_heldout.yaml")
    for name, data in (("labelled", dev), ("held-out", heldout)):
        n = {k: sum(len(getattr(g, k)) for g in data.groups) for k in ("light", "hard", "near")}
        print(
            f"{name} set: {len(data.groups)} cached prompts; {n['light']} light rephrasings, "
            f"{n['hard']} harder paraphrases, {n['near']} near-misses"
        )
    embedders = [LexicalEmbedder()]
    if args.model:
        embedders.insert(0, Model2VecEmbedder(args.model))
    else:
        print("no model2vec model given (--model or GATEWAY_EMBEDDING_MODEL): lexical only")
    header = "| guard | threshold | light hit | hard hit | near-miss false hit | wrong/hits |"
    for embedder in embedders:
        scores = evaluate_semantic(dev, embedder, THRESHOLDS)
        print(f"\nembedder {embedder.name}, labelled set\n{header}\n|---|---:|---:|---:|---:|---:|")
        for score in scores:
            print(row(score))
        chosen = choose_default(scores)
        if chosen is None:
            print("no threshold keeps false hits within 3%")
            continue
        print(f"\nchosen: guard on, threshold {chosen.threshold:.2f}")
        (held,) = evaluate_semantic(heldout, embedder, [chosen.threshold], [True])
        (held_off,) = evaluate_semantic(heldout, embedder, [chosen.threshold], [False])
        print(f"held-out set at that threshold\n{header}\n|---|---:|---:|---:|---:|---:|")
        print(row(held))
        print(row(held_off))


if __name__ == "__main__":
    main()
