"""The complexity router: explainable decisions, the labelled set, and routing over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ai_gateway.evaluation import evaluate_router, load_router_set
from ai_gateway.pricing import default_price_table
from ai_gateway.router import classify
from ai_gateway.tokens import PromptMessage, count_prompt

DATA = Path(__file__).resolve().parents[2] / "bench" / "data"
GPT4 = default_price_table().resolve("gpt-4")


def decide(prompt: str, max_tokens: int | None = None, system: str | None = None):
    messages = ([PromptMessage("system", system)] if system else []) + [
        PromptMessage("user", prompt)
    ]
    return classify(messages, count_prompt(GPT4, messages), max_tokens)


def test_simple_question_goes_to_the_simple_tier_with_a_reason():
    decision = decide("What is the capital of Canada?")
    assert decision.tier == "simple"
    assert decision.reason.startswith("tier=simple; score=")
    assert "simple question" in decision.reason


def test_writing_task_is_standard():
    assert decide("Write a polite email declining a meeting invitation.").tier == "standard"


def test_code_with_a_reasoning_request_is_complex():
    prompt = "Explain the root cause of this bug and fix it:\n```python\nx = [] * 3\n```"
    decision = decide(prompt)
    assert decision.tier == "complex"
    assert decision.contributions["code markers"] > 0


def test_a_large_max_tokens_raises_the_score():
    prompt = "Describe our onboarding process."
    assert decide(prompt, max_tokens=2000).score > decide(prompt, max_tokens=50).score


def test_labelled_set_confusion_matrix():
    score = evaluate_router(load_router_set(DATA / "router_eval.yaml"))
    assert score.total == 74
    assert score.complex_to_simple <= 0.05
    assert score.accuracy >= 0.9


def chat(gateway, model: str, prompt: str, key: str = "sk-demo-team-a") -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": prompt}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


@pytest.fixture
def gateway(start_gateway):
    return start_gateway(cache={"exact": {"enabled": False}, "semantic": {"enabled": False}})


def test_team_policy_routes_a_simple_gpt4_request_down_and_counts_the_saving(
    gateway, start_gateway
):
    response = chat(gateway, "gpt-4", "What is the capital of Canada?")
    assert response.status_code == 200
    assert response.json()["model"] == "claude-3-haiku"
    assert response.headers["x-gateway-model"] == "claude-3-haiku"
    assert response.headers["x-gateway-routed-from"] == "gpt-4"
    assert response.headers["x-gateway-route-reason"].startswith("tier=simple")
    # The saving is measured against what the unoptimized gateway charges for the same request.
    unoptimized = chat(
        start_gateway(profile="unoptimized"), "gpt-4", "What is the capital of Canada?"
    )
    expected = float(unoptimized.headers["x-gateway-cost-usd"]) - float(
        response.headers["x-gateway-cost-usd"]
    )
    assert float(response.headers["x-gateway-saved-usd"]) == pytest.approx(expected, rel=1e-9)
    metrics = httpx.get(gateway.url + "/metrics", timeout=5).text
    assert 'ai_routed_requests_total{requested="gpt-4",served="claude-3-haiku"} 1.0' in metrics
    prefix = 'ai_cost_saved_total{reason="routing"'
    line = next(x for x in metrics.splitlines() if x.startswith(prefix))
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(expected, rel=1e-9)


def test_model_auto_is_routed_for_any_team(gateway):
    response = chat(gateway, "auto", "Design a multi-region failover plan and compare trade-offs.")
    assert response.headers["x-gateway-routed-from"] == "auto"
    assert response.json()["model"] == "gpt-4"


def test_routing_never_upgrades_a_named_model(gateway):
    prompt = "Analyze step by step the trade-offs of this architecture and design an alternative."
    response = chat(gateway, "gpt-4o-mini", prompt)
    assert response.json()["model"] == "gpt-4o-mini"
    assert "x-gateway-routed-from" not in response.headers


def test_unoptimized_profile_serves_what_is_asked_and_rejects_auto(start_gateway):
    gateway = start_gateway(profile="unoptimized")
    assert chat(gateway, "gpt-4", "What is the capital of Canada?").json()["model"] == "gpt-4"
    auto = chat(gateway, "auto", "hello")
    assert auto.status_code == 404
    assert "needs routing" in auto.json()["error"]["message"]
