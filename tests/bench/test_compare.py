"""bench/compare.py: its ratios and targets on synthetic results, and a short run of its harness.

No timing is asserted: the figures are the benchmark's business, not the test suite's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import compare
from compare_report import markdown, percentile, summarize, targets, with_ratios
from compare_workload import miss_prompt, rephrased_prompt


def row(kind: str, case: str, rps: float, store: str | None = None) -> dict:
    return {
        "kind": kind,
        "server": f"{kind} {case}",
        "store": store,
        "case": case,
        "rps": rps,
        "p50_ms": 2.0,
        "p99_ms": 9.0,
        "failures": {},
    }


def synthetic(misses: float, hits: float, p99: float, warm_s: float | None) -> dict:
    return {
        "rows": [
            row("ceiling", "ceiling", 6000),
            row("litellm", "litellm", 100),
            row("gateway", "unoptimized", 2000, "in-process"),
            row("gateway", "misses", misses, "in-process"),
            row("gateway", "hits", hits, "in-process"),
            row("gateway", "unoptimized", 1500, "valkey"),
            row("gateway", "misses", 1050, "valkey"),
            row("gateway", "hits", 1500, "valkey"),
        ],
        "fixed_rate": [
            {**row("ceiling", "ceiling", 200), "rate": 200.0, "p99_ms": 1.0},
            {**row("gateway", "misses", 200, "in-process"), "rate": 200.0, "p99_ms": p99},
        ],
        "warmup": None
        if warm_s is None
        else {
            "entries": 100_000,
            "readyz_s": 1.0,
            "warm_s": warm_s,
            "rss_mib": 900.0,
            "filler_rss_mib": 950.0,
        },
    }


def statuses(results: dict) -> dict[str, str]:
    return {check["target"]: check["status"] for check in targets(results)}


def test_ratios_are_to_litellm_and_to_the_same_stores_unoptimized_row() -> None:
    rows = {(r["case"], r["store"]): r for r in with_ratios(synthetic(1500, 2500, 3, 4)["rows"])}
    assert rows["misses", "in-process"]["vs_unoptimized"] == pytest.approx(0.75)
    assert rows["misses", "valkey"]["vs_unoptimized"] == pytest.approx(0.70)
    assert rows["hits", "in-process"]["vs_litellm"] == pytest.approx(25.0)
    assert rows["ceiling", None]["vs_unoptimized"] is None
    assert rows["ceiling", None]["vs_litellm"] == pytest.approx(60.0)


def test_targets_met_when_every_figure_reaches_issue_12() -> None:
    checks = statuses(synthetic(misses=1500, hits=2500, p99=3.0, warm_s=4.0))
    assert set(checks.values()) == {"met"}
    assert len(checks) == 7  # 2 per store, LiteLLM, the fixed-rate p99, the warm-up


def test_each_target_fails_on_its_own_figure() -> None:
    checks = statuses(synthetic(misses=1100, hits=1900, p99=6.0, warm_s=5.1))
    assert checks["optimized misses ≥ 60% of unoptimized req/s (in-process)"] == "not met"
    assert checks["exact hits ≥ unoptimized req/s (in-process)"] == "not met"
    assert checks["p99 added latency at 200 req/s < 5 ms, misses (in-process)"] == "not met"
    assert checks["replica warm-up ≤ 5 s at 100,000 entries"] == "not met"
    assert checks["optimized misses ≥ 60% of unoptimized req/s (valkey)"] == "met"
    assert checks["≥ 10× LiteLLM req/s on every gateway path (worst path)"] == "met"


def test_added_latency_is_the_p99_less_the_ceilings_at_the_same_rate() -> None:
    results = synthetic(misses=1500, hits=2500, p99=5.9, warm_s=4.0)  # ceiling p99: 1.0
    [check] = [c for c in targets(results) if c["target"].startswith("p99 added")]
    assert check["status"] == "met" and check["measured"].startswith("4.9 ms")
    results["fixed_rate"] = results["fixed_rate"][1:]  # no ceiling: the whole p99 counts
    [check] = [c for c in targets(results) if c["target"].startswith("p99 added")]
    assert check["status"] == "not met" and "no ceiling" in check["measured"]


def test_the_worst_gateway_path_decides_the_litellm_target() -> None:
    results = synthetic(misses=999, hits=2500, p99=3.0, warm_s=None)
    checks = statuses(results)
    assert checks["≥ 10× LiteLLM req/s on every gateway path (worst path)"] == "not met"
    assert checks["replica warm-up ≤ 5 s at 100,000 entries"] == "not measured"


def test_markdown_has_a_line_per_row_and_target() -> None:
    results = synthetic(misses=1500, hits=2500, p99=3.0, warm_s=4.0)
    text = markdown(results)
    assert "| gateway misses | in-process | 1,500 | 2.0 | 9.0 | 0.75× | 15.00× | 0 |" in text
    assert "| gateway misses | in-process | 200 | 200 | 2.0 | 3.0 | 0 |" in text
    assert "first semantic hit on a known entry after 4.0 s" in text
    assert text.count("| met |") == 7


def test_summary_counts_only_successful_answers() -> None:
    summary = summarize([1.0, 2.0, 3.0, 4.0], 2.0, {"ok": 4, "cache exact": 2})
    assert summary["rps"] == 2.0
    assert summary["failures"] == {"cache exact": 2}
    assert summary["requests"] == 6
    assert (summary["p50_ms"], summary["p99_ms"]) == (2.0, 4.0)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_miss_prompts_are_all_new_and_rephrasings_keep_their_numbers() -> None:
    prompts = {miss_prompt(3, i) for i in range(5000)}
    assert len(prompts) == 5000
    assert "reference 3-42 " in rephrased_prompt(3, 42)
    assert rephrased_prompt(3, 42) != miss_prompt(3, 42)


def test_unknown_rows_are_refused_with_the_allowed_names(capsys) -> None:
    with pytest.raises(SystemExit):
        compare.parse_args(["--only", "ceiling,nginx"])
    assert "unknown nginx; allowed: ceiling, litellm" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--users", "0", "'0' is invalid: allowed values are 1 or more"),
        ("--rate", "0", "'0' is invalid: allowed values are above 0"),
        ("--duration", "ten", "'ten' is not a whole number"),
    ],
)
def test_a_bad_number_is_refused_naming_the_flag(capsys, flag: str, value: str, message: str):
    with pytest.raises(SystemExit):
        compare.parse_args([flag, value])
    assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_a_short_run_against_the_ceiling_writes_results(tmp_path: Path) -> None:
    affinity = os.sched_getaffinity(0)
    short = ["--duration", "2", "--rate", "50", "--rate-duration", "1", "--out", str(tmp_path)]
    path = compare.main(["--only", "ceiling", *short])
    results = json.loads(path.read_text())
    [ceiling] = results["rows"]
    assert ceiling["ok"] > 0 and ceiling["failures"] == {}
    [fixed] = results["fixed_rate"]
    assert fixed["ok"] == 50 and fixed["failures"] == {}
    assert results["machine"]["nproc"] >= 1 and results["machine"]["pinning"]
    assert os.sched_getaffinity(0) == affinity  # the load core was this run's only
