"""The child-process harness: output goes to the log, and the process is gone afterwards."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from finops_common import process as process_module
from finops_common.process import GatewayProcess, child_process, free_port, stop, wait_ready


def test_a_child_process_is_stopped_when_the_block_ends(tmp_path):
    log = tmp_path / "child.log"
    script = "import sys, time; print('started', flush=True); time.sleep(60)"
    with child_process([sys.executable, "-c", script], log) as process:
        while b"started" not in log.read_bytes():
            assert process.poll() is None
    assert process.returncode is not None  # stopped, not left sleeping for 60 s
    assert log.read_text() == "started\n"


def test_a_child_process_is_stopped_when_the_block_fails(tmp_path):
    try:
        with child_process([sys.executable, "-c", "import time; time.sleep(60)"],
                           tmp_path / "child.log") as process:  # fmt: skip
            raise KeyError("boom")
    except KeyError:
        pass
    assert process.returncode is not None


def test_a_free_port_can_be_bound():
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_ready_names_the_exit_and_quotes_the_log(tmp_path):
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "print('bad config: port'); raise SystemExit(3)"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        with pytest.raises(RuntimeError, match=r"server exited with 3:\n.*bad config: port"):
            wait_ready(process, f"http://127.0.0.1:{free_port()}/", 30, "server", log)


def test_wait_ready_gives_up_at_its_deadline_and_stop_ends_the_process(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(TimeoutError, match="sleeper was not ready within 1 s"):
            wait_ready(process, f"http://127.0.0.1:{free_port()}/", 1, "sleeper", None)
    finally:
        stop(process, signal.SIGINT, timeout_s=5)
    assert process.returncode is not None


def test_wait_ready_returns_once_the_url_answers(tmp_path):
    port = free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    process = subprocess.Popen(server, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}/", 30, "http.server", None)
        assert process.poll() is None
    finally:
        stop(process)


def test_an_interrupt_while_the_gateway_starts_stops_it(monkeypatch, tmp_path):
    """Ctrl-C during the wait for /readyz: the gateway is not in any ExitStack yet."""
    started: list[subprocess.Popen] = []

    def interrupted(process, *_args):
        started.append(process)
        raise KeyboardInterrupt

    monkeypatch.setattr(process_module, "wait_ready", interrupted)
    gateway = GatewayProcess(profile="unoptimized", log_path=tmp_path / "gateway.log")
    with pytest.raises(KeyboardInterrupt):
        gateway.start()
    assert started and started[0].poll() is not None
