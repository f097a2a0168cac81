"""The child-process harness: output goes to the log, and the process is gone afterwards."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def test_an_embedded_valkey_answers_and_is_gone_afterwards():
    with process_module.embedded_valkey() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"SET k v\r\nGET k\r\n")
            assert wait_for_bytes(sock, b"$1\r\nv\r\n")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def wait_for_bytes(sock: socket.socket, expected: bytes) -> bool:
    received = b""
    while expected not in received:
        chunk = sock.recv(1024)
        if not chunk:
            return False
        received += chunk
    return True


PARENT = """
import sys, time
from pathlib import Path
from finops_common.process import GatewayProcess, child_process, embedded_valkey
out = Path(sys.argv[1])
with embedded_valkey() as url, GatewayProcess(profile="unoptimized") as gateway:
    with child_process([sys.executable, "-c", "import time; time.sleep(120)"], out / "c.log") as c:
        valkey = int(url.rsplit(":", 1)[1].split("/")[0])
        (out / "started").write_text(f"{gateway.pid} {c.pid} {valkey} {gateway.port}")
        time.sleep(120)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_children_stop_when_their_parent_is_killed(tmp_path):
    """SIGKILL runs no finally block: the kernel stops the gateway, Valkey and any child."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)])
    try:
        started = tmp_path / "started"
        deadline = time.monotonic() + 60
        while not started.exists():
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        gateway_pid, child_pid, valkey_port, gateway_port = map(int, started.read_text().split())
    finally:
        parent.kill()
        parent.wait()
    for port in (valkey_port, gateway_port):
        assert closes_within(port, 15), f"port {port} still answers after its parent was killed"
    for pid in (gateway_pid, child_pid):
        assert gone_within(pid, 15), f"process {pid} outlived its killed parent"


def closes_within(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.1)
    return False


def gone_within(pid: int, timeout_s: float) -> bool:
    """Gone or a zombie (its parent, killed, reaped it no more: init does)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def test_ports_chosen_together_are_distinct_and_skip_the_taken_ones():
    """Two free_port() calls in a row can return the same port (about 1 in 2,000 here): the
    gateway's API and metrics ports once did, and the metrics listener failed a CI run."""
    for _ in range(200):
        api, metrics = process_module.free_ports(2)
        assert api != metrics
        (other,) = process_module.free_ports(1, taken=[api])
        assert other != api
    gateway = GatewayProcess(profile="unoptimized", port=free_port())
    assert gateway.port != gateway.metrics_port


def test_a_valkey_that_cannot_start_says_why_and_leaves_no_folder(monkeypatch):
    """Its port taken: the error quotes valkey-server's own words. It writes no file of its
    own, so a parent killed with it (SIGKILL runs no clean-up) leaves no folder behind."""
    before = set(Path(tempfile.gettempdir()).glob("finops-valkey-*"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(process_module, "free_port", lambda: taken.getsockname()[1])
        refused = pytest.raises(RuntimeError, match=r"(?s)exited with 1:\n.*Address already")
        with refused, process_module.embedded_valkey():
            pass
    assert set(Path(tempfile.gettempdir()).glob("finops-valkey-*")) == before
