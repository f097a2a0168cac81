"""`finops-sim`: the local simulation and, later, the stack tools."""

from __future__ import annotations

import argparse
import errno
import math
import signal
import sys
from pathlib import Path
from typing import get_args

from ai_gateway.settings import DEFAULT_EMBEDDER, Embedder
from finops_common.arguments import at_least
from finops_common.config import ConfigError
from loadgen.scenario import DEFAULT_SCENARIO

from .arguments import folder, input_file, stack_name
from .gateway_usage import MeasurementError
from .report import summary_tree, unmeasured
from .results import SimulationResults
from .rightsize import command as rightsize
from .simulation import (
    DEFAULT_REQUESTS,
    InterruptedBeforeStart,
    RunOptions,
    SimulationError,
    run,
)


def _duration(text: str) -> int:
    """Seconds, or a number with s, m or h; rounded up to whole seconds, as Locust's --run-time
    counts them (its 0 would mean no limit)."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: use e.g. 90, 90s, 5m") from exc
    if not (math.isfinite(value) and value >= 1):
        raise argparse.ArgumentTypeError(
            f"{text!r} is invalid: allowed values are 1 second or more"
        )
    return math.ceil(value)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="finops-sim", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    _run_arguments(
        commands.add_parser(
            "run", help="run the workload through the unoptimized and optimized gateway locally"
        )
    )
    _render_arguments(
        commands.add_parser(
            "render",
            help="write what a stack would deploy (Kubernetes objects, Helm releases, AWS)",
        )
    )
    _cost_arguments(
        commands.add_parser(
            "cost", help="estimate a stack's monthly compute cost, or compare two stacks"
        )
    )
    rightsize.add_arguments(
        commands.add_parser(
            "rightsize",
            help="recommend requests from the usage Prometheus measured (and write them)",
        )
    )
    return root


def _run_arguments(run_cmd: argparse.ArgumentParser) -> None:
    run_cmd.add_argument("--scenario", type=input_file, default=DEFAULT_SCENARIO)
    length = run_cmd.add_mutually_exclusive_group()
    length.add_argument(
        "--requests", type=at_least(1), help=f"requests per phase (default {DEFAULT_REQUESTS})"
    )
    length.add_argument("--duration", type=_duration, help="time per phase, e.g. 45s or 2m")
    run_cmd.add_argument("--seed", type=int, help="overrides the scenario's seed")
    run_cmd.add_argument("--out", type=folder, default=Path("out"), help="output folder (./out)")
    run_cmd.add_argument(
        "--users",
        type=at_least(1),
        default=1,
        help="concurrent Locust users (1 keeps the request order, and so the numbers, "
        "identical from run to run)",
    )
    run_cmd.add_argument(
        "--embedder",
        choices=get_args(Embedder),
        default=DEFAULT_EMBEDDER,
        help="semantic cache embedder of the optimized phase",
    )
    run_cmd.add_argument(
        "--gateway-config",
        type=input_file,
        help="gateway settings applied over the optimized profile (e.g. smaller team budgets)",
    )


def _render_arguments(render_cmd: argparse.ArgumentParser) -> None:
    render_cmd.add_argument(
        "--stack", type=stack_name, required=True, help="stack name: stacks/Pulumi.<stack>.yaml"
    )
    render_cmd.add_argument(
        "--out", type=folder, default=None, help="output folder (out/render/STACK)"
    )
    render_cmd.add_argument(
        "--helm-charts",
        type=Path,
        default=None,
        metavar="DIR",
        help="chart sources (DIR/CHART/Chart.yaml) to render each release with `helm template` "
        "(default: ../shared/charts when present)",
    )


def _cost_arguments(cost_cmd: argparse.ArgumentParser) -> None:
    which = cost_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", type=stack_name, help="stack name: stacks/Pulumi.<stack>.yaml")
    which.add_argument(
        "--compare", type=stack_name, nargs=2, metavar=("BEFORE", "AFTER"), help="two stacks"
    )
    cost_cmd.add_argument(
        "--spot-discount",
        action="append",
        default=[],
        metavar="CATEGORY=FRACTION",
        help="override the assumed spot discount of an instance category, e.g. m=0.55",
    )


def render(args: argparse.Namespace) -> int:
    from finops_platform.helm import HelmError
    from finops_platform.render import DEFAULT_CHARTS, write

    if args.helm_charts is not None and not args.helm_charts.is_dir():
        print(f"finops-sim: --helm-charts {args.helm_charts} is not a folder", file=sys.stderr)
        return 2
    charts = args.helm_charts or (DEFAULT_CHARTS if DEFAULT_CHARTS.is_dir() else None)
    out = args.out or Path("out") / "render" / args.stack
    try:
        counts = write(args.stack, out, charts)
    except ConfigError as exc:
        print(f"finops-sim: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except HelmError as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 2
    print(
        f"{counts['kubernetes']} Kubernetes objects in {out / 'kubernetes'}, "
        f"{counts['helm']} Helm releases in {out / 'helm'}, "
        f"{counts['aws']} AWS resources in {out / 'aws-resources.json'}, "
        f"{counts['resources']} resources in {out / 'dependencies.json'}"
    )
    if charts is None:
        print("charts not rendered: no --helm-charts DIR, and no ../shared/charts")
    else:
        print(f"{counts['chart_objects']} chart objects in {out / 'charts'} (from {charts})")
    if counts["missing_subcharts"]:
        print(f"not rendered, absent from {charts}: {', '.join(counts['missing_subcharts'])}")
    for stand_in in counts["stand_ins"]:
        print(f"stand-in: {stand_in}")
    return 0


def _discounts(pairs: list[str]) -> dict[str, float]:
    from finops_platform.cost import SPOT_DISCOUNTS

    discounts = {}
    for pair in pairs:
        category, _, fraction = pair.partition("=")
        try:
            value = float(fraction)
        except ValueError:
            value = -1.0
        if len(category) != 1 or not 0 <= value < 1:
            raise ConfigError(
                f"--spot-discount {pair!r} is invalid: use CATEGORY=FRACTION with a fraction "
                "from 0 up to (not including) 1, e.g. m=0.55"
            )
        if category not in SPOT_DISCOUNTS:
            raise ConfigError(
                f"--spot-discount {pair!r}: the NodePools buy no {category!r} instances; "
                "allowed categories: " + ", ".join(sorted(SPOT_DISCOUNTS))
            )
        discounts[category] = value
    return discounts


def cost(args: argparse.Namespace) -> int:
    from finops_platform.config import load_stack
    from finops_platform.cost import (
        ELASTICACHE_PRICE_SOURCE,
        PRICE_SOURCE,
        CostModelError,
        compare,
        stack_cost,
    )

    try:
        discounts = _discounts(args.spot_discount)
        if args.stack:
            estimate = stack_cost(load_stack(args.stack), spot_discounts=discounts)
            print(f"stack {args.stack}: ${estimate.monthly_usd:,.2f} per month ({PRICE_SOURCE})")
            for line in estimate.pools:
                pods = "add-ons" if line.pods is None else f"{line.pods:>3} pods"
                print(
                    f"  {line.pool:<18} {line.capacity:<9} {line.nodes} x {line.instance_type:<11}"
                    f" {pods:>8}  ${line.monthly_usd:,.2f}/month"
                )
            for service in estimate.services:
                print(f"  {service.service}: {service.usage}  ${service.monthly_usd:,.2f}/month")
            if estimate.services:
                print(f"  prices: {ELASTICACHE_PRICE_SOURCE}")
            parts = [p.monthly_usd for p in estimate.pools] + [
                s.monthly_usd for s in estimate.services
            ]
            if round(sum(round(part, 2) for part in parts), 2) != round(estimate.monthly_usd, 2):
                print("  (each line is rounded on its own: they add up to a cent off the total)")
            return 0
        before, after = (load_stack(name) for name in args.compare)
        result = compare(before, after, spot_discounts=discounts)
    except (ConfigError, CostModelError) as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 2
    names = args.compare
    before_usd = f"${result['unoptimized_monthly_usd']:,.2f}"
    after_usd = f"${result['optimized_monthly_usd']:,.2f}"
    print(f"{'':<22}{names[0]:>14}{names[1]:>14}")
    print(f"{'compute per month':<22}{before_usd:>14}{after_usd:>14}")
    print(
        f"saved: ${result['savings_usd']:,.2f} per month ({result['savings_pct']:.1%}): "
        f"rightsizing ${result['rightsizing_usd']:,.2f}, spot ${result['spot_usd']:,.2f}"
    )
    print(f"prices: {PRICE_SOURCE}; spot as a discount per category (see finops_platform/cost.py)")
    return 0


# What a write in the output folder fails with when no file is named (a full disk, quota, a
# folder made read-only): the message then names the folder.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "render":
        return render(args)
    if args.command == "cost":
        return cost(args)
    if args.command == "rightsize":
        return rightsize.run(args)
    return simulate(args)


def simulate(args: argparse.Namespace) -> int:
    """`finops-sim run`: both phases, the report, and an exit code for each way it can end."""
    _stop_on_signals()
    options = RunOptions(
        scenario=args.scenario,
        out=args.out,
        requests=None if args.duration else args.requests or DEFAULT_REQUESTS,
        duration_s=args.duration,
        seed=args.seed,
        users=args.users,
        embedder=args.embedder,
        gateway_config=args.gateway_config,
    )
    try:
        results = run(options)
    except ConfigError as exc:
        print(f"finops-sim: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except (SimulationError, MeasurementError) as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 1
    except InterruptedBeforeStart:
        print(
            "finops-sim: interrupted while checking its inputs, before the run started: "
            f"{args.out} is as it was",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:
        print(
            "finops-sim: interrupted; every process it started has been stopped. "
            f"{args.out} holds at most the partial logs of the phases that ran (no results or "
            "report); the next run replaces them",
            file=sys.stderr,
        )
        return 130
    except OSError as exc:  # a full disk, a folder made read-only during the run
        where = exc.filename or (f"writing in {args.out}" if exc.errno in WRITE_ERRORS else None)
        print(f"finops-sim: {where + ': ' if where else ''}{exc.strerror or exc}", file=sys.stderr)
        return 1
    return _finished(results, args.out)


def _stop_on_signals() -> None:
    """SIGTERM (kill, timeout, a cancelled CI job) and SIGHUP (a closed terminal or a dropped SSH
    session, which left Valkey running) stop the run as Ctrl-C does: every process it started
    is stopped on the way out."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # `nohup finops-sim run` keeps on
        signal.signal(signal.SIGHUP, signal.default_int_handler)
    # Ctrl-C too, even where the run started with SIGINT ignored (a background job of a script):
    # the processes it started get the signal as well and stop, and the run must say it was
    # interrupted, not that they died.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _finished(results: SimulationResults, out: Path) -> int:
    """The summary and where the report is; 1 when too many requests failed to measure."""
    print()
    print(summary_tree(results))
    print(f"\nReport: {out / 'report.md'} (and report.html, results.json, charts/)")
    failed = unmeasured(results)
    if failed:
        print(
            f"finops-sim: {failed}: the reduction is not a measurement (a failed request costs "
            f"$0); the report says so, and {out / 'logs'} says why they failed",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
