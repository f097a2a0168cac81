"""`finops-sim`: the local simulation and, later, the stack tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ai_gateway.config_errors import ConfigError
from loadgen.scenario import DEFAULT_SCENARIO

from .report import summary_tree
from .simulation import RunOptions, SimulationError, run


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is invalid: must be at least 1")
    return value


def _duration(text: str) -> float:
    """Seconds, or a number with s, m or h."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: use e.g. 90, 90s, 5m") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must be positive")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="finops-sim", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser(
        "run", help="run the workload through the unoptimized and optimized gateway locally"
    )
    run_cmd.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    length = run_cmd.add_mutually_exclusive_group()
    length.add_argument("--requests", type=_positive_int, help="requests per phase (default 600)")
    length.add_argument("--duration", type=_duration, help="time per phase, e.g. 45s or 2m")
    run_cmd.add_argument("--seed", type=int, help="overrides the scenario's seed")
    run_cmd.add_argument("--out", type=Path, default=Path("out"), help="output folder (./out)")
    run_cmd.add_argument(
        "--users", type=_positive_int, default=1,
        help="concurrent Locust users (1 keeps the request order, and so the numbers, "
        "identical from run to run)",
    )  # fmt: skip
    run_cmd.add_argument(
        "--embedder", choices=["model2vec", "lexical"], default="model2vec",
        help="semantic cache embedder of the optimized phase",
    )  # fmt: skip
    render_cmd = commands.add_parser(
        "render", help="write what a stack would deploy (Kubernetes objects, Helm releases, AWS)"
    )
    render_cmd.add_argument("--stack", required=True, help="stack name: stacks/Pulumi.<stack>.yaml")
    render_cmd.add_argument(
        "--out", type=Path, default=None, help="output folder (out/render/STACK)"
    )
    run_cmd.add_argument(
        "--gateway-config",
        type=Path,
        help="gateway settings applied over the optimized profile (e.g. smaller team budgets)",
    )
    return root


def render(args: argparse.Namespace) -> int:
    from finops_platform.config import stack_file
    from finops_platform.render import write

    if not stack_file(args.stack).exists():
        print(f"finops-sim: no stack config {stack_file(args.stack)}", file=sys.stderr)
        return 2
    out = args.out or Path("out") / "render" / args.stack
    try:
        counts = write(args.stack, out)
    except ConfigError as exc:
        print(f"finops-sim: configuration error:\n{exc}", file=sys.stderr)
        return 2
    print(
        f"{counts['kubernetes']} Kubernetes objects in {out / 'kubernetes'}, "
        f"{counts['helm']} Helm releases in {out / 'helm'}, "
        f"{counts['aws']} AWS resources in {out / 'aws-resources.json'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "render":
        return render(args)
    requests = args.requests if args.requests or args.duration else 600
    options = RunOptions(
        scenario=args.scenario,
        out=args.out,
        requests=None if args.duration else requests,
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
    except SimulationError as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("finops-sim: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    print()
    print(summary_tree(results))
    print(f"\nReport: {args.out / 'report.md'} (and report.html, results.json, charts/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
