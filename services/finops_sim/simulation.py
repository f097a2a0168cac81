"""`finops-sim run`: the same workload through both gateway profiles, then the report.

For each phase: a fresh embedded Valkey, a gateway in that profile writing a per-request log, and
Locust (headless) replaying the scenario, while the gateway process's CPU and memory are sampled.
Afterwards the statistics come from the logs, the report's AI spend is checked against the sum of
the log and against the gateway's ``ai_cost_total``, and results.json, report.md, report.html and
the charts are written. Every process started here is stopped before returning, on errors and
Ctrl-C too.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from tqdm import tqdm

import loadgen
from ai_gateway.domain import GatewayError
from ai_gateway.embeddings import EmbedderUnavailable
from ai_gateway.identity import Identity
from ai_gateway.pricing import default_price_table
from ai_gateway.records import RequestRecord
from ai_gateway.settings import (
    DEFAULT_EMBEDDER,
    Embedder,
    deep_merge,
    load_settings,
    resolve_settings,
    sets_key,
)
from ai_gateway.wiring import open_gateway_embedder
from finops_common.config import ConfigError, read_yaml
from finops_common.machine import describe
from finops_common.phases import PHASES, Phase
from finops_common.process import GatewayProcess, child_process, embedded_valkey, http_json
from loadgen.scenario import Scenario, load_scenario

from .gateway_usage import PhaseUsage, ProcessMeter, scrape
from .report import (
    CHARTS,
    NO_STACK_CONFIGS,
    REPORT_FILES,
    clear_report,
    report_files,
    too_many_failed,
    write_report,
)
from .results import (
    ComputeComparison,
    GatewaySizing,
    GatewayUsage,
    PhaseResult,
    Phases,
    RunInfo,
    SimulationResults,
    compare,
    phase_summary,
    read_log,
)
from .rightsize.strategy import Strategy

if TYPE_CHECKING:
    from .rightsize.stackfile import RecordedWorkload

LOCUSTFILE = Path(loadgen.__file__).with_name("locustfile.py")
CROSS_CHECK_TOLERANCE_USD = 1e-6
RESULTS_FILE = "results.json"


class InterruptedBeforeStart(KeyboardInterrupt):
    """Ctrl-C while the inputs were checked: nothing was cleared nor started."""


class SimulationError(RuntimeError):
    """The simulation could not run, or its numbers do not agree with each other."""


DEFAULT_REQUESTS = 600


@dataclass(frozen=True)
class RunOptions:
    scenario: Path
    out: Path
    requests: int | None = DEFAULT_REQUESTS
    duration_s: float | None = None
    seed: int | None = None
    users: int = 1
    embedder: Embedder = DEFAULT_EMBEDDER
    gateway_config: Path | None = None


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _metric_total(metrics_url: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = scrape(metrics_url)
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


def _watch(
    phase: Phase,
    options: RunOptions,
    locust: subprocess.Popen[bytes],
    usage: PhaseUsage,
    request_log: Path,
) -> None:
    """A progress bar until Locust ends, sampling the gateway's memory meanwhile."""
    total, unit = progress_total(options)
    started = time.monotonic()
    with tqdm(total=total, desc=f"{phase:>11}", unit=unit, leave=True) as bar:
        while locust.poll() is None:
            bar.update(progress_done(options, request_log, time.monotonic() - started) - bar.n)
            usage.tick()
            time.sleep(0.25)
        bar.update((_count_lines(request_log) if options.requests else total) - bar.n)


def progress_total(options: RunOptions) -> tuple[int, str]:
    """The bar's length and unit: requests, or whole seconds of a ``--duration`` run."""
    if options.requests:
        return options.requests, "req"
    return math.ceil(options.duration_s or 0), "s"


def progress_done(options: RunOptions, request_log: Path, elapsed_s: float) -> int:
    """Whole units, so the bar never prints a float's sixteen digits."""
    if options.requests:
        return _count_lines(request_log)
    return min(int(elapsed_s), progress_total(options)[0])


GATEWAY_WARNING = "WARNING ai_gateway: "


def startup_warnings(gateway_log: Path) -> list[str]:
    """What the gateway warned about while starting (routing without its embedding head, say):
    its log goes to a file, and whoever runs the simulation should see it."""
    lines = gateway_log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [
        line.removeprefix(GATEWAY_WARNING) for line in lines if line.startswith(GATEWAY_WARNING)
    ]


@dataclass(frozen=True)
class PhaseFiles:
    """Where a phase writes in the output folder: its request log, the gateway's settings and
    log, Locust's log, and Locust's results (CSV files under a prefix, and an HTML page)."""

    out: Path
    phase: Phase

    @property
    def request_log(self) -> Path:
        return self.out / f"requests-{self.phase}.jsonl"

    @property
    def gateway_config(self) -> Path:
        return self.out / "logs" / f"gateway-{self.phase}.yaml"

    @property
    def gateway_log(self) -> Path:
        return self.out / "logs" / f"gateway-{self.phase}.log"

    @property
    def locust_log(self) -> Path:
        return self.out / "logs" / f"locust-{self.phase}.log"

    @property
    def locust_results(self) -> Path:
        return self.out / "locust" / self.phase

    def written(self) -> list[Path]:
        """What a run of this phase left in the folder."""
        named = [self.request_log, self.gateway_config, self.gateway_log, self.locust_log]
        results = self.locust_results
        locust = [*results.parent.glob(f"{results.name}_*.csv"), results.with_suffix(".html")]
        return [path for path in (*named, *locust) if path.is_file()]


def check_out_folder(options: RunOptions) -> None:
    """Before anything is cleared or started: the folders a run writes in must be folders (a
    file in their place failed only after both phases), and no input file may be one the run
    replaces (a --gateway-config from an earlier run's logs was deleted, then not found)."""
    out = options.out
    for name in ("logs", "locust", CHARTS):
        if (out / name).exists() and not (out / name).is_dir():
            raise SimulationError(
                f"{out / name} is a file, where this run writes its {name} folder: move it, or "
                "choose another --out"
            )
    written = [RESULTS_FILE, *REPORT_FILES, *(PhaseFiles(out, p).request_log.name for p in PHASES)]
    for name in written:
        if (out / name).is_dir():
            raise SimulationError(
                f"{out / name} is a folder, where this run writes its {name}: move it, or choose "
                "another --out"
            )
    phase_files = (path for phase in PHASES for path in PhaseFiles(out, phase).written())
    replaced = {path.resolve() for path in (*phase_files, out / RESULTS_FILE, *report_files(out))}
    for flag, given in (
        ("--scenario", options.scenario),
        ("--gateway-config", options.gateway_config),
    ):
        if given is not None and given.resolve() in replaced:
            raise SimulationError(
                f"{flag} {given} is a file this run replaces in {out}: copy it out of that "
                "folder first, or choose another --out"
            )


def clear_phase_files(out: Path) -> None:
    """Every phase's files from an earlier run: a run that ends early must not leave the other
    phase's older files beside its own, where nothing says they are stale."""
    for phase in PHASES:
        for path in PhaseFiles(out, phase).written():
            path.unlink()


def phase_settings(phase: Phase, options: RunOptions, request_log: Path) -> dict[str, Any]:
    """The config file a phase's gateway gets: latency off, its request log, the run's embedder,
    and for the optimized phase the user's --gateway-config beneath them."""
    settings: dict[str, Any] = {
        "latency_scale": 0,
        "request_log": str(request_log),
        "cache": {"semantic": {"embedder": options.embedder}},
    }
    if phase == "optimized" and options.gateway_config is not None:
        overrides = read_yaml(options.gateway_config) or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{options.gateway_config}: the top level must be a mapping")
        _refuse_run_keys(options.gateway_config, overrides)
        settings = deep_merge(overrides, settings)
    return settings


# What each setting the run gives every phase's gateway is for, by its dotted key.
RUN_SETTINGS = {
    "profile": "the config goes over the optimized profile, which the run starts the phase with",
    "metrics_port": "the run gives each phase's gateway a free port and reads its metrics there",
    "latency_scale": "the run measures with simulated latency off",
    "request_log": "the run writes each phase's request log where it reads it",
    "cache.semantic.embedder": "the embedder is the run's --embedder option",
}


def _refuse_run_keys(config: Path, overrides: dict[str, Any]) -> None:
    """A --gateway-config may not set what the run sets itself: the run's value won, and the
    user's was dropped without a word."""
    for dotted, why in RUN_SETTINGS.items():
        if sets_key(overrides, tuple(dotted.split("."))):
            raise ConfigError(
                f"{config}: `{dotted}` is set by the simulation ({why}); remove it from the "
                "file. A --gateway-config may not set "
                + ", ".join(f"`{key}`" for key in RUN_SETTINGS)
                + "."
            )


def check_stacks() -> None:
    """The stack files the report prices after the phases (the compute line, the gateway's
    sizing), read now: a bad one failed only after both phases, and lost the run."""
    from finops_platform.config import load_stack, stack_file

    from .rightsize.stackfile import read_recommendations

    for stack in PHASES:
        if stack_file(stack).exists():
            load_stack(stack)
    read_recommendations("optimized")


def check_embedder(options: RunOptions) -> None:
    """The optimized gateway's embedder loads, before anything starts: a missing model was found
    only after the whole first phase had run."""
    settings = phase_settings("optimized", options, Path(os.devnull))
    source = str(options.gateway_config or "the optimized phase's settings")
    try:
        open_gateway_embedder(resolve_settings("optimized", settings, source))
    except EmbedderUnavailable as exc:
        raise SimulationError(
            f"the optimized phase cannot open its embedder: {exc} Or run with --embedder "
            "lexical (no model needed: the semantic cache then compares words, and routing uses "
            "its features-only head)."
        ) from exc


@dataclass(frozen=True)
class _Measurement:
    """What the live gateway used and said during a phase; its request log cannot say it."""

    usage: GatewayUsage
    ready_at_end: bool
    metric_cost_usd: float


def _run_phase(
    phase: Phase, options: RunOptions, out: Path
) -> tuple[PhaseResult, list[RequestRecord]]:
    """The phase's summary, and its request log's records (the comparison pairs them)."""
    files = PhaseFiles(out, phase)
    settings = phase_settings(phase, options, files.request_log)
    files.gateway_config.write_text(yaml.safe_dump(settings))
    with ExitStack() as stack:
        redis_url = _start_valkey(stack, phase)
        gateway = _start_gateway(stack, phase, files, redis_url)
        warnings = _relay_startup_warnings(phase, options, files.gateway_log)
        measurement = _measure_under_locust(stack, phase, options, gateway, files)
    records = _read_records(phase, files.request_log, out / "logs")
    summary = PhaseResult(
        **dict(phase_summary(records)),
        metric_cost_usd=measurement.metric_cost_usd,
        gateway_ready_at_end=measurement.ready_at_end,
        gateway_usage=measurement.usage,
        gateway_warnings=tuple(warnings),
    )
    return summary, records


def _start_valkey(stack: ExitStack, phase: Phase) -> str:
    """A fresh Valkey per phase, so nothing the first phase stored carries into the second. A
    failure to start names the phase: it was a traceback, or (a TimeoutError is an OSError) a
    failed write in --out."""
    try:
        return stack.enter_context(embedded_valkey())
    except (RuntimeError, TimeoutError) as exc:  # its port taken, or too slow to answer
        raise SimulationError(f"the {phase} phase's Valkey did not start: {exc}") from exc


def _start_gateway(
    stack: ExitStack, phase: Phase, files: PhaseFiles, redis_url: str
) -> GatewayProcess:
    """The phase's gateway, ready. Its output goes to its log, so a failure to start names it."""
    gateway = GatewayProcess(
        profile=phase,
        config=files.gateway_config,
        redis_url=redis_url,
        log_path=files.gateway_log,
        startup_timeout_s=120,
    )
    try:
        stack.enter_context(gateway)
    except (RuntimeError, TimeoutError) as exc:
        raise SimulationError(
            f"the {phase} gateway did not start: {str(exc).rstrip()}\nIts log: {files.gateway_log}"
        ) from exc
    return gateway


def _relay_startup_warnings(phase: Phase, options: RunOptions, gateway_log: Path) -> list[str]:
    """The gateway's start-up warnings, also printed: they are otherwise only in its log. After a
    lexical run's warnings, how to give the router its model: the flag overrides any config."""
    warnings = startup_warnings(gateway_log)
    for warning in warnings:
        print(f"finops-sim: the {phase} gateway warns: {warning}", file=sys.stderr)
    if warnings and options.embedder == "lexical":
        print(
            "finops-sim: this run chose its embedder with --embedder lexical, over any "
            "config's cache.semantic.embedder: --embedder model2vec uses the model",
            file=sys.stderr,
        )
    return warnings


def _locust_command(options: RunOptions, gateway_url: str, files: PhaseFiles) -> list[str]:
    """Headless Locust replaying the scenario; ``--max-requests 0`` leaves a --duration run to
    ``--run-time``."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(options.users), "-r", str(options.users), "--host", gateway_url,
        "--scenario", str(options.scenario), "--max-requests", str(options.requests or 0),
        "--csv", str(files.locust_results),
        "--html", str(files.locust_results.with_suffix(".html")),
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    if options.seed is not None:
        command += ["--seed", str(options.seed)]
    if options.duration_s is not None:
        command += ["--run-time", f"{int(options.duration_s)}s"]
    return command


def _measure_under_locust(
    stack: ExitStack,
    phase: Phase,
    options: RunOptions,
    gateway: GatewayProcess,
    files: PhaseFiles,
) -> _Measurement:
    """Locust's run against the gateway, metering it throughout, then its readiness and cost
    metric. A gateway that dies meanwhile is an error naming its log, not a URLError traceback."""
    command = _locust_command(options, gateway.url, files)
    usage = PhaseUsage(ProcessMeter(gateway.metrics_url, gateway.pid))
    usage.start()
    locust = stack.enter_context(child_process(command, files.locust_log))
    try:
        _watch(phase, options, locust, usage, files.request_log)
        _check_locust_exit(phase, locust, files.locust_log)
        gateway_usage = usage.finish(_count_lines(files.request_log))
        status, _ = http_json(gateway.url + "/readyz")
        metric_cost = _metric_total(gateway.metrics_url, "ai_cost_total")
    except OSError as exc:
        raise SimulationError(
            f"the {phase} gateway stopped answering while it was measured ({exc}); "
            f"its log: {files.gateway_log}"
        ) from exc
    return _Measurement(
        usage=gateway_usage, ready_at_end=status == 200, metric_cost_usd=metric_cost
    )


def _check_locust_exit(phase: Phase, locust: subprocess.Popen[bytes], locust_log: Path) -> None:
    """Locust exits 1 when some requests failed, which the report counts; any other code is Locust
    itself failing, which its log explains."""
    if locust.returncode not in (0, 1):
        raise SimulationError(
            f"Locust exited with code {locust.returncode} in the {phase} phase; see {locust_log}"
        )


def _read_records(phase: Phase, request_log: Path, logs: Path) -> list[RequestRecord]:
    """The phase's request log, which must hold at least one whole record: every figure of the
    report comes from it."""
    try:
        records = read_log(request_log)
    except ValueError as exc:  # a line cut short: the gateway could not finish writing it
        raise SimulationError(
            f"the {phase} phase's request log is incomplete ({exc}); was the disk full?"
        ) from exc
    if not records:
        raise SimulationError(f"the {phase} phase logged no requests; see {logs}")
    return records


def prices_as_of(logs: list[list[RequestRecord]]) -> dict[str, str]:
    """The list-price date of each model the phases served, from the model table."""
    table = default_price_table()
    served = {r.served_model for log in logs for r in log if r.served_model is not None}
    cards = {name: table.resolve(name) for name in sorted(served)}
    return {name: card.price_as_of for name, card in cards.items() if card is not None}


def cross_check(phase: Phase, summary: PhaseResult) -> None:
    """The report's spend, the log's sum and the gateway's metric must agree to the cent."""
    report_spend, metric = summary.spend_usd, summary.metric_cost_usd
    if abs(report_spend - metric) > CROSS_CHECK_TOLERANCE_USD or round(report_spend, 2) != round(
        metric, 2
    ):
        raise SimulationError(
            f"{phase}: the request log sums to ${report_spend:.6f} but the gateway's "
            f"ai_cost_total says ${metric:.6f}; the report would not be trustworthy"
        )


def compute_comparison() -> ComputeComparison | None:
    """The Kubernetes compute line: the cost model on the two stacks' configs."""
    from finops_platform.config import load_stack, stack_file
    from finops_platform.cost import PRICE_SOURCE, SPOT_DISCOUNTS, CostModelError, compare
    from finops_platform.workload_list import workload_list

    from .rightsize.stackfile import read_recommendations

    if not all(stack_file(s).exists() for s in PHASES):
        return None
    optimized = load_stack("optimized")
    recommendations = read_recommendations("optimized")
    measured = {app for w in recommendations for app in w["apps"]}
    sources = dict.fromkeys(_measured_by(w) for w in recommendations)
    names = [workload.name for workload in workload_list(optimized.workloads)]
    try:
        compared = compare(load_stack("unoptimized"), optimized)
    except CostModelError as exc:
        print(f"finops-sim: the compute line is left out: {exc}", file=sys.stderr)
        return None
    return ComputeComparison(
        **compared,
        price_source=PRICE_SOURCE,
        spot_discounts=SPOT_DISCOUNTS,
        measured_workloads=tuple(name for name in names if name in measured),
        hand_set_workloads=tuple(name for name in names if name not in measured),
        measured_by=tuple(sources),
    )


def _measured_by(recommendation: RecordedWorkload) -> str:
    """What measured a workload's written requests: the head of a run's source ("<run> (<file>):
    <arithmetic>"), or, for ``rightsize --prometheus``, which records none, that command."""
    source = recommendation.get("source")
    if not source:
        return "rightsize --prometheus"
    return source.partition(": ")[0]


def gateway_sizing(
    phase: PhaseResult, stack: str = "optimized"
) -> tuple[GatewaySizing | None, str | None]:
    """The stack's gateway requests from this run's measurement (rightsize.measured), or why
    there are none: no stack configs, or a phase that served nothing to measure (every request
    refused or failed)."""
    from finops_platform.config import load_stack, stack_file

    from .rightsize.measured import cache_memory, size_gateway, stack_arrival

    if not stack_file(stack).exists():
        return None, NO_STACK_CONFIGS
    try:
        sizing = size_gateway(
            phase.gateway_usage,
            phase.latency_ms.p50 or 0.0,
            load_stack(stack),
            stack_arrival(),
            Strategy(),
            cache_memory(),
        )
    except ValueError as exc:
        return None, (
            "The gateway's requests were not derived from this run: the optimized phase served "
            f"{phase.served} of {phase.requests} requests ({exc})."
        )
    if too_many_failed(phase):
        return None, (
            "The gateway's requests were not derived from this run: "
            f"{phase.errors:,} of its {phase.requests:,} optimized requests failed, so its CPU "
            "per request is not a served request's."
        )
    return sizing, None


def check_teams(
    scenario: Scenario, scenario_file: Path, phase: Phase, gateway_config: Path | None
) -> None:
    """Every team of the scenario must reach the phase's gateway as itself, before anything
    starts: an unknown key is answered 401, and a request that failed costs nothing, which the
    comparison would count as saved."""
    settings = load_settings(phase, *([gateway_config] if gateway_config else []))
    identity = Identity(settings)
    problems = []
    for team in scenario.teams:
        try:
            served_as = identity.team(team.key)
        except GatewayError:
            problems.append(f"{team.name} (its key is not one of the gateway's)")
            continue
        if served_as != team.name:
            problems.append(f"{team.name} (its key is the gateway's team {served_as})")
    if not problems:
        return
    found = "; ".join(problems)
    if gateway_config is None:
        raise ConfigError(
            f"{scenario_file}: the {phase} gateway would not serve the scenario's teams as "
            f"named: {found}. The {phase} phase serves the profile's demo teams ("
            + ", ".join(settings.teams)
            + (
                "; --gateway-config can give it others"
                if phase == "optimized"
                else "; the simulation takes no config for this phase"
            )
            + "): give the scenario's teams those names and their demo keys."
        )
    raise ConfigError(
        f"{gateway_config}: the {phase} gateway would not serve the scenario's teams as they are "
        f"named in {scenario_file}: {found}. A config's `teams` replace the profile's as a "
        "whole, so list every team of the scenario ("
        + ", ".join(team.name for team in scenario.teams)
        + ") with the key the scenario gives it, and its routing and limits."
    )


def run(options: RunOptions) -> SimulationResults:
    """Both phases on the same workload, then results.json and the report from their logs."""
    try:
        scenario = _check_before_starting(options)
    except KeyboardInterrupt as exc:
        raise InterruptedBeforeStart from exc
    _prepare_out_folder(options.out)
    started_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    phases, logs = _run_both_phases(options)
    results = _simulation_results(scenario, options, started_at, phases, logs)
    _write_results(results, options.out)
    return results


def _check_before_starting(options: RunOptions) -> Scenario:
    """The scenario, once every input is checked: a bad one fails in seconds, not after a phase."""
    scenario = load_scenario(options.scenario)
    for phase in PHASES:
        # Fails now, naming the user's file and key, before anything starts.
        config = options.gateway_config if phase == "optimized" else None
        check_teams(scenario, options.scenario, phase, config)
    check_embedder(options)
    check_out_folder(options)
    check_stacks()
    return scenario


def _prepare_out_folder(out: Path) -> None:
    """The run's folders, cleared of an earlier run's files, which would pass for this run's."""
    for folder in (out, out / "logs", out / "locust"):
        folder.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).unlink(missing_ok=True)
    clear_report(out)
    clear_phase_files(out)


def _run_both_phases(options: RunOptions) -> tuple[Phases, list[list[RequestRecord]]]:
    """Both phases' summaries and logs; a spend its gateway's own metric disputes stops the run."""
    before, before_log = _run_phase("unoptimized", options, options.out)
    # With --duration, the optimized phase replays exactly the requests the first phase sent, so
    # both phases answer the identical workload.
    same_workload = replace(options, requests=before.requests, duration_s=None)
    after, after_log = _run_phase("optimized", same_workload, options.out)
    phases = Phases(unoptimized=before, optimized=after)
    for phase, summary in phases.items():
        cross_check(phase, summary)
    return phases, [before_log, after_log]


def _simulation_results(
    scenario: Scenario,
    options: RunOptions,
    started_at: str,
    phases: Phases,
    logs: list[list[RequestRecord]],
) -> SimulationResults:
    """All that results.json holds, so the report and `rightsize --from-run` need nothing else."""
    sizing, sizing_note = gateway_sizing(phases.optimized)
    return SimulationResults(
        run=_run_info(scenario, options, started_at, phases, logs),
        phases=phases,
        comparison=compare(*logs),
        compute=compute_comparison(),
        gateway_sizing=sizing,
        gateway_sizing_note=sizing_note,
    )


def _run_info(
    scenario: Scenario,
    options: RunOptions,
    started_at: str,
    phases: Phases,
    logs: list[list[RequestRecord]],
) -> RunInfo:
    """What the figures depend on besides the logs, so two runs' figures can be told apart. The
    requests per phase are those the first phase sent, which a --duration run learns only then."""
    return RunInfo(
        scenario=scenario.name,
        scenario_file=str(options.scenario),
        seed=options.seed if options.seed is not None else scenario.seed,
        requests_per_phase=phases.unoptimized.requests,
        duration_s=options.duration_s,
        users=options.users,
        embedder=options.embedder,
        gateway_config=str(options.gateway_config) if options.gateway_config else None,
        started_at=started_at,
        machine=describe(),
        prices_as_of=prices_as_of(logs),
    )


def _write_results(results: SimulationResults, out: Path) -> None:
    """results.json and the report, whole or not at all: a half-written one passes for finished."""
    try:
        (out / RESULTS_FILE).write_text(results.model_dump_json(indent=2) + "\n", encoding="utf-8")
        write_report(results, out)
    except BaseException:
        # Interrupted or failed while writing: no results or report half written (4 charts of
        # 5 and no report.md); the phases' logs stay, and the message says they are partial.
        (out / RESULTS_FILE).unlink(missing_ok=True)
        clear_report(out)
        raise
