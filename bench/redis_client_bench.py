"""The gateway's CPU per Redis command: redis-py's asyncio client against the gateway's own
pipelining client (services/ai_gateway/resp.py), on a throwaway Valkey.

Three shapes, each timed as this process's CPU (not wall time: Valkey runs beside it):
one GET at a time; a miss's four writes one after the other; the same four issued together
(``asyncio.gather``), which redis-py sends as four round trips and resp.py as one.

    .venv/bin/python bench/redis_client_bench.py [--rounds 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as redis_asyncio
import uvloop

from ai_gateway.resp import RespClient
from finops_common.arguments import at_least
from finops_common.process import embedded_valkey

Shape = Callable[[], Awaitable[object]]


Writes = Callable[[], list[Awaitable[object]]]


def shapes(get: Shape, writes: Writes) -> dict[str, Shape]:
    """The three shapes over one client's GET and its four writes."""

    async def one_by_one() -> None:
        for write in writes():
            await write

    return {
        "one GET": get,
        "4 writes, one by one": one_by_one,
        "4 writes, together": lambda: asyncio.gather(*writes()),
    }


def redis_py_shapes(client: redis_asyncio.Redis) -> dict[str, Shape]:
    def writes() -> list[Awaitable[object]]:
        return [
            client.set("exact", b"x" * 400, ex=60),
            client.set("semantic", b"x" * 400, ex=60),
            client.xadd("log", {"vector": b"v" * 1024}, maxlen=1000, approximate=True),
            client.incrby("spent", 7),
        ]

    return shapes(lambda: client.get("exact"), writes)


def resp_shapes(client: RespClient) -> dict[str, Shape]:
    def writes() -> list[Awaitable[object]]:
        return [
            client.execute("SET", "exact", b"x" * 400, "EX", 60),
            client.execute("SET", "semantic", b"x" * 400, "EX", 60),
            client.execute("XADD", "log", "MAXLEN", "~", 1000, "*", "vector", b"v" * 1024),
            client.execute("INCRBY", "spent", 7),
        ]

    return shapes(lambda: client.execute("GET", "exact"), writes)


async def cpu_us(shape: Shape, rounds: int) -> float:
    for _ in range(100):
        await shape()
    started = time.process_time()
    for _ in range(rounds):
        await shape()
    return (time.process_time() - started) / rounds * 1e6


async def measure(url: str, rounds: int) -> dict[str, tuple[float, float]]:
    redis_py = redis_asyncio.Redis.from_url(url)
    resp = RespClient(url)
    try:
        old, new = redis_py_shapes(redis_py), resp_shapes(resp)
        return {
            name: (await cpu_us(old[name], rounds), await cpu_us(new[name], rounds)) for name in old
        }
    finally:
        await redis_py.aclose()
        await resp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=at_least(1), default=3000, help="timed rounds per shape")
    args = parser.parse_args()
    with embedded_valkey() as url:
        results = uvloop.run(measure(url, args.rounds))
    print(f"CPU per round, {args.rounds} rounds, uvloop, hiredis parser in both")
    print(f"{'shape':24s} {'redis-py':>10s} {'resp.py':>10s} {'ratio':>7s}")
    for name, (old, new) in results.items():
        print(f"{name:24s} {old:8.0f} us {new:8.0f} us {old / new:6.1f}x")


if __name__ == "__main__":
    main()
