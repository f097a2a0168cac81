"""`finops-sim rightsize` against a real Prometheus serving backfilled history.

The expected figures are computed here from the generated data, not from Prometheus: a
container's 5-minute CPU usage is its block's rate (the history is built so that Prometheus'
rate() extrapolation lands exactly on it, see rightsize_history), its 5-minute memory figure the
largest of the block's samples. The only tolerance is floating point: Prometheus sums counter
differences of cumulative values up to about 10^5 CPU seconds, so its rates differ from the
generated ones in the last digits (relative 1e-9 is a million times looser than that error, and
a million times tighter than any modelling mistake would be).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finops_platform import config as platform_config
from finops_platform.config import load_stack
from finops_sim import cli
from finops_sim.rightsize.prometheus import Prometheus, fetch_usage

from .rightsize_history import (
    BLOCK_S,
    END,
    MIB,
    NAMESPACE,
    WINDOW_S,
    Container,
    History,
    binaries,
    generate,
    serve,
)

REL = 1e-9
STEPS = range(END - WINDOW_S + BLOCK_S, END + 1, BLOCK_S)  # what the tool queries


@pytest.fixture(scope="module")
def history() -> History:
    return generate()


@pytest.fixture(scope="module")
def prometheus_url(history: History, tmp_path_factory: pytest.TempPathFactory):
    """Prometheus on the history, on 127.0.0.1; always stopped after the module."""
    if binaries() is None:
        reason = (
            "these tests need a real Prometheus and promtool (Debian: apt-get install "
            "prometheus); they are not installed"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI must run them (.ci/run installs the package)")
        pytest.skip(reason)
    with serve(history, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def rightsize(url: str, out: Path, capsys, *extra: str) -> tuple[int, str]:
    argv = ["rightsize", "--prometheus", url, "--window", "2d", "--end", str(END)]
    code = cli.main([*argv, "--out", str(out), *extra])
    return code, capsys.readouterr().out


# ---- by hand ----------------------------------------------------------------------------------


def hand_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def hand_cpu_m(containers: list[Container]) -> list[float]:
    return [c.cpu_by_block[t] * 1000 for c in containers for t in STEPS if t in c.cpu_by_block]


def hand_memory(containers: list[Container]) -> list[float]:
    blocks = []
    for c in containers:
        for t in STEPS:
            inside = [v for ts, v in c.memory_by_sample.items() if t - BLOCK_S < ts <= t]
            if inside:
                blocks.append(max(inside))
    return blocks


def hand_killed_limits(containers: list[Container]) -> list[float]:
    """The limits of the containers OOM-killed by the window's end."""
    return [c.memory_limit for c in containers if c.oom_killed_at is not None]


def hand_recommendation(
    cpu_m: list[float], memory: list[float], killed_limits: list[float], cache_limit: float | None
) -> dict[str, int]:
    """The documented default strategy: P95 up to 5m (floor 25m); peak + 15% (for Valkey, whose
    maxmemory is 3/4 of its limit: that limit when the peak reached 3/4 of it, else at least the
    peak / 0.75), or the largest limit an OOM kill happened at + 20% when more, up to 8Mi (floor
    64Mi)."""
    cpu = max(25, math.ceil(hand_percentile(cpu_m, 95) / 5) * 5)
    peak = max(memory)
    from_peak = peak * 1.15
    if cache_limit is not None:
        from_peak = cache_limit if peak >= 0.75 * cache_limit else max(from_peak, peak / 0.75)
    target = max([from_peak] + [limit * 1.2 for limit in killed_limits])
    memory_mib = max(64, math.ceil(target / MIB / 8) * 8)
    return {"cpu_request_m": cpu, "memory_request_bytes": memory_mib * MIB}


def assert_figures(found: dict, values: list[float]) -> None:
    assert found["samples"] == len(values)
    assert found["p50"] == pytest.approx(hand_percentile(values, 50), rel=REL)
    assert found["p95"] == pytest.approx(hand_percentile(values, 95), rel=REL)
    assert found["peak"] == pytest.approx(max(values), rel=REL)


def saved_per_month(cost_output: str) -> float:
    return float(re.search(r"saved: \$([\d,.]+) per month", cost_output)[1].replace(",", ""))


# ---- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(prometheus_url: str, tmp_path_factory, history: History) -> dict[str, dict]:
    """One `--format json` run, by workload."""
    out = tmp_path_factory.mktemp("rightsize")
    window = ["--window", "2d", "--end", str(END), "--out", str(out)]
    code = cli.main(["rightsize", "--prometheus", prometheus_url, *window, "--format", "json"])
    assert code == 0
    document = json.loads((out / "recommendations.json").read_text())
    return {w["workload"]: w for w in document["workloads"]}


@pytest.mark.parametrize(
    ("workload", "app", "container"),
    [
        ("gateway", "ai-gateway", "gateway"),
        ("redis", "redis", "valkey"),
        ("locust.worker", "locust-worker", "worker"),
        ("demoServices", "demo-service-", "service"),
    ],
)
def test_each_recommendation_equals_the_hand_computed_percentile_and_peak(
    report, history: History, workload: str, app: str, container: str
):
    found = report[workload]
    containers = history.of(app, container)
    cpu_m, memory = hand_cpu_m(containers), hand_memory(containers)
    assert found["container"] == container
    assert_figures(found["usage"]["cpu_m"], cpu_m)
    assert_figures(found["usage"]["memory_bytes"], memory)
    # Valkey's maxmemory is 3/4 of its limit: the stack's, 256Mi.
    cache_limit = 256 * MIB if workload == "redis" else None
    expected = hand_recommendation(cpu_m, memory, hand_killed_limits(containers), cache_limit)
    assert found["recommendation"]["cpu_request_m"] == expected["cpu_request_m"]
    assert found["recommendation"]["memory_request_bytes"] == expected["memory_request_bytes"]
    assert found["recommendation"]["memory_limit_bytes"] == expected["memory_request_bytes"]
    assert sorted(found["usage"]["pods"]) == sorted({c.pod for c in containers})


def test_current_requests_come_from_the_stack(report):
    config = load_stack("optimized").workloads
    gateway = report["gateway"]["current"]
    assert gateway["cpu_request_m"] == platform_config.cpu_millicores(
        config.gateway.resources.requests.cpu
    )
    assert gateway["memory_limit_bytes"] == (
        platform_config.memory_mib(config.gateway.resources.limits.memory) * MIB
    )


def test_data_outside_the_window_namespace_or_container_does_not_count(report, history):
    """The spike 50 hours back, the staging namespace's gateway and the pod-level ("") and
    pause ("POD") series of the same pods are all in Prometheus, and all bigger."""
    gateway = report["gateway"]["usage"]
    assert gateway["memory_bytes"]["peak"] < 700 * MIB < 950 * MIB
    assert gateway["cpu_m"]["peak"] < 1000
    staging = history.of("ai-gateway", "gateway", namespace="staging")
    assert staging and min(hand_cpu_m(staging)) == 3000
    assert not [p for p in gateway["pods"] if "staging" in p or "5d4c3b" in p]


def test_a_restarted_pods_old_and_new_series_both_count(report, history):
    gateway = report["gateway"]
    old, new = "ai-gateway-7c9d8f-9pz7w", "ai-gateway-7c9d8f-h6r2m"
    containers = {c.pod: c for c in history.of("ai-gateway", "gateway")}
    assert {old, new} <= set(gateway["usage"]["pods"])
    # The leak before the restart sets the peak; without the old pod's series it would be lower.
    leak_peak = max(hand_memory([containers[old]]))
    others = max(hand_memory([c for pod, c in containers.items() if pod != old]))
    assert gateway["usage"]["memory_bytes"]["peak"] == pytest.approx(leak_peak, rel=REL)
    assert leak_peak > others * 1.5
    # Every 5-minute block of all three series is a sample: 2 days of one pod, 2 of the other.
    assert gateway["usage"]["cpu_m"]["samples"] == 2 * len(STEPS)


def test_an_oom_kill_no_sample_shows_sets_the_workers_memory(report, history):
    """The second worker was killed at its 192Mi limit; its samples peak near 136Mi, so sizing
    from them alone would cut the limit that was already too small."""
    worker = report["locust.worker"]
    killed = next(c for c in history.of("locust-worker", "worker") if c.oom_killed_at)
    assert worker["usage"]["memory_bytes"]["peak"] < 140 * MIB < killed.memory_limit
    assert worker["usage"]["oom_kills"] == [
        {
            "pod": killed.pod,
            # The first 5-minute step whose look-back holds the first sample after the kill.
            "seen_at": datetime.fromtimestamp(
                killed.oom_killed_at - killed.oom_killed_at % BLOCK_S + BLOCK_S, UTC
            ).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "limit_bytes": 192 * MIB,
        }
    ]
    assert worker["recommendation"]["memory"] == "232Mi"  # 192Mi + 20% = 230.4Mi, up to 8Mi
    assert f"OOM-killed at a 192Mi limit in {killed.pod} + 20%" in worker["reason"]
    # Staging's gateway was killed at 4Gi, in another namespace: no other workload shows a kill.
    shown = [w["workload"] for w in report.values() if w["usage"]["oom_kills"]]
    assert shown == ["locust.worker"]


def test_too_little_history_gives_no_recommendation(report, prometheus_url, tmp_path, capsys):
    master = report["locust.master"]
    assert master["recommendation"] is None
    assert master["usage"]["covered_s"] == 6 * 3600
    assert "only 6h of usage data, 1d needed" in master["reason"]
    # With a threshold below its 6 hours, the same data gives a recommendation.
    code, _ = rightsize(prometheus_url, tmp_path, capsys, "--min-history", "5h")
    assert code == 0
    document = json.loads((tmp_path / "recommendations.json").read_text())
    master = next(w for w in document["workloads"] if w["workload"] == "locust.master")
    assert master["recommendation"] is not None


def test_a_counter_reset_leaves_the_rate_right(prometheus_url, history):
    worker = next(c for c in history.of("locust-worker", "worker") if c.resets)
    usage = fetch_usage(
        Prometheus(prometheus_url), NAMESPACE, ("locust-worker",), "worker", END, WINDOW_S, 300
    )
    series = next(s for s in usage.cpu if s.pod == worker.pod)
    reset_block = next(t for t in STEPS if t - BLOCK_S < worker.resets[0] <= t)
    counter = dict(worker.counter())
    inside = [v for ts, v in counter.items() if reset_block - BLOCK_S < ts <= reset_block]
    assert inside[-1] < inside[0], "the counter falls inside this block: a reset"
    rates = dict(zip(series.timestamps, series.values, strict=True))
    assert rates[reset_block] == pytest.approx(worker.cpu_by_block[reset_block], rel=REL)
    assert rates[reset_block] > 0
    # Every other block of the series is right too.
    for t in STEPS:
        assert rates[t] == pytest.approx(worker.cpu_by_block[t], rel=REL)


def test_table_json_and_html_outputs(prometheus_url, tmp_path, capsys, report):
    code, table = rightsize(prometheus_url, tmp_path, capsys)
    assert code == 0
    gateway_row = next(line for line in table.splitlines() if line.startswith("gateway "))
    recommendation = report["gateway"]["recommendation"]
    assert f"{recommendation['cpu']} / {recommendation['memory']}" in gateway_row
    current = load_stack("optimized").workloads.gateway.resources.requests
    assert f"{current.cpu} / {current.memory}" in gateway_row
    assert "All recommendations together" in table
    code, printed = rightsize(prometheus_url, tmp_path, capsys, "--format", "json")
    assert code == 0
    assert json.loads(printed) == list(report.values())
    code, _ = rightsize(prometheus_url, tmp_path, capsys, "--format", "html")
    assert code == 0
    page = (tmp_path / "rightsize.html").read_text()
    for workload in report:
        chart = (
            tmp_path
            / "charts"
            / f"{workload.replace('.', '-')}-{report[workload]['container']}.png"
        )
        assert chart.stat().st_size > 10_000
        assert f"charts/{chart.name}" in page


def test_write_keeps_the_stack_files_layout_and_the_program_accepts_it(
    prometheus_url, tmp_path, capsys, monkeypatch, report
):
    stacks = tmp_path / "stacks"
    shutil.copytree(platform_config.STACKS_DIR, stacks)
    monkeypatch.setattr(platform_config, "STACKS_DIR", stacks)
    before_text = (stacks / "Pulumi.optimized.yaml").read_text()
    assert cli.main(["cost", "--compare", "unoptimized", "optimized"]) == 0
    before_cost = capsys.readouterr().out

    code, printed = rightsize(prometheus_url, tmp_path / "out", capsys, "--write")
    assert code == 0, printed
    after_text = (stacks / "Pulumi.optimized.yaml").read_text()
    before_lines, after_lines = before_text.splitlines(), after_text.splitlines()

    # Every original comment line is still there, in order, except the rightsized workloads'
    # earlier notes ("hand-set ...", or an older measurement), which their new note replaces;
    # only the resource lines changed.
    rightsized = ("gateway", "redis", "locust.worker", "demoServices")  # not locust.master
    earlier_notes = tuple(f"# {workload} requests: " for workload in rightsized)
    kept = [line for line in before_lines if not line.lstrip().startswith(earlier_notes)]
    comments = [line for line in kept if line.lstrip().startswith("#")]
    assert [line for line in after_lines if line in comments] == comments
    assert "# locust.master requests: hand-set until measured on a cluster" in after_text
    notes = [line for line in after_lines if "finops-sim rightsize, 2d to" in line]
    assert len(notes) == len(rightsized)
    unchanged = [line for line in after_lines if line not in notes]
    assert len(unchanged) == len(kept)
    changed = [(a, b) for a, b in zip(kept, unchanged, strict=True) if a != b]
    assert len(changed) == 4
    assert all("requests:" in b for _, b in changed)

    # The program reads the new values, and they are the recommendations.
    config = load_stack("optimized").workloads
    gateway = report["gateway"]["recommendation"]
    assert config.gateway.resources.requests.cpu == gateway["cpu"]
    assert config.gateway.resources.requests.memory == gateway["memory"]
    assert config.gateway.resources.limits.memory == gateway["memory"]
    assert config.locust.master.requests.cpu == "200m"  # no recommendation: unchanged
    assert (
        config.demo_services.resources.requests.cpu
        == report["demoServices"]["recommendation"]["cpu"]
    )

    # `finops-sim cost --compare` shows the effect; the figures are written next to the stack.
    assert cli.main(["cost", "--compare", "unoptimized", "optimized"]) == 0
    after_cost = capsys.readouterr().out
    assert after_cost != before_cost
    assert saved_per_month(after_cost) > saved_per_month(before_cost)
    record = json.loads((stacks / "rightsize.optimized.json").read_text())
    assert record["end"] == "2026-11-23T00:00:00Z"

    # A second run replaces its notes instead of adding more; with --format json its stdout
    # stays one JSON document (what was written is said on stderr).
    code, printed = rightsize(
        prometheus_url, tmp_path / "out", capsys, "--write", "--format", "json"
    )
    assert code == 0
    assert json.loads(printed)
    assert (stacks / "Pulumi.optimized.yaml").read_text() == after_text


def test_an_unreachable_prometheus_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["rightsize", "--prometheus", "http://127.0.0.1:9", "--out", str(tmp_path)])
    assert code == 1
    assert "cannot reach Prometheus at http://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--window", "infd", "must be a positive, finite length"),  # looped forever
        ("--window", "nand", "must be a positive, finite length"),  # read as "no data"
        ("--end", "1e30", "Unix seconds from 0 to 253402300799"),  # looped forever
        ("--end", "nan", "Unix seconds from 0 to 253402300799"),  # a traceback
    ],
)
def test_a_window_or_end_that_is_not_a_finite_time_is_refused(flag, value, says, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["rightsize", "--prometheus", "http://127.0.0.1:9", flag, value])
    assert info.value.code == 2
    assert f"argument {flag}: '{value}' is invalid: {says}" in capsys.readouterr().err


def test_a_stack_on_a_managed_store_has_no_valkey_pod_to_size():
    """It raised KeyError 'redis' (rightsize --prometheus on such a stack was a traceback)."""
    from finops_sim.rightsize.targets import stack_targets

    values = platform_config.read_stack_file("optimized")
    values["finops-sim:workloads"]["store"] = {"mode": "elasticache_serverless"}
    config = platform_config.parse_stack_config("optimized", values)
    workloads = [target.workload for target in stack_targets(config)]
    assert "redis" not in workloads and "gateway" in workloads
    assert "redis" in [target.workload for target in stack_targets(load_stack("optimized"))]


@pytest.mark.parametrize(("limit", "kept"), [("300m", "350m"), ("500m", "500m")])
def test_a_cpu_limit_below_the_recommended_request_is_raised_to_it(limit, kept):
    """A limit under its request is refused by Kubernetes: the stack config refused it with a
    traceback."""
    import dataclasses

    from finops_sim.rightsize.strategy import Recommendation
    from finops_sim.rightsize.targets import recommended_resources, stack_targets

    target = stack_targets(load_stack("optimized"))[0]
    limits = target.resources.limits.model_copy(update={"cpu": limit})
    limited = dataclasses.replace(
        target, resources=target.resources.model_copy(update={"limits": limits})
    )
    resources = recommended_resources(limited, Recommendation(350, 512 * 2**20))
    assert (resources.requests.cpu, resources.limits.cpu) == ("350m", kept)


def test_recommendations_that_raise_the_cost_say_so():
    """A negative saving printed as "saves $-188.63"."""
    from finops_sim.rightsize.output import _total_line

    assert "(saves $70.74)" in _total_line((277.84, 207.10))
    assert "(costs $188.63 more)" in _total_line((277.84, 466.47))
    assert "No saving shown" in _total_line((277.84, None))


def test_min_history_may_be_zero_where_other_durations_may_not():
    """The strategy allows 0 (recommend from whatever data there is); the flag refused it."""
    import argparse

    from finops_sim.rightsize.command import duration, history

    assert history("0m") == 0.0 and history("90m") == 5400.0
    with pytest.raises(argparse.ArgumentTypeError):
        duration("0m")
    with pytest.raises(argparse.ArgumentTypeError):
        history("-1h")
