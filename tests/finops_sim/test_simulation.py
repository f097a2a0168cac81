"""End to end: a small simulation through both phases, with real Valkey, gateway and Locust."""

from __future__ import annotations

import os

import pytest
import yaml

from finops_sim.results import SimulationResults, read_log
from finops_sim.simulation import RunOptions, run

REQUESTS = 200
EMBEDDER = "model2vec" if os.environ.get("GATEWAY_EMBEDDING_MODEL") else "lexical"


@pytest.fixture(scope="module")
def first_run(fast_scenario, tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    options = RunOptions(fast_scenario, out, requests=REQUESTS, seed=7, embedder=EMBEDDER)
    return out, run(options)


def test_every_file_is_written(first_run):
    out, _ = first_run
    for name in ("results.json", "report.md", "report.html", "requests-unoptimized.jsonl",
                 "requests-optimized.jsonl", "locust/unoptimized_stats.csv",
                 "locust/optimized.html", "charts/spend_by_model.png",
                 "charts/savings_by_cause.png"):  # fmt: skip
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "Cost Optimization Results (AI measured in this run" in report


def test_the_compute_line_comes_from_the_cost_model(first_run):
    from finops_platform.cost import compare
    from finops_platform.render import load_stack

    out, results = first_run
    expected = compare(load_stack("unoptimized"), load_stack("optimized"))
    assert results.compute is not None
    assert results.compute.model_dump() == pytest.approx(expected)
    report = (out / "report.md").read_text()
    assert f"Kubernetes Compute: {expected['savings_pct'] * 100:.1f}% reduction" in report


def test_three_way_cross_check(first_run):
    out, results = first_run
    for phase, summary in results.phases.items():
        records = read_log(out / f"requests-{phase}.jsonl")
        assert len(records) == REQUESTS
        log_sum = sum(r.cost_usd for r in records)
        assert summary.spend_usd == pytest.approx(log_sum, abs=1e-9)
        assert summary.metric_cost_usd == pytest.approx(log_sum, abs=1e-6)
        assert round(summary.spend_usd, 2) == round(summary.metric_cost_usd, 2)
    on_disk = SimulationResults.model_validate_json((out / "results.json").read_text())
    assert on_disk == results


def test_optimized_spends_less_and_the_split_adds_up(first_run):
    _, results = first_run
    before, after = results.phases.unoptimized, results.phases.optimized
    assert after.spend_usd < before.spend_usd
    # Unoptimized serves every request at its baseline, so the baselines agree...
    assert after.baseline_usd == pytest.approx(before.spend_usd, rel=1e-9)
    # ...and the causes explain the whole saving.
    comparison = results.comparison
    assert comparison.unattributed_usd == pytest.approx(0.0, abs=1e-6)
    assert comparison.by_cause_usd.cache > 0
    assert comparison.by_cause_usd.routing > 0
    assert after.cache.semantic_false_hit_rate in (None, 0.0)


def test_same_seed_gives_the_same_numbers(first_run, fast_scenario, tmp_path):
    _, first = first_run
    second = run(RunOptions(fast_scenario, tmp_path, requests=REQUESTS, seed=7, embedder=EMBEDDER))

    def stable(results):
        phases = {
            name: phase.model_dump(exclude={"latency_ms", "gateway_ready_at_end"})
            for name, phase in results.phases.items()
        }
        return phases, results.comparison

    assert stable(second) == stable(first)


def test_tight_budgets_show_up_as_rejections_and_budget_savings(fast_scenario, tmp_path):
    tight = tmp_path / "tight.yaml"
    tight.write_text(
        yaml.safe_dump(
            {
                "teams": {
                    team: {"keys": [f"sk-demo-{team}"], "routing": "all",
                           "limits": {"usd": 0.05, "period": "day"}}
                    for team in ("team-a", "team-b")
                }
            }
        )
    )  # fmt: skip
    results = run(
        RunOptions(
            fast_scenario,
            tmp_path / "out",
            requests=120,
            seed=3,
            embedder="lexical",
            gateway_config=tight,
        )
    )
    after = results.phases.optimized
    assert after.budget_rejections > 0
    assert results.comparison.by_cause_usd.budgets > 0
    for team_spend in after.spend_by_team_usd.values():
        assert team_spend <= 0.05 + 1e-9


def test_duration_mode_replays_the_same_workload_in_both_phases(fast_scenario, tmp_path):
    results = run(
        RunOptions(fast_scenario, tmp_path, requests=None, duration_s=3, embedder="lexical")
    )
    before, after = results.phases.unoptimized, results.phases.optimized
    assert before.requests > 50
    assert after.requests == before.requests
    assert results.comparison.unattributed_usd == pytest.approx(0.0, abs=1e-6)
