"""Provider prompt caching through the official SDKs, against a real gateway process: the usage
fields each SDK parses, streamed and not, and the cost and token metrics by token type."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ai_gateway.pricing import default_price_table
from finops_sim.results import read_log

HANDBOOK = " ".join(["cost", "team", "budget", "report"] * 400)  # ~1,600 tokens
TABLE = default_price_table()


@pytest.fixture
def gateway(start_gateway):
    """Served as named (no gateway cache, no routing), with the providers' prompt caches on."""
    return start_gateway(profile="unoptimized")


def metric(gateway, name: str, **labels: str) -> float:
    text = httpx.get(gateway.metrics_url).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_openai_sdk_reads_cached_tokens_plain_and_streamed(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-demo-team-a", max_retries=0)

    def ask(question: str, **extra):
        return client.chat.completions.create(
            model="gpt-5.4",
            messages=[
                {"role": "system", "content": HANDBOOK},
                {"role": "user", "content": question},
            ],
            max_completion_tokens=50,
            **extra,
        )

    first = ask("Where is order #1?")
    second = ask("Where is order #2?")
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and cached < second.usage.prompt_tokens
    chunks = list(ask("Where is order #3?", stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == cached

    labels = {"model": "gpt-5.4", "team": "team-a"}
    assert metric(gateway, "ai_tokens_total", type="cached_input", **labels) == 2 * cached
    prices = TABLE.models["gpt-5.4"].price_per_1m
    assert prices.cached_input is not None
    assert metric(gateway, "ai_cost_total", type="cached_input", **labels) == pytest.approx(
        2 * cached * prices.cached_input / 1e6
    )
    assert metric(gateway, "ai_cost_saved_total", reason="provider_prompt_cache", team="team-a") > 0


def test_anthropic_sdk_reads_cache_creation_then_cache_read(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-demo-team-b", max_retries=0)
    system = [{"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral"}}]

    def ask(question: str):
        return client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=50,
            system=system,
            messages=[{"role": "user", "content": question}],
        )

    first, second = ask("Where is order #1?"), ask("Where is order #2?")
    written = first.usage.cache_creation_input_tokens
    assert written > 1024 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens < 50  # the question only: input_tokens excludes the cache

    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=50,
        system=system,
        messages=[{"role": "user", "content": "Where is order #3?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == written

    labels = {"model": "claude-sonnet-4-6", "team": "team-b"}
    assert metric(gateway, "ai_tokens_total", type="cache_write", **labels) == written
    assert metric(gateway, "ai_tokens_total", type="cached_input", **labels) == 2 * written


def test_anthropic_sdk_automatic_caching_follows_a_conversation(gateway):
    """Top-level cache_control puts the breakpoint on the last block: each turn reads what the
    turn before wrote and writes only what it adds (Anthropic's multi-turn pattern)."""
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-demo-team-b", max_retries=0)
    history: list[dict] = [{"role": "user", "content": HANDBOOK + " Summarise the handbook."}]
    usages = []
    for question in ("Which team spends most?", "And the least?"):
        reply = client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=20,
            messages=history,
            cache_control={"type": "ephemeral"},
        )
        usages.append(reply.usage)
        history += [
            {"role": "assistant", "content": reply.content[0].text},
            {"role": "user", "content": question},
        ]
    first, second = usages
    assert first.cache_read_input_tokens == 0 and first.cache_creation_input_tokens > 1024
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert 0 < second.cache_creation_input_tokens < 100  # the reply and the new question


def test_anthropic_sdk_reads_one_hour_and_five_minute_writes_apart(start_gateway, tmp_path):
    """A 1-hour mark on the system prompt and a 5-minute one on the question: the SDK parses the
    split in ``usage.cache_creation``, each part billed at its own write price, and the request
    log keeps the 1-hour part."""
    log = tmp_path / "requests.jsonl"
    gateway = start_gateway(profile="unoptimized", request_log=str(log))
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-demo-team-b", max_retries=0)
    question = " ".join(["Which", "team", "spends", "most?"] * 20)

    def ask(system_ttl: str, question_ttl: str):
        return client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=20,
            system=[
                {
                    "type": "text",
                    "text": HANDBOOK,
                    "cache_control": {"type": "ephemeral", "ttl": system_ttl},
                }
            ],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": question,
                            "cache_control": {"type": "ephemeral", "ttl": question_ttl},
                        }
                    ],
                }
            ],
        )

    usage = ask("1h", "5m").usage
    one_hour = usage.cache_creation.ephemeral_1h_input_tokens
    five_minutes = usage.cache_creation.ephemeral_5m_input_tokens
    assert one_hour > 1024 and five_minutes > 0
    assert one_hour + five_minutes == usage.cache_creation_input_tokens
    prices = TABLE.models["claude-sonnet-4-6"].price_per_1m
    assert prices.cache_write is not None and prices.cache_write_1h is not None
    labels = {"model": "claude-sonnet-4-6", "team": "team-b"}
    assert metric(gateway, "ai_cost_total", type="cache_write", **labels) == pytest.approx(
        (one_hour * prices.cache_write_1h + five_minutes * prices.cache_write) / 1e6
    )

    (record,) = read_log(log)
    assert (record.cache_write_tokens, record.cache_write_1h_tokens) == (
        one_hour + five_minutes,
        one_hour,
    )

    with pytest.raises(anthropic.BadRequestError) as refused:
        ask("5m", "1h")
    assert "must not come after a ttl='5m' cache_control block" in str(refused.value)
