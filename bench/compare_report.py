"""The comparison's results as ratios, the targets of issue 12 as met / not met, and the table.

Pure functions over plain dicts (the results JSON), so the logic is tested on synthetic results.
"""

from __future__ import annotations

from typing import Any

MISS_SHARE_TARGET = 0.60  # optimized misses: at least this share of the unoptimized req/s
LITELLM_FACTOR_TARGET = 10.0  # every gateway path: at least this many times LiteLLM's req/s
ADDED_P99_TARGET_MS = 5.0  # p99 added latency of misses at the fixed rate
WARMUP_TARGET_S = 5.0  # ready with a warm semantic index at 100k entries


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def summarize(latencies_ms: list[float], elapsed_s: float, outcomes: dict[str, int]) -> dict:
    """One measured run: successful answers per second and their latency percentiles."""
    ok = outcomes.get("ok", 0)
    return {
        "requests": sum(outcomes.values()),
        "ok": ok,
        "failures": {k: v for k, v in outcomes.items() if k != "ok"},
        "elapsed_s": elapsed_s,
        "rps": ok / elapsed_s if elapsed_s > 0 else 0.0,
        "p50_ms": percentile(latencies_ms, 50),
        "p99_ms": percentile(latencies_ms, 99),
    }


def _find(rows: list[dict], **match: Any) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each row with its req/s as a ratio to LiteLLM's and to its store's unoptimized row."""
    litellm = _find(rows, kind="litellm")
    out = []
    for row in rows:
        base = _find(rows, kind="gateway", case="unoptimized", store=row.get("store"))
        ratios = {
            "vs_unoptimized": row["rps"] / base["rps"]
            if row["kind"] == "gateway" and base and base["rps"]
            else None,
            "vs_litellm": row["rps"] / litellm["rps"] if litellm and litellm["rps"] else None,
        }
        out.append({**row, **ratios})
    return out


def _status(value: float | None, ok: bool) -> str:
    return "not measured" if value is None else ("met" if ok else "not met")


def targets(results: dict) -> list[dict]:
    """Issue 12's targets, each with the measured figure and met / not met / not measured."""
    rows = with_ratios(results["rows"])
    checks: list[dict] = []
    stores = [r["store"] for r in rows if r["kind"] == "gateway" and r["case"] == "unoptimized"]
    for store in stores:
        misses = _find(rows, kind="gateway", case="misses", store=store)
        hits = _find(rows, kind="gateway", case="hits", store=store)
        share = misses["vs_unoptimized"] if misses else None
        checks.append(
            {
                "target": f"optimized misses ≥ 60% of unoptimized req/s ({store})",
                "measured": None if share is None else f"{share:.0%}",
                "status": _status(share, share is not None and share >= MISS_SHARE_TARGET),
            }
        )
        ratio = hits["vs_unoptimized"] if hits else None
        checks.append(
            {
                "target": f"exact hits ≥ unoptimized req/s ({store})",
                "measured": None if ratio is None else f"{ratio:.2f}×",
                "status": _status(ratio, ratio is not None and ratio >= 1.0),
            }
        )
    gateway_rows = [r for r in rows if r["kind"] == "gateway"]
    worst = min(
        (r["vs_litellm"] for r in gateway_rows if r["vs_litellm"] is not None), default=None
    )
    checks.append(
        {
            "target": "≥ 10× LiteLLM req/s on every gateway path (worst path)",
            "measured": None if worst is None else f"{worst:.1f}×",
            "status": _status(worst, worst is not None and worst >= LITELLM_FACTOR_TARGET),
        }
    )
    for run in results.get("fixed_rate", []):
        if run["kind"] != "gateway":
            continue
        added, how = added_p99(run, results["fixed_rate"])
        checks.append(
            {
                "target": f"p99 added latency at {run['rate']:.0f} req/s < 5 ms, misses "
                f"({run['store']})",
                "measured": f"{added:.1f} ms ({how})",
                "status": _status(added, added < ADDED_P99_TARGET_MS),
            }
        )
    warmup = results.get("warmup") or {}
    ready_s = warmup.get("warm_s")
    checks.append(
        {
            "target": f"replica warm-up ≤ 5 s at {warmup.get('entries', 100_000):,} entries",
            "measured": None if ready_s is None else f"{ready_s:.1f} s",
            "status": _status(ready_s, ready_s is not None and ready_s <= WARMUP_TARGET_S),
        }
    )
    return checks


def added_p99(run: dict, fixed_rate: list[dict]) -> tuple[float, str]:
    """What the gateway adds to the p99 at the fixed rate: its p99 less the ceiling's (the same
    client and HTTP stack answering at once) at the same rate in the same run; without a ceiling
    run, the whole p99, which overstates it."""
    ceiling = next(
        (r for r in fixed_rate if r["kind"] == "ceiling" and r["rate"] == run["rate"]), None
    )
    if ceiling is None:
        return run["p99_ms"], "whole p99: no ceiling in this run"
    added = run["p99_ms"] - ceiling["p99_ms"]
    return added, f"{run['p99_ms']:.1f} less the ceiling's {ceiling['p99_ms']:.1f}"


def _ms(value: float) -> str:
    return "—" if value != value else f"{value:.1f}"  # NaN: no successful answer


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def markdown(results: dict) -> str:
    """The throughput table, the fixed-rate latency, warm-up and memory, and the targets."""
    lines = []
    if results["rows"]:
        lines += [
            "| server | store | req/s | p50 ms | p99 ms | × unoptimized | × LiteLLM | failed |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
    for row in with_ratios(results["rows"]):
        failed = sum(row["failures"].values())
        lines.append(
            f"| {row['server']} | {row.get('store') or '—'} | {row['rps']:,.0f} | "
            f"{_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {_ratio(row['vs_unoptimized'])} | "
            f"{_ratio(row['vs_litellm'])} | {failed:,} |"
        )
    if results.get("fixed_rate"):
        lines += [
            "",
            "| fixed rate | store | asked req/s | got req/s | p50 ms | p99 ms | failed |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for run in results["fixed_rate"]:
            lines.append(
                f"| {run['server']} | {run.get('store') or '—'} | {run['rate']:,.0f} | "
                f"{run['rps']:,.0f} | {_ms(run['p50_ms'])} | {_ms(run['p99_ms'])} | "
                f"{sum(run['failures'].values()):,} |"
            )
    warmup = results.get("warmup")
    if warmup:
        lines += [
            "",
            f"Warm-up at {warmup['entries']:,} semantic entries (Valkey store): /readyz 200 after "
            f"{warmup['readyz_s']:.1f} s, first semantic hit on a known entry after "
            f"{warmup['warm_s']:.1f} s; resident memory {warmup['rss_mib']:,.0f} MiB (new "
            f"replica), {warmup['filler_rss_mib']:,.0f} MiB (the replica that filled the cache).",
        ]
    lines += ["", "| target (issue 12) | measured | status |", "|---|---:|---|"]
    for check in targets(results):
        lines.append(f"| {check['target']} | {check['measured'] or '—'} | {check['status']} |")
    return "\n".join(lines)
