"""The semantic cache against real stores, and across two gateway processes sharing Valkey."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from ai_gateway.cache import CachedCompletion
from ai_gateway.embeddings import LexicalEmbedder
from ai_gateway.semantic import SemanticCache
from ai_gateway.store import RedisStore

EMBEDDER = LexicalEmbedder()
ANSWER = CachedCompletion(
    "gpt-4", "Open Orders, pick the order, press Cancel.", 12, 9, "stop", 0.01
)


def cache_on(store, ttl: int = 3600) -> SemanticCache:
    return SemanticCache(store, EMBEDDER.dimensions, 0.6, True, ttl, 10_000)


async def remember(cache: SemanticCache, scope: str, prompt: str) -> None:
    await cache.add(scope, prompt, EMBEDDER.embed(prompt), ANSWER)


async def ask(cache: SemanticCache, scope: str, prompt: str):
    return await cache.lookup(scope, prompt, EMBEDDER.embed(prompt))


async def test_paraphrase_hits_and_near_miss_is_refused(store):
    cache = cache_on(store)
    await remember(cache, "team-a|complex|x", "How do I cancel my order?")
    hit = await ask(cache, "team-a|complex|x", "hi, how can I cancel my order please")
    assert hit.hit is not None
    assert hit.hit.entry == ANSWER
    assert hit.hit.similarity >= 0.6
    miss = await ask(cache, "team-a|complex|x", "How do I track my order?")
    assert miss.hit is None
    assert miss.refusals == ("actions differ",)
    assert miss.best_similarity is not None


async def test_lookup_is_scoped(store):
    cache = cache_on(store)
    await remember(cache, "team-a|complex|x", "How do I cancel my order?")
    assert (await ask(cache, "team-b|complex|x", "How do I cancel my order?")).hit is None
    assert (await ask(cache, "team-a|simple|x", "How do I cancel my order?")).hit is None


async def test_entries_expire_with_their_ttl(store):
    cache = cache_on(store, ttl=1)
    await remember(cache, "s", "How do I cancel my order?")
    assert (await ask(cache, "s", "How do I cancel my order?")).hit is not None
    await asyncio.sleep(1.2)
    assert (await ask(cache, "s", "How do I cancel my order?")).hit is None
    assert cache.size == 0


async def test_an_entry_written_by_one_replica_is_found_by_another(flush_valkey):
    writer, reader = RedisStore(flush_valkey), RedisStore(flush_valkey)
    try:
        replica_a, replica_b = cache_on(writer), cache_on(reader)
        assert (await ask(replica_b, "s", "What is your refund policy?")).hit is None
        await remember(replica_a, "s", "What is your refund policy?")
        found = await ask(replica_b, "s", "what's your refund policy")
        assert found.hit is not None and found.hit.cached_prompt == "What is your refund policy?"
    finally:
        await writer.close()
        await reader.close()


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
    metrics = httpx.get(second.url + "/metrics", timeout=5).text
    assert 'ai_cache_hits_total{kind="semantic",team="team-a"} 1.0' in metrics
    assert 'ai_semantic_refusals_total{reason="content words differ"}' in metrics


def test_semantic_hit_on_a_streamed_request_is_streamed(start_gateway, flush_valkey):
    gateway = start_gateway(redis_url=flush_valkey)
    original = chat(gateway, "Summarize this article about remote work.")
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={
            "model": "gpt-4",
            "stream": True,
            "messages": [
                {"role": "user", "content": "Please summarise this article about remote work"}
            ],
        },
        headers={"authorization": "Bearer sk-demo-team-a"},
        timeout=30,
    ) as response:
        assert response.headers["x-gateway-cache"] == "semantic"
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    import json

    text = "".join(
        (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for line in lines[:-1]
    )
    assert text == original.json()["choices"][0]["message"]["content"]


@pytest.mark.skipif(
    not os.environ.get("GATEWAY_EMBEDDING_MODEL"),
    reason="GATEWAY_EMBEDDING_MODEL is not set; CI sets it to ../shared/models/minilm-l6-m2v-256",
)
def test_model2vec_embedder_is_reported_and_used(start_gateway):
    gateway = start_gateway(cache={"semantic": {"embedder": "model2vec"}})
    ready = httpx.get(gateway.url + "/readyz", timeout=5).json()
    assert ready["embedder"].startswith("model2vec:")
    assert ready["settings"]["cache"]["semantic"]["threshold"] == 0.85
    chat(gateway, "How do I export my data to CSV?")
    assert (
        chat(gateway, "how can I export my data to CSV?").headers["x-gateway-cache"] == "semantic"
    )


def test_unloadable_model_stops_start_up_with_a_clear_message(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "g.yaml"
    config.write_text(f"cache:\n  semantic:\n    model: {tmp_path / 'missing'}\n")
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_EMBEDDING_MODEL"}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "ai_gateway.cli", "--config", str(config), "--port", "1"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot load the model2vec embedding model" in result.stderr
    assert "Traceback" not in result.stderr
