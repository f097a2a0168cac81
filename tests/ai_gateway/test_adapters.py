"""The adapters: parsing into a ChatRequest, and every rendered body matching its SDK shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import get_args

import pytest

from ai_gateway.adapters import AnthropicAdapter, OpenAIAdapter
from ai_gateway.adapters import anthropic as anthropic_shape
from ai_gateway.adapters import openai as openai_shape
from ai_gateway.catalog import PromptTokens
from ai_gateway.domain import Completion, GatewayError
from ai_gateway.pricing import default_price_table
from ai_gateway.records import API_SHAPES, ErrorKind
from ai_gateway.simulator import LatencyPlan
from ai_gateway.tokens import PromptMessage

TABLE = default_price_table()
COMPLETION = Completion(
    requested_model="gpt-4",
    model=TABLE.models["gpt-4"],
    team="team-a",
    text="one two three.",
    prompt_tokens=12,
    completion_tokens=4,
    finish_reason="length",
    cost_usd=0.001,
    saved_usd=0.0,
    cache="miss",
    latency=LatencyPlan(0.0, 0.0),
)
KINDS = list(get_args(ErrorKind))


async def pieces() -> AsyncIterator[str]:
    for piece in ("one", " two", " three."):
        yield piece


def events(raw: list[bytes]) -> list[str]:
    return [line[6:] for part in raw for line in part.decode().splitlines() if line[:6] == "data: "]


def test_openai_parse_normalises_the_request():
    request = OpenAIAdapter().parse(
        {
            "model": "gpt-4",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
            ],
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "stop": "END",
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "ignored",
        }
    )
    assert request.messages == (PromptMessage("system", "Be brief."), PromptMessage("user", "ab"))
    assert (request.max_tokens, request.stop, request.stream, request.include_usage) == (
        20, ("END",), True, True,
    )  # fmt: skip


def test_anthropic_parse_puts_the_system_prompt_first():
    request = AnthropicAdapter().parse(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 5,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": "hi"}],
            "stop_sequences": ["x"],
        }
    )
    assert request.messages[0] == PromptMessage("system", "Be brief.")
    assert (request.max_tokens, request.stop, request.include_usage) == (5, ("x",), False)


def test_anthropic_top_level_cache_control_marks_the_last_block():
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}],
    }
    unmarked = AnthropicAdapter().parse(body)
    marked = AnthropicAdapter().parse({**body, "cache_control": {"type": "ephemeral"}})
    assert [m.cache_mark for m in unmarked.messages] == [None, None]
    assert [m.cache_mark for m in marked.messages] == [None, "5m"]
    assert marked.canonical("x") == unmarked.canonical("x")  # the answer does not change


def test_anthropic_refuses_more_than_four_cache_control_marks():
    def block(text: str) -> dict:
        return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}

    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "system": [block("one"), block("two")],
        "messages": [{"role": "user", "content": [block("three"), block("four")]}],
    }
    assert AnthropicAdapter().parse(body).messages[-1].cache_mark == "5m"
    with pytest.raises(GatewayError, match="A maximum of 4 blocks with cache_control") as info:
        AnthropicAdapter().parse({**body, "cache_control": {"type": "ephemeral"}})
    assert info.value.kind == "invalid_request" and "Found 5" in info.value.message


def _marked(text: str, ttl: str | None = None) -> dict:
    mark = {"type": "ephemeral"} if ttl is None else {"type": "ephemeral", "ttl": ttl}
    return {"type": "text", "text": text, "cache_control": mark}


def test_anthropic_cache_control_ttl_reaches_the_breakpoint():
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "system": [_marked("Handbook", "1h")],
        "messages": [{"role": "user", "content": [_marked("hi", "5m")]}],
    }
    request = AnthropicAdapter().parse(body)
    assert [m.cache_mark for m in request.messages] == ["1h", "5m"]
    top_level = AnthropicAdapter().parse(
        {
            **body,
            "messages": [{"role": "user", "content": "hi"}],
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    )
    assert [m.cache_mark for m in top_level.messages] == ["1h", "1h"]
    # One message is one block here: marks of both lifetimes in it keep (and bill) it for an hour.
    both = {**body, "system": [_marked("Handbook", "1h"), _marked("Be brief.", "5m")]}
    assert AnthropicAdapter().parse(both).messages[0].cache_mark == "1h"


def test_anthropic_refuses_a_one_hour_mark_after_a_five_minute_one_naming_it():
    tool = {
        "name": "bill",
        "input_schema": {"type": "object"},
        "cache_control": {"type": "ephemeral"},
    }
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "system": [_marked("Handbook")],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, _marked("b", "1h")]}
        ],
    }
    with pytest.raises(GatewayError, match="must not come after a ttl='5m'") as info:
        AnthropicAdapter().parse(body)
    assert info.value.kind == "invalid_request"
    assert info.value.message.startswith("messages.0.content.1.cache_control.ttl: ")
    one_hour_first = {**body, "system": [_marked("Handbook", "1h")]}
    assert AnthropicAdapter().parse(one_hour_first).messages[-1].cache_mark == "1h"
    with pytest.raises(GatewayError, match=r"^system\.0\.cache_control\.ttl: a ttl='1h'"):
        AnthropicAdapter().parse({**one_hour_first, "tools": [tool]})  # tools come first


def test_anthropic_refuses_an_unknown_ttl_naming_it_alike_in_blocks_and_tools():
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": [_marked("hi", "2h")]}],
    }
    tool = {"name": "t", "input_schema": {}, "cache_control": {"type": "ephemeral", "ttl": "2h"}}
    unmarked = {**body, "messages": [{"role": "user", "content": "hi"}]}
    for refused, param in (
        (body, "messages[0].content[0].cache_control.ttl"),
        ({**unmarked, "tools": [tool]}, "tools[0].cache_control.ttl"),
    ):
        with pytest.raises(GatewayError) as info:
            AnthropicAdapter().parse(refused)
        assert info.value.kind == "invalid_request" and info.value.param == param
        assert "Input should be '5m' or '1h'" in info.value.message


def test_anthropic_counts_tools_marks_and_names_the_top_level_one():
    tool = {"name": "t", "input_schema": {}, "cache_control": {"type": "ephemeral"}}
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "system": [_marked("one"), _marked("two")],
        "messages": [{"role": "user", "content": [_marked("three"), _marked("four")]}],
    }
    with pytest.raises(GatewayError, match="Found 5"):
        AnthropicAdapter().parse({**body, "tools": [tool]})
    late = {**body, "system": "plain", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    with pytest.raises(GatewayError) as info:
        AnthropicAdapter().parse(late)
    assert info.value.message.startswith("cache_control.ttl: a ttl='1h' cache_control block")


def test_a_tool_message_must_answer_an_assistant_tool_call():
    call = {"id": "call_1", "type": "function", "function": {"name": "bill", "arguments": "{}"}}
    asked = {"role": "assistant", "content": None, "tool_calls": [call]}
    answer = {"role": "tool", "content": "42", "tool_call_id": "call_1"}
    user = {"role": "user", "content": "What does the bill say?"}
    adapter = OpenAIAdapter()
    for messages in ([user, asked, answer], [user, asked, answer, dict(answer)]):
        assert adapter.parse({"model": "gpt-4o", "messages": messages}).messages[-1].role == "tool"
    for messages, at in (([user, answer], 1), ([user, asked, answer, user, answer], 4)):
        with pytest.raises(GatewayError, match="must be a response to a preceeding") as info:
            adapter.parse({"model": "gpt-4o", "messages": messages})
        assert info.value.param == f"messages[{at}].role"


def tool_reply(call_id: str) -> dict:
    return {"role": "tool", "content": "12C", "tool_call_id": call_id}


def test_each_openai_tool_call_is_answered_by_its_own_tool_message():
    """An agent loop that drops or mislabels a tool result gets OpenAI's 400 here, not in
    production."""
    second = {**CALL, "id": "c2"}
    both = {"role": "assistant", "content": None, "tool_calls": [CALL, second]}
    user = {"role": "user", "content": "And tomorrow?"}
    adapter = OpenAIAdapter()
    answered = [user, both, tool_reply("c2"), tool_reply("c1"), user]
    assert adapter.parse({"model": "gpt-4o", "messages": answered}).messages[-1].role == "user"
    refusals = [
        ([user, both, tool_reply("zzz")], "messages[2].tool_call_id", "'zzz' not found"),
        ([user, both, tool_reply("c1"), user], "messages[1].role", "response messages: c2"),
        ([user, both], "messages[1].role", "did not have response messages: c1, c2"),
        ([user, both, tool_reply("c1"), tool_reply("c2"), user, tool_reply("c1")],
         "messages[5].role", "must be a response to a preceeding"),
    ]  # fmt: skip
    for messages, param, says in refusals:
        with pytest.raises(GatewayError) as info:
            adapter.parse({"model": "gpt-4o", "messages": messages})
        assert (info.value.param, says in info.value.message) == (param, True)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        ({"type": "function"}, "messages[1].tool_calls[0].id"),
        ({"id": "c1"}, "messages[1].tool_calls[0].type"),
        ({"id": "c1", "type": "function"}, "messages[1].tool_calls[0].function"),
        ({"id": "c1", "type": "function", "function": {"name": "f"}},
         "messages[1].tool_calls[0].function.arguments"),
        ({"id": "c1", "type": "custom", "custom": {"name": "g"}},
         "messages[1].tool_calls[0].custom.input"),
    ],
)  # fmt: skip
def test_an_openai_tool_call_names_its_id_type_and_body(call, param):
    messages = [*ASKED, {"role": "assistant", "tool_calls": [call]}, tool_reply("c1")]
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse({"model": "gpt-4o", "messages": messages})
    assert (info.value.param, info.value.message) == (
        param,
        f"Missing required parameter: '{param}'.",
    )


def test_an_openai_tool_calls_arguments_are_a_string():
    """An agent that passes the parsed arguments back as an object was told they were missing."""
    call = {**CALL, "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    messages = [*ASKED, {"role": "assistant", "tool_calls": [call]}, tool_reply("c1")]
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse({"model": "gpt-4o", "messages": messages})
    param = "messages[1].tool_calls[0].function.arguments"
    assert info.value.param == param
    assert info.value.message == (
        f"Invalid type for '{param}': expected a string, but got an object instead."
    )


@pytest.mark.parametrize(
    ("assistant", "param", "message"),
    [
        ({"tool_calls": "x"}, "messages[1].tool_calls",
         "Invalid type for 'messages[1].tool_calls': expected an array, but got a string instead."),
        ({"content": "no", "refusal": 5}, "messages[1].refusal",
         "Invalid type for 'messages[1].refusal': expected a string, but got an integer instead."),
        ({"tool_calls": [{"id": "c1", "type": "weird"}]}, "messages[1].tool_calls[0].type",
         "Invalid value: 'weird'. Supported values are: 'function' and 'custom'."),
    ],
)  # fmt: skip
def test_an_openai_assistant_messages_calls_and_refusal_have_their_types(assistant, param, message):
    """Each was served as if it were absent; OpenAI refuses them."""
    messages = [*ASKED, {"role": "assistant", **assistant}, tool_reply("c1")]
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse({"model": "gpt-4o", "messages": messages})
    assert (info.value.param, info.value.message) == (param, message)


@pytest.mark.parametrize("adapter", [OpenAIAdapter(), AnthropicAdapter()])
def test_image_parts_are_refused_naming_the_parameter(adapter):
    image = [{"type": "image_url", "image_url": {}}]
    body = {"model": "gpt-4", "max_tokens": 5, "messages": [{"role": "user", "content": image}]}
    with pytest.raises(GatewayError) as info:
        adapter.parse(body)
    assert info.value.kind == "invalid_request"
    assert info.value.param is not None and info.value.param.startswith("messages[0].content")


def test_a_replayed_openai_conversation_with_a_refusal_or_a_function_result_is_served():
    """The SDK's message types allow both: an assistant's refusal part, and the deprecated
    `function` role answering a `function_call`."""
    messages = [
        {"role": "user", "content": "Delete the production database."},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help."}]},
        {"role": "user", "content": "What is the weather?"},
        {"role": "assistant", "content": None,
         "function_call": {"name": "weather", "arguments": "{}"}},
        {"role": "function", "name": "weather", "content": "Sunny."},
    ]  # fmt: skip
    request = OpenAIAdapter().parse({"model": "gpt-4o", "messages": messages})
    assert [(m.role, m.content) for m in request.messages] == [
        ("user", "Delete the production database."),
        ("assistant", "I can't help."),
        ("user", "What is the weather?"),
        ("assistant", ""),
        ("function", "Sunny."),
    ]


def test_a_refusal_part_outside_an_assistant_message_is_refused_naming_it():
    user = [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse({"model": "gpt-4o", "messages": user})
    assert info.value.param == "messages[0].content"
    assert "a user message's content parts must be of type 'text'" in info.value.message


def test_openai_render_matches_the_sdk_shape():
    body = OpenAIAdapter().render(COMPLETION, "chatcmpl-1")
    parsed = openai_shape.ChatCompletion.model_validate(body)
    assert parsed.choices[0].finish_reason == "length"
    assert parsed.usage.total_tokens == 16
    assert openai_shape.ModelList.model_validate(OpenAIAdapter().list_models(TABLE)).data


def test_anthropic_render_matches_the_sdk_shape():
    body = AnthropicAdapter().render(COMPLETION, "msg_1")
    parsed = anthropic_shape.Message.model_validate(body)
    assert (parsed.stop_reason, parsed.usage.output_tokens) == ("max_tokens", 4)
    page = anthropic_shape.ModelsPage.model_validate(AnthropicAdapter().list_models(TABLE))
    assert page.first_id == page.data[0].id


def test_the_anthropic_list_puts_the_newest_release_first():
    """Anthropic lists the most recently released models first; models of one date (the
    undated ones at the epoch) keep the table's order."""
    page = AnthropicAdapter().list_models(TABLE, {"limit": "1000"})["data"]
    dates = [model["created_at"] for model in page]
    assert dates == sorted(dates, reverse=True) and dates[0] > dates[-1]
    undated = [model["id"] for model in page if model["created_at"].startswith("1970")]
    assert undated == [name for name, card in TABLE.models.items() if card.released is None]


@pytest.mark.parametrize("include_usage", [False, True])
async def test_openai_stream_frames_the_pieces(include_usage):
    request = OpenAIAdapter().parse(
        {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "stream": True,
         "stream_options": {"include_usage": include_usage}}
    )  # fmt: skip
    raw = [part async for part in OpenAIAdapter().stream(COMPLETION, request, "c1", pieces())]
    data = events(raw)
    assert data[-1] == "[DONE]"
    chunks = [openai_shape.ChatCompletionChunk.model_validate_json(d) for d in data[:-1]]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == COMPLETION.text
    usage = [c.usage for c in chunks if c.usage is not None]
    expected = openai_shape.CompletionUsage(
        prompt_tokens=12,
        completion_tokens=4,
        total_tokens=16,
        prompt_tokens_details=openai_shape.PromptTokensDetails(cached_tokens=0),
    )
    assert usage == ([expected] if include_usage else [])


async def test_anthropic_stream_frames_the_pieces():
    request = AnthropicAdapter().parse(
        {"model": "gpt-4", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    )
    raw = [part async for part in AnthropicAdapter().stream(COMPLETION, request, "m1", pieces())]
    data = [json.loads(d) for d in events(raw)]
    for event in data:
        anthropic_shape.MessageStreamEvent.model_validate(event)
    deltas = [e["delta"]["text"] for e in data if e["type"] == "content_block_delta"]
    assert "".join(deltas) == COMPLETION.text
    assert data[-2]["delta"]["stop_reason"] == "max_tokens"


@pytest.mark.parametrize("kind", KINDS)
def test_every_error_kind_has_a_status_and_a_body_in_each_shape(kind):
    error = GatewayError(kind, "message", param="p")
    status, body = OpenAIAdapter().render_error(error)
    assert 400 <= status < 600
    openai_shape.OpenAIErrorResponse.model_validate(body)
    anthropic_status, anthropic_body = AnthropicAdapter().render_error(error)
    assert anthropic_status == status
    anthropic_shape.AnthropicErrorResponse.model_validate(anthropic_body)


FUNCTION_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
ASKED = [{"role": "user", "content": "Weather in Oslo?"}]
CALL = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
CALLED = {"role": "assistant", "tool_calls": [CALL]}


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"tool_choice": "bogus"}, "tool_choice", "Input should be 'none', 'auto' or 'required'"),
        ({"tool_choice": "required"}, "tool_choice", "only allowed when 'tools' are specified"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "Missing required parameter"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", "Missing"),
        ({"tools": [FUNCTION_TOOL], "tool_choice": {"type": "function"}}, "tool_choice.function",
         "Missing required parameter"),
        ({"response_format": {"type": "bogus"}}, "response_format.type", "Input should be"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "Missing"),
        ({"messages": [{"role": "assistant", "content": None}, *ASKED]}, "messages[0].content",
         "Missing required parameter"),
        ({"messages": [*ASKED, CALLED, {"role": "tool", "content": "12C"}]},
         "messages[2].tool_call_id", "Missing required parameter"),
    ],
)  # fmt: skip
def test_openai_refuses_tool_fields_as_openai_does(fields, param, says):
    """They are not simulated, but a request OpenAI refuses was answered with a 200."""
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse({"model": "gpt-4o-mini", "messages": ASKED, **fields})
    assert (info.value.kind, info.value.param) == ("invalid_request", param)
    assert says in info.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [FUNCTION_TOOL], "tool_choice": "required"},
        {
            "tools": [FUNCTION_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
        {
            "tools": [FUNCTION_TOOL],
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            },
        },
        {"tools": [{"type": "custom", "custom": {"name": "grammar"}}]},
        {"tool_choice": "none"},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "answer"}}},
        {"messages": [*ASKED, CALLED, {"role": "tool", "content": "12C", "tool_call_id": "c1"}]},
        {"messages": [*ASKED, {"role": "assistant", "audio": {"id": "audio_1"}}, *ASKED]},
    ],
)
def test_openai_keeps_accepting_the_tool_fields_it_documents(fields):
    request = OpenAIAdapter().parse({"model": "gpt-4o-mini", "messages": ASKED, **fields})
    keyed = dict(request.unsimulated)
    assert {name for name in fields if name != "messages"} <= set(keyed)


ANTHROPIC_TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}
THINKS = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"thinking": {"kind": "enabled"}}, "thinking.type", "thinking.type: Field required"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10}}, "thinking.budget_tokens",
         "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens", "Field required"),
        ({"tool_choice": {"type": "bogus"}}, "tool_choice.type", "Input should be 'auto'"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name", "Field required"),
        ({"tools": [{"name": "get_weather"}]}, "tools[0].input_schema", "Field required"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name", "tools.0.name: Field required"),
        ({"metadata": {"user_id": 123}}, "metadata.user_id", "Input should be a valid string"),
        ({"metadata": {"user_id": "u-7", "session": "s-1"}}, "metadata.session",
         "metadata.session: Extra inputs are not permitted"),
        ({**THINKS, "temperature": 0.5}, "temperature", "may only be set to 1 when thinking"),
        ({"thinking": {"type": "adaptive"}, "temperature": 0}, "temperature", "adaptive mode"),
        ({**THINKS, "top_p": 0.9}, "top_p", "between 0.95 and 1"),
        ({**THINKS, "top_k": 5}, "top_k", "must be unset when thinking"),
        ({**THINKS, "tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "any"}},
         "tool_choice.type", "Thinking may not be enabled when tool_choice forces tool use"),
    ],
)  # fmt: skip
def test_anthropic_refuses_tool_and_thinking_fields_as_anthropic_does(fields, param, says):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 2000, "messages": ASKED, **fields}
    with pytest.raises(GatewayError) as info:
        AnthropicAdapter().parse(body)
    assert (info.value.kind, info.value.param) == ("invalid_request", param)
    assert says in info.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        {"thinking": {"type": "adaptive"}},
        {"thinking": {"type": "disabled"}},
        {"thinking": {"type": "between_tools"}},
        # Above max_tokens: allowed with the interleaved-thinking beta, left to the provider.
        {"thinking": {"type": "enabled", "budget_tokens": 5000}},
        {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "tool", "name": "get_weather"}},
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        {"tools": [{"type": "mcp_toolset", "mcp_server_name": "docs"}]},  # no name: a toolset
        {"tools": [{"type": "computer_toolset_20260801"}]},
        {"metadata": {"user_id": "user-7"}},
        # Thinking takes the sampling values it allows, an unforced tool choice, and without
        # thinking any of them.
        {**THINKS, "temperature": 1},
        {**THINKS, "top_p": 0.95},
        {**THINKS, "tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "auto"}},
        {"thinking": {"type": "disabled"}, "temperature": 0.2, "top_k": 5},
    ],
)
def test_anthropic_keeps_accepting_the_fields_it_documents(fields):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 2000, "messages": ASKED, **fields}
    assert AnthropicAdapter().parse(body).messages[-1].content == "Weather in Oslo?"


def test_anthropic_counts_tokens_with_a_thinking_budget_and_no_max_tokens():
    thinking = {"type": "enabled", "budget_tokens": 4000}
    body = {"model": "claude-sonnet-4-6", "messages": ASKED, "thinking": thinking}
    assert AnthropicAdapter().parse_count_tokens(body).max_tokens is None


def test_an_empty_content_array_is_refused_as_too_short_not_as_a_wrong_type():
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": []}]}
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse(body)
    assert info.value.param == "messages[0].content"
    assert "at least 1 item" in info.value.message and "valid string" not in info.value.message


WEATHER_CALL = {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                "input": {"city": "Oslo"}}  # fmt: skip
TOOL_TURNS = [
    *ASKED,
    {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, WEATHER_CALL]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                  "content": "4 C, light snow"}]},
]  # fmt: skip


def anthropic_turns(messages: list) -> dict:
    return {"model": "claude-sonnet-4-6", "max_tokens": 200, "tools": [ANTHROPIC_TOOL],
            "messages": messages}  # fmt: skip


def test_anthropic_serves_a_tool_use_conversation_keyed_and_counted_by_its_tool_blocks():
    """A tool call and its result are replayed as Anthropic's SDKs send them: the call and the
    result change the answer (cache key) and the bill (prompt tokens), not the messages' text."""
    request = AnthropicAdapter().parse(anthropic_turns(TOOL_TURNS))
    call, result = request.messages[1], request.messages[2]
    assert (call.content, result.content) == ("Checking.", "")
    assert '"input":{"city":"Oslo"}' in call.keyed and "light snow" in result.keyed
    card = default_price_table().resolve("claude-sonnet-4-6")
    other = json.loads(json.dumps(TOOL_TURNS))
    other[2]["content"][0]["content"] = "30 C"
    other_request = AnthropicAdapter().parse(anthropic_turns(other))
    assert request.canonical(card.name) != other_request.canonical(card.name)
    without_result = PromptTokens(other_request.messages)(card)
    assert PromptTokens(request.messages)(card) > without_result  # "4 C, light snow" is longer


@pytest.mark.parametrize(
    ("messages", "param", "says"),
    [
        ([*ASKED, {"role": "assistant", "content": [WEATHER_CALL]}, *ASKED],
         "messages[1].content", "`tool_use` ids were found without `tool_result` blocks "
         "immediately after: toolu_1"),
        ([*ASKED, {"role": "assistant", "content": "Sure."}, TOOL_TURNS[2]],
         "messages[2].content[0].tool_use_id", "unexpected `tool_use_id` found in "
         "`tool_result` blocks: toolu_1"),
        ([{"role": "user", "content": [WEATHER_CALL]}], "messages[0]",
         "`tool_use` blocks are not allowed in user messages"),
        ([{"role": "user", "content": [{"type": "image", "source": {}}]}],
         "messages[0].content[0].type", "does not match any of the expected tags"),
    ],
)  # fmt: skip
def test_anthropic_refuses_tool_blocks_out_of_their_pairing(messages, param, says):
    with pytest.raises(GatewayError) as info:
        AnthropicAdapter().parse(anthropic_turns(messages))
    assert (info.value.kind, info.value.param) == ("invalid_request", param)
    assert says in info.value.message


@pytest.mark.parametrize(
    ("metadata", "param", "says"),
    [
        ({"a": 1}, "metadata.a", "expected a string, but got an integer instead"),
        ({"a": "x" * 513}, "metadata.a", "maximum length 512, but got a string with length 513"),
        ({"k" * 65: "v"}, "metadata", "keys of at most 64 characters, but got one of 65"),
        ({str(n): "v" for n in range(17)}, "metadata", "at most 16 properties"),
    ],
)
def test_openai_refuses_metadata_outside_its_documented_bounds(metadata, param, says):
    """Ignored, but a request OpenAI refuses must not be served here."""
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse({"model": "gpt-4o-mini", "messages": ASKED, "metadata": metadata})
    assert (info.value.kind, info.value.param) == ("invalid_request", param)
    assert says in info.value.message


def test_openai_takes_metadata_inside_its_bounds():
    metadata = {str(n): "v" * 512 for n in range(16)}
    body = {"model": "gpt-4o-mini", "messages": ASKED, "metadata": metadata}
    assert OpenAIAdapter().parse(body).model == "gpt-4o-mini"


def fn_tool(name: str, parameters: object = None) -> dict:
    function: dict = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [fn_tool("f", "oops")]}, "tools[0].function.parameters"),
        ({"tools": [fn_tool("f")], "tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}},
         "tool_choice.allowed_tools"),
        ({"tools": [fn_tool("f")], "tool_choice": {"type": "function", "function": {"name": "g"}}},
         "tool_choice"),
        ({"tools": [fn_tool("f")], "tool_choice": {"type": "allowed_tools", "allowed_tools": {
            "mode": "required", "tools": [{"type": "function", "function": {"name": "g"}}]}}},
         "tool_choice"),
    ],
)  # fmt: skip
def test_openai_refuses_malformed_tools_and_choices_naming_them(fields, param):
    """Each was a 500 (the simulator read them as dicts) or a call to a tool never offered."""
    with pytest.raises(GatewayError) as info:
        OpenAIAdapter().parse({"model": "gpt-4o", "messages": ASKED, **fields})
    assert (info.value.kind, info.value.param) == ("invalid_request", param)


def test_openai_allowed_tools_narrow_a_forced_call_and_auto_mode_forces_none():
    tools = [fn_tool(name, {"type": "object"}) for name in "abcd"]
    allowed = {"type": "function", "function": {"name": "b"}}
    required = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [allowed]}}
    body = {"model": "gpt-4o", "messages": ASKED, "tools": tools}
    prompt = OpenAIAdapter().parse({**body, "tool_choice": required}).tool_prompt
    assert prompt is not None and (prompt.forced, prompt.choices) == (True, ("b",))
    auto = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [allowed]}}
    prompt = OpenAIAdapter().parse({**body, "tool_choice": auto}).tool_prompt
    assert prompt is not None and not prompt.forced


def test_anthropic_refuses_a_named_choice_of_a_tool_it_does_not_offer():
    body = anthropic_turns([*ASKED])
    with pytest.raises(GatewayError) as info:
        AnthropicAdapter().parse({**body, "tool_choice": {"type": "tool", "name": "nope"}})
    assert info.value.param == "tool_choice.name" and "no tool named 'nope'" in info.value.message


def test_anthropic_wants_the_results_first_and_takes_replayed_thinking():
    """Text before the tool_result blocks is refused as Anthropic refuses it; a thinking block
    before a tool call (a tool loop with thinking) is accepted, and neither keyed nor billed."""
    early = json.loads(json.dumps(TOOL_TURNS))
    early[2]["content"].insert(0, {"type": "text", "text": "Here:"})
    with pytest.raises(GatewayError) as info:
        AnthropicAdapter().parse(anthropic_turns(early))
    assert info.value.param == "messages[2].content"
    assert "Did not find 1 `tool_result` block(s) at the beginning" in info.value.message
    thinking = json.loads(json.dumps(TOOL_TURNS))
    thinking[1]["content"].insert(0, {"type": "thinking", "thinking": "Oslo?", "signature": "s"})
    plain = AnthropicAdapter().parse(anthropic_turns(TOOL_TURNS))
    replayed = AnthropicAdapter().parse(anthropic_turns(thinking))
    assert replayed.messages[1].keyed == plain.messages[1].keyed
    user_thinks = [{"role": "user", "content": [{"type": "thinking", "thinking": "x",
                                                 "signature": "s"}]}]  # fmt: skip
    with pytest.raises(GatewayError, match="`thinking` blocks are not allowed in user messages"):
        AnthropicAdapter().parse(anthropic_turns(user_thinks))


def test_anthropic_tools_served_by_an_openai_model_count_their_properties():
    """After routing from Claude to GPT, Anthropic-shaped tools counted about 20 tokens each
    whatever their size (only OpenAI's own shape was read)."""
    properties = {f"field_{n}": {"type": "string", "description": f"The {n}th field of a record"}
                  for n in range(20)}  # fmt: skip
    schema = {"type": "object", "properties": properties}
    anthropic_shaped = AnthropicAdapter().parse(
        {**anthropic_turns([*ASKED]), "tools": [{"name": "record", "input_schema": schema}]}
    )
    openai_shaped = OpenAIAdapter().parse(
        {"model": "gpt-4o", "messages": ASKED, "tools": [fn_tool("record", schema)]}
    )
    gpt = default_price_table().resolve("gpt-5.4-mini")
    counted = PromptTokens(anthropic_shaped.messages, anthropic_shaped.tool_prompt)(gpt)
    assert counted == PromptTokens(openai_shaped.messages, openai_shaped.tool_prompt)(gpt)
    assert counted > 300


def test_the_adapters_are_the_api_shapes_the_metrics_and_log_name():
    """The answers' series are made from API_SHAPES at start: an adapter outside it would count
    in a series that appears on its first request."""
    assert sorted(adapter.api for adapter in (OpenAIAdapter(), AnthropicAdapter())) == sorted(
        API_SHAPES
    )
