"""The rightsizing strategy: from measured usage to requests, with no I/O.

Like Robusta KRR, and unlike a CPU limit that throttles bursts:

- **CPU request** = the ``cpu_percentile`` (default P95) of the 5-minute average usage of every
  series of the workload's container over the window, pooled (a restarted pod's old and new
  series both count); no CPU limit is set or changed.
- **Memory request and limit** = the window's peak working set (the largest 5-minute maximum of
  any series) plus ``memory_headroom`` (default 15%), since memory cannot be throttled, only
  OOM-killed; for a cache whose budget is a share of its limit (Valkey's maxmemory, 3/4): the
  same limit when the cache is full, else at least the peak over that share.
- **After an OOM kill** (a container whose last termination was ``OOMKilled`` in the window),
  memory is at least the limit it was killed at plus ``oom_bump`` (default 20%, as Kubernetes'
  Vertical Pod Autoscaler bumps it): the kill's own peak falls between two samples, so the
  working set never shows it, and sizing from the samples alone would shrink the limit below
  the one that was already too small.
- Both are rounded **up** to a step and raised to a floor.
- Nothing is recommended before ``min_history`` of data exists for the container (time covered
  by at least one series, so a gap does not count); the reason says how much there is.

The usage may come from Prometheus (``prometheus.py``) or from any other measurement that
yields the same 5-minute samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from finops_platform.config import MAX_CPU_CORES, MAX_MEMORY_MIB

MIB = 2**20


class Strategy(BaseModel):
    """How usage becomes a recommendation; every field is a ``finops-sim rightsize`` flag."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cpu_percentile: float = Field(
        default=95,
        gt=0,
        le=100,
        description="CPU request: this percentile of the 5-minute usage samples",
    )
    memory_headroom: float = Field(
        default=0.15,
        ge=0,
        le=2,
        description="memory request and limit: the peak working set plus this fraction",
    )
    oom_bump: float = Field(
        default=0.2,
        ge=0,
        le=2,
        description="after an OOM kill: memory at least the limit it was killed at plus this "
        "fraction",
    )
    # At most what a stack may request (finops_platform.config): a larger floor or step made a
    # recommendation no stack file takes.
    cpu_floor_m: int = Field(
        default=25, ge=1, le=MAX_CPU_CORES * 1000, description="smallest CPU request"
    )
    cpu_step_m: int = Field(
        default=5,
        ge=1,
        le=MAX_CPU_CORES * 1000,
        description="CPU requests round up to a multiple of this",
    )
    memory_floor_mib: int = Field(
        default=64, ge=1, le=MAX_MEMORY_MIB, description="smallest memory request"
    )
    memory_step_mib: int = Field(
        default=8, ge=1, le=MAX_MEMORY_MIB, description="memory rounds up to a multiple of this"
    )
    min_history_s: float = Field(
        default=24 * 3600,
        ge=0,
        description="data needed before recommending",
    )
    resolution_s: int = Field(
        default=300, ge=60, description="the usage sample: 5-minute rate and 5-minute peak"
    )


@dataclass(frozen=True)
class Series:
    """One container instance's samples (a pod's container; a restarted pod adds a series)."""

    pod: str
    timestamps: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class OomKill:
    """A container instance whose last termination was an OOM kill, and the memory limit it had."""

    pod: str
    seen_at: float  # the first sample in the window that shows it
    limit_bytes: float


@dataclass(frozen=True)
class ContainerUsage:
    """What one container of a workload used: CPU in cores, memory in bytes, per sample time;
    and the OOM kills its instances show."""

    cpu: tuple[Series, ...]
    memory: tuple[Series, ...]
    resolution_s: int
    oom_kills: tuple[OomKill, ...] = ()

    @property
    def pods(self) -> tuple[str, ...]:
        return tuple(sorted({s.pod for s in (*self.cpu, *self.memory)}))

    def covered_s(self) -> float:
        """Time with both a CPU and a memory sample, whatever series they come from."""
        cpu = {t for s in self.cpu for t in s.timestamps}
        memory = {t for s in self.memory for t in s.timestamps}
        return len(cpu & memory) * self.resolution_s


@dataclass(frozen=True)
class Figures:
    """Usage percentiles of pooled samples: CPU in millicores, memory in bytes."""

    samples: int
    p50: float
    p95: float
    peak: float


@dataclass(frozen=True)
class Recommendation:
    cpu_request_m: int
    memory_bytes: int  # request and limit

    @property
    def cpu(self) -> str:
        return f"{self.cpu_request_m}m"

    @property
    def memory(self) -> str:
        return f"{self.memory_bytes // MIB}Mi"


@dataclass(frozen=True)
class Assessment:
    """The figures and either a recommendation or the reason there is none."""

    cpu_m: Figures | None
    memory_bytes: Figures | None
    cpu_target_m: float | None  # the percentile, before rounding
    memory_target_bytes: float | None  # the peak plus headroom, before rounding
    covered_s: float
    pods: tuple[str, ...]
    recommendation: Recommendation | None
    reason: str


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, as in most tools)."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def figures(values: list[float], scale: float = 1.0) -> Figures | None:
    if not values:
        return None
    scaled = [v * scale for v in values]
    return Figures(len(scaled), percentile(scaled, 50), percentile(scaled, 95), max(scaled))


def round_up(value: float, step: int, floor: int) -> int:
    return max(floor, math.ceil(value / step) * step)


def duration_text(seconds: float) -> str:
    """300 -> "5m", 7200 -> "2h", 172800 -> "2d", 5400 -> "1.5h"."""
    if seconds < 3600:
        return f"{seconds / 60:g}m"
    hours = seconds / 3600
    return f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:.4g}h"


@dataclass(frozen=True)
class CacheBudget:
    """A cache whose memory budget is a share of its container's limit (Valkey's maxmemory)."""

    share: float
    limit_bytes: float  # the limit it runs with now

    @property
    def budget_bytes(self) -> float:
        return self.share * self.limit_bytes


def memory_for_peak(
    peak: float, strategy: Strategy, cache: CacheBudget | None
) -> tuple[float, str]:
    """The peak plus headroom. For a cache sized by its limit: a full one (its container's peak
    at its budget or more) keeps its limit, since its usage is its budget, not demand (the peak
    + 15% shrank limit, budget and peak each cycle, and the peak over the share, budget and
    overhead together, grew them); one that is not full gets at least its peak over the share,
    so the new budget still holds what it held."""
    with_headroom = peak * (1 + strategy.memory_headroom)
    why = f"peak {peak / MIB:.1f}Mi + {strategy.memory_headroom:.0%} = {with_headroom / MIB:.1f}Mi"
    if cache is None:
        return with_headroom, why
    if peak >= cache.budget_bytes:
        return cache.limit_bytes, (
            f"peak {peak / MIB:.1f}Mi reached the cache's {cache.budget_bytes / MIB:.0f}Mi "
            f"budget ({cache.share:g} of its limit): it is full, so its "
            f"{cache.limit_bytes / MIB:.0f}Mi limit stays (set it to resize the cache)"
        )
    for_budget = peak / cache.share
    if for_budget <= with_headroom:
        return with_headroom, why
    return for_budget, (
        f"peak {peak / MIB:.1f}Mi / {cache.share:g} (the share of its limit its cache may fill) "
        f"= {for_budget / MIB:.1f}Mi"
    )


def memory_from(
    peak: float,
    oom_kills: tuple[OomKill, ...],
    strategy: Strategy,
    cache: CacheBudget | None = None,
) -> tuple[float, str]:
    """What the peak needs, or the largest limit a kill happened at plus the OOM bump when that
    is more; and the reason, in words."""
    from_peak, why = memory_for_peak(peak, strategy, cache)
    if not oom_kills:
        return from_peak, why
    killed = max(oom_kills, key=lambda kill: kill.limit_bytes)
    from_kill = killed.limit_bytes * (1 + strategy.oom_bump)
    others = len({kill.pod for kill in oom_kills} - {killed.pod})
    also = f" (and {others} other pod(s))" if others else ""
    kill_why = (
        f"OOM-killed at a {killed.limit_bytes / MIB:.0f}Mi limit in {killed.pod}{also} "
        f"+ {strategy.oom_bump:.0%} = {from_kill / MIB:.1f}Mi"
    )
    if from_kill > from_peak:
        return from_kill, f"{kill_why}, above the {why}"
    return from_peak, f"{why}, above the {kill_why}"


def assess(
    usage: ContainerUsage, strategy: Strategy, cache: CacheBudget | None = None
) -> Assessment:
    """``cache``: the container's cache budget, for a cache sized by its limit (see
    ``memory_for_peak``)."""
    cpu_samples = [v for s in usage.cpu for v in s.values]
    memory_samples = [v for s in usage.memory for v in s.values]
    cpu, memory = figures(cpu_samples, 1000), figures(memory_samples)
    covered = usage.covered_s()
    if cpu is None or memory is None:
        reason = "no usage data in the window: no recommendation"
        return Assessment(cpu, memory, None, None, covered, usage.pods, None, reason)
    if covered < strategy.min_history_s:
        reason = (
            f"only {duration_text(covered)} of usage data, {duration_text(strategy.min_history_s)}"
            " needed: no recommendation"
        )
        return Assessment(cpu, memory, None, None, covered, usage.pods, None, reason)
    cpu_target = percentile([v * 1000 for v in cpu_samples], strategy.cpu_percentile)
    memory_target, memory_why = memory_from(memory.peak, usage.oom_kills, strategy, cache)
    recommendation = Recommendation(
        cpu_request_m=round_up(cpu_target, strategy.cpu_step_m, strategy.cpu_floor_m),
        memory_bytes=round_up(
            memory_target / MIB, strategy.memory_step_mib, strategy.memory_floor_mib
        )
        * MIB,
    )
    reason = (
        f"CPU: P{strategy.cpu_percentile:g} of {cpu.samples} "
        f"{duration_text(usage.resolution_s)} samples = {cpu_target:.1f}m; "
        f"memory: {memory_why}; over "
        f"{duration_text(covered)} of data from {len(usage.pods)} pod(s)"
    )
    return Assessment(
        cpu, memory, cpu_target, memory_target, covered, usage.pods, recommendation, reason
    )
