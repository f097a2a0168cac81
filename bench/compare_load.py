"""The comparison's load: Locust runs (throughput) and a small asyncio client (fixed rate, fills).

The asyncio client speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) to add little
of its own time to what it measures.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from compare_report import summarize
from compare_workload import PATH

LOCUSTFILE = Path(__file__).with_name("compare_locustfile.py")


def run_locust(
    hosts: list[str],
    api_key: str,
    *,
    unique: bool,
    run: int,
    expect_cache: str,
    users: int,
    duration_s: int,
    prefix: list[str],
) -> dict:
    """One headless Locust run of ``duration_s``; ``prefix`` pins it (``taskset -c N``)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = {
            **os.environ,
            "BENCH_HOSTS": ",".join(hosts),
            "BENCH_API_KEY": api_key,
            "BENCH_PROMPTS": "unique" if unique else "repeat",
            "BENCH_RUN": str(run),
            "BENCH_EXPECT_CACHE": expect_cache,
            "BENCH_RESULT": str(result),
        }
        cmd = [
            *prefix, sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(users), "-r", str(users), "--host", hosts[0], "--run-time", f"{duration_s}s",
            "--stop-timeout", "5", "--only-summary", "--loglevel", "ERROR",
        ]  # fmt: skip
        done = subprocess.run(
            cmd, env=env, timeout=duration_s + 90, capture_output=True, text=True, check=False
        )
        if not result.exists():
            raise RuntimeError(
                f"locust wrote no result (exit {done.returncode}):\n{done.stderr[-3000:]}"
            )
        data = json.loads(result.read_text())
    return summarize(data["latencies_ms"], data["elapsed_s"], data["outcomes"])


class Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON and reads Content-Length answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, head: bytes, body: bytes) -> tuple[int, dict[str, str]]:
        self._writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the keep-alive connection")
        headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        await self._reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers

    def close(self) -> None:
        self._writer.close()


class Client:
    """Posts chat completions to one server over a pool of keep-alive connections."""

    def __init__(self, url: str, api_key: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._head = (
            f"POST {PATH} HTTP/1.1\r\nhost: {self._host}:{self._port}\r\n"
            f"authorization: Bearer {api_key}\r\ncontent-type: application/json\r\n"
            "content-length: "
        ).encode()
        self._idle: list[Connection] = []

    async def post(self, body: bytes, timeout_s: float = 30.0) -> tuple[int, str]:
        """The status and the ``x-gateway-cache`` header; the connection returns to the pool.

        A pooled connection the server closed while idle (uvicorn's keep-alive timeout) is
        replaced by a new one once; a new connection's failure counts.
        """
        while self._idle:
            connection = self._idle.pop()
            try:
                return await self._post_on(connection, body, timeout_s)
            except ConnectionResetError:
                continue
        connection = await Connection.open(self._host, self._port)
        return await self._post_on(connection, body, timeout_s)

    async def _post_on(
        self, connection: Connection, body: bytes, timeout_s: float
    ) -> tuple[int, str]:
        try:
            status, headers = await asyncio.wait_for(connection.post(self._head, body), timeout_s)
        except BaseException:
            connection.close()
            raise
        self._idle.append(connection)
        return status, headers.get("x-gateway-cache", "")

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _outcome(status: int, cache: str, expect_cache: str) -> str:
    if status != 200:
        return f"status {status}"
    if expect_cache and cache != expect_cache:
        return f"cache {cache or 'none'}"
    return "ok"


async def fixed_rate(
    url: str,
    api_key: str,
    bodies: Iterator[bytes],
    rate: float,
    duration_s: float,
    expect_cache: str,
) -> dict:
    """Open loop: request i is due at i / rate; its latency counts from when it was due."""
    loop = asyncio.get_running_loop()
    client = Client(url, api_key)
    latencies_ms: list[float] = []
    outcomes: Counter[str] = Counter()

    async def one(body: bytes, due: float) -> None:
        try:
            status, cache = await client.post(body)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            outcomes[f"error {type(exc).__name__}"] += 1
            return
        outcome = _outcome(status, cache, expect_cache)
        outcomes[outcome] += 1
        if outcome == "ok":
            latencies_ms.append((loop.time() - due) * 1000)

    started = loop.time()
    tasks = []
    for i in range(int(rate * duration_s)):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        tasks.append(asyncio.create_task(one(next(bodies), due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - started
    client.close()
    return summarize(latencies_ms, elapsed, dict(outcomes))


async def closed_loop(
    url: str,
    api_key: str,
    bodies: Iterator[bytes],
    concurrency: int,
    deadline_s: float,
    on_answer: Callable[[int, str], None],
) -> None:
    """``concurrency`` requests in flight until ``bodies`` runs out or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    client = Client(url, api_key)

    async def worker() -> None:
        for body in bodies:
            if loop.time() > deadline:
                return
            on_answer(*await client.post(body))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    client.close()
