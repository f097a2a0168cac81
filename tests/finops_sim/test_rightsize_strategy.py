"""The rightsizing strategy, the stack's targets and the command's flags, without Prometheus."""

from __future__ import annotations

import pytest

from finops_common.config import ConfigError
from finops_platform.config import load_stack
from finops_sim import cli
from finops_sim.rightsize.command import strategy_of
from finops_sim.rightsize.strategy import (
    MIB,
    CacheBudget,
    ContainerUsage,
    OomKill,
    Series,
    Strategy,
    assess,
)
from finops_sim.rightsize.targets import (
    monthly_cost,
    recommended_resources,
    stack_targets,
    with_resources,
)

DAY = 86400


def usage(cpu_cores: list[float], memory_mib: list[float], step: int = 300) -> ContainerUsage:
    times = tuple(float(i * step) for i in range(len(cpu_cores)))
    return ContainerUsage(
        cpu=(Series("p-1", times, tuple(cpu_cores)),),
        memory=(Series("p-1", times, tuple(m * MIB for m in memory_mib)),),
        resolution_s=step,
    )


def test_cpu_at_the_percentile_and_memory_at_the_peak_plus_headroom():
    # 300 samples (25 hours): CPU 1m..300m, memory 100Mi with one 200Mi peak.
    cpu = [i / 1000 for i in range(1, 301)]
    memory = [100.0] * 299 + [200.0]
    result = assess(usage(cpu, memory), Strategy())
    # P95 of 1..300 by linear interpolation: rank 0.95 * 299 = 284.05 -> 285.05m, up to 290m.
    assert result.cpu_target_m == pytest.approx(285.05)
    assert result.recommendation.cpu_request_m == 290
    # 200Mi + 15% = 230Mi, up to a multiple of 8Mi: 232Mi; request and limit alike.
    assert result.recommendation.memory_bytes == 232 * MIB
    assert result.recommendation.memory == "232Mi"
    assert "P95 of 300 5m samples" in result.reason


def test_an_oom_kill_raises_memory_to_the_limit_it_was_killed_at_plus_the_bump():
    """The kill's peak fell between samples: the working set shows 150Mi, the limit was 256Mi."""
    sampled = usage([0.05] * 300, [150.0] * 300)
    kills = (OomKill("p-1", 3000.0, 256 * MIB), OomKill("p-2", 6000.0, 200 * MIB))
    killed = ContainerUsage(sampled.cpu, sampled.memory, sampled.resolution_s, kills)
    without = assess(sampled, Strategy()).recommendation
    assert without.memory == "176Mi"  # 150Mi + 15% = 172.5Mi, below the limit that was too small
    result = assess(killed, Strategy())
    # The largest limit a kill happened at, 256Mi, + 20% = 307.2Mi, up to a multiple of 8Mi.
    assert result.memory_target_bytes == pytest.approx(256 * MIB * 1.2)
    assert result.recommendation.memory == "312Mi"
    assert "OOM-killed at a 256Mi limit in p-1 (and 1 other pod(s)) + 20% = 307.2Mi" in (
        result.reason
    )
    assert result.recommendation.cpu_request_m == without.cpu_request_m
    bumped = assess(killed, Strategy(oom_bump=0.5)).recommendation
    assert bumped.memory == "384Mi"  # 256Mi * 1.5


def test_a_peak_above_the_killed_limit_still_sets_memory():
    """A limit raised after the kill: the peak since then is what sizes it."""
    sampled = usage([0.05] * 300, [400.0] * 300)
    killed = ContainerUsage(
        sampled.cpu, sampled.memory, sampled.resolution_s, (OomKill("p-1", 0.0, 128 * MIB),)
    )
    result = assess(killed, Strategy())
    assert result.recommendation.memory == "464Mi"  # 400Mi + 15% = 460Mi, up to 464Mi
    assert "above the OOM-killed at a 128Mi limit" in result.reason


def test_a_full_cache_keeps_its_limit_and_a_partly_full_one_its_contents():
    """Valkey's maxmemory is 3/4 of its limit. Full, its container's peak is that budget plus
    its own overhead: sized at the peak + 15% the limit shrank (256Mi -> 248Mi here), and at the
    peak over 3/4 it grew by the overhead's third each cycle. Not full, the new budget must
    still hold the peak."""
    full = usage([0.02] * 300, [211.0] * 300)  # a 192Mi budget full, and 19Mi of overhead
    assert assess(full, Strategy()).recommendation.memory == "248Mi"
    kept = assess(full, Strategy(), CacheBudget(0.75, 256 * MIB))
    assert kept.recommendation.memory == "256Mi"
    assert "reached the cache's 192Mi budget (0.75 of its limit): it is full" in kept.reason
    partly = assess(usage([0.02] * 300, [60.0] * 300), Strategy(), CacheBudget(0.75, 256 * MIB))
    assert partly.recommendation.memory == "80Mi"  # 60Mi / 0.75: a 60Mi budget holds the 60Mi
    assert "peak 60.0Mi / 0.75 (the share of its limit its cache may fill) = 80.0Mi" in (
        partly.reason
    )


@pytest.mark.parametrize("overhead_mib", [0, 16, 40])
def test_repeated_cycles_of_a_full_cache_settle(overhead_mib):
    """Each cycle runs with the last recommendation: the limit must not move."""
    limit_mib = 256
    for _ in range(6):
        peak = 0.75 * limit_mib + overhead_mib  # full: the budget and the overhead
        cache = CacheBudget(0.75, limit_mib * MIB)
        limit_mib = assess(usage([0.02] * 300, [peak] * 300), Strategy(), cache).recommendation
        limit_mib = limit_mib.memory_bytes // MIB
    assert limit_mib == 256


def test_floors_steps_and_percentile_are_settings():
    cpu, memory = [0.001] * 300, [10.0] * 300
    floored = assess(usage(cpu, memory), Strategy()).recommendation
    assert (floored.cpu, floored.memory) == ("25m", "64Mi")
    custom = Strategy(
        cpu_percentile=50, cpu_floor_m=1, cpu_step_m=1, memory_floor_mib=1, memory_step_mib=1
    )
    result = assess(usage([i / 1000 for i in range(1, 301)], memory), custom).recommendation
    assert result.cpu_request_m == 151  # P50 of 1..300 = 150.5m, rounded up
    assert result.memory == "12Mi"  # 10Mi + 15% = 11.5Mi


def test_no_recommendation_before_the_minimum_history():
    short = assess(usage([0.1] * 287, [50.0] * 287), Strategy())  # 23h55m
    assert short.recommendation is None
    assert short.reason == "only 23.92h of usage data, 1d needed: no recommendation"
    enough = assess(usage([0.1] * 288, [50.0] * 288), Strategy())  # 24h
    assert enough.recommendation is not None
    empty = assess(ContainerUsage((), (), 300), Strategy())
    assert empty.recommendation is None and "no usage data" in empty.reason


def test_a_gap_does_not_count_as_history():
    """Two series covering the same 12 hours are 12 hours of data, not 24."""
    times = tuple(float(i * 300) for i in range(144))
    twice = ContainerUsage(
        cpu=(Series("a", times, (0.1,) * 144), Series("b", times, (0.1,) * 144)),
        memory=(Series("a", times, (MIB,) * 144), Series("b", times, (MIB,) * 144)),
        resolution_s=300,
    )
    assert twice.covered_s() == 12 * 3600
    assert assess(twice, Strategy()).recommendation is None


def test_the_targets_are_the_stacks_workloads_as_rendered():
    targets = {t.workload: t for t in stack_targets(load_stack("optimized"))}
    assert list(targets) == ["gateway", "redis", "locust.master", "locust.worker", "demoServices"]
    assert targets["gateway"].apps == ("ai-gateway",)
    assert targets["gateway"].container == "gateway"
    assert targets["gateway"].stack_key == "finops-sim:workloads.gateway.resources"
    assert targets["redis"].container == "valkey"
    assert targets["demoServices"].apps == tuple(f"demo-service-{i}" for i in range(6))
    assert targets["demoServices"].pods == 12
    assert targets["demoServices"].cpu_request_m == 400


def test_savings_come_from_the_cost_model():
    config = load_stack("unoptimized")
    demo = next(t for t in stack_targets(config) if t.workload == "demoServices")
    small = assess(usage([0.02] * 300, [30.0] * 300), Strategy()).recommendation
    cheaper = with_resources(config, {demo.key: recommended_resources(demo, small)})
    assert cheaper.workloads.demo_services.resources.requests.cpu == "25m"
    assert cheaper.workloads.demo_services.count == config.workloads.demo_services.count
    assert monthly_cost(cheaper) < monthly_cost(config)
    assert monthly_cost(load_stack("local")) is None


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--cpu-percentile", "150", "--cpu-percentile 150"),
        ("--memory-headroom", "-0.1", "--memory-headroom -0.1"),
        ("--oom-bump", "2.5", "--oom-bump 2.5"),
        ("--cpu-percentile", "0", "--cpu-percentile 0: "),  # as typed: it said 0.0
        ("--cpu-step", "449", "--cpu-step 449000: Input should be less than or equal to 448000"),
        ("--memory-floor", "40Ti", "--memory-floor 41943040: Input should be less than or equal"),
    ],
)
def test_a_bad_strategy_flag_names_the_flag(flag, value, message):
    args = cli.parser().parse_args(["rightsize", "--prometheus", "http://x", flag, value])
    with pytest.raises(ConfigError, match=message):
        strategy_of(args)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_strategy_flag_that_is_not_a_finite_number_is_a_usage_error(capsys, value):
    """NaN was read, and refused as "less than or equal to 100"."""
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["rightsize", "--prometheus", "http://x", "--oom-bump", value])
    assert f"argument --oom-bump: '{value}' is invalid: allowed values are finite numbers" in (
        capsys.readouterr().err
    )


SHOWN_DEFAULTS = [("--cpu-floor", "CPU", "25m"), ("--memory-floor", "MEMORY", "64Mi"),
                  ("--min-history", "DURATION", "1d")]  # fmt: skip


def test_the_help_shows_each_default_as_its_flag_takes_it(capsys):
    """The help once said "in millicores (default 25)", and `--cpu-floor 25` is 25 CPUs."""
    parser = cli.parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["rightsize", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "millicores" not in help_text and "in MiB" not in help_text
    defaults = strategy_of(parser.parse_args(["rightsize", "--prometheus", "http://x"]))
    for flag, metavar, shown in SHOWN_DEFAULTS:
        assert f"{flag} {metavar}" in help_text and f"(default {shown};" in help_text
        args = parser.parse_args(["rightsize", "--prometheus", "http://x", flag, shown])
        assert strategy_of(args) == defaults  # what the help shows parses back to the default


def test_flags_take_kubernetes_quantities_and_durations():
    flags = ["--cpu-floor", "0.05", "--memory-step", "16Mi", "--min-history", "36h"]
    args = cli.parser().parse_args(
        ["rightsize", "--prometheus", "http://x", *flags, "--window", "2w"]
    )
    strategy = strategy_of(args)
    assert (strategy.cpu_floor_m, strategy.memory_step_mib, strategy.min_history_s) == (
        50,
        16,
        36 * 3600,
    )
    assert args.window == 14 * DAY
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["rightsize", "--prometheus", "http://x", "--window", "7x"])


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--cpu-step", "0.4m", "'0.4m' is invalid: CPU counts whole millicores"),
        ("--memory-floor", "0Mi", "'0Mi' is invalid: the least is 1Mi"),
        ("--memory-floor", "64M", "'64M' is invalid: use a Kubernetes memory quantity in binary"),
        ("--cpu-floor", "lots", "'lots' is invalid: use a Kubernetes CPU quantity"),
        ("--cpu-step", "0.6m", "'0.6m' is invalid: CPU counts whole millicores"),  # was 1m
        ("--cpu-floor", "inf", "'inf' is invalid: use a Kubernetes CPU quantity"),  # a traceback
        ("--memory-step", "infMi", "'infMi' is invalid: use a Kubernetes memory quantity"),
        ("--memory-step", "16", "'16' is invalid: memory counts whole MiB"),  # 16 bytes: was 1Mi
        ("--memory-step", "1.5Mi", "'1.5Mi' is invalid: memory counts whole MiB"),  # was 2Mi
    ],
)
def test_a_quantity_flag_says_what_it_takes(flag, value, says, capsys):
    """0.4m was read as 0 and refused as "--cpu-step 0"; 64M was "not a Kubernetes quantity"."""
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["rightsize", "--prometheus", "http://x", flag, value])
    assert f"argument {flag}: {says}" in capsys.readouterr().err


def test_kube_state_metrics_exports_the_app_label_rightsize_joins_on():
    from finops_platform.builders.observability import helm_values

    allowlist = helm_values(load_stack("optimized").platform.observability, on_eks=True)[
        "kube-state-metrics"
    ]
    pods = next(e for e in allowlist["metricLabelsAllowlist"] if e.startswith("pods="))
    assert "app" in pods.removeprefix("pods=[").removesuffix("]").split(",")
