"""Locust locustfile: replays a scenario's request sequence against the gateway.

The same file runs headless on one machine, as Locust master with workers, and with the web UI:

    locust -f services/loadgen/locustfile.py --host http://127.0.0.1:8080 \\
        --scenario services/loadgen/scenarios/default.yaml --seed 42 --max-requests 1000

Each process replays its share of one deterministic sequence (worker k of W takes requests
k, k+W, k+2W, ...; W is --sequence-workers, set on the master), paced by the scenario's arrival
pattern. Ground truth travels as x-sim-*
headers. Once ``--max-requests`` are sent, the users stop and a single-process run quits.
``--team-keys FILE`` sends each team's key from that file instead of the scenario's demo keys.
"""

from __future__ import annotations

import logging
import threading
import time
from itertools import islice
from pathlib import Path

import gevent
from locust import FastHttpUser, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import LocalRunner, Runner, WorkerRunner

from finops_common.arguments import at_least
from finops_common.config import ConfigError
from loadgen.scenario import (
    DEFAULT_SCENARIO,
    Scenario,
    SimRequest,
    generate,
    load_scenario,
    with_team_keys,
)


# Locust's EventHook.add_listener is unannotated.
@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _add_arguments(parser: LocustArgumentParser) -> None:
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="scenario YAML file")
    parser.add_argument("--seed", type=int, default=None, help="overrides the scenario's seed")
    parser.add_argument(
        "--team-keys",
        default="",
        help="YAML file of team name to key, over the scenario's demo keys (a deployed gateway's)",
    )
    parser.add_argument(
        "--max-requests",
        type=at_least(0),
        default=0,
        help="stop after this many requests (0: no limit)",
    )
    parser.add_argument(
        "--sequence-workers",
        type=at_least(1),
        default=1,
        help="with master and workers: how many workers share the sequence (set on the master)",
    )


class Plan:
    """This process's share of the sequence, and the pacing of the arrival pattern."""

    def __init__(
        self, scenario: Scenario, seed: int | None, limit: int, offset: int, stride: int
    ) -> None:
        sequence = generate(scenario, seed)
        stop = None if limit <= 0 else limit
        self._requests = islice(sequence, offset, stop, stride)
        self._arrival = scenario.arrival
        self._stride = stride
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._next_at = self._started
        self.exhausted = False

    def take(self) -> tuple[float, SimRequest | None]:
        """The next request and how long to wait before sending it."""
        with self._lock:
            request = next(self._requests, None)
            if request is None:
                self.exhausted = True
                return 0.0, None
            now = time.monotonic()
            send_at = max(self._next_at, now - 1.0)  # never burst to catch up more than 1 s
            rate = self._arrival.rate_at(send_at - self._started) / self._stride
            self._next_at = send_at + 1.0 / rate
            return max(send_at - now, 0.0), request


PLAN: Plan | None = None


# Locust's EventHook.add_listener is unannotated.
@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _on_start(environment: Environment, **_kwargs: object) -> None:
    global PLAN
    options = environment.parsed_options
    runner = environment.runner
    # Locust fires test_start from the runner, in a process its command line started.
    assert options is not None and runner is not None
    try:
        scenario = load_scenario(Path(options.scenario))
        if options.team_keys:
            scenario = with_team_keys(scenario, Path(options.team_keys))
    except ConfigError as exc:
        _stop(runner, f"invalid scenario or team keys, stopping:\n{exc}")
        return
    if options.sequence_workers < 1 or options.max_requests < 0:
        # The web UI's form takes values without the command line's parsers.
        _stop(
            runner,
            f"invalid options, stopping: --sequence-workers {options.sequence_workers} (at "
            f"least 1), --max-requests {options.max_requests} (at least 0)",
        )
        return
    offset, stride = 0, 1
    if isinstance(runner, WorkerRunner):
        offset, stride = max(runner.worker_index, 0), options.sequence_workers
    PLAN = Plan(scenario, options.seed, options.max_requests, offset, stride)
    if isinstance(runner, LocalRunner):
        gevent.spawn(_quit_when_done, runner)


def _stop(runner: Runner, message: str) -> None:
    """Say why and quit with status 2, as a bad command line does."""
    logging.error("%s", message)
    runner.environment.process_exit_code = 2
    gevent.spawn(runner.quit)


def _quit_when_done(runner: LocalRunner) -> None:
    while not (PLAN and PLAN.exhausted and runner.user_count == 0):
        gevent.sleep(0.2)
    runner.quit()


class GatewayUser(FastHttpUser):
    """Sends the plan's requests one after another; no think time beyond the pacing."""

    @task
    def send(self) -> None:
        if PLAN is None:
            raise StopUser()
        wait, request = PLAN.take()
        if request is None:
            raise StopUser()
        if wait:
            gevent.sleep(wait)
        self.client.post(
            request.path(),
            json=request.body(),
            headers=request.headers(),
            name=f"{request.path()} [{request.kind}]",
        )
