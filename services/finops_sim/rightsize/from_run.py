"""`finops-sim rightsize --from-run results.json`: the gateway's requests from the simulation.

The measurement is a file (the run's results.json), so sizing and writing are a separate,
repeatable step, like sizing from Prometheus: the same stack-file writer, the same validation,
and a note above the key that cites the figures and the run's date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import ValidationError

from finops_common.config import ConfigError, describe_validation_error
from finops_platform.config import StackConfig
from finops_platform.workload_list import GATEWAY, GATEWAY_CONTAINER

from ..report import unmeasured
from ..results import GatewaySizing, SimulationResults
from .measured import cache_memory, size_gateway, stack_arrival
from .stackfile import RequestChange, recommendations_file, write_recommendations, write_requests
from .strategy import MIB, Strategy
from .targets import RESOURCES_KEY

GATEWAY_KEY = RESOURCES_KEY[GATEWAY]


def read_results(path: Path) -> SimulationResults:
    try:
        return SimulationResults.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text; --from-run takes the results.json a `finops-sim run` "
            "writes (out/demo/results.json)"
        ) from exc
    except ValidationError as exc:
        if any(problem["type"] == "json_invalid" for problem in exc.errors()):
            raise ConfigError(
                f"{path}: not JSON; --from-run takes the results.json a `finops-sim run` "
                "writes (out/demo/results.json)"
            ) from exc
        problems = describe_validation_error(exc, str(path))
        raise ConfigError(
            f"{path}: not the results.json of this version's `finops-sim run`:\n{problems}"
        ) from exc


def explanation(sizing: GatewaySizing) -> str:
    """How the figures give the request, in one paragraph of plain text."""
    return (
        f"measured: {sizing.measured_cpu_millicores:.0f}m CPU at "
        f"{sizing.measured_requests_per_second:.1f} req/s = "
        f"{sizing.cpu_seconds_per_request * 1000:.2f} ms CPU per request; peak RSS "
        f"{sizing.peak_rss_bytes / MIB:.0f}Mi\n"
        f"stack {sizing.stack}: min(P{sizing.stack_rate_percentile:g} arrival "
        f"{sizing.arrival_requests_per_second:.1f} req/s, {sizing.locust_users} users / "
        f"{sizing.latency_p50_ms / 1000:.2f} s p50 latency = "
        f"{sizing.users_ceiling_requests_per_second:.1f} req/s) = "
        f"{sizing.stack_requests_per_second:.1f} req/s / {sizing.stack_replicas} replicas = "
        f"{sizing.requests_per_second_per_replica:.1f} req/s per replica\n"
        f"CPU: {sizing.cpu_target_m:.1f}m -> {sizing.cpu_request_m}m "
        f"(now {sizing.stack_cpu_request_m}m); memory: max(peak, "
        f"{sizing.full_cache_rss_bytes / MIB:.0f}Mi peak at {sizing.full_cache_entries:,} "
        f"semantic entries) +{sizing.memory_headroom:.0%} = "
        f"{sizing.memory_target_bytes / MIB:.1f}Mi -> {sizing.memory_bytes // MIB}Mi "
        f"(now {sizing.stack_memory_request_bytes // MIB}Mi)"
    )


def note(sizing: GatewaySizing, results: SimulationResults, source: Path) -> str:
    """The stack file's comment: the figures and the run's date, on one line."""
    return (
        f"finops-sim run {results.run.started_at[:10]} ({source}): "
        f"{sizing.cpu_seconds_per_request * 1000:.2f} ms CPU/request x "
        f"{sizing.requests_per_second_per_replica:.1f} req/s per replica "
        f"(min(P{sizing.stack_rate_percentile:g} arrival, {sizing.locust_users} users / p50 "
        f"{sizing.latency_p50_ms / 1000:.2f} s) / {sizing.stack_replicas}) = "
        f"{sizing.cpu_target_m:.0f}m; max(demo peak RSS {sizing.peak_rss_bytes / MIB:.0f}Mi, "
        f"peak RSS at {sizing.full_cache_entries:,} semantic entries "
        f"{sizing.full_cache_rss_bytes / MIB:.0f}Mi measured {sizing.full_cache_measured} by "
        f"bench/warmup_bench.py) +{sizing.memory_headroom:.0%} (finops_sim/rightsize/measured.py)"
    )


def record_recommendation(stack: str, change: RequestChange) -> Path:
    """Keep the request just written in ``stacks/rightsize.<stack>.json``, where the policy
    pack reads a container's measured ceiling (the stack's general ceiling is for containers
    nobody measured); other workloads' entries stay."""
    path = recommendations_file(stack)
    document = json.loads(path.read_text()) if path.exists() else {"workloads": []}
    others = [
        w
        for w in document["workloads"]
        if not (w.get("container") == GATEWAY_CONTAINER and GATEWAY in w.get("apps", []))
    ]
    entry = {
        "apps": [GATEWAY],
        "container": GATEWAY_CONTAINER,
        "recommendation": {"cpu": change.cpu, "memory": change.memory},
        "source": change.note,
    }
    path, _ = write_recommendations(stack, {**document, "workloads": [*others, entry]})
    return path


def run(source: Path, config: StackConfig, strategy: Strategy, write: bool) -> int:
    profile = config.workloads.gateway_profile
    if profile != "optimized":
        print(
            f"finops-sim: stack {config.stack} runs the gateway's {profile} profile, and "
            "--from-run sizes the gateway from the run's optimized phase: use a stack with "
            "gatewayProfile: optimized",
            file=sys.stderr,
        )
        return 2
    try:
        results = read_results(source)
        failed = unmeasured(results)
        if failed:
            raise ConfigError(
                f"{source}: {failed}, so it is not a measurement of the gateway; run it again"
            )
        optimized = results.phases.optimized
        sizing = size_gateway(
            optimized.gateway_usage,
            optimized.latency_ms.p50 or 0.0,
            config,
            stack_arrival(),
            strategy,
            cache_memory(),
        )
    except (ConfigError, ValueError) as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 2
    print(explanation(sizing))
    if not write:
        return 0
    change = RequestChange(
        workload="gateway",
        key=GATEWAY_KEY,
        cpu=f"{sizing.cpu_request_m}m",
        memory=f"{sizing.memory_bytes // MIB}Mi",
        note=note(sizing, results, source),
    )
    try:
        write_requests(config.stack, [change])
    except ConfigError as exc:
        print(f"finops-sim: {exc}", file=sys.stderr)
        return 2
    record_recommendation(config.stack, change)
    print(
        f"\nWrote the gateway's requests into stacks/Pulumi.{config.stack}.yaml; "
        f"`finops-sim cost --compare unoptimized {config.stack}` shows the effect."
    )
    return 0
