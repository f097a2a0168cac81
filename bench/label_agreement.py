"""Agreement between the routing labels and an independent second labelling pass.

The second pass (bench/data/routing_labels_pass2.yaml, written from routing_labels.md alone)
gives the labels' own noise: raw agreement, Cohen's kappa and the confusion per class, over the
training and the held-out prompts. Until that file exists, this script says so and exits with 2.

    .venv/bin/python bench/label_agreement.py [PASS2_FILE]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data"
LABELS = ("simple", "standard", "complex")
FIRST_PASS = ("routing_labelled.yaml", "routing_heldout.yaml")


def first_pass() -> dict[str, str]:
    labels = {}
    for name in FIRST_PASS:
        for item in yaml.safe_load((DATA / name).read_text())["prompts"]:
            labels[item["id"]] = item["label"]
    return labels


def read_pass(path: Path) -> dict[str, str]:
    """`labels: {id: label}`, or `prompts: [{id, label}, ...]` like the first pass."""
    data = yaml.safe_load(path.read_text()) or {}
    if "labels" in data:
        return {str(k): str(v) for k, v in data["labels"].items()}
    return {str(item["id"]): str(item["label"]) for item in data.get("prompts", [])}


def cohen_kappa(pairs: list[tuple[str, str]]) -> float:
    """Agreement beyond what two labellers with these label frequencies reach by chance."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in LABELS) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else 1.0


def report(first: dict[str, str], second: dict[str, str], scope: str) -> None:
    pairs = [(first[i], second[i]) for i in first if i in second and i.startswith(scope)]
    if not pairs:
        print(f"{scope}: no shared ids")
        return
    bad = sorted({b for _, b in pairs} - set(LABELS))
    if bad:
        sys.exit(f"unknown labels in the second pass: {', '.join(bad)}; allowed: {LABELS}")
    agree = sum(a == b for a, b in pairs)
    name = {"t": "training", "h": "held-out"}[scope]
    print(f"{name}: {len(pairs)} prompts labelled twice")
    print(f"raw agreement {agree / len(pairs):.1%}, Cohen's kappa {cohen_kappa(pairs):.3f}\n")
    print("| first \\ second | " + " | ".join(LABELS) + " |")
    print("|---|" + "---:|" * len(LABELS))
    counts = Counter(pairs)
    for a in LABELS:
        print(f"| {a} | " + " | ".join(str(counts[a, b]) for b in LABELS) + " |")
    print()


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DATA / "routing_labels_pass2.yaml"
    if not path.exists():
        print(
            f"{path} is missing: the second labelling pass has not been done yet. Label "
            f"{DATA / 'routing_unlabelled.yaml'} by the rules in routing_labels.md, then re-run."
        )
        return 2
    first, second = first_pass(), read_pass(path)
    missing = len(set(first) - set(second))
    if missing:
        print(f"note: {missing} of {len(first)} prompts have no second label and are left out\n")
    for scope in ("t", "h"):
        report(first, second, scope)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
