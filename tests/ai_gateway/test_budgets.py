"""Budgets and rate limits: calendar windows, atomic reservations, and no overspend under load."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from ai_gateway.budgets import (
    Admission,
    Reservation,
    TeamLimits,
    retry_after_seconds,
    to_nanos,
    window,
)

NOW = datetime(2026, 2, 28, 23, 59, 30, tzinfo=UTC)


def test_windows_are_calendar_aligned_in_utc():
    day = window("ops", "day", NOW)
    assert day.budget_key == "budget:ops:day:20260228"
    assert (day.period_start.isoformat(), day.period_end.isoformat()) == (
        "2026-02-28T00:00:00+00:00",
        "2026-03-01T00:00:00+00:00",
    )
    month = window("ops", "month", NOW)
    assert month.budget_key == "budget:ops:month:202602"
    assert month.period_end == datetime(2026, 3, 1, tzinfo=UTC)
    assert window("ops", "month", datetime(2026, 12, 5, tzinfo=UTC)).period_end == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert day.requests_key == "rpm:ops:202602282359"


def test_retry_after_counts_to_the_reset():
    w = window("ops", "day", NOW)
    budget = Admission("budget", 0, Reservation(w, 1, 1))
    rate = Admission("requests_per_minute", 0, Reservation(w, 1, 1))
    assert retry_after_seconds(budget, NOW) == 30
    assert retry_after_seconds(rate, NOW) == 30


def test_nanos_round_trip():
    assert to_nanos(0.0001234567891) == 123457
    assert to_nanos(0.0001234567891, round_up=True) == 123457
    assert to_nanos(1e-10, round_up=True) == 1


async def test_reservations_stop_at_the_budget_and_settle_to_actual(store):
    limits = TeamLimits(budget_nanos=1000, period="day", tokens_per_minute=None,
                        requests_per_minute=None)  # fmt: skip
    w = window("ops", "day", NOW)
    first = Reservation(w, 600, 10)
    assert await store.reserve(first, limits, NOW) == ("ok", 0)
    assert (await store.reserve(Reservation(w, 500, 10), limits, NOW))[0] == "budget"
    assert await store.settle(first, 200, 5) == 200
    assert await store.budget_usage(w.budget_key) == (200, 0)
    assert await store.reserve(Reservation(w, 800, 10), limits, NOW) == ("ok", 200)
    assert (await store.reserve(Reservation(w, 1, 1), limits, NOW))[0] == "budget"
    # A zero-cost reservation (a cache hit) is never refused by the budget.
    assert (await store.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "ok"


async def test_token_and_request_limits_per_minute(store):
    limits = TeamLimits(budget_nanos=None, period="day", tokens_per_minute=100,
                        requests_per_minute=3)  # fmt: skip
    w = window("ops", "day", NOW)
    assert (await store.reserve(Reservation(w, 0, 80), limits, NOW))[0] == "ok"
    assert (await store.reserve(Reservation(w, 0, 30), limits, NOW))[0] == "tokens_per_minute"
    first = Reservation(w, 0, 20)
    assert (await store.reserve(first, limits, NOW))[0] == "ok"
    assert (await store.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "ok"
    assert (await store.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "requests_per_minute"
    next_minute = datetime(2026, 3, 1, 0, 0, 5, tzinfo=UTC)
    w2 = window("ops", "day", next_minute)
    assert (await store.reserve(Reservation(w2, 0, 90), limits, next_minute))[0] == "ok"


BUDGET_USD = 0.05
ADMIN_KEY = "sk-admin-key-for-tests"


def budget_settings(**limits):
    return {
        "cache": {"exact": {"enabled": False}, "semantic": {"enabled": False}},
        "routing": {"enabled": False},
        "admin_keys": [ADMIN_KEY],
        "teams": {
            "team-a": {"keys": ["sk-demo-team-a"], "limits": limits},
            "team-b": {"keys": ["sk-demo-team-b"]},
        },
    }


async def _burst(urls: list[str], n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> httpx.Response:
            return await client.post(
                urls[i % len(urls)] + "/v1/chat/completions",
                json={
                    "model": "gpt-4",
                    "max_tokens": 100,
                    "messages": [{"role": "user", "content": f"Burst request number {i}"}],
                },
                headers={"authorization": "Bearer sk-demo-team-a"},
            )

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_200_concurrent_requests_never_overspend(start_gateway, flush_valkey):
    settings = budget_settings(usd=BUDGET_USD, period="day")
    first = start_gateway(redis_url=flush_valkey, latency_scale=0.05, **settings)
    second = start_gateway(redis_url=flush_valkey, latency_scale=0.05, **settings)
    responses = asyncio.run(_burst([first.url, second.url], 200))
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 429}, statuses
    served_cost = sum(float(r.headers["x-gateway-cost-usd"]) for r in responses if r.is_success)
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected[0].json()["error"]["type"] == "insufficient_quota"
    assert int(rejected[0].headers["retry-after"]) >= 1
    report = httpx.get(
        first.url + "/v1/budgets", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=5
    ).json()["data"]
    team_a = next(row for row in report if row["team"] == "team-a")
    assert team_a["spent_usd"] <= BUDGET_USD
    assert team_a["reserved_usd"] == 0
    assert team_a["spent_usd"] == pytest.approx(served_cost, abs=1e-9 * len(responses))
    assert team_a["remaining_usd"] == pytest.approx(BUDGET_USD - team_a["spent_usd"])
    metrics = httpx.get(second.url + "/metrics", timeout=5).text
    assert 'ai_budget_rejections_total{reason="budget",team="team-a"}' in metrics
    assert 'ai_budget_remaining_usd{team="team-a"}' in metrics


def test_rate_limit_429_in_both_api_shapes(start_gateway):
    gateway = start_gateway(**budget_settings(requests_per_minute=2))
    headers = {"authorization": "Bearer sk-demo-team-a"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        ok = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
        assert ok.status_code == 200
    limited = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    anthropic = httpx.post(
        gateway.url + "/v1/messages",
        json={**body, "max_tokens": 10},
        headers={"x-api-key": "sk-demo-team-a"},
    )
    assert anthropic.status_code == 429
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    other_team = httpx.post(
        gateway.url + "/v1/chat/completions",
        json=body,
        headers={"authorization": "Bearer sk-demo-team-b"},
    )
    assert other_team.status_code == 200


def test_cache_hits_consume_no_budget(start_gateway):
    settings = budget_settings(usd=0.01)
    settings["cache"] = {"exact": {"enabled": True}, "semantic": {"enabled": False}}
    gateway = start_gateway(**settings)
    headers = {"authorization": "Bearer sk-demo-team-a"}

    def ask(prompt: str) -> httpx.Response:
        return httpx.post(
            gateway.url + "/v1/chat/completions",
            json={
                "model": "gpt-4",
                "max_tokens": 60,
                "messages": [{"role": "user", "content": prompt}],
            },
            headers=headers,
        )

    first = ask("Repeat me")
    assert first.status_code == 200
    i = 0
    while ask(f"fresh prompt {i}").status_code == 200:
        i += 1
        assert i < 50, "the budget never ran out"
    assert ask("Repeat me").headers["x-gateway-cache"] == "exact"


def test_budgets_endpoint_shows_a_team_its_own_and_an_admin_everything(start_gateway):
    gateway = start_gateway(**budget_settings(usd=1.0, period="month"))
    own = httpx.get(
        gateway.url + "/v1/budgets", headers={"authorization": "Bearer sk-demo-team-a"}
    ).json()["data"]
    assert [row["team"] for row in own] == ["team-a"]
    assert own[0]["budget_usd"] == 1.0 and own[0]["period"] == "month"
    everyone = httpx.get(
        gateway.url + "/v1/budgets", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    ).json()["data"]
    assert {row["team"] for row in everyone} == {"team-a", "team-b"}
    assert next(r for r in everyone if r["team"] == "team-b")["budget_usd"] is None
    denied = httpx.get(gateway.url + "/v1/budgets", headers={"authorization": "Bearer nope-nope"})
    assert denied.status_code == 401
