"""End to end: a small simulation through both phases, with real Valkey, gateway and Locust."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from finops_sim.results import SimulationResults, read_log
from finops_sim.simulation import RunOptions, run
from loadgen.scenario import DEFAULT_SCENARIO

REQUESTS = 200
EMBEDDER = "model2vec" if os.environ.get("GATEWAY_EMBEDDING_MODEL") else "lexical"


@pytest.fixture(scope="module")
def fast_scenario(tmp_path_factory) -> Path:
    """The default scenario at a steady, higher rate, so the test runs in seconds."""
    data = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    data["arrival"] = {"pattern": "steady", "rate_per_second": 150}
    path = tmp_path_factory.mktemp("scenario") / "fast.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def first_run(fast_scenario, tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    options = RunOptions(fast_scenario, out, requests=REQUESTS, seed=7, embedder=EMBEDDER)
    return out, run(options)


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


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


def test_ctrl_c_leaves_nothing_running(fast_scenario, tmp_path):
    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, "-m", "finops_sim.cli", "run", "--requests", "100000",
         "--scenario", str(fast_scenario), "--out", str(out), "--embedder", "lexical"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    log = out / "requests-unoptimized.jsonl"
    deadline = time.monotonic() + 60
    while (not log.exists() or log.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.2)
    started = _children(process.pid)
    assert len(started) >= 3, "Valkey, the gateway and Locust should be running"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr
    time.sleep(0.5)
    alive = {pid for pid in started if Path(f"/proc/{pid}").exists()}
    alive = {pid for pid in alive if (Path(f"/proc/{pid}") / "stat").read_text().split()[2] != "Z"}
    assert not alive, f"still running after Ctrl-C: {alive}"


def test_bad_scenario_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\n")
    result = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "run", "--scenario", str(bad), "--out",
         str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr and "`teams`" in result.stderr
    assert "Traceback" not in result.stderr


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


def test_bad_gateway_config_fails_before_running(fast_scenario, tmp_path):
    bad = tmp_path / "gw.yaml"
    bad.write_text("cache:\n  exakt: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "run", "--scenario", str(fast_scenario),
         "--out", str(tmp_path / "o"), "--gateway-config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "gw.yaml: unknown key `cache.exakt`" in result.stderr
    assert not (tmp_path / "o" / "requests-unoptimized.jsonl").exists()


def test_duration_mode_replays_the_same_workload_in_both_phases(fast_scenario, tmp_path):
    results = run(
        RunOptions(fast_scenario, tmp_path, requests=None, duration_s=3, embedder="lexical")
    )
    before, after = results.phases.unoptimized, results.phases.optimized
    assert before.requests > 50
    assert after.requests == before.requests
    assert results.comparison.unattributed_usd == pytest.approx(0.0, abs=1e-6)
