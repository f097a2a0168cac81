"""The savings report for a FinOps audience: what changed, what it saved, and what it risked.

The report is built once as a list of blocks (headings, paragraphs, tables, images, a preformatted
tree) and rendered to Markdown and to HTML, so the two always say the same thing. Every number
comes from results.json, which comes from this run's logs.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ai_gateway.embeddings import Embedder, EmbedderUnavailable, open_embedder
from ai_gateway.pricing import TIERS, default_price_table
from ai_gateway.router import default_router
from ai_gateway.router_evaluation import (
    HELD_OUT_SET,
    draw_tradeoff_chart,
    held_out_tradeoff,
    load_routing_set,
)
from ai_gateway.settings import GatewaySettings, load_settings
from finops_common.phases import PHASES
from finops_platform.workload_list import DEMO_SERVICE_PREFIX

from .gateway_usage import SAMPLE_EVERY_S
from .results import (
    ComputeComparison,
    GatewaySizing,
    PhaseResult,
    PhaseSummary,
    RunInfo,
    SimulationResults,
)


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    path: str
    alt: str


@dataclass(frozen=True)
class Preformatted:
    text: str


Block = Heading | Paragraph | Table | Image | Preformatted


def _dollars(value: float | None, digits: int) -> str:
    """Rounded once, so float noise around zero (a difference of sums) shows as zero, unsigned."""
    if value is None:
        return "n/a"
    rounded = round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.{digits}f}"


# What the optimized gateway did with a request, as the report names each cause of saving.
CAUSE_LABELS = {
    "cache": "cache hits",
    "routing": "routed to another model",
    "budgets": "refused by a budget",
    "prompt_caching": "same model (providers' prompt caches)",
}
# What no cause explains: a rate-limited request is deferred, not saved (its client retries
# and pays), and a failed one cost nothing; both are shown rather than hidden.
UNATTRIBUTED_LABEL = "unattributed (rate-limited, failed or unpaired requests)"


def serving_mix(results: SimulationResults) -> dict[str, int]:
    """The serving-mix chart's slices: how each optimized request was answered, refused (by a
    budget or a rate limit) or failed, so that they add up to the phase's requests."""
    optimized = results.phases.optimized
    parts = {
        "exact cache": optimized.cache.exact_hits,
        "semantic cache": optimized.cache.semantic_hits,
        **{f"model: {m}": n for m, n in optimized.routing.served_by_model.items()},
        "refused": optimized.budget_rejections + optimized.rate_limited,
        "failed": optimized.errors,
    }
    return {name: count for name, count in parts.items() if count}


def savings_bars(results: SimulationResults) -> dict[str, float]:
    """The savings-by-cause chart's bars: every cause, and what none explains."""
    bars = {CAUSE_LABELS[cause]: usd for cause, usd in results.comparison.by_cause_usd}
    return {**bars, UNATTRIBUTED_LABEL: results.comparison.unattributed_usd}


def unattributed_share(results: SimulationResults) -> float | None:
    spent_before = results.phases.unoptimized.spend_usd
    return results.comparison.unattributed_usd / spent_before if spent_before else None


def usd(value: float | None) -> str:
    """A run's AI spend: four decimals everywhere (a few hundred requests cost dollars, and cents
    would hide most of a cause); each figure is rounded on its own, so sums may differ from the
    printed total by a hundredth of a cent."""
    return _dollars(value, 4)


def usd_month(value: float | None) -> str:
    """The cost model's monthly compute dollars."""
    return _dollars(value, 2)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _by_lower_tier(phase: PhaseSummary) -> str:
    """How many complex requests each lower tier answered: the smallest tier is the worse risk."""
    tiers = phase.routing.complex_served_by_tier
    standard, simple = tiers.get("standard", 0), tiers.get("simple", 0)
    return f"{standard} by the standard tier, {simple} by the simple tier"


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def _phase_table(results: SimulationResults) -> Table:
    phases = [summary for _, summary in results.phases.items()]

    def row(label: str, fn: Callable[[PhaseResult], str]) -> tuple[str, ...]:
        return (label, *(fn(p) for p in phases))

    return Table(
        ("", *PHASES),
        (
            row("requests", lambda p: f"{p.requests:,}"),
            row("served", lambda p: f"{p.served:,}"),
            row("AI spend", lambda p: usd(p.spend_usd)),
            row(
                "same requests at the named model's list prices, no caching of any kind",
                lambda p: usd(p.baseline_usd),
            ),
            row(
                "prompt tokens read from the providers' prompt caches",
                lambda p: f"{p.tokens.cached_input:,}",
            ),
            row("exact cache hit rate (of served requests)", lambda p: pct(p.cache.exact_hit_rate)),
            row(
                "semantic cache hit rate (of served requests)",
                lambda p: pct(p.cache.semantic_hit_rate),
            ),
            row(
                "semantic hits that answered another question",
                lambda p: f"{p.cache.semantic_false_hits} ({pct(p.cache.semantic_false_hit_rate)})",
            ),
            row("requests routed to another model", lambda p: f"{p.routing.routed_requests:,}"),
            row(
                "complex requests answered by a lower tier",
                lambda p: (
                    f"{p.routing.complex_served_by_lower_tier} of "
                    f"{p.routing.complex_requests} ({pct(p.routing.quality_risk)}): "
                    f"{_by_lower_tier(p)}"
                ),
            ),
            row("budget rejections", lambda p: f"{p.budget_rejections:,}"),
            row("rate-limited", lambda p: f"{p.rate_limited:,}"),
            row("errors", lambda p: f"{p.errors:,}"),
            row("latency p50", lambda p: ms(p.latency_ms.p50)),
            row("latency p95", lambda p: ms(p.latency_ms.p95)),
            row("latency p99", lambda p: ms(p.latency_ms.p99)),
            row("tokens billed in / out", lambda p: f"{p.tokens.input:,} / {p.tokens.output:,}"),
        ),
    )


def _spend_table(
    results: SimulationResults, spend: Callable[[PhaseResult], dict[str, float]], label: str
) -> Table:
    by_phase = [spend(summary) for _, summary in results.phases.items()]
    names = sorted(set().union(*by_phase))
    return Table(
        (label, *PHASES),
        tuple((n, *(usd(s.get(n, 0.0)) for s in by_phase)) for n in names),
    )


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def _gateway_usage_table(results: SimulationResults) -> Table:
    usage = [summary.gateway_usage for _, summary in results.phases.items()]
    return Table(
        ("gateway process", *PHASES),
        (
            ("request rate", *(f"{u.requests_per_second:,.1f} req/s" for u in usage)),
            (
                "measured over",
                *(f"{u.requests:,} requests in {u.wall_seconds:,.1f} s" for u in usage),
            ),
            ("CPU seconds", *(f"{u.cpu_seconds:,.2f}" for u in usage)),
            ("CPU (seconds / wall seconds)", *(f"{u.cpu_millicores:,.0f}m" for u in usage)),
            (
                "CPU per request",
                *(f"{(u.cpu_seconds_per_request or 0) * 1000:,.2f} ms" for u in usage),
            ),
            ("peak resident memory", *(mib(u.peak_rss_bytes) for u in usage)),
        ),
    )


def _memory_basis(sizing: GatewaySizing) -> str:
    """The memory figure the headroom is added to: this run's peak, or the bench's peak at a
    full semantic cache when that is larger (a replica must fit a full cache, not a short run's)."""
    run_peak = f"this run's peak {mib(sizing.peak_rss_bytes)}"
    if sizing.full_cache_rss_bytes <= sizing.peak_rss_bytes:
        return run_peak
    return (
        f"the larger of {run_peak} and the peak at {sizing.full_cache_entries:,} semantic "
        f"entries, {mib(sizing.full_cache_rss_bytes)} (bench/warmup_bench.py, "
        f"{sizing.full_cache_measured})"
    )


NO_STACK_CONFIGS = "No stack configs: the gateway's requests were not derived."


def _gateway_sizing(results: SimulationResults) -> list[Block]:
    sizing = results.gateway_sizing
    if sizing is None:
        # A results.json without a note predates it: its only reason was no stack configs.
        return [Paragraph(results.gateway_sizing_note or NO_STACK_CONFIGS)]
    return [
        Paragraph(
            f"Scaled to the `{sizing.stack}` stack: {sizing.cpu_seconds_per_request * 1000:.2f} ms"
            " of CPU per request x the rate its Locust sends: the P"
            f"{sizing.stack_rate_percentile:g} of the arrival rate it paces, "
            f"{sizing.arrival_requests_per_second:,.1f} req/s, but at most its "
            f"{sizing.locust_users} users / the optimized phase's median latency "
            f"{sizing.latency_p50_ms / 1000:,.2f} s = "
            f"{sizing.users_ceiling_requests_per_second:,.1f} req/s (one request in flight per "
            f"user), so {sizing.stack_requests_per_second:,.1f} req/s over "
            f"{sizing.stack_replicas} replicas ({sizing.requests_per_second_per_replica:,.1f} "
            "req/s each) = "
            f"{sizing.cpu_target_m:,.1f}m, rounded up to {sizing.cpu_step_m}m steps with a "
            f"{sizing.cpu_floor_m}m floor; memory: {_memory_basis(sizing)} "
            f"+ {sizing.memory_headroom:.0%} = {mib(sizing.memory_target_bytes)}, rounded up to "
            f"{sizing.memory_step_mib} MiB steps with a {sizing.memory_floor_mib} MiB floor "
            "(`finops-sim rightsize --from-run` with this report's `results.json`, `--stack "
            f"{sizing.stack} --write`, writes it into the stack file)."
        ),
        Table(
            ("gateway, per replica", "CPU request", "memory request and limit"),
            (
                (
                    f"the `{sizing.stack}` stack requests",
                    f"{sizing.stack_cpu_request_m}m",
                    mib(sizing.stack_memory_request_bytes),
                ),
                (
                    "derived from this run",
                    f"{sizing.cpu_request_m}m",
                    mib(sizing.memory_bytes),
                ),
            ),
        ),
    ]


def _phase_durations(results: SimulationResults) -> str:
    """Each phase's wall time, as the gateway's process metrics saw it."""
    return " and ".join(
        f"{summary.gateway_usage.wall_seconds:,.0f} s ({phase})"
        for phase, summary in results.phases.items()
    )


def _workload_names(names: tuple[str, ...]) -> str:
    """The demo services as one item: they share their requests."""
    demo = [name for name in names if name.startswith(DEMO_SERVICE_PREFIX)]
    shown = [name for name in names if not name.startswith(DEMO_SERVICE_PREFIX)]
    if demo:
        shown.append(f"{len(demo)} demo services")
    return ", ".join(shown) or "none"


def _compute_model(results: SimulationResults) -> list[Block]:
    compute = results.compute
    if compute is None:
        return []
    discounts = ", ".join(
        f"{category} {share:.0%}" for category, share in compute.spot_discounts.items()
    )
    return [
        Heading("Compute: the two stacks' cost model"),
        Paragraph(
            "The summary's Kubernetes compute line is not measured in this run: it prices the "
            "`unoptimized` and `optimized` stacks' requests, NodePools and node groups "
            f"(`finops-sim cost --compare unoptimized optimized`) with {compute.price_source}, "
            f"spot assumed below on-demand by instance category ({discounts}; "
            "`--spot-discount` changes it). The optimized stack's requests are measured for: "
            f"{_workload_names(compute.measured_workloads)}{_measured_by(compute)}; hand-set "
            f"until measured on a cluster: {_workload_names(compute.hand_set_workloads)}. "
            "The unoptimized stack's requests are set by hand on purpose: they are the "
            "original design's overprovisioned pods, the before of the comparison."
        ),
    ]


def _measured_by(compute: ComputeComparison) -> str:
    """Which measurement wrote the stack's requests: an earlier run's, not necessarily this one
    (what this run derives is in the gateway's section)."""
    if not compute.measured_by:
        return ""
    return f" (by {'; '.join(compute.measured_by)}; this run's own derivation is above)"


def failed_requests_warning(results: SimulationResults) -> str | None:
    """Requests that failed (not a budget's or rate limit's refusal) cost nothing, so the
    reduction is off by them: overstated by the optimized phase's, understated by the
    unoptimized phase's. Said wherever the figure is."""
    effect = {"optimized": "overstates", "unoptimized": "understates"}
    failed = [(phase, s.errors, s.requests) for phase, s in results.phases.items() if s.errors]
    if not failed:
        return None
    counts = "; ".join(
        f"{n:,} of {total:,} {phase} requests failed, which {effect[phase]} the saving"
        for phase, n, total in failed
    )
    return (
        f"Warning: {counts} (errors, not budget or rate-limit refusals: a failed request costs "
        "$0 and counts as spending nothing). The request logs and logs/ say why they failed."
    )


# Above this share of a phase's requests failing, the reduction is not printed as a result:
# failed requests cost $0, so a store killed mid-phase read as a 93% saving.
MAX_FAILED_SHARE = 0.01


def too_many_failed(phase: PhaseSummary) -> bool:
    return bool(phase.requests) and phase.errors / phase.requests > MAX_FAILED_SHARE


def unmeasured(results: SimulationResults) -> str | None:
    """Why the run's AI reduction is not a measurement, or None: too many requests failed."""
    failed = [
        f"{s.errors:,} of {s.requests:,} {phase} requests failed"
        for phase, s in results.phases.items()
        if too_many_failed(s)
    ]
    return "; ".join(failed) if failed else None


def summary_tree(results: SimulationResults) -> str:
    """The original design's result tree, filled with this run's measurements."""
    ai = results.comparison
    before = results.phases.unoptimized.spend_usd
    after = results.phases.optimized.spend_usd
    compute = results.compute
    optimized = results.phases.optimized
    refused = optimized.budget_rejections + optimized.rate_limited
    ai_line = (
        f"AI Token Costs: {pct(ai.savings_pct)} reduction "
        f"({usd(before)} -> {usd(after)} for {optimized.requests:,} requests"
        + (f", of which {refused:,} refused by budgets and limits" if refused else "")
        + ")"
    )
    failed = unmeasured(results)
    if failed:
        ai_line = f"AI Token Costs: not measured ({failed}, and a failure costs $0)"
    if compute is None:
        compute_line = "Kubernetes Compute: not computed (the compute cost model is not built yet)"
        total_line = (
            "Total: not measured"
            if failed
            else f"Total: AI token costs only, {pct(ai.savings_pct)} reduction"
        )
    else:
        compute_line = (
            f"Kubernetes Compute: {pct(compute.savings_pct)} reduction "
            f"({usd_month(compute.unoptimized_monthly_usd)} -> "
            f"{usd_month(compute.optimized_monthly_usd)} per month, cost model: rightsizing "
            f"{usd_month(compute.rightsizing_usd)}, spot {usd_month(compute.spot_usd)})"
        )
        total_line = (
            "Total: not combined - compute is priced per month of nodes and AI per request; "
            "weigh them with your own volumes"
        )
    warning = failed_requests_warning(results)
    return (
        "Cost Optimization Results (AI measured in this run; compute from the cost model):\n"
        f"├── {compute_line}\n├── {ai_line}\n└── {total_line}"
        + (f"\n\n{warning}" if warning else "")
    )


def charts(results: SimulationResults, out: Path) -> list[Image]:
    """PNG charts of spend, savings by cause, serving mix, latency and the routing trade-off."""
    out.mkdir(parents=True, exist_ok=True)
    phases = [summary for _, summary in results.phases.items()]
    images = []

    fig, ax = plt.subplots(figsize=(7, 4))
    models = sorted({m for p in phases for m in p.spend_by_model_usd})
    bottoms = [0.0, 0.0]
    for model in models:
        values = [p.spend_by_model_usd.get(model, 0.0) for p in phases]
        ax.bar(PHASES, values, bottom=bottoms, label=model)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.set_ylabel("AI spend (USD)")
    ax.set_title("AI spend by served model")
    ax.legend(fontsize=8)
    images.append(_save(fig, out / "spend_by_model.png", "AI spend by served model"))

    fig, ax = plt.subplots(figsize=(7, 3))
    causes = savings_bars(results)
    colors = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#937860"]
    ax.barh(list(causes), list(causes.values()), color=colors)
    ax.set_xlabel("USD saved in the optimized phase")
    ax.set_title("Savings by cause")
    images.append(_save(fig, out / "savings_by_cause.png", "Savings by cause"))

    fig, ax = plt.subplots(figsize=(7, 4))
    optimized = results.phases.optimized
    parts = serving_mix(results)
    ax.pie(list(parts.values()), labels=list(parts), autopct="%1.0f%%", textprops={"fontsize": 8})
    title = f"How the optimized phase answered all its {optimized.requests:,} requests"
    ax.set_title(title, fontsize=10)
    images.append(_save(fig, out / "serving_mix.png", title))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    quantiles = ("p50", "p95", "p99")
    width = 0.35
    for i, (phase, summary) in enumerate(results.phases.items()):
        values = [getattr(summary.latency_ms, q) or 0 for q in quantiles]
        ax.bar([x + i * width for x in range(3)], values, width, label=phase)
    ax.set_xticks([x + width / 2 for x in range(3)], quantiles)
    ax.set_ylabel("ms")
    ax.set_title("Latency (simulated provider time + measured gateway time)")
    ax.legend(fontsize=8)
    images.append(_save(fig, out / "latency.png", "Latency percentiles"))
    routing = _routing_chart(results, out)
    return images if routing is None else [*images, routing]


def _optimized_settings(results: SimulationResults) -> GatewaySettings:
    """The optimized phase's gateway settings: the profile, under the run's --gateway-config
    while that file is still there."""
    config = results.run.gateway_config
    files = [Path(config)] if config and Path(config).is_file() else []
    return load_settings("optimized", *files)


def _routing_chart(results: SimulationResults, out: Path) -> Image | None:
    """The router's trade-off on the held-out labelled set (bench/data), with the optimized
    profile's tier models and this run's embedder; None where the set is not installed."""
    if not HELD_OUT_SET.is_file():
        return None
    try:
        embedder: Embedder | None = open_embedder(
            results.run.embedder, os.environ.get("GATEWAY_EMBEDDING_MODEL")
        )
    except EmbedderUnavailable:
        embedder = None
    routing = _optimized_settings(results).routing
    table = default_price_table()
    cards = {}
    for tier in TIERS:
        card = table.resolve(routing.tiers[tier])  # a dated alias too, as the settings take one
        assert card is not None, routing.tiers[tier]  # the settings check every tier's model
        cards[tier] = card
    examples = load_routing_set(HELD_OUT_SET).prompts
    router = default_router()
    tradeoff = held_out_tradeoff(examples, cards, router, embedder, threshold=routing.threshold)
    marked = "default threshold" if routing.threshold is None else "run's threshold"
    path = out / "routing_tradeoff.png"
    draw_tradeoff_chart(tradeoff.curve, path, tradeoff.default, tradeoff.keyword, marked=marked)
    d = tradeoff.default
    alt = (
        f"Routing trade-off on {len(examples)} held-out prompts (the labelled evaluation set, "
        f"not this run's traffic): at the {marked} "
        f"{d.threshold:.2f}, {pct(d.complex_below_complex)} of complex prompts are served below "
        f"the complex tier and {pct(d.spend_saved)} of spend is saved"
    )
    return Image(f"{path.parent.name}/{path.name}", alt)


def _save(fig: Figure, path: Path, alt: str) -> Image:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Image(f"{path.parent.name}/{path.name}", alt)


def _inputs(results: SimulationResults) -> str:
    """What the figures rest on besides the run: the scenario file and the model its
    applications name, the list prices' dates, and the machine."""
    run = results.run
    dates: dict[str, list[str]] = {}
    for model, as_of in run.prices_as_of.items():
        dates.setdefault(as_of, []).append(model)
    prices = "; ".join(f"{', '.join(models)} as of {as_of}" for as_of, models in dates.items())
    return (
        f"Scenario file `{run.scenario_file}`. List prices: {prices or 'none served'} (the "
        f"model table's dates). Machine: {run.machine or 'not recorded'}."
    )


def _workload(run: RunInfo, requests: int) -> str:
    """The run options that change the figures: how many requests and how they were sent, and
    the embedder (the `--embedder` flag; a --gateway-config may not set one)."""
    sent = f"{requests:,} requests per phase"
    if run.duration_s is not None:
        sent += (
            f" (the first phase ran for `--duration` {run.duration_s:g} s; the second replayed it)"
        )
    users = "1 user" if run.users == 1 else f"{run.users} users"
    return f"{sent} from {users}, `--embedder {run.embedder}`"


def _gateway_warnings(results: SimulationResults) -> list[Block]:
    """What a gateway warned about as it started (routing without its embedding head): it
    changes what the figures mean, so the report says it, not only the terminal."""
    return [
        Paragraph(f"**The {phase} gateway warned at start:** {warning.rstrip('.')}.")
        for phase, summary in results.phases.items()
        for warning in summary.gateway_warnings
    ]


def build(results: SimulationResults, images: list[Image]) -> list[Block]:
    """The report, section by section."""
    return [
        Heading("finops-sim savings report", 1),
        _introduction(results),
        *_gateway_warnings(results),
        *_what_it_saved(results),
        *_what_it_risked(results),
        *_side_by_side(results),
        *_gateway_compute(results),
        *_gateway_sizing(results),
        *_compute_model(results),
        Heading("Charts"),
        *images,
        Heading("Summary"),
        Preformatted(summary_tree(results)),
    ]


def _introduction(results: SimulationResults) -> Paragraph:
    """What ran, on what, and where each figure comes from."""
    run = results.run
    config = ""
    if run.gateway_config:
        config = f", with `{run.gateway_config}` over the optimized profile"
    return Paragraph(
        f"Scenario `{run.scenario}`, seed {run.seed}, "
        f"{_workload(run, results.phases.optimized.requests)}, run on {run.started_at}{config}"
        f". {_inputs(results)} The same request sequence went through the "
        "gateway twice: once with the `unoptimized` profile (every request served by the "
        "model it names, no cache) and once with the `optimized` profile (exact and "
        "semantic cache, complexity routing, team budgets). Both phases are billed with the "
        "providers' prompt caches, as any application is. Every AI number below is computed "
        "from the gateway's "
        "per-request logs of this run, and was checked against the gateway's own "
        "`ai_cost_total` metric, except the routing chart's, which evaluates the router on "
        "a held-out labelled set; the Kubernetes compute figures are the cost model's (see "
        "the last section)."
    )


def _what_it_saved(results: SimulationResults) -> list[Block]:
    """The AI saving, by what the optimized gateway did with each request."""
    ai = results.comparison
    before, after = results.phases.unoptimized, results.phases.optimized
    causes, shares = ai.by_cause_usd, ai.by_cause_pct
    return [
        Heading("What it saved"),
        Paragraph(
            (f"**Not a measurement: {failed}.** " if (failed := unmeasured(results)) else "")
            + f"AI spend fell from **{usd(before.spend_usd)}** to **{usd(after.spend_usd)}**: "
            f"**{usd(ai.savings_usd)} saved ({pct(ai.savings_pct)})**. Each request is "
            "compared with its twin in the unoptimized phase, by what the optimized gateway "
            f"did with it: answered from its cache {usd(causes.cache)} "
            f"({pct(shares.cache)}), routed to another model {usd(causes.routing)} "
            f"({pct(shares.routing)}), refused by a budget {usd(causes.budgets)} "
            f"({pct(shares.budgets)}), answered by the same model {usd(causes.prompt_caching)} "
            f"({pct(shares.prompt_caching)}); unattributed {usd(ai.unattributed_usd)}. A "
            "refusal saves its twin's whole cost: it was not answered more cheaply, and had it "
            "been served, cache and routing would have saved part of that. The same model's "
            "answers differ only in what the providers' prompt caches discounted: the gateway's "
            "cache hits keep requests from the providers, whose caches then see less "
            f"({before.tokens.cached_input:,} prompt tokens read from them unoptimized, "
            f"{after.tokens.cached_input:,} optimized)."
        ),
        *(Paragraph(f"**{w}**") for w in [failed_requests_warning(results)] if w),
        Table(
            ("cause", "USD saved", "share of unoptimized spend"),
            (
                *(
                    (CAUSE_LABELS[cause], usd(saved), pct(share))
                    for (cause, saved), (_, share) in zip(causes, shares, strict=True)
                ),
                (UNATTRIBUTED_LABEL, usd(ai.unattributed_usd), pct(unattributed_share(results))),
                ("total between phases", usd(ai.savings_usd), pct(ai.savings_pct)),
            ),
        ),
    ]


def _what_it_risked(results: SimulationResults) -> list[Block]:
    """The semantic cache's false hits, routing's quality risk, and the refusals."""
    after = results.phases.optimized
    return [
        Heading("What it risked"),
        Paragraph(
            f"Semantic cache: {after.cache.semantic_hits:,} answers came from a cached "
            f"paraphrase, of which {after.cache.semantic_false_hits} answered a different "
            f"question than the one asked ({pct(after.cache.semantic_false_hit_rate)}). "
            f"Routing: {after.routing.complex_served_by_lower_tier} of "
            f"{after.routing.complex_requests} complex requests were answered by a "
            f"lower-tier model ({pct(after.routing.quality_risk)}; {_by_lower_tier(after)}),"
            " a quality risk to review. "
            f"Budgets refused {after.budget_rejections:,} requests and rate limits "
            f"{after.rate_limited:,}."
        ),
    ]


def _side_by_side(results: SimulationResults) -> list[Block]:
    """Both phases' figures, and their spend by model and by team."""
    return [
        Heading("Both phases side by side"),
        _phase_table(results),
        Paragraph(
            "Latency is the simulated provider time, at speeds the model table assumes (not "
            "measurements of the providers), plus the gateway "
            "time measured in this run (the simulation runs with simulated latency off, so the "
            f"phases took {_phase_durations(results)}); a cache hit has no provider time."
        ),
        Heading("Spend by model", 3),
        _spend_table(results, lambda p: p.spend_by_model_usd, "served model"),
        Heading("Spend by team", 3),
        _spend_table(results, lambda p: p.spend_by_team_usd, "team"),
        Paragraph(
            "Each dollar figure is rounded on its own, to a hundredth of a cent: a table's rows "
            "may add up to a hundredth of a cent more or less than the phase's spend above."
        ),
    ]


def _gateway_compute(results: SimulationResults) -> list[Block]:
    """What the gateway process itself used in each phase."""
    return [
        Heading("Compute: what the gateway used"),
        Paragraph(
            "The gateway process's CPU and resident memory in each phase, from prometheus-client's"
            " process metrics (`process_cpu_seconds_total` at the phase's start and end, "
            f"`process_resident_memory_bytes` sampled every {SAMPLE_EVERY_S:g} s for the peak), "
            "next to the request rate it served."
        ),
        _gateway_usage_table(results),
    ]


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Table):
            out.append("| " + " | ".join(block.header) + " |")
            out.append("|" + "---|" * len(block.header))
            out.extend("| " + " | ".join(row) + " |" for row in block.rows)
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.path})")
        else:
            out.append("```\n" + block.text + "\n```")
        out.append("")
    return "\n".join(out)


def _html_inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(blocks: list[Block], title: str = "finops-sim savings report") -> str:
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_html_inline(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_html_inline(h)}</th>" for h in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            body.append(f'<img src="{html.escape(block.path)}" alt="{html.escape(block.alt)}">')
        else:
            body.append(f"<pre>{html.escape(block.text)}</pre>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
        "pre{background:#f6f6f6;padding:1em}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


REPORT_FILES = ("report.md", "report.html")
CHARTS = "charts"


def write_report(results: SimulationResults, out: Path) -> None:
    blocks = build(results, charts(results, out / CHARTS))
    markdown, html = REPORT_FILES
    (out / markdown).write_text(to_markdown(blocks), encoding="utf-8")
    (out / html).write_text(to_html(blocks), encoding="utf-8")


def report_files(out: Path) -> list[Path]:
    """A previous run's report and charts in ``out``."""
    reports = [path for path in (out / name for name in REPORT_FILES) if path.is_file()]
    charts = out / CHARTS
    return [*reports, *(charts.glob("*.png") if charts.is_dir() else ())]


def clear_report(out: Path) -> None:
    """Remove a previous run's report and charts, so that a run that ends early leaves no report
    beside logs it does not describe."""
    for path in report_files(out):
        path.unlink(missing_ok=True)
