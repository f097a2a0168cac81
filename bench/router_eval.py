"""Complexity router evaluation: confusion matrices on labelled prompts and time per decision.

The weights were tuned on router_eval.yaml; router_heldout.yaml was written afterwards and never
used for tuning, so its numbers are the honest ones.

    .venv/bin/python bench/router_eval.py
"""

from __future__ import annotations

from pathlib import Path

from ai_gateway.evaluation import evaluate_router, load_router_set
from ai_gateway.pricing import TIERS

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    for name in ("router_eval", "router_heldout"):
        score = evaluate_router(load_router_set(DATA / f"{name}.yaml"))
        print(f"{name}.yaml: {score.total} labelled prompts\n")
        print("| true \\ routed | " + " | ".join(TIERS) + " |")
        print("|---|" + "---:|" * len(TIERS))
        for true in TIERS:
            cells = " | ".join(str(score.confusion[true][t]) for t in TIERS)
            print(f"| {true} | {cells} |")
        print(f"\naccuracy {score.accuracy:.1%}")
        print(f"complex sent to the simple tier: {score.complex_to_simple:.1%}")
        print(f"complex sent to a lower tier: {score.complex_downgraded:.1%}")
        print(f"classifier time: {score.seconds_per_request * 1e6:.0f} µs per request (mean)\n")


if __name__ == "__main__":
    main()
