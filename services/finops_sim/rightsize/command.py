"""`finops-sim rightsize`: measured usage -> recommended requests -> (optionally) the stack file."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from finops_common.arguments import finite_number
from finops_common.config import ConfigError
from finops_platform.builders.workloads import NAMESPACE
from finops_platform.config import StackConfig, cpu_millicores_exact, memory_mib_exact

from ..arguments import folder, http_url, kubernetes_name, stack_name
from . import from_run, output
from .prometheus import Prometheus, PrometheusError, fetch_usage
from .stackfile import RequestChange, write_recommendations, write_requests
from .strategy import Assessment, ContainerUsage, Strategy, assess, duration_text
from .targets import (
    Target,
    monthly_cost,
    recommended_resources,
    stack_targets,
    with_resources,
)

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# The Unix seconds a timestamp may be: from 1970 to the end of year 9999 (datetime's range).
MIN_TIMESTAMP, MAX_TIMESTAMP = 0.0, 253402300799.0


def duration(text: str) -> float:
    """ "7d", "36h", "90m", "2w" in seconds."""
    try:
        value = float(text[:-1]) * _UNITS[text[-1]]
    except (ValueError, KeyError, IndexError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: use e.g. 7d, 36h, 90m") from exc
    if not math.isfinite(value) or value <= 0:
        # An infinite window made the chunked query loop forever; "nand" read as no data.
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be a positive, finite length")
    return value


def history(text: str) -> float:
    """A duration, or 0 (0m, 0h...): recommend from whatever data there is."""
    try:
        if float(text[:-1]) == 0 and text[-1] in _UNITS:
            return 0.0
    except (ValueError, IndexError):
        pass
    return duration(text)


def timestamp(text: str) -> float:
    """RFC 3339 ("2026-11-23T00:00:00Z") or Unix seconds, within datetime's years."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and MIN_TIMESTAMP <= seconds <= MAX_TIMESTAMP:
            return seconds
        raise argparse.ArgumentTypeError(
            f"{text!r} is invalid: Unix seconds from {MIN_TIMESTAMP:.0f} to {MAX_TIMESTAMP:.0f}"
        )
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is invalid: use RFC 3339 (2026-11-23T00:00:00Z) or Unix seconds"
        ) from exc


def _quantity(parse: Callable[[str], int], takes: str, least: str) -> Callable[[str], int]:
    """A quantity flag's parser: ``parse`` gives millicores or MiB, at least 1 of them (0.4m
    was taken as 0 and refused as "0")."""

    def convert(text: str) -> int:
        try:
            value = parse(text)
        except (ValueError, OverflowError) as exc:  # OverflowError: "inf", "infMi"
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: use {takes}") from exc
        if value < 1:
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: the least is {least}")
        return value

    return convert


def _whole(exact: Callable[[str], float], refusal: str, tolerance: float) -> Callable[[str], int]:
    """A quantity parser that refuses fractions of its unit (beyond float noise, ``tolerance``):
    0.6m was taken as 1m and 0.4m as 0, 64 (bytes) as 1Mi and 1.5Mi as 2Mi."""

    def parse(text: str) -> int:
        value = exact(text)
        if not math.isclose(value, round(value), abs_tol=tolerance):
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: {refusal}")
        return round(value)

    return parse


whole_millicores = _whole(cpu_millicores_exact, "CPU counts whole millicores", 1e-6)
whole_mebibytes = _whole(memory_mib_exact, "memory counts whole MiB (64Mi, 1Gi)", 1e-9)


def _millicores(value: float) -> str:
    return f"{value:g}m"


def _mebibytes(value: float) -> str:
    return f"{value:g}Mi"


TAKES = {
    "CPU": "a Kubernetes CPU quantity such as 25m or 0.1",
    # The stack file's units: Ki, Mi, Gi, Ti or bytes, not decimal M or G.
    "MEMORY": "a Kubernetes memory quantity in binary units such as 64Mi or 1Gi",
    "DURATION": "a duration such as 90m, 24h or 7d",
}
# A quantity flag's parser, what it takes, and how its value is written.
_CPU_FLAG = (_quantity(whole_millicores, TAKES["CPU"], "1m"), "CPU", _millicores)
_MEMORY_FLAG = (_quantity(whole_mebibytes, TAKES["MEMORY"], "1Mi"), "MEMORY", _mebibytes)
# Flag -> the Strategy field it sets, the parser of its text, what it takes, and the field's
# value written as the flag takes it (a Kubernetes quantity or a duration, not the field's unit:
# `--cpu-floor 25` is 25 CPUs).
STRATEGY_FLAGS: dict[str, tuple[str, Callable[[str], float], str, Callable[[float], str]]] = {
    "--cpu-percentile": ("cpu_percentile", finite_number, "P", "{:g}".format),
    "--memory-headroom": ("memory_headroom", finite_number, "FRACTION", "{:g}".format),
    "--oom-bump": ("oom_bump", finite_number, "FRACTION", "{:g}".format),
    "--cpu-floor": ("cpu_floor_m", *_CPU_FLAG),
    "--cpu-step": ("cpu_step_m", *_CPU_FLAG),
    "--memory-floor": ("memory_floor_mib", *_MEMORY_FLAG),
    "--memory-step": ("memory_step_mib", *_MEMORY_FLAG),
    "--min-history": ("min_history_s", history, "DURATION", duration_text),
}


DEFAULT_WINDOW = duration("7d")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`rightsize`'s flags, in the order its help lists them."""
    _add_usage_source(parser)
    _add_usage_window(parser)
    _add_stack_and_output(parser)
    _add_strategy_flags(parser)


def _add_usage_source(parser: argparse.ArgumentParser) -> None:
    """Exactly one source of usage: every recommendation rests on a measurement."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--prometheus", metavar="URL", type=http_url, help="e.g. http://localhost:9090"
    )
    source.add_argument(
        "--from-run",
        type=Path,
        metavar="RESULTS_JSON",
        help="size the gateway alone from a `finops-sim run`'s results.json (out/demo/...)",
    )


def _add_usage_window(parser: argparse.ArgumentParser) -> None:
    """Which usage Prometheus is asked for: the window, its end and the workloads' namespace."""
    parser.add_argument("--window", type=duration, default=DEFAULT_WINDOW, help="usage window (7d)")
    parser.add_argument("--end", type=timestamp, help="the window's end (default: now)")
    parser.add_argument(
        "--namespace",
        type=kubernetes_name,
        default=NAMESPACE,
        help=f"the workloads' namespace ({NAMESPACE})",
    )


def _add_stack_and_output(parser: argparse.ArgumentParser) -> None:
    """The stack whose workloads are sized, and where and how the results go."""
    parser.add_argument(
        "--stack",
        type=stack_name,
        default="optimized",
        help="stack name: stacks/Pulumi.<stack>.yaml",
    )
    parser.add_argument("--format", choices=["table", "json", "html"], default="table")
    parser.add_argument(
        "--write", action="store_true", help="write the recommended requests into the stack file"
    )
    parser.add_argument("--out", type=folder, help="output folder (out/rightsize/STACK)")


def _add_strategy_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per Strategy field, its help from the field's description, so the two never differ."""
    group = parser.add_argument_group("strategy (see finops_sim/rightsize/strategy.py)")
    default = Strategy()
    for flag, (field, parse, metavar, written) in STRATEGY_FLAGS.items():
        description = Strategy.model_fields[field].description
        takes = f"; {TAKES[metavar]}" if metavar in TAKES else ""
        value = getattr(default, field)
        group.add_argument(
            flag,
            dest=field,
            metavar=metavar,
            type=parse,
            default=value,
            help=f"{description} (default {written(value)}{takes})",
        )


def _typed(value: Any) -> str:
    """A flag's value as it was likely typed: 0, not 0.0."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def strategy_of(args: argparse.Namespace) -> Strategy:
    fields = {field: flag for flag, (field, *_) in STRATEGY_FLAGS.items()}
    try:
        return Strategy(**{field: getattr(args, field) for field in fields})
    except ValidationError as exc:
        problems = [f"{fields[str(e['loc'][0])]} {_typed(e['input'])}: {e['msg']}"
                    for e in exc.errors()]  # fmt: skip
        raise ConfigError("; ".join(problems)) from exc


def run(args: argparse.Namespace) -> int:
    from finops_platform.config import load_stack

    try:
        strategy = strategy_of(args)
        config = load_stack(args.stack)
    except ConfigError as exc:
        print(f"finops-sim: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if args.from_run is not None:
        return _size_from_run(args, config, strategy)
    return _recommend_from_prometheus(args, config, strategy)


def _size_from_run(args: argparse.Namespace, config: StackConfig, strategy: Strategy) -> int:
    """--from-run prints one sizing from a run's own measurement, so the flags that choose
    Prometheus's usage and the report's form are refused, not silently ignored."""
    default = Strategy()
    unread = {
        "--window": args.window != DEFAULT_WINDOW,
        "--end": args.end is not None,
        "--namespace": args.namespace != NAMESPACE,
        "--min-history": args.min_history_s != default.min_history_s,
        "--oom-bump": args.oom_bump != default.oom_bump,
        "--format": args.format != "table",
        "--out": args.out is not None,
    }
    given = [flag for flag, set_ in unread.items() if set_]
    if given:
        print(
            "finops-sim: --from-run sizes the gateway from a run's results and prints it; "
            f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --prometheus",
            file=sys.stderr,
        )
        return 2
    return from_run.run(args.from_run, config, strategy, write=args.write)


def _recommend_from_prometheus(
    args: argparse.Namespace, config: StackConfig, strategy: Strategy
) -> int:
    """Every workload's recommendation from its usage over the window, saved and shown, and
    written into the stack file with --write."""
    resolution = strategy.resolution_s
    end = math.floor((args.end if args.end is not None else time.time()) / resolution) * resolution
    if args.window < resolution:
        print(f"finops-sim: --window must be at least {duration_text(resolution)}", file=sys.stderr)
        return 2
    prometheus = Prometheus(args.prometheus)
    targets = stack_targets(config)
    try:
        usages = _fetch_usages(prometheus, args, targets, end, resolution)
    except PrometheusError as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 1
    results, monthly_usd = _priced_recommendations(config, targets, usages, strategy)
    doc = output.document(
        results,
        stack=args.stack,
        prometheus=prometheus.url,
        namespace=args.namespace,
        window_s=args.window,
        end=end,
        strategy=strategy,
        monthly_usd=monthly_usd,
    )
    _save_and_show(args, results, doc, monthly_usd)
    if args.write:
        return _write(args.stack, results, doc, json_output=args.format == "json")
    return 0


def _fetch_usages(
    prometheus: Prometheus,
    args: argparse.Namespace,
    targets: list[Target],
    end: float,
    resolution: int,
) -> list[ContainerUsage]:
    """One ``end`` for every target: each workload's samples fall at the same instants."""
    return [
        fetch_usage(prometheus, args.namespace, t.apps, t.container, end, args.window, resolution)
        for t in targets
    ]


def _priced_recommendations(
    config: StackConfig,
    targets: list[Target],
    usages: list[ContainerUsage],
    strategy: Strategy,
) -> tuple[list[output.Result], tuple[float | None, float | None]]:
    """Each workload's assessment with what its recommendation alone would save a month, and
    the stack's monthly cost now and with all of them: the cost model packs pods onto nodes, so
    the rows' savings need not add up to the total's."""
    assessments = [assess(u, strategy, t.cache) for t, u in zip(targets, usages, strict=True)]
    current = monthly_cost(config)
    changes = {
        t.key: recommended_resources(t, a.recommendation)
        for t, a in zip(targets, assessments, strict=True)
        if a.recommendation
    }
    results = []
    for target, usage, assessment in zip(targets, usages, assessments, strict=True):
        saving = None
        if assessment.recommendation and current is not None:
            alone = monthly_cost(with_resources(config, {target.key: changes[target.key]}))
            saving = None if alone is None else current - alone
        results.append(output.Result(target, usage, assessment, saving))
    recommended = monthly_cost(with_resources(config, changes))
    return results, (current, recommended)


def _save_and_show(
    args: argparse.Namespace,
    results: list[output.Result],
    doc: dict[str, Any],
    monthly_usd: tuple[float | None, float | None],
) -> None:
    """recommendations.json is written whatever --format shows, so every run leaves its
    figures."""
    out = args.out or Path("out") / "rightsize" / args.stack
    out.mkdir(parents=True, exist_ok=True)
    (out / "recommendations.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if args.format == "json":
        print(json.dumps(doc["workloads"], indent=2))
    elif args.format == "html":
        print(f"Report: {output.write_html(results, doc, out)}")
    else:
        print(output.text_table(results, monthly_usd))


def _write(stack: str, results: list[output.Result], doc: dict[str, Any], json_output: bool) -> int:
    """With JSON on stdout, what was written is said on stderr, so stdout stays JSON."""
    changes = _request_changes(stack, results, doc)
    if not changes:
        print("finops-sim: nothing to write: no workload has enough data", file=sys.stderr)
        return 1
    try:
        write_requests(stack, changes)
    except ConfigError as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 2
    path, kept = write_recommendations(stack, doc)
    print(
        _written_message(stack, len(changes), path, kept),
        file=sys.stderr if json_output else sys.stdout,
    )
    return 0


def _request_changes(
    stack: str, results: list[output.Result], doc: dict[str, Any]
) -> list[RequestChange]:
    """The recommended requests only: a workload without one keeps the requests it has."""
    return [
        RequestChange(
            workload=r.target.workload,
            key=r.target.key,
            cpu=recommendation.cpu,
            memory=recommendation.memory,
            note=_note(stack, r.assessment, doc),
        )
        for r in results
        if (recommendation := r.assessment.recommendation)
    ]


def _note(stack: str, assessment: Assessment, doc: dict[str, Any]) -> str:
    """A note above the written request, so the stack file says where its numbers come from."""
    cpu_target_m, memory = assessment.cpu_target_m, assessment.memory_bytes
    assert cpu_target_m is not None and memory is not None  # assess() recommends from both
    return (
        f"finops-sim rightsize, {doc['window']} to {doc['end']}: CPU "
        f"P{doc['strategy']['cpu_percentile']:g} {cpu_target_m:.0f}m, memory "
        f"peak {memory.peak / 2**20:.0f}Mi "
        f"+{doc['strategy']['memory_headroom']:.0%} (see rightsize.{stack}.json)"
    )


def _written_message(stack: str, count: int, path: Path, kept: list[str]) -> str:
    """What --write changed and how to see its effect, naming the earlier requests it kept."""
    kept_note = (
        f" Kept the earlier recommendation of {', '.join(kept)} there (this run has none "
        "for it, and the stack still requests it)."
        if kept
        else ""
    )
    return (
        f"\nWrote {count} workloads' requests into stacks/Pulumi.{stack}.yaml and the "
        f"figures into {path.name}; `finops-sim cost --compare unoptimized {stack}` shows the "
        "effect." + kept_note
    )
