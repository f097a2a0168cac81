"""The official anthropic SDK against a real gateway process: plain, streamed and error calls."""

from __future__ import annotations

import re

import anthropic
import httpx
import pydantic
import pytest
import tiktoken

from ai_gateway.tokens import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE


@pytest.fixture
def gateway(start_gateway):
    return start_gateway(profile="unoptimized")


def client(gateway, key: str = "sk-demo-team-b") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def approx_claude_tokens(system: str, user: str) -> int:
    """The documented approximation: cl100k_base plus the chat per-message overhead."""
    enc = tiktoken.get_encoding("cl100k_base")
    return REPLY_PRIMING_TOKENS + sum(
        TOKENS_PER_MESSAGE + len(enc.encode(role)) + len(enc.encode(text))
        for role, text in (("system", system), ("user", user))
    )


def test_plain_message(gateway):
    raw = client(gateway).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        system="Answer briefly.",
        messages=[{"role": "user", "content": "Where is my order #4411?"}],
    )
    message = raw.parse()
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-haiku-4-5"
    assert message.id.startswith("msg_")
    assert message.content[0].type == "text"
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens == approx_claude_tokens(
        "Answer briefly.", "Where is my order #4411?"
    )
    text = message.content[0].text
    assert message.usage.output_tokens == len(tiktoken.get_encoding("cl100k_base").encode(text))
    expected_cost = (message.usage.input_tokens * 1.00 + message.usage.output_tokens * 5.00) / 1e6
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected_cost, rel=1e-12)
    assert raw.headers["x-gateway-team"] == "team-b"


def test_max_tokens_stop_reason(gateway):
    message = client(gateway).messages.create(
        model="claude-haiku-4-5", max_tokens=2, messages=[{"role": "user", "content": "Essay?"}]
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_stream_events_and_final_message_match_the_plain_answer(gateway):
    request = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 500,
        "messages": [{"role": "user", "content": "Compare two plans, step by step."}],
    }
    plain = client(gateway).messages.create(**request)
    events = []
    with client(gateway).messages.stream(**request) as stream:
        for event in stream:
            events.append(event.type)
        final = stream.get_final_message()
    assert events[0] == "message_start"
    assert "content_block_delta" in events or "text" in events
    assert events[-1] == "message_stop"
    assert final.content[0].text == plain.content[0].text
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.stop_reason == plain.stop_reason


def test_openai_models_are_served_through_the_messages_api(gateway):
    message = client(gateway).messages.create(
        model="gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": "hello"}]
    )
    assert message.model == "gpt-4o-mini"


def test_models_list_in_anthropic_shape(gateway):
    page = client(gateway).models.list()
    assert "claude-sonnet-4-6" in {m.id for m in page.data}


def test_models_retrieve_in_anthropic_shape_and_an_unknown_model_is_not_found(gateway):
    model = client(gateway).models.retrieve("claude-haiku-4-5")
    assert (model.id, model.type) == ("claude-haiku-4-5", "model")
    with pytest.raises(anthropic.NotFoundError) as info:
        client(gateway).models.retrieve("no-such-model")
    assert info.value.body["error"]["type"] == "not_found_error"


def test_models_list_pages_as_anthropics_api_does(gateway):
    """``limit``, ``after_id`` (which the SDK's auto-paging sends) and ``before_id``."""
    sdk = client(gateway)
    page = sdk.models.list(limit=3)
    assert len(page.data) == 3 and page.has_more
    assert (page.first_id, page.last_id) == (page.data[0].id, page.data[-1].id)
    everything = [model.id for model in sdk.models.list(limit=7)]  # follows the pages
    table = [model.id for model in sdk.models.list(limit=1000).data]
    assert everything == table and len(table) == len(set(table)) > 7
    back = sdk.models.list(limit=2, before_id=table[3])
    assert [m.id for m in back.data] == table[1:3] and back.has_more
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk.models.list(limit=0)
    assert "limit" in info.value.body["error"]["message"]


def test_an_unknown_route_answers_anthropics_sdk_in_its_shape(gateway):
    with pytest.raises(anthropic.NotFoundError) as info:
        client(gateway).get("/v1/nothing-here", cast_to=object)
    assert info.value.body["type"] == "error"


def test_unknown_key_is_authentication_error(gateway):
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(gateway, "sk-not-a-team-key").messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 401
    assert info.value.body["error"]["type"] == "authentication_error"
    # Named in the request-id header and, as Anthropic's API does, in the body.
    assert info.value.request_id.startswith("req_")
    assert info.value.body["request_id"] == info.value.request_id


def test_every_message_carries_a_request_id(gateway):
    messages = [
        client(gateway).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
        for _ in range(2)
    ]
    ids = [message._request_id for message in messages]
    assert all(i and i.startswith("req_") for i in ids) and ids[0] != ids[1]


def test_temperature_above_one_is_rejected(gateway):
    with pytest.raises(anthropic.BadRequestError) as info:
        client(gateway).messages.create(
            model="claude-haiku-4-5",
            max_tokens=5,
            extra_body={"temperature": 1.5},
            messages=[{"role": "user", "content": "x"}],
        )
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert "temperature" in info.value.body["error"]["message"]


def test_unknown_model_is_not_found_error(gateway):
    with pytest.raises(anthropic.NotFoundError) as info:
        client(gateway).messages.create(
            model="claude-9", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["error"]["type"] == "not_found_error"


def test_count_tokens_is_what_a_message_is_billed_as_input(gateway):
    """`messages.count_tokens` answers with the prompt's tokens: those the same request is then
    billed as input (no prompt caching in this profile)."""
    sdk = client(gateway)
    prompt = {
        "model": "claude-haiku-4-5",
        "system": "Answer briefly.",
        "messages": [{"role": "user", "content": "Where is my order #4411?"}],
    }
    counted = sdk.messages.count_tokens(**prompt)
    assert counted.input_tokens == approx_claude_tokens(
        "Answer briefly.", "Where is my order #4411?"
    )
    billed = sdk.messages.create(max_tokens=20, **prompt)
    assert billed.usage.input_tokens == counted.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.count_tokens(**{**prompt, "model": "claude-nonexistent"})
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.count_tokens(model="claude-haiku-4-5", messages=[])
    with pytest.raises(anthropic.AuthenticationError):
        client(gateway, key="sk-wrong").messages.count_tokens(**prompt)


def test_a_spent_budget_raises_at_once_with_the_sdks_default_retries(start_gateway):
    """Its reset is hours away: the SDK, which waits out any Retry-After, must not retry."""
    limits = {"usd": 0.0002, "period": "day"}  # a few answers of 5 tokens, then spent
    budgeted = start_gateway(
        profile="optimized",
        cache={"exact": {"enabled": False}, "semantic": {"enabled": False}},
        teams={"team-b": {"keys": ["sk-demo-team-b"], "routing": "auto_only", "limits": limits}},
    )
    sdk = anthropic.Anthropic(base_url=budgeted.url, api_key="sk-demo-team-b", timeout=20)
    assert sdk.max_retries == 2  # the default, which would retry a plain 429
    body = {"model": "claude-haiku-4-5", "max_tokens": 5,
            "messages": [{"role": "user", "content": "Where is my order?"}]}  # fmt: skip
    with pytest.raises(anthropic.RateLimitError) as info:
        for _ in range(20):  # the first answers fit
            sdk.messages.create(**body)
    # The SDK did not retry: the gateway answered exactly one 429 (it would count three).
    metrics = httpx.get(budgeted.metrics_url, timeout=5).text
    refused = re.search(r'ai_requests_total\{api="anthropic",status="429"\} (\S+)', metrics)
    assert refused is not None and float(refused[1]) == 1, metrics
    assert "has used its daily budget" in info.value.message  # spent, not "too large"
    response = info.value.response
    assert response.headers["x-should-retry"] == "false"
    assert int(response.headers["retry-after"]) > 0


def test_a_tool_loop_is_served_and_its_tools_are_billed(gateway):
    """An agent replays the call it was told about and its tool's result; the definitions and
    the tool blocks are prompt tokens, and count_tokens agrees with the answer's usage."""
    tool = {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    call = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}}
    messages = [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "4 C, light snow"}]},
    ]  # fmt: skip
    sdk = client(gateway)
    answer = sdk.messages.create(
        model="claude-haiku-4-5", max_tokens=100, tools=[tool], messages=messages
    )
    counted = sdk.messages.count_tokens(model="claude-haiku-4-5", tools=[tool], messages=messages)
    bare = sdk.messages.count_tokens(model="claude-haiku-4-5", messages=messages[:1])
    assert answer.usage.input_tokens == counted.input_tokens
    assert counted.input_tokens > bare.input_tokens + 346  # the tool-use system prompt and more


def test_a_forced_tool_choice_gets_a_tool_use_block_plain_streamed_and_cached(start_gateway):
    """any or a named tool: a tool_use block whose input the schema accepts, the same from the
    stream's accumulated message and from the exact cache."""
    gateway = start_gateway(profile="optimized")
    tool = {
        "name": "get_weather",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "maximum": 7}},
            "required": ["city"],
        },
    }
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key="sk-demo-team-b", max_retries=0)
    question = {"role": "user", "content": "What is the weather in Oslo?"}
    request = {"model": "claude-haiku-4-5", "max_tokens": 200, "tools": [tool],
               "tool_choice": {"type": "tool", "name": "get_weather"},
               "messages": [question]}  # fmt: skip
    first = sdk.messages.with_raw_response.create(**request)
    message = first.parse()
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert (block.type, block.name) == ("tool_use", "get_weather") and block.id.startswith("toolu_")
    assert isinstance(block.input["city"], str) and block.input.get("days", 0) <= 7
    again = sdk.messages.with_raw_response.create(**request)
    assert (first.headers["x-gateway-cache"], again.headers["x-gateway-cache"]) == ("miss", "exact")
    assert again.parse().content[0].input == block.input
    with sdk.messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == block.input


class Stop(pydantic.BaseModel):
    name: str
    minutes: int = pydantic.Field(gt=0, lt=600)


class Itinerary(pydantic.BaseModel):
    city: str
    stops: list[Stop]


def test_structured_outputs_parse_into_the_clients_model(gateway):
    """messages.parse() sends output_config.format; the answer was plain text, which it could not
    parse. Its schema is billed as prompt tokens, as count_tokens says."""
    sdk = client(gateway)
    asked = [{"role": "user", "content": "Plan a day in Oslo."}]
    answer = sdk.messages.parse(
        model="claude-haiku-4-5", max_tokens=1000, messages=asked, output_format=Itinerary
    )
    assert isinstance(answer.parsed_output, Itinerary) and answer.parsed_output.stops
    schema = answer.parsed_output.model_json_schema()
    plain = sdk.messages.count_tokens(model="claude-haiku-4-5", messages=asked).input_tokens
    assert answer.usage.input_tokens > plain
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=asked,
            extra_body={"output_config": {"format": {"type": "json_object", "schema": schema}}},
        )
    assert "output_config.format.type" in refused.value.body["error"]["message"]
