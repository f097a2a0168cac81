"""What one long prompt costs the gateway's event loop, in CPU milliseconds.

A replica serves every request on one event loop, so the CPU one request spends there is how long
it holds up every other request on that replica. For each size (characters of the last user turn,
up to the 1 MiB body limit) this serves, in process and without HTTP (latency simulation off, the
in-process store, ``gpt-4.1`` for its 1M-token context):

- ``unoptimized``: the prompt once;
- ``optimized`` (exact and semantic cache with the guard, routing, budgets): the prompt once
  ("new"), then a prompt with the same text and another last sentence ("near"), which used to be
  a semantic candidate that the guard compared whole with the first; its other words now give it
  another agreement key, so it is looked up among other prompts.

The text is the demo scenario's document sentences, so routing markers appear as in real text.
The ``ai_gateway`` measured is the first on the path: set ``PYTHONPATH=<checkout>/services`` to
measure another revision. Prints a markdown table.

    .venv/bin/python bench/large_prompt_bench.py [--sizes 1000,10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import platform
import tempfile
import time
from pathlib import Path

from compare import gateway_config

import ai_gateway
from ai_gateway.domain import ChatRequest
from ai_gateway.pipeline import Gateway
from ai_gateway.settings import load_settings
from ai_gateway.tokens import PromptMessage
from ai_gateway.wiring import build_gateway
from finops_common.arguments import counts_at_least
from loadgen.scenario import load_scenario

MODEL = "gpt-4.1"


def document(size: int) -> str:
    """``size`` characters of the scenario's sentences, in a fixed order."""
    sentences = itertools.cycle(load_scenario().documents)
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = next(sentences)
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)[:size]


async def cpu_ms(gateway: Gateway, text: str) -> float:
    request = ChatRequest(model=MODEL, messages=(PromptMessage("user", text),), max_tokens=50)
    started = time.process_time()
    await gateway.complete(request, "team-a")
    return (time.process_time() - started) * 1e3


async def measure(sizes: list[int], folder: Path) -> list[tuple[int, float, float, float]]:
    gateways = {
        profile: build_gateway(load_settings(profile, gateway_config(folder, profile)))
        for profile in ("unoptimized", "optimized")
    }
    for gateway in gateways.values():
        await gateway.start()
        await cpu_ms(gateway, "Warm the tokenizers, the embedder and the router up.")
    rows = []
    try:
        for size in sizes:
            text = document(size)
            near = text[: size - 40] + " Which team owns the failover runbook?"
            plain = await cpu_ms(gateways["unoptimized"], text)
            new = await cpu_ms(gateways["optimized"], text)
            rows.append((size, plain, new, await cpu_ms(gateways["optimized"], near)))
    finally:
        for gateway in gateways.values():
            await gateway.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=counts_at_least(1), default=[1_000, 10_000, 100_000, 1_000_000]
    )
    args = parser.parse_args()
    sizes = args.sizes
    with tempfile.TemporaryDirectory() as folder:
        rows = asyncio.run(measure(sizes, Path(folder)))
    print(f"ai_gateway from {Path(ai_gateway.__file__).parent}")
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}\n")
    print("| last user turn (characters) | unoptimized | optimized, new | optimized, near |")
    print("|---:|---:|---:|---:|")
    for size, plain, new, near in rows:
        print(f"| {size:,} | {plain:,.1f} ms | {new:,.1f} ms | {near:,.1f} ms |")


if __name__ == "__main__":
    main()
