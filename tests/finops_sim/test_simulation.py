"""End to end: a small simulation through both phases, with real Valkey, gateway and Locust."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

import finops_sim
from finops_common.config import ConfigError
from finops_common.phases import PHASES
from finops_sim import simulation
from finops_sim.results import SimulationResults, read_log
from finops_sim.rightsize.stackfile import read_recommendations
from finops_sim.simulation import (
    RESULTS_FILE,
    PhaseFiles,
    RunOptions,
    check_teams,
    progress_done,
    progress_total,
    run,
)
from loadgen.scenario import DEFAULT_SCENARIO, load_scenario

REQUESTS = 200
EMBEDDER = "model2vec" if os.environ.get("GATEWAY_EMBEDDING_MODEL") else "lexical"
SMALL_BUDGETS = Path(finops_sim.__file__).with_name("examples") / "small-budgets.yaml"


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
    """The split's arithmetic is written out over the cost model's price of each stack (its
    pricing has hand-computed tests in tests/infra/test_cost.py), not taken from the compare()
    that the run itself calls."""
    from finops_platform.config import load_stack
    from finops_platform.cost import stack_cost

    def monthly(stack: str, spot: bool = True) -> float:
        config = load_stack(stack)
        if not spot:
            workloads = config.workloads.model_copy(update={"stateless_on_spot": False})
            config = config.model_copy(update={"workloads": workloads})
        return stack_cost(config).monthly_usd

    out, results = first_run
    before, after = monthly("unoptimized"), monthly("optimized")
    before_on_demand, after_on_demand = monthly("unoptimized", False), monthly("optimized", False)
    expected = {
        "unoptimized_monthly_usd": before,
        "optimized_monthly_usd": after,
        "savings_usd": before - after,
        "savings_pct": (before - after) / before,
        # Rightsizing: the requests alone, both stacks on on-demand nodes.
        "rightsizing_usd": before_on_demand - after_on_demand,
        # Spot: what spot takes off the optimized stack, less what it took off the unoptimized.
        "spot_usd": (after_on_demand - after) - (before_on_demand - before),
    }
    assert results.compute is not None
    assert results.compute.model_dump(include=set(expected)) == pytest.approx(expected)
    # The gateway's requests were written from a measurement; the stack marks the rest hand-set.
    assert results.compute.measured_workloads == ("ai-gateway",)
    assert {"redis", "locust-master", "demo-service-0"} <= set(results.compute.hand_set_workloads)
    report = (out / "report.md").read_text()
    assert f"Kubernetes Compute: {expected['savings_pct'] * 100:.1f}% reduction" in report
    # ...by an earlier run, which the report names (the stack file's recommendation source).
    [recommendation] = read_recommendations("optimized")
    assert results.compute.measured_by == (recommendation["source"].partition(":")[0],)
    assert "requests are measured for: ai-gateway (by finops-sim run" in report


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
    # Both phases price the same requests at the same list prices...
    assert after.baseline_usd == pytest.approx(before.baseline_usd, rel=1e-9)
    # ...and both are billed with the providers' prompt caches, so unoptimized pays less than
    # list price for its repeated prefixes.
    assert before.tokens.cached_input > 0 and before.spend_usd < before.baseline_usd
    # Every request is compared with its twin: the causes explain the whole saving.
    comparison = results.comparison
    assert comparison.unattributed_usd == pytest.approx(0.0, abs=1e-6)
    assert comparison.by_cause_usd.cache > 0
    assert comparison.by_cause_usd.routing > 0
    explained = sum(usd for _, usd in comparison.by_cause_usd)
    assert round(explained, 2) == round(comparison.savings_usd, 2)
    assert after.cache.semantic_false_hit_rate in (None, 0.0)


def test_same_seed_gives_the_same_numbers(first_run, fast_scenario, tmp_path):
    _, first = first_run
    second = run(RunOptions(fast_scenario, tmp_path, requests=REQUESTS, seed=7, embedder=EMBEDDER))

    def stable(results):
        phases = {
            name: phase.model_dump(exclude={"latency_ms", "gateway_ready_at_end", "gateway_usage"})
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


def test_an_optimized_phase_that_serves_nothing_still_gets_its_report(fast_scenario, tmp_path):
    """Every request refused (a budget below any request's worst case): nothing to size the
    gateway from, which ended the run with a traceback after both phases and no report."""
    nothing = tmp_path / "nothing.yaml"
    limits = {"usd": 0.000001, "period": "day"}
    teams = {t: {"keys": [f"sk-demo-{t}"], "limits": limits} for t in ("team-a", "team-b")}
    nothing.write_text(yaml.safe_dump({"teams": teams}))
    out = tmp_path / "out"
    results = run(RunOptions(fast_scenario, out, requests=12, seed=3, embedder="lexical",
                             gateway_config=nothing))  # fmt: skip
    assert results.phases.optimized.served == 0 and results.gateway_sizing is None
    assert results.gateway_sizing_note is not None
    assert "served 0 of 12 requests" in results.gateway_sizing_note
    assert results.gateway_sizing_note in (out / "report.md").read_text()


def test_a_valkey_that_does_not_start_is_a_clear_error(fast_scenario, tmp_path, monkeypatch):
    """Its port taken: a traceback from the harness, or a timeout reported as a failed write in
    --out (a TimeoutError is an OSError)."""

    @contextmanager
    def refused_valkey():
        raise RuntimeError("valkey-server exited with 1:\nbind: Address already in use")
        yield "never"

    monkeypatch.setattr(simulation, "embedded_valkey", refused_valkey)
    options = RunOptions(fast_scenario, tmp_path / "out", requests=5, embedder="lexical")
    with pytest.raises(
        simulation.SimulationError, match="unoptimized phase's Valkey did not start"
    ):
        run(options)


def test_duration_mode_replays_the_same_workload_in_both_phases(fast_scenario, tmp_path, capsys):
    results = run(
        RunOptions(fast_scenario, tmp_path, requests=None, duration_s=3, embedder="lexical")
    )
    before, after = results.phases.unoptimized, results.phases.optimized
    assert before.requests > 50
    assert after.requests == before.requests
    on_disk = SimulationResults.model_validate_json((tmp_path / "results.json").read_text())
    assert on_disk.run.requests_per_phase == before.requests
    assert on_disk.run.duration_s == 3
    assert results.comparison.unattributed_usd == pytest.approx(0.0, abs=1e-6)
    # The lexical embedder leaves the optimized gateway's router on its features-only head: the
    # gateway says so in its log, and the run relays it to the terminal (routing saves less).
    relayed = capsys.readouterr().err
    assert "finops-sim: the optimized gateway warns: the learned router was trained on" in relayed
    assert "the unoptimized gateway warns" not in relayed
    assert "--embedder model2vec uses the model" in relayed  # the run's own switch, not a config's
    report = (tmp_path / "report.md").read_text()
    assert "**The optimized gateway warned at start:** the learned router was trained on" in report
    assert "(the first phase ran for `--duration` 3 s; the second replayed it)" in report


def test_each_phase_records_the_gateway_process_cpu_and_memory(first_run):
    out, _ = first_run
    on_disk = SimulationResults.model_validate_json((out / "results.json").read_text())
    for phase, summary in on_disk.phases.items():
        usage = summary.gateway_usage
        assert usage.cpu_seconds > 0, phase
        assert usage.peak_rss_bytes > 20 * 2**20, phase  # a Python interpreter at least
        assert usage.rss_samples >= 2, phase
        assert usage.requests == REQUESTS, phase
        assert usage.wall_seconds > 0, phase


def test_the_report_prints_what_the_gateway_used_and_the_derived_request(first_run):
    from finops_sim.report import mib

    out, _ = first_run
    results = SimulationResults.model_validate_json((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    section = report.split("## Compute: what the gateway used")[1].split("## Charts")[0]
    usage = [summary.gateway_usage for _, summary in results.phases.items()]
    assert "| CPU seconds | " + " | ".join(f"{u.cpu_seconds:,.2f}" for u in usage) in section
    assert "| peak resident memory | " + " | ".join(mib(u.peak_rss_bytes) for u in usage) in section
    assert " | ".join(f"{u.requests_per_second:,.1f} req/s" for u in usage) in section
    sizing = results.gateway_sizing
    assert sizing is not None
    assert sizing.cpu_seconds_per_request == pytest.approx(usage[1].cpu_seconds / usage[1].requests)
    assert (
        f"| the `optimized` stack requests | {sizing.stack_cpu_request_m}m | "
        f"{mib(sizing.stack_memory_request_bytes)} |" in section
    )
    assert (
        f"| derived from this run | {sizing.cpu_request_m}m | {mib(sizing.memory_bytes)} |"
        in section
    )


def test_rightsize_from_the_run_writes_the_gateway_requests_with_a_dated_note(
    first_run, tmp_path, monkeypatch, capsys
):
    from finops_platform import config as platform_config
    from finops_platform.config import load_stack
    from finops_sim.cli import main

    out, results = first_run
    shutil.copytree(platform_config.STACKS_DIR, tmp_path / "stacks")
    monkeypatch.setattr(platform_config, "STACKS_DIR", tmp_path / "stacks")
    before = (tmp_path / "stacks" / "Pulumi.optimized.yaml").read_text()
    argv = ["rightsize", "--from-run", str(out / "results.json"), "--stack", "optimized"]
    assert main([*argv, "--write"]) == 0
    sizing = results.gateway_sizing
    after_text = (tmp_path / "stacks" / "Pulumi.optimized.yaml").read_text()
    gateway = load_stack("optimized").workloads.gateway.resources
    assert gateway.requests.cpu == f"{sizing.cpu_request_m}m"
    assert gateway.requests.memory == gateway.limits.memory == f"{sizing.memory_bytes // 2**20}Mi"
    assert f"# gateway requests: finops-sim run {results.run.started_at[:10]}" in after_text
    assert f"{sizing.cpu_seconds_per_request * 1000:.2f} ms CPU/request" in after_text
    # Only the gateway's values and its note changed; the hand-set marks stay.
    changed = [line for line in after_text.splitlines() if line not in before.splitlines()]
    gateway_lines = (
        "# gateway requests: ",
        f"resources: {{requests: {{cpu: {gateway.requests.cpu}",
    )
    assert all(line.strip().startswith(gateway_lines) for line in changed), changed
    assert after_text.count("hand-set until measured on a cluster") == before.count(
        "hand-set until measured on a cluster"
    )
    from finops_sim.rightsize.stackfile import read_recommendations

    [recorded] = read_recommendations("optimized")  # the policy pack's ceiling for it
    assert (recorded["apps"], recorded["container"]) == (["ai-gateway"], "gateway")
    assert recorded["recommendation"] == {
        "cpu": gateway.requests.cpu,
        "memory": gateway.requests.memory,
    }
    assert main(["cost", "--compare", "unoptimized", "optimized"]) == 0
    assert "compute per month" in capsys.readouterr().out


def test_every_team_of_the_scenario_must_reach_the_gateway_as_itself(tmp_path):
    """A config's teams replace the profile's: a team left out would get 401s, counted as
    requests that cost nothing, so the run refuses to start, naming the file and the team."""
    scenario = load_scenario(DEFAULT_SCENARIO)
    partial = tmp_path / "partial.yaml"
    partial.write_text("teams:\n  team-b:\n    keys: [sk-demo-team-b]\n")
    with pytest.raises(ConfigError) as info:
        check_teams(scenario, DEFAULT_SCENARIO, "optimized", partial)
    message = str(info.value)
    assert message.startswith(f"{partial}: the optimized gateway would not serve")
    assert "team-a (its key is not one of the gateway's)" in message
    assert "list every team of the scenario (team-a, team-b)" in message
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(
        "teams:\n  team-a:\n    keys: [sk-demo-team-b]\n  team-b:\n    keys: [sk-demo-team-a]\n"
    )
    with pytest.raises(ConfigError, match=r"team-a \(its key is the gateway's team team-b\)"):
        check_teams(scenario, DEFAULT_SCENARIO, "optimized", swapped)
    # The unoptimized phase serves the profile's demo teams: a scenario with other keys fails.
    other = scenario.model_copy(
        update={"teams": (scenario.teams[0].model_copy(update={"key": "sk-someone-else"}),)}
    )
    with pytest.raises(ConfigError) as info:
        check_teams(other, DEFAULT_SCENARIO, "unoptimized", None)
    assert str(info.value).startswith(f"{DEFAULT_SCENARIO}: the unoptimized gateway")
    assert "serves the profile's demo teams (team-a, team-b; the simulation takes no config" in str(
        info.value
    )


def test_the_shipped_small_budgets_example_serves_every_team():
    scenario = load_scenario(DEFAULT_SCENARIO)
    for phase in ("unoptimized", "optimized"):
        check_teams(
            scenario, DEFAULT_SCENARIO, phase, SMALL_BUDGETS if phase == "optimized" else None
        )


def test_the_phase_files_are_every_file_a_run_writes_besides_its_report(first_run, tmp_path):
    """What clear_phase_files removes is what a run wrote: nothing a phase writes is missed."""
    out, _ = first_run
    written = {path for phase in PHASES for path in PhaseFiles(out, phase).written()}
    report = {out / RESULTS_FILE, out / "report.md", out / "report.html", *out.glob("charts/*")}
    assert {path for path in out.rglob("*") if path.is_file()} - report == written


def test_a_run_that_ends_early_leaves_no_older_phase_files(fast_scenario, tmp_path, monkeypatch):
    """The earlier run's optimized files would sit beside this run's unoptimized ones."""
    names = ["requests-optimized.jsonl", "logs/gateway-optimized.log",
             "locust/optimized_stats.csv", "locust/optimized.html"]  # fmt: skip
    older = [tmp_path / name for name in names]
    for path in older:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("from an earlier run\n")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("mine\n")

    def interrupted(phase, options, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(simulation, "_run_phase", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(RunOptions(fast_scenario, tmp_path, requests=10, embedder="lexical"))
    assert [path for path in older if path.exists()] == []
    assert unrelated.read_text() == "mine\n"


@pytest.mark.parametrize(("duration", "elapsed", "done"), [(2.5, 1.7, 1), (2.5, 9.0, 3)])
def test_a_duration_runs_progress_is_whole_seconds(tmp_path, duration, elapsed, done):
    options = RunOptions(tmp_path / "s.yaml", tmp_path, requests=None, duration_s=duration)
    assert progress_total(options) == (3, "s")
    assert progress_done(options, tmp_path / "none.jsonl", elapsed) == done


@pytest.mark.parametrize(
    ("recommendation", "named"),
    [
        (
            {"source": "finops-sim run 2026-11-30 16:31 (out/demo/results.json): 8.07 ms x 5.4"},
            "finops-sim run 2026-11-30 16:31 (out/demo/results.json)",
        ),
        ({"apps": ["redis"], "recommendation": {"cpu": "50m"}}, "rightsize --prometheus"),
    ],
)
def test_the_report_names_what_measured_each_written_request(recommendation, named):
    """A time's colon stays in the name; a Prometheus recommendation, which records no source,
    is not credited to another run."""
    assert simulation._measured_by(recommendation) == named


def test_no_sizing_is_derived_from_a_phase_whose_requests_mostly_failed():
    from tests.finops_sim.test_report import _results, _with_failures

    failed = _with_failures(_results(), failed=3).phases.optimized
    sizing, note = simulation.gateway_sizing(failed)
    assert sizing is None and note is not None
    assert "3 of its 4 optimized requests failed" in note


def test_a_request_log_cut_short_is_a_clear_error(fast_scenario, tmp_path, monkeypatch):
    """A full disk cut the gateway's last line: read_log's ValueError was a traceback."""

    def cut_short(path):
        raise ValueError(f"{path}:3: not a request record: EOF while parsing")

    monkeypatch.setattr(simulation, "read_log", cut_short)
    options = RunOptions(fast_scenario, tmp_path / "out", requests=3, embedder="lexical")
    with pytest.raises(simulation.SimulationError, match=r"request log is incomplete .* disk full"):
        run(options)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("Pulumi.optimized.yaml", lambda text: text.replace("gatewayProfile: optimized",
                                                             "gatewayProfile: bogus")),
        ("rightsize.optimized.json", lambda text: text[: len(text) // 2]),
    ],
)  # fmt: skip
def test_a_bad_stack_file_is_refused_before_any_phase(
    fast_scenario, tmp_path, monkeypatch, name, change
):
    """The compute line and the gateway's sizing read the stacks after both phases: a bad one
    lost the whole run there, to a configuration error or a JSON traceback."""
    from finops_platform import config as platform_config

    stacks = tmp_path / "stacks"
    shutil.copytree(platform_config.STACKS_DIR, stacks)
    monkeypatch.setattr(platform_config, "STACKS_DIR", stacks)
    (stacks / name).write_text(change((stacks / name).read_text()))

    def never(phase, options, out):
        raise AssertionError("a phase started")

    monkeypatch.setattr(simulation, "_run_phase", never)
    with pytest.raises(ConfigError) as refused:
        run(RunOptions(fast_scenario, tmp_path / "out", requests=10, embedder="lexical"))
    assert name in str(refused.value)
