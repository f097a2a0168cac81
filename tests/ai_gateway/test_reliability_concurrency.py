"""Issue 14, defect 1: 1,000 concurrent requests over two replicas sharing one Valkey.

Only 200s and, once a budget is reached, 429s; never a 503. No overspend, and the budget report and
``ai_cost_total`` agree with the cost headers the clients received.
"""

from __future__ import annotations

import asyncio

import pytest

from finops_common.process import embedded_valkey

from .reliability_support import (
    budget_row,
    burst,
    gateways,
    metric_total,
    scrape,
    served_cost,
    settings,
    statuses,
    team,
)

CONCURRENT = 1000
SMALL_BUDGET_USD = 0.5
LARGE_BUDGET_USD = 1000.0
MODEL = "gpt-4"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """Two replicas over one Valkey; a team with a small budget and one with a large budget."""
    teams = {**team("small", usd=SMALL_BUDGET_USD), **team("large", usd=LARGE_BUDGET_USD)}
    with (
        embedded_valkey() as url,
        gateways(tmp_path_factory.mktemp("concurrency"), settings(teams), 2, url) as started,
    ):
        yield started


def _burst_and_check(replicas, team_name: str, budget_usd: float) -> dict:
    responses = asyncio.run(burst([g.url for g in replicas], team_name, CONCURRENT, MODEL))
    counts = statuses(responses)
    assert set(counts) <= {200, 429}, counts
    cost = served_cost(responses)
    assert cost <= budget_usd
    row = budget_row(replicas[0], team_name)
    assert row["reserved_usd"] == 0
    assert row["spent_usd"] == pytest.approx(cost, abs=1e-9 * CONCURRENT)
    metered = sum(metric_total(scrape(g), "ai_cost_total", team=team_name) for g in replicas)
    assert metered == pytest.approx(cost, abs=1e-9 * CONCURRENT)
    return counts


def test_1000_concurrent_requests_with_a_small_budget_get_only_200_or_429(replicas):
    counts = _burst_and_check(replicas, "small", SMALL_BUDGET_USD)
    assert counts.get(429, 0) > 0, "the small budget was never reached"


def test_1000_concurrent_requests_with_a_large_budget_are_all_served(replicas):
    counts = _burst_and_check(replicas, "large", LARGE_BUDGET_USD)
    assert counts == {200: CONCURRENT}
