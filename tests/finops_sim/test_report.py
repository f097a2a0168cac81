"""The report: every figure it prints comes from the results it is given, in Markdown and HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_gateway.records import RequestRecord
from finops_sim.report import (
    Table,
    build,
    savings_bars,
    serving_mix,
    summary_tree,
    to_html,
    to_markdown,
    unmeasured,
    usd,
    usd_month,
    write_report,
)
from finops_sim.results import (
    ComputeComparison,
    GatewaySizing,
    GatewayUsage,
    PhaseResult,
    Phases,
    RunInfo,
    SimulationResults,
    compare,
    phase_summary,
)


def _record(**fields) -> RequestRecord:
    base = {"ts": 0.0, "api": "openai", "status": 200, "team": "team-a", "requested_model": "gpt-4",
            "served_model": "gpt-4", "served_tier": "complex", "cache": "miss",
            "sim": {"question": "q"}, "gateway_ms": 2.0}  # fmt: skip
    return RequestRecord(**{**base, **fields})


def _phase(records: list[RequestRecord]) -> PhaseResult:
    summary = phase_summary(records)
    usage = GatewayUsage(
        source="unit",
        wall_seconds=2.0,
        cpu_seconds=0.125 * len(records),
        peak_rss_bytes=(100 + len(records)) * 2**20,
        rss_samples=3,
        requests=len(records),
    )
    return PhaseResult(
        **dict(summary),
        metric_cost_usd=summary.spend_usd,
        gateway_ready_at_end=True,
        gateway_usage=usage,
    )


def _indexed(records: list[RequestRecord]) -> list[RequestRecord]:
    """The records as one phase logs them: each with its place in the request sequence."""
    return [r.model_copy(update={"sim": {**r.sim, "index": str(i)}}) for i, r in enumerate(records)]


UNOPTIMIZED = _indexed([_record(cost_usd=3.0, baseline_usd=3.0, provider_ms=900.0)] * 4)
OPTIMIZED = _indexed(
    [
        _record(cost_usd=3.0, baseline_usd=3.0, provider_ms=900.0),
        _record(cache="exact", cached_label="q", baseline_usd=3.0, saved_usd=3.0),
        _record(
            served_model="claude-3-haiku",
            served_tier="simple",
            route_tier="simple",
            team="team-b",
            cost_usd=0.5,
            baseline_usd=3.0,
            saved_usd=2.5,
        ),
        _record(
            status=429,
            error="budget",
            served_model=None,
            served_tier=None,
            cache=None,
            baseline_usd=3.0,
        ),
    ]
)


def _results(
    compute: ComputeComparison | None = None, sizing: GatewaySizing | None = None
) -> SimulationResults:
    return SimulationResults(
        run=RunInfo(
            scenario="unit",
            scenario_file="unit.yaml",
            seed=11,
            requests_per_phase=4,
            duration_s=None,
            users=1,
            embedder="lexical",
            gateway_config=None,
            started_at="2026-01-01T00:00:00+00:00",
            machine="Unit CPU, 2 cores",
            prices_as_of={"claude-3-haiku": "2026-11", "gpt-4": "2026-11"},
        ),
        phases=Phases(unoptimized=_phase(UNOPTIMIZED), optimized=_phase(OPTIMIZED)),
        comparison=compare(UNOPTIMIZED, OPTIMIZED),
        compute=compute,
        gateway_sizing=sizing,
    )


def test_the_saving_and_its_causes_come_from_the_results():
    results = _results()
    markdown = to_markdown(build(results, []))
    # 12.00 before, 3.50 after: 8.50 saved, of which cache 3.00, routing 2.50, budgets 3.00.
    assert "AI spend fell from **$12.0000** to **$3.5000**: **$8.5000 saved (70.8%)**" in markdown
    assert "| cache hits | $3.0000 | 25.0% |" in markdown
    assert "| routed to another model | $2.5000 | 20.8% |" in markdown
    assert "| refused by a budget | $3.0000 | 25.0% |" in markdown
    assert "Scenario `unit`, seed 11, 4 requests per phase" in markdown
    assert "Budgets refused 1 requests" in markdown
    assert "Scenario file `unit.yaml`" in markdown
    assert "List prices: claude-3-haiku, gpt-4 as of 2026-11" in markdown
    assert "Machine: Unit CPU, 2 cores." in markdown
    assert "for 4 requests, of which 1 refused by budgets and limits)" in summary_tree(results)


def test_the_causes_table_and_chart_show_what_no_cause_explains():
    """A rate-limited request saves its twin's cost in the totals but is no cause's saving: it
    was printed in the prose only, so the table's rows did not add up to its total."""
    limited = _record(status=429, error="rate_limit", served_model=None, served_tier=None,
                      cache=None, baseline_usd=3.0)  # fmt: skip
    after = _indexed([*OPTIMIZED[:3], limited])
    results = _results().model_copy(
        update={
            "phases": Phases(unoptimized=_phase(UNOPTIMIZED), optimized=_phase(after)),
            "comparison": compare(UNOPTIMIZED, after),
        }
    )
    assert results.comparison.unattributed_usd == pytest.approx(3.0)
    markdown = to_markdown(build(results, []))
    assert "| unattributed (rate-limited, failed or unpaired requests) | $3.0000 | 25.0% |" in (
        markdown
    )
    lines = markdown.splitlines()
    start = lines.index("| cause | USD saved | share of unoptimized spend |") + 2
    table = lines[start : lines.index("", start)]
    saved = [float(line.split("|")[2].strip().lstrip("$")) for line in table]
    assert sum(saved[:-1]) == pytest.approx(saved[-1])  # the rows add up to the total
    bars = savings_bars(results)
    assert bars["unattributed (rate-limited, failed or unpaired requests)"] == pytest.approx(3.0)
    assert sum(bars.values()) == pytest.approx(results.comparison.savings_usd)


def test_the_compute_section_prints_the_gateway_usage_and_the_sizing_it_is_given():
    from finops_platform.config import load_stack
    from finops_sim.rightsize.measured import size_gateway, stack_arrival
    from finops_sim.rightsize.strategy import Strategy

    plain = _results()
    usage = plain.phases.optimized.gateway_usage
    sizing = size_gateway(usage, 1500.0, load_stack("optimized"), stack_arrival(), Strategy())
    markdown = to_markdown(build(_results(sizing=sizing), []))
    section = markdown.split("## Compute: what the gateway used")[1].split("## Charts")[0]
    assert "| CPU seconds | 0.50 | 0.50 |" in section  # 0.125 s x 4 requests
    assert "| CPU (seconds / wall seconds) | 250m | 250m |" in section
    assert "| CPU per request | 125.00 ms | 125.00 ms |" in section
    assert "| peak resident memory | 104 MiB | 104 MiB |" in section
    assert "| request rate | 2.0 req/s | 2.0 req/s |" in section
    assert f"= {sizing.cpu_target_m:,.1f}m, rounded up" in section
    assert f"| derived from this run | {sizing.cpu_request_m}m |" in section
    assert "the gateway's requests were not derived" in to_markdown(build(plain, []))


def test_the_memory_sentence_names_the_figure_the_headroom_was_added_to():
    from finops_platform.config import load_stack
    from finops_sim.rightsize.measured import CacheMemory, size_gateway, stack_arrival
    from finops_sim.rightsize.strategy import Strategy

    usage = _results().phases.optimized.gateway_usage
    full = CacheMemory(entries=100_000, rss_bytes=400 * 2**20, date="2026-11-30 11:17 UTC")
    sizing = size_gateway(usage, 1500.0, load_stack("optimized"), stack_arrival(), Strategy(), full)
    markdown = to_markdown(build(_results(sizing=sizing), []))
    # max(104 MiB this run, 400 MiB at a full cache) + 15% = 460 MiB
    assert (
        "memory: the larger of this run's peak 104 MiB and the peak at 100,000 semantic entries, "
        "400 MiB (bench/warmup_bench.py, 2026-11-30 11:17 UTC) + 15% = 460 MiB"
    ) in markdown
    small = CacheMemory(entries=100_000, rss_bytes=2**20, date="then")
    sizing = size_gateway(
        usage, 1500.0, load_stack("optimized"), stack_arrival(), Strategy(), small
    )
    assert "memory: this run's peak 104 MiB + 15% = 120 MiB" in to_markdown(
        build(_results(sizing=sizing), [])
    )


def test_the_phase_tables_have_one_column_per_phase():
    markdown = to_markdown(build(_results(), []))
    assert "|  | unoptimized | optimized |" in markdown
    assert "| exact cache hit rate (of served requests) | 0.0% | 33.3% |" in markdown
    assert "| latency p50 | 902 ms | 2 ms |" in markdown
    assert "| team-b | $0.0000 | $0.5000 |" in markdown
    assert "| claude-3-haiku | $0.0000 | $0.5000 |" in markdown


def test_html_says_what_markdown_says():
    blocks = build(_results(), [])
    page = to_html(blocks)
    assert "<strong>$8.5000 saved (70.8%)</strong>" in page
    assert "<td>routed to another model</td><td>$2.5000</td><td>20.8%</td>" in page
    rules = [line for line in to_markdown(blocks).splitlines() if line.startswith("|---")]
    assert page.count("<table>") == len(rules) == 5


def test_html_tables_render_code_spans_as_code():
    page = to_html([Table(("stack",), (("the `optimized` stack requests",),))])
    assert "<td>the <code>optimized</code> stack requests</td>" in page
    assert "`" not in page


def test_the_report_names_the_run_options_that_change_its_figures():
    results = _results()
    run = results.run.model_copy(update={"users": 4, "duration_s": 3.0, "embedder": "lexical"})
    text = to_markdown(build(results.model_copy(update={"run": run}), []))
    assert "4 requests per phase (the first phase ran for `--duration` 3 s" in text
    assert "from 4 users, `--embedder lexical`" in text


def test_a_gateways_start_up_warning_is_in_the_report():
    results = _results()
    warned = results.phases.optimized.model_copy(
        update={"gateway_warnings": ("routing uses its features-only head",)}
    )
    phases = results.phases.model_copy(update={"optimized": warned})
    text = to_markdown(build(results.model_copy(update={"phases": phases}), []))
    assert "**The optimized gateway warned at start:** routing uses its features-only head." in text
    assert "unoptimized gateway warned" not in text


def test_the_summary_tree_says_when_compute_was_not_computed():
    tree = summary_tree(_results())
    assert (
        "AI Token Costs: 70.8% reduction ($12.0000 -> $3.5000 for 4 requests, of which 1 refused"
        in tree
    )
    assert "Kubernetes Compute: not computed" in tree


def _compute(**sources) -> ComputeComparison:
    return ComputeComparison(
        unoptimized_monthly_usd=1000.0,
        optimized_monthly_usd=600.0,
        savings_usd=400.0,
        savings_pct=0.4,
        rightsizing_usd=250.0,
        spot_usd=150.0,
        **sources,
    )


def test_the_summary_tree_prints_the_cost_models_compute_line():
    compute = _compute()
    tree = summary_tree(_results(compute))
    assert "Kubernetes Compute: 40.0% reduction ($1,000.00 -> $600.00 per month" in tree
    assert "rightsizing $250.00, spot $150.00" in tree


def test_the_compute_model_section_says_what_is_measured_and_what_is_assumed():
    compute = _compute(
        price_source="a price table",
        spot_discounts={"c": 0.62, "m": 0.6},
        measured_workloads=("ai-gateway",),
        hand_set_workloads=("redis", "demo-service-0", "demo-service-1"),
        measured_by=("finops-sim run 2026-11-30 (out/demo/results.json)",),
    )
    markdown = to_markdown(build(_results(compute), []))
    section = markdown.split("## Compute: the two stacks' cost model")[1]
    assert "not measured in this run" in section and "with a price table" in section
    assert "(c 62%, m 60%;" in section
    assert (
        "measured for: ai-gateway (by finops-sim run 2026-11-30 (out/demo/results.json); this "
        "run's own derivation is above); hand-set until measured on a cluster: redis, 2 demo"
        in section
    )
    assert "## Compute: the two stacks' cost model" not in to_markdown(build(_results(), []))


def _report_with_gateway_config(folder: Path, config_text: str) -> Path:
    """The report of a run given a --gateway-config holding ``config_text``; the config's path."""
    config = folder / "gateway.yaml"
    config.write_text(config_text)
    results = _results()
    results = results.model_copy(
        update={"run": results.run.model_copy(update={"gateway_config": str(config)})}
    )
    write_report(results, folder)
    return config


def test_the_report_follows_the_runs_gateway_config(tmp_path):
    config = _report_with_gateway_config(tmp_path, "routing:\n  threshold: 0.9\n")
    markdown = (tmp_path / "report.md").read_text()
    assert f"with `{config}` over the optimized profile" in markdown
    assert (
        "held-out prompts (the labelled evaluation set, not this run's traffic): at the run's "
        "threshold 0.90," in markdown
    )


def test_a_routing_tier_named_by_a_dated_alias_is_charted(tmp_path):
    """The settings accept an alias for a tier's model, and the chart read the table by its
    canonical names alone: the run finished both phases, then lost its report to a KeyError."""
    _report_with_gateway_config(
        tmp_path, "routing:\n  tiers:\n    simple: gpt-5.4-nano-2026-03-17\n"
    )
    assert (tmp_path / "charts" / "routing_tradeoff.png").is_file()


def test_write_report_writes_both_formats_and_the_charts(tmp_path):
    write_report(_results(), tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert "![Savings by cause](charts/savings_by_cause.png)" in markdown
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")
    charts = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert charts == ["latency.png", "routing_tradeoff.png", "savings_by_cause.png",
                      "serving_mix.png", "spend_by_model.png"]  # fmt: skip
    assert "![Routing trade-off on " in markdown
    assert "not this run's traffic): at the default" in markdown


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (0.5, "$0.5000"),
        (12.34567, "$12.3457"),
        (1234.5, "$1,234.5000"),
        (0.0, "$0.0000"),
        (-2.2e-16, "$0.0000"),  # a difference of sums: no "$-0.0000"
        (-0.25, "-$0.2500"),
    ],
)
def test_ai_dollars_show_four_decimals_and_no_signed_zero(value, text):
    assert usd(value) == text


@pytest.mark.parametrize(("value", "text"), [(866.074, "$866.07"), (-1e-9, "$0.00"), (None, "n/a")])
def test_monthly_compute_dollars_show_cents(value, text):
    assert usd_month(value) == text


def _with_optimized(results: SimulationResults, after: list[RequestRecord]) -> SimulationResults:
    """The results with ``after`` as the optimized phase's log."""
    phases = Phases(unoptimized=results.phases.unoptimized, optimized=_phase(after))
    return results.model_copy(update={"phases": phases, "comparison": compare(UNOPTIMIZED, after)})


def test_a_duration_runs_older_results_json_reads_its_requests_from_its_phases():
    """Until 2026-12-02 a --duration run wrote requests_per_phase: null, which the field,
    now always a count, refused: `rightsize --from-run` could not read the run."""
    results = _results()
    older = json.loads(results.model_dump_json())
    older["run"]["requests_per_phase"] = None
    read = SimulationResults.model_validate_json(json.dumps(older))
    assert read.run.requests_per_phase == results.phases.unoptimized.requests
    assert read.model_dump() == results.model_dump()


def _with_failures(results: SimulationResults, failed: int) -> SimulationResults:
    """The optimized phase with ``failed`` more requests refused as unauthenticated."""
    refused = _record(status=401, error="authentication", team=None, served_model=None,
                      served_tier=None, cache=None)  # fmt: skip
    after = _indexed(
        [_record(cost_usd=3.0, baseline_usd=3.0, provider_ms=900.0), *[refused] * failed]
    )
    return _with_optimized(results, after)


def test_rate_limited_requests_are_counted_as_refused_not_as_failed():
    """A rate limit's refusal is the optimized profile at work, like a budget's: the tree
    counts both kinds, and neither sets off the failed-requests warning."""
    refusal = {"status": 429, "served_model": None, "served_tier": None, "cache": None,
               "baseline_usd": 3.0}  # fmt: skip
    after = _indexed(
        [
            _record(cost_usd=3.0, baseline_usd=3.0, provider_ms=900.0),
            _record(error="budget", **refusal),
            _record(error="rate_limit", **refusal),
            _record(error="rate_limit", **refusal),
        ]
    )
    results = _with_optimized(_results(), after)
    tree = summary_tree(results)
    # $12 before, $3 after (the one served request): 75.0%; 1 budget + 2 rate-limit refusals.
    assert (
        "AI Token Costs: 75.0% reduction ($12.0000 -> $3.0000 for 4 requests, of which 3 "
        "refused by budgets and limits)" in tree
    )
    markdown = to_markdown(build(results, []))
    assert "Budgets refused 1 requests and rate limits 2." in markdown
    assert "Warning" not in tree + markdown


def test_failed_requests_are_said_next_to_the_reduction():
    """A request that failed costs $0: the tree and the report say the reduction counts it."""
    results = _with_failures(_results(), failed=3)
    warning = "Warning: 3 of 4 optimized requests failed, which overstates the saving (errors"
    assert warning in summary_tree(results)
    markdown = to_markdown(build(results, []))
    assert f"**{warning}" in markdown.split("## ")[1]  # in "What it saved"
    assert "Warning" not in summary_tree(_results()) + to_markdown(build(_results(), []))
    # Failures in the unoptimized phase lower the "before" spend: the saving is understated.
    flipped = results.model_copy(
        update={"phases": Phases(unoptimized=results.phases.optimized,
                                 optimized=results.phases.unoptimized)}
    )  # fmt: skip
    assert "3 of 4 unoptimized requests failed, which understates the saving" in summary_tree(
        flipped
    )


def test_a_run_where_too_many_requests_failed_prints_no_reduction():
    """A store killed mid-phase failed 78% of the optimized requests; at $0 each they read as a
    93% saving, printed as the result."""
    many = _with_failures(_results(), failed=3)  # 3 of 4
    assert unmeasured(many) == "3 of 4 optimized requests failed"
    tree = summary_tree(many)
    assert "AI Token Costs: not measured (3 of 4 optimized requests failed" in tree
    assert "reduction" not in tree.split("AI Token Costs")[1].split("\n")[0]
    assert unmeasured(_results()) is None
    assert "reduction (" in summary_tree(_results())


def test_the_serving_mix_adds_up_to_the_requests_and_tells_failed_from_refused():
    """Failed requests were drawn as "refused": a killed store's 78% read as budget refusals."""
    results = _with_failures(_results(), failed=3)
    mix = serving_mix(results)
    assert sum(mix.values()) == results.phases.optimized.requests
    assert mix["failed"] == 3 and "refused" not in mix
    assert serving_mix(_results())["refused"] == 1  # the budget refusal of OPTIMIZED


def test_a_run_that_is_not_a_measurement_says_so_in_its_headline():
    markdown = to_markdown(build(_with_failures(_results(), failed=3), []))
    saved = markdown.split("## What it saved")[1]
    assert saved.lstrip().startswith("**Not a measurement: 3 of 4 optimized requests failed.**")
    assert "Not a measurement" not in to_markdown(build(_results(), []))


def test_the_latency_note_gives_each_phases_measured_duration():
    results = _results()
    optimized = results.phases.optimized
    usage = optimized.gateway_usage.model_copy(update={"wall_seconds": 31.4})
    optimized = optimized.model_copy(update={"gateway_usage": usage})
    phases = results.phases.model_copy(update={"optimized": optimized})
    markdown = to_markdown(build(results.model_copy(update={"phases": phases}), []))
    assert "so the phases took 2 s (unoptimized) and 31 s (optimized));" in markdown
