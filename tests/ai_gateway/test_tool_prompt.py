"""Tool definitions are billed as prompt tokens, as each provider counts them."""

from __future__ import annotations

import json

import pytest

from ai_gateway.adapters.anthropic import AnthropicAdapter
from ai_gateway.adapters.openai import OpenAIAdapter
from ai_gateway.catalog import PromptTokens
from ai_gateway.pricing import default_price_table
from ai_gateway.tool_prompt import ANTHROPIC_TOOL_SYSTEM_PROMPT, ToolPrompt, tool_prompt_tokens

TABLE = default_price_table()

# OpenAI's cookbook "How to count tokens with tiktoken", section 7: its example tools and
# messages, and the prompt_tokens the API answered for them.
COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


def openai_prompt_tokens(model: str, **fields) -> int:
    request = OpenAIAdapter().parse({"model": model, "messages": COOKBOOK_MESSAGES, **fields})
    return PromptTokens(request.messages, request.tool_prompt)(TABLE.resolve(model))


@pytest.mark.parametrize(("model", "api_count"), [("gpt-4o", 101), ("gpt-4o-mini", 101),
                                                  ("gpt-4", 105)])  # fmt: skip
def test_openai_tools_count_as_the_cookbook_measured_them(model, api_count):
    assert openai_prompt_tokens(model, tools=COOKBOOK_TOOLS) == api_count
    assert openai_prompt_tokens(model) < api_count - 60  # the tools were most of the prompt


def test_a_nested_schema_and_a_response_schema_are_counted():
    nested = json.loads(json.dumps(COOKBOOK_TOOLS))
    nested[0]["function"]["parameters"]["properties"]["where"] = {
        "type": "object",
        "description": "Coordinates",
        "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
    }
    flat = openai_prompt_tokens("gpt-4o", tools=COOKBOOK_TOOLS)
    assert openai_prompt_tokens("gpt-4o", tools=nested) > flat + 10
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    answer_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    plain = openai_prompt_tokens("gpt-4o")
    assert openai_prompt_tokens("gpt-4o", response_format=answer_format) > plain + 5


ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "input_schema": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                }
            },
            "required": ["location"],
        },
    }
]


def anthropic_prompt_tokens(**fields) -> int:
    question = {"role": "user", "content": "What's the weather like in San Francisco?"}
    body = {"model": "claude-sonnet-4-6", "messages": [question], **fields}
    request = AnthropicAdapter().parse_count_tokens(body)
    return PromptTokens(request.messages, request.tool_prompt)(TABLE.resolve("claude-sonnet-4-6"))


def test_anthropic_tools_add_the_tool_use_system_prompt_and_their_definitions():
    """Anthropic's token-counting page counts its tool example at 403 input tokens; the Claude
    count here is an approximation (cl100k_base), so it must land near, not on, that figure."""
    auto = anthropic_prompt_tokens(tools=ANTHROPIC_TOOLS)
    assert auto == pytest.approx(403, rel=0.05)
    forced = anthropic_prompt_tokens(tools=ANTHROPIC_TOOLS, tool_choice={"type": "any"})
    assert auto - forced == ANTHROPIC_TOOL_SYSTEM_PROMPT[False] - ANTHROPIC_TOOL_SYSTEM_PROMPT[True]
    assert anthropic_prompt_tokens() < 30


def test_forced_choices_are_read_from_either_api():
    def forced(choice) -> bool:
        body = {"model": "gpt-4o", "messages": COOKBOOK_MESSAGES, "tools": COOKBOOK_TOOLS}
        request = OpenAIAdapter().parse(
            {**body, **({} if choice is None else {"tool_choice": choice})}
        )
        assert request.tool_prompt is not None
        return request.tool_prompt.forced

    assert [forced(c) for c in (None, "auto", "none", "required")] == [False, False, False, True]
    named = {"type": "function", "function": {"name": "get_current_weather"}}
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [named]}}
    assert (forced(named), forced(allowed)) == (True, False)
    assert (
        OpenAIAdapter().parse({"model": "gpt-4o", "messages": COOKBOOK_MESSAGES}).tool_prompt
        is None
    )


def test_other_providers_count_the_definitions_as_json_and_nothing_is_free():
    gemini = TABLE.resolve("gemini-2.5-flash")
    assert gemini is not None
    tool = json.dumps(ANTHROPIC_TOOLS[0])
    assert tool_prompt_tokens(gemini, ToolPrompt((tool,))) > 30
    assert tool_prompt_tokens(gemini, None) == 0
    assert tool_prompt_tokens(gemini, ToolPrompt()) == 0


def test_an_assistants_tool_calls_are_counted_in_the_prompt():
    arguments = '{"location": "Paris, FR"}'
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_current_weather", "arguments": arguments}}  # fmt: skip
    turns = [
        *COOKBOOK_MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
    ]
    with_call = OpenAIAdapter().parse({"model": "gpt-4o", "messages": turns})
    card = TABLE.resolve("gpt-4o")
    without_arguments = json.loads(json.dumps(turns))
    without_arguments[2]["tool_calls"][0]["function"]["arguments"] = "{}"
    shorter = OpenAIAdapter().parse({"model": "gpt-4o", "messages": without_arguments})
    assert PromptTokens(with_call.messages)(card) > PromptTokens(shorter.messages)(card) + 4
