"""Train the learned router on bench/data/routing_labelled.yaml and write
services/ai_gateway/data/router.npz (the held-out set is not read here).

    .venv/bin/python bench/router_train.py [--model ../shared/models/minilm-l6-m2v-256]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ai_gateway.embeddings import Model2VecEmbedder
from ai_gateway.pricing import default_price_table
from ai_gateway.router import ROUTER_MODEL_PATH, LearnedRouter, tiers_for
from ai_gateway.router_evaluation import TRAINING_SET, RouterScore, label_indices, load_routing_set
from ai_gateway.router_training import train_router

ROOT = Path(__file__).resolve().parents[1]

SHARED_MODEL = ROOT.parent / "shared" / "models" / "minilm-l6-m2v-256"
REFERENCE_MODEL = "gpt-5.4"  # the default complex tier: the count routing sees for "auto"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_model = os.environ.get("GATEWAY_EMBEDDING_MODEL", str(SHARED_MODEL))
    parser.add_argument("--model", default=default_model, help="model2vec model folder")
    parser.add_argument("--out", type=Path, default=ROUTER_MODEL_PATH)
    args = parser.parse_args()
    examples = load_routing_set(TRAINING_SET).prompts
    card = default_price_table().resolve(REFERENCE_MODEL)
    assert card is not None
    embedder = Model2VecEmbedder(args.model)
    result = train_router(examples, card, embedder, Path(args.model.rstrip("/")).name)
    labels = label_indices(examples)
    print(f"{len(examples)} training prompts; embedder {embedder.name}")
    for name, fit in (
        ("features only", result.features),
        ("embedding + features", result.embedding),
    ):
        head = fit.head
        routed = tiers_for(head.cv_probabilities, head.default_threshold, head.simple_confidence)
        score = RouterScore.of(labels, routed)
        print(
            f"\n{name}: l2={fit.l2}, cv log loss {fit.cv_log_loss:.3f}, default threshold "
            f"{head.default_threshold}, simple confidence {head.simple_confidence}"
            + ("" if fit.meets_all_targets else " (simple target not reachable: quality first)")
        )
        print("5-fold cross-validated routing of the training set at those values:")
        print(score.table())
    result.router.save(args.out)
    size = args.out.stat().st_size
    print(f"\nwrote {args.out} ({size / 1024:.0f} KiB)")
    LearnedRouter.load(args.out)


if __name__ == "__main__":
    main()
