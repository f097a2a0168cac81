"""Statistics of a simulation, computed only from the gateway's per-request logs.

Each phase's log has one JSON line per request (see ai_gateway.request_log). Everything in
results.json, and so in the report, is a function of those lines; nothing is a constant.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def read_log(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _money(values: Iterable[float]) -> float:
    return math.fsum(values)


def phase_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the report says about one phase."""
    served = [r for r in records if r["status"] == 200]
    refused = [r for r in records if r["status"] != 200]
    misses = [r for r in served if r["cache"] == "miss"]
    exact = [r for r in served if r["cache"] == "exact"]
    semantic = [r for r in served if r["cache"] == "semantic"]
    false_semantic = [r for r in semantic if r["cached_label"] != r["sim"].get("question")]
    false_exact = [r for r in exact if r["cached_label"] != r["sim"].get("question")]
    complex_served = [r for r in served if r["sim"].get("difficulty") == "complex"]
    complex_lower = [r for r in complex_served if r["served_tier"] != "complex"]
    routed = [r for r in misses if r["route_tier"] is not None]
    budget_refusals = [r for r in refused if r.get("error") == "budget"]
    rate_refusals = [r for r in refused if r.get("error") == "rate_limit"]
    errors = [r for r in refused if r.get("error") not in ("budget", "rate_limit")]
    latencies = [r["gateway_ms"] + r["provider_ms"] for r in served]
    by_model: dict[str, float] = defaultdict(float)
    by_team: dict[str, float] = defaultdict(float)
    for r in misses:
        by_model[r["served_model"]] += r["cost_usd"]
        by_team[r["team"]] += r["cost_usd"]
    savings = {
        "cache": _money(r["saved_usd"] for r in exact + semantic),
        # Net of the routed requests whose smaller model wrote a longer answer and cost more than
        # the requested one would have (the gateway's saved counter floors those at zero).
        "routing": _money(r["baseline_usd"] - r["cost_usd"] for r in routed),
        "budgets": _money(r["baseline_usd"] or 0.0 for r in budget_refusals),
    }
    return {
        "requests": len(records),
        "served": len(served),
        "errors": len(errors),
        "budget_rejections": len(budget_refusals),
        "rate_limited": len(rate_refusals),
        "spend_usd": _money(r["cost_usd"] for r in records),
        "baseline_usd": _money(r["baseline_usd"] or 0.0 for r in records),
        "spend_by_model_usd": dict(sorted(by_model.items())),
        "spend_by_team_usd": dict(sorted(by_team.items())),
        "cache": {
            "exact_hits": len(exact),
            "semantic_hits": len(semantic),
            "exact_hit_rate": _share(len(exact), len(served)),
            "semantic_hit_rate": _share(len(semantic), len(served)),
            "semantic_false_hits": len(false_semantic),
            "semantic_false_hit_rate": _share(len(false_semantic), len(semantic)),
            "exact_false_hits": len(false_exact),
        },
        "routing": {
            "routed_requests": len(routed),
            "served_by_model": dict(sorted(Counter(r["served_model"] for r in misses).items())),
            "served_by_tier": dict(sorted(Counter(r["served_tier"] for r in misses).items())),
            "complex_requests": len(complex_served),
            "complex_served_by_lower_tier": len(complex_lower),
            "complex_served_by_tier": {
                tier: sum(r["served_tier"] == tier for r in complex_lower)
                for tier in ("standard", "simple")
            },
            "quality_risk": _share(len(complex_lower), len(complex_served)),
        },
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
        },
        "tokens": {
            "input": sum(r["prompt_tokens"] for r in misses),
            "output": sum(r["completion_tokens"] for r in misses),
        },
        "savings_by_cause_usd": savings,
    }


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Savings between the phases, split by cause from the optimized phase's own records.

    The causes add up to the optimized phase's baseline minus its spend. When the unoptimized
    phase served every request, its spend equals that baseline and the split is exact; any
    difference is reported as unattributed rather than hidden.
    """
    saved = before["spend_usd"] - after["spend_usd"]
    causes = after["savings_by_cause_usd"]
    return {
        "savings_usd": saved,
        "savings_pct": _share(saved, before["spend_usd"]),
        "by_cause_usd": causes,
        "by_cause_pct": {k: _share(v, before["spend_usd"]) for k, v in causes.items()},
        "unattributed_usd": saved - _money(causes.values()),
    }
