"""Statistics of a simulation, computed only from the gateway's per-request logs.

Each phase's log has one RequestRecord per line (ai_gateway.records). Everything in results.json,
and so in the report, is a function of those records; nothing is a constant. The models below are
the schema of results.json.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from ai_gateway.records import RequestRecord
from finops_common.config import StrictModel
from finops_common.phases import PHASES, Phase


def read_log(path: Path) -> list[RequestRecord]:
    """Every record of a request log; a line that is not a record is an error naming the line."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(RequestRecord.model_validate_json(line))
            except ValidationError as exc:
                raise ValueError(f"{path}:{number}: not a request record: {exc}") from exc
    return records


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


class CacheSummary(StrictModel):
    exact_hits: int
    semantic_hits: int
    exact_hit_rate: float | None
    semantic_hit_rate: float | None
    semantic_false_hits: int
    semantic_false_hit_rate: float | None
    exact_false_hits: int


class RoutingSummary(StrictModel):
    routed_requests: int
    served_by_model: dict[str, int]
    served_by_tier: dict[str, int]
    complex_requests: int
    complex_served_by_lower_tier: int
    complex_served_by_tier: dict[str, int]  # the lower tiers only: "standard", "simple"
    quality_risk: float | None


class LatencySummary(StrictModel):
    p50: float | None
    p95: float | None
    p99: float | None


class TokenSummary(StrictModel):
    input: int  # every prompt token, provider-cached ones included
    cached_input: int = 0
    cache_write: int = 0
    output: int


class SavingsByCause(StrictModel):
    """USD saved per cause, each request against its unoptimized twin (compare explains)."""

    cache: float
    routing: float
    budgets: float = Field(description="refused requests' unoptimized cost, not cheaper answers")
    prompt_caching: float = Field(
        description="answers of the model the unoptimized phase used: what the providers' "
        "prompt caches discounted differently, having seen less traffic (often negative)"
    )


class CauseShares(StrictModel):
    """Each cause's saving as a share of the unoptimized spend (None when that spend is 0)."""

    cache: float | None
    routing: float | None
    budgets: float | None
    prompt_caching: float | None


class PhaseSummary(StrictModel):
    """Everything the report says about one phase, from its request log alone."""

    requests: int
    served: int
    errors: int
    budget_rejections: int
    rate_limited: int
    spend_usd: float
    baseline_usd: float
    spend_by_model_usd: dict[str, float]
    spend_by_team_usd: dict[str, float]
    cache: CacheSummary
    routing: RoutingSummary
    latency_ms: LatencySummary
    tokens: TokenSummary


class GatewayUsage(StrictModel):
    """The gateway process's CPU and memory over a phase (finops_sim.gateway_usage)."""

    source: str  # where the process metrics were read
    wall_seconds: float  # from the first sample to the last
    cpu_seconds: float  # process_cpu_seconds_total, last minus first
    peak_rss_bytes: int  # the largest process_resident_memory_bytes sample
    rss_samples: int
    requests: int  # requests the phase sent in that time

    @property
    def cpu_millicores(self) -> float:
        """Average CPU over the phase: CPU seconds per wall second, in thousandths of a core."""
        return 1000 * self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def cpu_seconds_per_request(self) -> float | None:
        return self.cpu_seconds / self.requests if self.requests else None


class PhaseResult(PhaseSummary):
    """A phase's summary with what the live gateway said and used during the phase."""

    metric_cost_usd: float
    gateway_ready_at_end: bool
    gateway_usage: GatewayUsage
    gateway_warnings: tuple[str, ...] = ()  # what the gateway warned about as it started


class Phases(StrictModel):
    unoptimized: PhaseResult
    optimized: PhaseResult

    def items(self) -> Iterator[tuple[Phase, PhaseResult]]:
        """The phases in PHASES order."""
        return ((phase, getattr(self, phase)) for phase in PHASES)


class Comparison(StrictModel):
    savings_usd: float
    savings_pct: float | None
    by_cause_usd: SavingsByCause
    by_cause_pct: CauseShares
    unattributed_usd: float


class ComputeComparison(StrictModel):
    """The cost model's monthly compute comparison of the two stacks (finops_platform.cost)."""

    unoptimized_monthly_usd: float
    optimized_monthly_usd: float
    savings_usd: float
    savings_pct: float | None
    rightsizing_usd: float
    spot_usd: float
    # What the figures rest on: not this run, but the stacks' requests and these prices.
    price_source: str = ""
    spot_discounts: dict[str, float] = Field(default_factory=dict)
    measured_workloads: tuple[str, ...] = ()  # optimized requests written from a measurement
    hand_set_workloads: tuple[str, ...] = ()  # optimized requests still set by hand
    measured_by: tuple[str, ...] = ()  # the measurements that wrote them (their source's head)


class GatewaySizing(StrictModel):
    """The gateway's requests derived from the optimized phase's usage, scaled to a stack's load
    (finops_sim.rightsize.measured explains the rule)."""

    stack: str
    measured_requests_per_second: float
    measured_cpu_millicores: float
    cpu_seconds_per_request: float
    peak_rss_bytes: int
    full_cache_entries: int = 0  # the semantic cache size of the next figure (0: not used)
    full_cache_rss_bytes: int = 0  # bench/warmup_bench.py's peak resident memory at that size
    full_cache_measured: str = ""
    stack_rate_percentile: float
    arrival_requests_per_second: float  # that percentile of the stack's Locust arrival rate
    locust_users: int
    latency_p50_ms: float  # the optimized phase's
    users_ceiling_requests_per_second: float  # users / latency (Little's law)
    stack_requests_per_second: float  # the smaller of the two
    stack_replicas: int
    cpu_target_m: float  # CPU per request x the rate per replica, before rounding
    memory_target_bytes: float  # peak RSS plus headroom, before rounding
    memory_headroom: float
    cpu_step_m: int
    cpu_floor_m: int
    memory_step_mib: int
    memory_floor_mib: int
    cpu_request_m: int
    memory_bytes: int  # request and limit
    stack_cpu_request_m: int  # what the stack file requests now
    stack_memory_request_bytes: int

    @property
    def requests_per_second_per_replica(self) -> float:
        return self.stack_requests_per_second / self.stack_replicas


class RunInfo(StrictModel):
    scenario: str
    scenario_file: str
    seed: int
    requests_per_phase: int  # in each phase's request log; with --duration, the first phase's
    duration_s: float | None
    users: int
    embedder: str
    gateway_config: str | None
    started_at: str
    machine: str = ""  # finops_common.machine.describe(): the CPU and memory figures depend on it
    # The list-price date of each model either phase served (the model table's price_as_of).
    prices_as_of: dict[str, str] = Field(default_factory=dict)


class SimulationResults(StrictModel):
    """results.json."""

    run: RunInfo
    phases: Phases
    comparison: Comparison
    compute: ComputeComparison | None
    gateway_sizing: GatewaySizing | None
    # Why the gateway's requests were not derived, when they were not (no stack configs, or an
    # optimized phase that served nothing to measure).
    gateway_sizing_note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _requests_of_a_duration_run(cls, data: Any) -> Any:
        """A --duration run wrote ``requests_per_phase: null`` until 2026-12-02: its phases
        say how many requests each sent."""
        run, phases = (data.get("run"), data.get("phases")) if isinstance(data, dict) else (0, 0)
        if isinstance(run, dict) and run.get("requests_per_phase", 0) is None:
            first = phases.get("unoptimized") if isinstance(phases, dict) else None
            if isinstance(first, dict) and "requests" in first:
                data = {**data, "run": {**run, "requests_per_phase": first["requests"]}}
        return data


def phase_summary(records: list[RequestRecord]) -> PhaseSummary:
    """Everything the report says about one phase."""
    served = [r for r in records if r.served]
    refused = [r for r in records if not r.served]
    misses = [r for r in served if r.cache == "miss"]
    budget_refusals = [r for r in refused if r.error == "budget"]
    rate_refusals = [r for r in refused if r.error == "rate_limit"]
    errors = [r for r in refused if r.error not in ("budget", "rate_limit")]
    latencies = [r.latency_ms for r in served]
    return PhaseSummary(
        requests=len(records),
        served=len(served),
        errors=len(errors),
        budget_rejections=len(budget_refusals),
        rate_limited=len(rate_refusals),
        spend_usd=_money(r.cost_usd for r in records),
        baseline_usd=_money(r.baseline_usd or 0.0 for r in records),
        spend_by_model_usd=_spend_by(misses, lambda r: str(r.served_model)),
        spend_by_team_usd=_spend_by(misses, lambda r: str(r.team)),
        cache=_cache_summary(served),
        routing=_routing_summary(served, misses),
        latency_ms=LatencySummary(
            p50=percentile(latencies, 50),
            p95=percentile(latencies, 95),
            p99=percentile(latencies, 99),
        ),
        tokens=_token_summary(misses),
    )


def _spend_by(misses: list[RequestRecord], key: Callable[[RequestRecord], str]) -> dict[str, float]:
    """Summed over cache misses: a hit costs nothing, and its model answered an earlier request."""
    spend: dict[str, float] = defaultdict(float)
    for r in misses:
        spend[key(r)] += r.cost_usd
    return dict(sorted(spend.items()))


def _cache_summary(served: list[RequestRecord]) -> CacheSummary:
    """A false hit reused another question's answer, told by the scenario's ground truth
    (``sim``), which the gateway logs but never reads."""
    exact = [r for r in served if r.cache == "exact"]
    semantic = [r for r in served if r.cache == "semantic"]
    false_semantic = [r for r in semantic if r.cached_label != r.sim.get("question")]
    false_exact = [r for r in exact if r.cached_label != r.sim.get("question")]
    return CacheSummary(
        exact_hits=len(exact),
        semantic_hits=len(semantic),
        exact_hit_rate=_share(len(exact), len(served)),
        semantic_hit_rate=_share(len(semantic), len(served)),
        semantic_false_hits=len(false_semantic),
        semantic_false_hit_rate=_share(len(false_semantic), len(semantic)),
        exact_false_hits=len(false_exact),
    )


def _routing_summary(served: list[RequestRecord], misses: list[RequestRecord]) -> RoutingSummary:
    """Models and tiers are counted over cache misses, the requests a model answered; the quality
    risk over every complex request served, as a cached answer carries its model's tier too."""
    routed = [r for r in misses if r.route_tier is not None]
    complex_served = [r for r in served if r.sim.get("difficulty") == "complex"]
    complex_lower = [r for r in complex_served if r.served_tier != "complex"]
    return RoutingSummary(
        routed_requests=len(routed),
        served_by_model=dict(sorted(Counter(str(r.served_model) for r in misses).items())),
        served_by_tier=dict(sorted(Counter(str(r.served_tier) for r in misses).items())),
        complex_requests=len(complex_served),
        complex_served_by_lower_tier=len(complex_lower),
        complex_served_by_tier={
            tier: sum(r.served_tier == tier for r in complex_lower)
            for tier in ("standard", "simple")
        },
        quality_risk=_share(len(complex_lower), len(complex_served)),
    )


def _token_summary(misses: list[RequestRecord]) -> TokenSummary:
    """Cache misses only: a hit's tokens are those of the answer it reused, which no provider
    processed again."""
    return TokenSummary(
        input=sum(r.prompt_tokens for r in misses),
        cached_input=sum(r.cached_tokens for r in misses),
        cache_write=sum(r.cache_write_tokens for r in misses),
        output=sum(r.completion_tokens for r in misses),
    )


def _cause(record: RequestRecord) -> str | None:
    """What the optimized phase did with a request, as a cause of saving; None for a request it
    did not answer for another reason (a rate limit, an error)."""
    if record.error == "budget":
        return "budgets"
    if not record.served:
        return None
    if record.cache != "miss":
        return "cache"
    return "routing" if record.route_tier is not None else "prompt_caching"


def compare(before: Sequence[RequestRecord], after: Sequence[RequestRecord]) -> Comparison:
    """Savings between the phases, split by what the optimized phase did with each request.

    Both phases replay one request sequence, so each optimized request is paired with its
    unoptimized twin (by ``x-sim-index``) and saves what the twin cost minus what it cost: a cache
    hit, the twin's whole cost; a routed answer, the difference between the models; a refusal by
    a budget, the twin's whole cost (refused, not answered: had it been served, cache and routing
    would have saved part of it); an answer by the same model, what the providers' prompt caches
    discounted differently (the gateway's hits keep requests from them). Both phases are billed
    with the providers' prompt caches, as any application is. What no cause explains (requests
    refused by a rate limit or failed, or logged by one phase only) is reported as unattributed
    rather than hidden.
    """
    spent_before = _money(r.cost_usd for r in before)
    saved = spent_before - _money(r.cost_usd for r in after)
    twins: dict[str, RequestRecord] = {}
    for r in before:
        if r.served and "index" in r.sim:
            twins.setdefault(r.sim["index"], r)  # a repeated index pairs once, with the first
    by_cause: dict[str, list[float]] = defaultdict(list)
    for record in after:
        twin = twins.pop(record.sim.get("index", ""), None)
        cause = _cause(record)
        if twin is not None and cause is not None:
            by_cause[cause].append(twin.cost_usd - record.cost_usd)
    causes = SavingsByCause(
        **{cause: _money(by_cause[cause]) for cause in SavingsByCause.model_fields}
    )
    shares = {cause: _share(usd, spent_before) for cause, usd in causes}
    return Comparison(
        savings_usd=saved,
        savings_pct=_share(saved, spent_before),
        by_cause_usd=causes,
        by_cause_pct=CauseShares(**shares),
        unattributed_usd=saved - _money(usd for _, usd in causes),
    )
