"""How many requests per second the load generator sustains on one core.

Locust (one process, pinned to CPU 0) replays the default scenario with pacing lifted, against a
minimal HTTP responder pinned to CPU 1 that answers every request with a fixed small JSON body,
so the load generator, not the target, is the bottleneck. Bounded in time; only 127.0.0.1.

    .venv/bin/python bench/loadgen_bench.py [--seconds 20] [--users 64]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

import loadgen
from finops_common.arguments import at_least
from finops_common.process import free_port
from loadgen.scenario import DEFAULT_SCENARIO

RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    b"connection: keep-alive\r\n\r\n{}"
)


def serve(port: int) -> None:
    """A keep-alive HTTP responder: reads one request (headers + body), writes RESPONSE."""
    os.sched_setaffinity(0, {1})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=at_least(1), default=20)
    parser.add_argument("--users", type=at_least(1), default=64)
    args = parser.parse_args()
    port = free_port()
    target = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    target.start()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = yaml.safe_load(DEFAULT_SCENARIO.read_text())
        scenario["arrival"] = {"pattern": "steady", "rate_per_second": 10_000}
        path = Path(tmp) / "unpaced.yaml"
        path.write_text(yaml.safe_dump(scenario))
        cmd = [
            "taskset", "-c", "0", sys.executable, "-m", "locust",
            "-f", str(Path(loadgen.__file__).with_name("locustfile.py")), "--headless",
            "-u", str(args.users), "-r", str(args.users), "--host", f"http://127.0.0.1:{port}",
            "--scenario", str(path), "--run-time", f"{args.seconds}s",
            "--csv", str(Path(tmp) / "run"), "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, timeout=args.seconds + 60, capture_output=True, text=True)
            if done.returncode not in (0, 1):  # 1: some requests failed, reported below
                sys.exit(f"locust failed:\n{done.stderr[-2000:]}")
        finally:
            target.terminate()
            target.join(timeout=10)
        with open(Path(tmp) / "run_stats.csv") as handle:
            total = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(
        f"Locust FastHttpUser, 1 process on 1 core, {args.users} users, {args.seconds} s: "
        f"{float(total['Requests/s']):,.0f} requests/s ({int(total['Request Count']):,} requests, "
        f"{int(total['Failure Count'])} failures, median {total['Median Response Time']} ms)"
    )


if __name__ == "__main__":
    main()
