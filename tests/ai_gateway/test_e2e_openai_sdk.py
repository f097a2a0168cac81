"""The official openai SDK against a real gateway process: plain, streamed and error calls."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import openai
import pydantic
import pytest
import tiktoken

from ai_gateway.tokens import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE

# Counts differ between cl100k_base and o200k_base for this text, so a wrong encoding shows.
PROMPT = "Résumé: naïve café coördination — 東京 配送 🚀 1234567 tokens/β ∑ kubectl rollout"


def expected_prompt_tokens(encoding: str, messages: list[dict[str, str]]) -> int:
    enc = tiktoken.get_encoding(encoding)
    return REPLY_PRIMING_TOKENS + sum(
        TOKENS_PER_MESSAGE + len(enc.encode(m["role"])) + len(enc.encode(m["content"]))
        for m in messages
    )


@pytest.fixture
def gateway(start_gateway):
    return start_gateway(profile="unoptimized")


def client(gateway, key: str = "sk-demo-team-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def test_encodings_really_differ_for_the_probe_text():
    assert len(tiktoken.get_encoding("cl100k_base").encode(PROMPT)) != len(
        tiktoken.get_encoding("o200k_base").encode(PROMPT)
    )


@pytest.mark.parametrize(
    ("model", "encoding"), [("gpt-4", "cl100k_base"), ("gpt-4o", "o200k_base")]
)
def test_plain_completion_counts_tokens_with_the_models_tokenizer(gateway, model, encoding):
    messages = [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": PROMPT},
    ]
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=model, messages=messages, max_tokens=64
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == model
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage.prompt_tokens == expected_prompt_tokens(encoding, messages)
    text = completion.choices[0].message.content
    assert completion.usage.completion_tokens == len(tiktoken.get_encoding(encoding).encode(text))
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-gateway-model"] == model
    assert raw.headers["x-gateway-team"] == "team-a"
    assert raw.headers["x-gateway-cache"] == "miss"


def test_cost_header_is_list_price_times_tokens(gateway):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="gpt-4", messages=[{"role": "user", "content": "Price me."}], max_tokens=100
    )
    usage = raw.parse().usage
    expected = (usage.prompt_tokens * 30.0 + usage.completion_tokens * 60.0) / 1_000_000
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected, rel=1e-12)


def test_finish_reason_is_length_when_max_tokens_cuts_the_answer(gateway):
    completion = client(gateway).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me a long story."}],
        max_tokens=3,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3


def test_same_request_gives_the_same_answer(gateway):
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Same?"}], "seed": 7}
    first = client(gateway).chat.completions.create(**kwargs)
    second = client(gateway, "sk-demo-team-b").chat.completions.create(**kwargs)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage


def test_streamed_completion_matches_the_plain_one_and_reports_usage(gateway):
    messages = [{"role": "user", "content": PROMPT}]
    plain = client(gateway).chat.completions.create(
        model="gpt-4o", messages=messages, max_tokens=200
    )
    with client(gateway).chat.completions.with_streaming_response.create(
        model="gpt-4o",
        messages=messages,
        max_tokens=200,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert float(response.headers["x-gateway-cost-usd"]) > 0
        chunks = list(response.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == plain.choices[0].message.content
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == [plain.choices[0].finish_reason]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].choices == []
    assert usage_chunks[0].usage == plain.usage


def test_stream_without_include_usage_has_no_usage_chunk(gateway):
    stream = client(gateway).chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert chunks and all(c.usage is None for c in chunks)
    assert all(len(c.choices) == 1 for c in chunks)


def test_models_list(gateway):
    ids = {m.id for m in client(gateway).models.list()}
    assert {"gpt-4", "gpt-5.4", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"} <= ids


def test_models_retrieve_and_an_unknown_model_is_a_404(gateway):
    model = client(gateway).models.retrieve("gpt-4o-mini")
    assert (model.id, model.object) == ("gpt-4o-mini", "model")
    with pytest.raises(openai.NotFoundError) as info:
        client(gateway).models.retrieve("no-such-model")
    assert info.value.body["code"] == "model_not_found"


def test_unknown_key_is_401_in_openai_shape(gateway):
    with pytest.raises(openai.AuthenticationError) as info:
        client(gateway, "sk-wrong-key-123").chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"
    assert info.value.request_id.startswith("req_")


def test_every_answer_carries_a_request_id(gateway):
    """The SDK exposes x-request-id as ``_request_id``: one per request."""
    ids = [
        client(gateway)
        .chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
        ._request_id
        for _ in range(2)
    ]
    assert all(i and i.startswith("req_") for i in ids) and ids[0] != ids[1]


def test_unknown_model_is_404(gateway):
    with pytest.raises(openai.NotFoundError) as info:
        client(gateway).chat.completions.create(
            model="gpt-9", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.body["code"] == "model_not_found"
    assert info.value.body["param"] == "model"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
    ],
)
def test_out_of_range_parameters_are_400_naming_the_parameter(gateway, kwargs, param):
    request = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(**request)
    assert info.value.status_code == 400
    assert info.value.body["type"] == "invalid_request_error"
    assert info.value.body["param"] == param


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_forced_tool_choice_gets_a_call_plain_and_streamed(gateway, choice):
    """An agent that forces a call read tool_calls[0] and crashed on a text answer."""
    request = {"model": "gpt-4o", "tools": [WEATHER], "tool_choice": choice,
               "messages": [{"role": "user", "content": "Weather in Oslo?"}]}  # fmt: skip
    sdk = client(gateway)
    answer = sdk.chat.completions.create(**request)
    choice_out = answer.choices[0]
    assert choice_out.finish_reason == "tool_calls" and choice_out.message.content is None
    (call,) = choice_out.message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    assert set(arguments) >= {"city", "unit"} and arguments["unit"] in ("celsius", "fahrenheit")
    enc = tiktoken.get_encoding("o200k_base")
    called = len(enc.encode("get_weather")) + len(enc.encode(call.function.arguments))
    assert answer.usage.completion_tokens == called
    with sdk.chat.completions.stream(**request) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0]
    assert streamed.finish_reason == "tool_calls"
    assert streamed.message.tool_calls[0].function.arguments == call.function.arguments
    assert streamed.message.tool_calls[0].id == call.id


def test_with_auto_the_simulated_model_answers_in_text(gateway):
    answer = client(gateway).chat.completions.create(
        model="gpt-4o", tools=[WEATHER], messages=[{"role": "user", "content": "Weather?"}]
    )
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].message.content


class Day(pydantic.BaseModel):
    weekday: str
    high: float


class Forecast(pydantic.BaseModel):
    """Nested models are $refs in the schema the SDK sends: two words stood in for them."""

    city: str
    hourly: bool
    days: list[Day]
    first: Day


def test_structured_output_parses_into_the_clients_model(gateway):
    """chat.completions.parse() raised a validation error on the simulated text."""
    answer = client(gateway).chat.completions.parse(
        model="gpt-4o",
        messages=[{"role": "user", "content": "The forecast for Oslo, please."}],
        response_format=Forecast,
    )
    parsed = answer.choices[0].message.parsed
    assert isinstance(parsed, Forecast) and parsed.city and isinstance(parsed.first, Day)
    enc = tiktoken.get_encoding("o200k_base")
    assert answer.usage.completion_tokens == len(enc.encode(answer.choices[0].message.content))


def test_json_mode_answers_an_object_and_needs_the_word_json(gateway):
    sdk = client(gateway)
    asked = [{"role": "user", "content": "Reply in JSON: what is DNS?"}]
    answer = sdk.chat.completions.create(
        model="gpt-4o", messages=asked, response_format={"type": "json_object"}, max_tokens=2000
    )
    assert isinstance(json.loads(answer.choices[0].message.content), dict)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "What is DNS?"}],
            response_format={"type": "json_object"},
        )
    assert refused.value.body["param"] == "messages"
    assert "must contain the word 'json'" in refused.value.body["message"]


def test_the_sdk_reads_the_rate_limit_headers_on_answers_hits_and_the_429(start_gateway):
    """A cache hit counts in the minute too; the SDK's raw response and its RateLimitError both
    carry the standing, as OpenAI's do."""
    limited = start_gateway(
        profile="optimized",
        cache={"semantic": {"enabled": False}},
        teams={"team-b": {"keys": ["sk-demo-team-b"], "limits": {"requests_per_minute": 2}}},
    )
    sdk = client(limited, key="sk-demo-team-b")
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    into_minute = time.time() % 60
    if into_minute > 55:  # the three calls must share a minute (the server runs on real time)
        time.sleep(60.1 - into_minute)
    miss = sdk.chat.completions.with_raw_response.create(**request)
    hit = sdk.chat.completions.with_raw_response.create(**request)
    assert (miss.headers["x-gateway-cache"], hit.headers["x-gateway-cache"]) == ("miss", "exact")
    assert [raw.headers["x-ratelimit-remaining-requests"] for raw in (miss, hit)] == ["1", "0"]
    assert hit.headers["x-ratelimit-limit-requests"] == "2"
    assert "x-ratelimit-limit-tokens" not in hit.headers  # the team has no token limit
    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(**request)
    headers = info.value.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert re.fullmatch(r"(\d+(\.\d+)?s|\d+ms|1m0s)", headers["x-ratelimit-reset-requests"])


@pytest.fixture
def paced_gateway(start_gateway, flush_valkey):
    """A gateway process on Valkey with the simulated latency on, its exact cache alone."""
    return start_gateway(
        profile="optimized",
        redis_url=flush_valkey,
        latency_scale=1,
        cache={"semantic": {"enabled": False}},
        routing={"enabled": False},
    )


async def test_identical_requests_in_flight_reach_the_provider_once(paced_gateway):
    """Five copies at once from the async SDK against a real gateway process on Valkey, with the
    simulated latency on: one miss pays, four share its answer (in_flight.py)."""
    gateway = paced_gateway
    async with openai.AsyncOpenAI(
        base_url=gateway.url + "/v1", api_key="sk-demo-team-a", max_retries=0
    ) as sdk:
        copies = [
            sdk.chat.completions.with_raw_response.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "How do I rotate my API key?"}],
                max_tokens=16,
            )
            for _ in range(5)
        ]
        answers = await asyncio.gather(*copies)
    caches = sorted(raw.headers["x-gateway-cache"] for raw in answers)
    assert caches == ["exact"] * 4 + ["miss"]
    assert len({raw.parse().choices[0].message.content for raw in answers}) == 1
    metrics = httpx.get(gateway.metrics_url).text
    assert 'ai_cache_coalesced_total{team="team-a"} 4.0' in metrics


async def first_content(stream: openai.AsyncStream) -> str:
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            return chunk.choices[0].delta.content
    raise AssertionError("the stream ended without content")


async def rest_of(stream: openai.AsyncStream) -> tuple[str, float]:
    """The stream's remaining text, and when its last chunk came."""
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    return "".join(parts), time.perf_counter()


async def test_a_streamed_copy_starts_before_the_first_request_ends(paced_gateway):
    """A copy joins the first request's answer as it is generated: it gets what was generated so
    far at once, then the rest at the provider's pace, instead of the whole answer once the
    first request's stream has ended (in_flight.py)."""
    gateway = paced_gateway
    request = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Write a long story about a cache."}],
        "max_tokens": 400,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with openai.AsyncOpenAI(
        base_url=gateway.url + "/v1", api_key="sk-demo-team-a", max_retries=0
    ) as sdk:
        first = await sdk.chat.completions.with_raw_response.create(**request)
        first_stream = first.parse()
        first_text = await first_content(first_stream)
        first_rest = asyncio.create_task(rest_of(first_stream))  # read as it comes
        copy = await sdk.chat.completions.with_raw_response.create(**request)
        copy_stream = copy.parse()
        copy_text = await first_content(copy_stream)
        copy_started = time.perf_counter()
        rest, first_ended = await first_rest
        first_text += rest
        copy_text += (await rest_of(copy_stream))[0]
    assert (first.headers["x-gateway-cache"], copy.headers["x-gateway-cache"]) == ("miss", "exact")
    assert copy_text == first_text
    # The answer is long enough that the first's stream still had a second to run.
    assert len(first_text.split()) > 110
    assert copy_started < first_ended
