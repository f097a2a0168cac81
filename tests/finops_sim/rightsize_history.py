"""Synthetic Prometheus history for `finops-sim rightsize`, and a real Prometheus serving it.

The history is what a cluster running the optimized stack would leave in Prometheus: cAdvisor's
``container_cpu_usage_seconds_total`` and ``container_memory_working_set_bytes`` per container,
and kube-state-metrics' ``kube_pod_labels`` with ``label_app``, each container's memory limit
(``kube_pod_container_resource_limits``) and, once a container is OOM-killed, its
``kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}``, scraped every minute.

To make the expected figures computable by hand, CPU usage is constant within each 5-minute block
``(t - 300, t]`` (t a multiple of 300), samples fall 30 s inside the minute (t - 270, ..., t - 30)
and every container starts at a block boundary with a fresh counter. Then Prometheus'
``rate(...[5m])`` at step t is exactly that block's rate, whether its range selector includes the
left edge (2.x) or not (3.x): the five samples span 240 s, and rate() extrapolates by the 30 s to
each edge (at a fresh counter, its zero-point limit is exactly that 30 s too). A counter reset is
a container restarting in place between two scrapes.

``generate()`` gives the scenario the tests and the README's chart use: a daily cycle, bursts, a
spike before the window, a memory leak, a restarted pod, a counter reset, an OOM kill whose peak
no sample shows, a workload with too little history, and series that must not count (another
namespace, the pod-level and pause containers).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from finops_common.process import free_port, stop, wait_ready

BLOCK_S = 300
SCRAPE_S = 60
OFFSET_S = 30  # samples at t - 270, t - 210, ..., t - 30 inside block (t - 300, t]
MIB = 2**20
END = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp())
SPAN_S = 52 * 3600  # history written: the 2-day window and 4 hours before it
WINDOW_S = 48 * 3600
NAMESPACE = "finops"


@dataclass
class Container:
    """One container instance: a block rate per 5-minute block, a working set per sample."""

    namespace: str
    app: str
    pod: str
    container: str
    cpu_by_block: dict[int, float] = field(default_factory=dict)  # block end -> cores
    memory_by_sample: dict[int, float] = field(default_factory=dict)  # timestamp -> bytes
    # Samples whose counter restarted from zero at the previous sample (a restart in place).
    resets: tuple[int, ...] = ()
    memory_limit: float = 1024 * MIB
    oom_killed_at: int | None = None  # the container restarted in place after an OOM kill

    @property
    def state_labels(self) -> str:
        """kube-state-metrics' labels for a container (it has no pod-level or pause series)."""
        where = f'namespace="{self.namespace}",pod="{self.pod}",container="{self.container}"'
        return f'{where},job="kube-state-metrics",instance="10.0.0.7:8080"'

    @property
    def cadvisor_labels(self) -> str:
        where = f'namespace="{self.namespace}",pod="{self.pod}"'
        return f'container="{self.container}",{where},job="kubelet"'

    def samples(self) -> list[int]:
        return sorted(self.memory_by_sample)

    def counter(self) -> list[tuple[int, float]]:
        """The cumulative CPU seconds at each sample, as cAdvisor exports them."""
        points, total, previous = [], 0.0, None
        for ts in self.samples():
            rate = self.cpu_by_block[_block_end(ts)]
            step = rate * (OFFSET_S if previous is None else ts - previous)
            total = step if ts in self.resets else total + step
            points.append((ts, total))
            previous = ts
        return points


def _block_end(ts: int) -> int:
    return ts - ts % BLOCK_S + BLOCK_S


@dataclass
class History:
    containers: list[Container]

    def of(self, app_prefix: str, container: str, namespace: str = NAMESPACE) -> list[Container]:
        return [
            c
            for c in self.containers
            if c.app.startswith(app_prefix)
            and c.container == container
            and c.namespace == namespace
        ]

    def openmetrics(self) -> str:
        """OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`."""
        lines = []
        for c in self.containers:
            lines.extend(
                f"container_cpu_usage_seconds_total{{{c.cadvisor_labels}}} {v!r} {ts}"
                for ts, v in c.counter()
            )
        for c in self.containers:
            lines.extend(
                f"container_memory_working_set_bytes{{{c.cadvisor_labels}}} {v!r} {ts}"
                for ts, v in sorted(c.memory_by_sample.items())
            )
        pods: dict[tuple[str, str], tuple[str, list[int]]] = {}
        for c in self.containers:
            pods.setdefault((c.namespace, c.pod), (c.app, c.samples()))
        for (namespace, pod), (app, samples) in sorted(pods.items()):
            labels = (
                f'namespace="{namespace}",pod="{pod}",label_app="{app}",label_team="t",'
                'job="kube-state-metrics",instance="10.0.0.7:8080"'
            )
            lines.extend(f"kube_pod_labels{{{labels}}} 1 {ts}" for ts in samples)
        states = [c for c in self.containers if c.container not in ("", "POD")]
        for c in states:
            labels = f'{c.state_labels},resource="memory",unit="byte"'
            lines.extend(
                f"kube_pod_container_resource_limits{{{labels}}} {c.memory_limit!r} {ts}"
                for ts in c.samples()
            )
        for c in states:
            if c.oom_killed_at is not None:
                labels = f'{c.state_labels},reason="OOMKilled"'
                lines.extend(
                    f"kube_pod_container_status_last_terminated_reason{{{labels}}} 1 {ts}"
                    for ts in c.samples()
                    if ts >= c.oom_killed_at
                )
        return "\n".join(lines) + "\n# EOF\n"


def _container(
    rng: random.Random,
    namespace: str,
    app: str,
    pod: str,
    name: str,
    start: int,
    end: int,
    cpu,
    memory,
) -> Container:
    """Blocks (start, end]: ``cpu(t)`` cores per block, ``memory(t)`` bytes per sample."""
    c = Container(namespace, app, pod, name)
    for block_end in range(start + BLOCK_S, end + 1, BLOCK_S):
        c.cpu_by_block[block_end] = round(max(0.001, cpu(block_end, rng)), 6)
        for ts in range(block_end - BLOCK_S + OFFSET_S, block_end, SCRAPE_S):
            c.memory_by_sample[ts] = float(round(max(MIB, memory(ts, rng))))
    return c


def _daily(t: int, peak_hour: float = 15) -> float:
    """0..1, highest at ``peak_hour`` UTC every day."""
    return 0.5 + 0.5 * math.cos(2 * math.pi * (t / 3600 - peak_hour) / 24)


def generate(seed: int = 7) -> History:
    rng = random.Random(seed)
    start = END - SPAN_S
    restart = END - 20 * 3600  # gateway pod B is replaced (its memory leaked)
    spike = {END - 50 * 3600 + k * BLOCK_S for k in (1, 2, 3)}  # blocks before the window
    bursts = {END - h * 3600 for h in (3, 9, 17, 26, 31, 40)}

    def gateway_cpu(t: int, r: random.Random) -> float:
        if t in spike:
            return 1.8
        burst = 0.45 if any(0 <= t - b < 3 * BLOCK_S for b in bursts) else 0.0
        return 0.06 + 0.16 * _daily(t) + burst + r.uniform(0, 0.03)

    def gateway_memory(t: int, r: random.Random) -> float:
        if _block_end(t) in spike:
            return 950 * MIB
        return (250 + 30 * _daily(t)) * MIB + r.uniform(0, 8 * MIB)

    def leaking_memory(t: int, r: random.Random) -> float:
        return (260 + 330 * (t - start) / (restart - start)) * MIB + r.uniform(0, 4 * MIB)

    def light_cpu(t: int, r: random.Random) -> float:
        return 0.008 + 0.02 * _daily(t, 12) + r.uniform(0, 0.006)

    def light_memory(t: int, r: random.Random) -> float:
        return 24 * MIB + r.uniform(0, 14 * MIB)

    def worker_cpu(t: int, r: random.Random) -> float:
        return 0.12 + 0.2 * _daily(t, 18) + r.uniform(0, 0.04)

    def worker_memory(t: int, r: random.Random) -> float:
        return (110 + 20 * _daily(t, 18)) * MIB + r.uniform(0, 6 * MIB)

    def redis_memory(t: int, r: random.Random) -> float:
        return (120 + 90 * (t - start) / SPAN_S) * MIB + r.uniform(0, 2 * MIB)

    def make(namespace, app, pod, name, begin, finish, cpu, memory):
        return _container(rng, namespace, app, pod, name, begin, finish, cpu, memory)

    gw = "ai-gateway"
    containers = [
        make(
            NAMESPACE,
            gw,
            "ai-gateway-7c9d8f-2x4kq",
            "gateway",
            start,
            END,
            gateway_cpu,
            gateway_memory,
        ),
        make(
            NAMESPACE,
            gw,
            "ai-gateway-7c9d8f-9pz7w",
            "gateway",
            start,
            restart,
            gateway_cpu,
            leaking_memory,
        ),
        make(
            NAMESPACE,
            gw,
            "ai-gateway-7c9d8f-h6r2m",
            "gateway",
            restart,
            END,
            gateway_cpu,
            gateway_memory,
        ),
        make(
            NAMESPACE,
            "redis",
            "redis-5b6c7d-q8w2e",
            "valkey",
            start,
            END,
            lambda t, r: 0.02 + 0.02 * _daily(t) + r.uniform(0, 0.005),
            redis_memory,
        ),
        make(
            NAMESPACE,
            "locust-master",
            "locust-master-6d5f4-m3n8b",
            "master",
            END - 6 * 3600,
            END,
            lambda t, r: 0.05 + r.uniform(0, 0.02),
            lambda t, r: 90 * MIB + r.uniform(0, 4 * MIB),
        ),
    ]
    for worker in ("locust-worker-8f7e6-a1b2c", "locust-worker-8f7e6-d3e4f"):
        containers.append(
            make(
                NAMESPACE, "locust-worker", worker, "worker", start, END, worker_cpu, worker_memory
            )
        )
    # The first worker's container restarts in place: its counter starts again from zero.
    containers[-2].resets = (END - 30 * 3600 + 3 * SCRAPE_S + OFFSET_S,)
    # The second is OOM-killed at a 192Mi limit by a burst between two scrapes, so its samples
    # (at most about 136Mi) never show it, and restarts in place.
    oom = END - 10 * 3600 + OFFSET_S
    containers[-1].memory_limit, containers[-1].oom_killed_at = 192 * MIB, oom
    containers[-1].resets = (oom,)
    for service in range(6):
        for replica in ("x7k2p", "r4t9w"):
            app = f"demo-service-{service}"
            containers.append(
                make(
                    NAMESPACE,
                    app,
                    f"{app}-5f6g7-{replica}",
                    "service",
                    start,
                    END,
                    light_cpu,
                    light_memory,
                )
            )
    # Series that must not count: another namespace, and the pod-level and pause containers.
    containers.append(
        make(
            "staging",
            gw,
            "ai-gateway-5d4c3b-s1t2u",
            "gateway",
            start,
            END,
            lambda t, r: 3.0,
            lambda t, r: 2048 * MIB,
        )
    )
    # Staging's gateway was OOM-killed at 4Gi: another namespace, so it must not count.
    containers[-1].memory_limit, containers[-1].oom_killed_at = 4096 * MIB, END - 5 * 3600
    first = containers[0]
    for name, scale in (("", 1.4), ("POD", 0.01)):
        containers.append(
            make(
                NAMESPACE,
                gw,
                first.pod,
                name,
                start,
                END,
                lambda t, r, s=scale: gateway_cpu(t, r) * s + 0.1,
                lambda t, r, s=scale: gateway_memory(t, r) * s + 400 * MIB,
            )
        )
    return History(containers)


def binaries() -> tuple[str, str] | None:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    return (prometheus, promtool) if prometheus and promtool else None


@contextmanager
def serve(history: History, workdir: Path) -> Iterator[str]:
    """Backfill the history into blocks and run Prometheus on them (127.0.0.1, a free port);
    the server is stopped when the block exits, on an error too."""
    prometheus, promtool = binaries() or ("prometheus", "promtool")
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "history.om.txt"
    source.write_text(history.openmetrics(), encoding="utf-8")
    data = workdir / "data"
    subprocess.run(
        # One block per 30 hours, not per 2 hours: promtool reads the whole file once per block.
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=30h",
            str(source),
            str(data),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    config = workdir / "prometheus.yml"
    config.write_text("global: {}\n", encoding="utf-8")
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "GOMAXPROCS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, f"{url}/-/ready", 60, "Prometheus", workdir / "prometheus.log")
        yield url
    finally:
        stop(process, timeout_s=20)
        log.close()
