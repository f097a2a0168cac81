"""The rightsizing results as JSON objects, a text table, and an HTML page with a chart each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report import Heading, Image, Paragraph, Table, to_html
from .strategy import MIB, Assessment, ContainerUsage, Figures, Series, Strategy, duration_text
from .targets import Target

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class Result:
    target: Target
    usage: ContainerUsage
    assessment: Assessment
    monthly_saving_usd: float | None  # the cost model's, with only this recommendation applied


def _figures(figures: Figures | None) -> dict[str, float] | None:
    if figures is None:
        return None
    return {
        "samples": figures.samples,
        "p50": figures.p50,
        "p95": figures.p95,
        "peak": figures.peak,
    }


def as_json(result: Result) -> dict[str, Any]:
    """One workload's container: current request, usage, recommendation (millicores, bytes)."""
    t, a = result.target, result.assessment
    recommendation = a.recommendation
    return {
        "workload": t.workload,
        "stack_key": t.stack_key,
        "apps": list(t.apps),
        "container": t.container,
        "current": {
            "cpu_request_m": t.cpu_request_m,
            "memory_request_bytes": t.memory_request_bytes,
            "memory_limit_bytes": t.memory_limit_bytes,
        },
        "usage": {
            "pods": list(a.pods),
            "covered_s": a.covered_s,
            "cpu_m": _figures(a.cpu_m),
            "memory_bytes": _figures(a.memory_bytes),
            "oom_kills": [
                {"pod": kill.pod, "seen_at": _iso(kill.seen_at), "limit_bytes": kill.limit_bytes}
                for kill in result.usage.oom_kills
            ],
        },
        "recommendation": None
        if recommendation is None
        else {
            "cpu_request_m": recommendation.cpu_request_m,
            "memory_request_bytes": recommendation.memory_bytes,
            "memory_limit_bytes": recommendation.memory_bytes,
            "cpu": recommendation.cpu,
            "memory": recommendation.memory,
        },
        "reason": a.reason,
        "monthly_saving_usd": result.monthly_saving_usd,
    }


def document(
    results: list[Result],
    *,
    stack: str,
    prometheus: str,
    namespace: str,
    window_s: float,
    end: float,
    strategy: Strategy,
    monthly_usd: tuple[float | None, float | None],
) -> dict[str, Any]:
    """Everything one run found, as written to recommendations.json."""
    return {
        "stack": stack,
        "prometheus": prometheus,
        "namespace": namespace,
        "window": duration_text(window_s),
        "end": _iso(end),
        "strategy": strategy.model_dump(),
        "monthly_usd": {"current": monthly_usd[0], "recommended": monthly_usd[1]},
        "workloads": [as_json(r) for r in results],
    }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _usage_cell(figures: Figures | None, scale: float, unit: str) -> str:
    if figures is None:
        return "no data"
    p50, p95, peak = (value / scale for value in (figures.p50, figures.p95, figures.peak))
    return f"{p50:,.0f} / {p95:,.0f} / {peak:,.0f}{unit}"


HEADER = (
    "workload",
    "container",
    "current request",
    "CPU P50/P95/peak",
    "memory P50/P95/peak",
    "recommended",
    "saving alone/month",
)


def table_rows(results: list[Result]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        t, a = r.target, r.assessment
        rec = a.recommendation
        rows.append(
            (
                t.workload,
                t.container,
                f"{t.resources.requests.cpu} / {t.resources.requests.memory}",
                _usage_cell(a.cpu_m, 1, "m"),
                _usage_cell(a.memory_bytes, MIB, "Mi"),
                f"{rec.cpu} / {rec.memory}" if rec else "none",
                _usd(r.monthly_saving_usd) if rec else "",
            )
        )
    return rows


def _total_line(monthly_usd: tuple[float | None, float | None]) -> str:
    before, after = monthly_usd
    if before is None or after is None:
        return (
            "No saving shown: the cost model cannot price this stack (a local stack, or pods "
            "that fit no NodePool before or after the recommendations; `finops-sim cost "
            "--stack NAME` says why)."
        )
    change = (
        f"saves ${before - after:,.2f}" if before >= after else f"costs ${after - before:,.2f} more"
    )
    return (
        f"All recommendations together: ${before:,.2f} -> ${after:,.2f} per month "
        f"({change}), from the compute cost model's prices and packing "
        "(`finops-sim cost`); a workload's saving is with only its own recommendation applied."
    )


def text_table(results: list[Result], monthly_usd: tuple[float | None, float | None]) -> str:
    rows = [HEADER, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.extend(
        f"{r.target.workload}/{r.target.container}: {r.assessment.reason}" for r in results
    )
    lines.append("")
    lines.append(_total_line(monthly_usd))
    return "\n".join(line.rstrip() for line in lines)


def _panel(
    ax: Axes,
    series: tuple[Series, ...],
    scale: float,
    label: str,
    lines: list[tuple[float, str, str]],
) -> None:
    """One resource: every series (one per pod's container) and horizontal reference lines."""
    pods = sorted({s.pod for s in series})
    highest = max((value for value, _, _ in lines), default=0.0)
    for i, s in enumerate(series):
        times = [datetime.fromtimestamp(x, UTC) for x in s.timestamps]
        values = [v * scale for v in s.values]
        highest = max(highest, *values)
        name = f"pod {s.pod}" if len(pods) <= 4 else (f"{len(pods)} pods" if i == 0 else None)
        # matplotlib plots datetimes (its date converter), which its stubs' ArrayLike leaves out.
        ax.plot(times, values, linewidth=0.8, label=name)  # type: ignore[arg-type]
    for value, style, text in lines:
        color = "#2ca02c" if style == "-" else "#c44e52"
        ax.axhline(value, color=color, linestyle=style, label=f"{text} {value:,.0f}")
    ax.set_ylabel(label)
    ax.set_ylim(0, highest * 1.1 or 1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))


def chart(result: Result, path: Path) -> Image:
    """Usage over time per pod, with the current request and the recommendation as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, rec = result.target, result.assessment.recommendation
    cpu_lines = [(float(t.cpu_request_m), "--", "current request")]
    memory_lines = [(t.memory_request_bytes / MIB, "--", "current request")]
    if t.memory_limit_bytes != t.memory_request_bytes:
        memory_lines.append((t.memory_limit_bytes / MIB, ":", "current limit"))
    if result.usage.oom_kills:
        killed_at = max(kill.limit_bytes for kill in result.usage.oom_kills)
        memory_lines.append((killed_at / MIB, "-.", "OOM-killed at"))
    if rec is not None:
        cpu_lines.append((float(rec.cpu_request_m), "-", "recommendation"))
        memory_lines.append((rec.memory_bytes / MIB, "-", "recommendation"))
    fig, (cpu_ax, memory_ax) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    _panel(cpu_ax, result.usage.cpu, 1000, "CPU (millicores)", cpu_lines)
    _panel(memory_ax, result.usage.memory, 1 / MIB, "memory (MiB)", memory_lines)
    resolution = duration_text(result.usage.resolution_s)
    cpu_ax.set_title(f"{t.workload} / {t.container}: usage ({resolution} samples)")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Image(f"{path.parent.name}/{path.name}", f"{t.workload} {t.container} usage")


def chart_name(target: Target) -> str:
    return f"{target.workload.replace('.', '-')}-{target.container}.png"


def write_html(results: list[Result], doc: dict[str, Any], out: Path) -> Path:
    blocks: list[Any] = [
        Heading(f"Rightsizing the {doc['stack']} stack", 1),
        Paragraph(
            f"Usage from `{doc['prometheus']}`, namespace `{doc['namespace']}`, over the "
            f"{doc['window']} ending {doc['end']}. CPU request at the "
            f"P{doc['strategy']['cpu_percentile']:g} of 5-minute usage; memory request and limit "
            f"at the peak working set + {doc['strategy']['memory_headroom']:.0%}, or, after an "
            f"OOM kill, at least the limit it was killed at + {doc['strategy']['oom_bump']:.0%}."
        ),
        Table(HEADER, tuple(table_rows(results))),
        Paragraph(_total_line((doc["monthly_usd"]["current"], doc["monthly_usd"]["recommended"]))),
    ]
    for r in results:
        blocks.append(Heading(f"{r.target.workload} / {r.target.container}"))
        blocks.append(Paragraph(r.assessment.reason))
        blocks.append(chart(r, out / "charts" / chart_name(r.target)))
    path = out / "rightsize.html"
    path.write_text(
        to_html(blocks, title=f"finops-sim rightsize: {doc['stack']}"), encoding="utf-8"
    )
    return path
