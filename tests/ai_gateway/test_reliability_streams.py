"""Issue 14, defect 8: streams the client aborts mid-way.

The rule providers follow: the prompt plus the tokens generated up to the disconnect are billed.
The request log, ``ai_cost_total`` and the budget must then agree (well within a cent), and a
partial answer must not be cached as a complete one.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx
import pytest

from .reliability_support import (
    COST_HEADER,
    OPENAI_PATH,
    budget_row,
    chat,
    chat_body,
    gateways,
    is_cache_hit,
    key_of,
    metric_total,
    request_log,
    scrape,
    settings,
    team,
    wait_for,
)

TEAM = "streamer"
ABORTED = 6
PIECES_BEFORE_ABORT = 5
MODEL = "gpt-4"


def _prompt(i: int) -> str:
    return f"Explain, at length, how cloud cost allocation works, take {i}."


@dataclass
class Aborts:
    full_cost: dict[str, float] = field(default_factory=dict)
    pieces_received: dict[str, int] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    metered_usd: float = 0.0
    budget_spent_usd: float = 0.0
    counted_aborted: float = 0.0
    asked_again: httpx.Response | None = None


async def _abort_one(client: httpx.AsyncClient, i: int, seen: Aborts) -> None:
    label = f"abort-{i}"
    body = chat_body(_prompt(i), model=MODEL, max_tokens=1000, stream=True)
    async with client.stream(
        "POST", OPENAI_PATH, json=body, headers={"x-sim-question": label}
    ) as response:
        assert response.status_code == 200
        seen.full_cost[label] = float(response.headers[COST_HEADER])
        pieces = 0
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"]
            pieces += bool(delta.get("content"))
            if pieces >= PIECES_BEFORE_ABORT:
                break
        seen.pieces_received[label] = pieces


async def _abort_streams(url: str, seen: Aborts) -> None:
    headers = {"authorization": f"Bearer {key_of(TEAM)}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        await asyncio.gather(*(_abort_one(client, i, seen) for i in range(ABORTED)))


@pytest.fixture(scope="module")
def aborts(tmp_path_factory) -> Aborts:
    directory = tmp_path_factory.mktemp("streams")
    log_path = directory / "requests.jsonl"
    config = settings(
        team(TEAM, usd=100.0), exact=True, request_log=str(log_path), latency_scale=1.0
    )
    seen = Aborts()
    with gateways(directory, config) as (gateway,):
        asyncio.run(_abort_streams(gateway.url, seen))
        # The gateway learns of a disconnect at its next write; give it time to settle.
        wait_for(lambda: len(request_log(log_path)) >= ABORTED, timeout_s=5)
        wait_for(lambda: budget_row(gateway, TEAM)["reserved_usd"] == 0, timeout_s=5)
        seen.log = [r for r in request_log(log_path) if r.get("team") == TEAM]
        samples = scrape(gateway)
        seen.metered_usd = metric_total(samples, "ai_cost_total", team=TEAM)
        seen.counted_aborted = metric_total(samples, "ai_streams_aborted_total", api="openai")
        seen.budget_spent_usd = budget_row(gateway, TEAM)["spent_usd"]
        seen.asked_again = chat(gateway, TEAM, chat_body(_prompt(0), model=MODEL, max_tokens=1000))
    return seen


def test_aborted_streams_are_in_the_request_log_and_counted(aborts):
    logged = {r["sim"].get("question") for r in aborts.log}
    assert set(aborts.full_cost) <= logged, logged
    assert aborts.counted_aborted == ABORTED


def test_log_metrics_and_budget_agree(aborts):
    logged_usd = sum(r["cost_usd"] for r in aborts.log)
    assert aborts.metered_usd == pytest.approx(logged_usd, abs=1e-6)
    assert aborts.budget_spent_usd == pytest.approx(logged_usd, abs=1e-6)
    assert aborts.metered_usd == pytest.approx(aborts.budget_spent_usd, abs=1e-6)


def test_an_aborted_stream_is_billed_for_the_tokens_generated_before_the_disconnect(aborts):
    by_label = {r["sim"].get("question"): r for r in aborts.log}
    for label, full_cost in aborts.full_cost.items():
        entry = by_label[label]
        assert entry["completion_tokens"] >= aborts.pieces_received[label]
        assert 0 < entry["cost_usd"] < full_cost, (entry, full_cost)
    assert aborts.budget_spent_usd < sum(aborts.full_cost.values())


def test_a_partial_answer_is_not_cached_as_complete(aborts):
    assert aborts.asked_again.status_code == 200
    assert not is_cache_hit(aborts.asked_again), aborts.asked_again.headers
