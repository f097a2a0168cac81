"""A forced tool_choice gets a call whose arguments the tool's schema accepts."""

from __future__ import annotations

import json

import jsonschema
import pytest

from ai_gateway.pricing import default_price_table
from ai_gateway.tokens import count_text
from ai_gateway.tool_calls import forced_call
from ai_gateway.tool_prompt import ToolPrompt

CARD = default_price_table().resolve("gpt-4o")
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "hourly": {"type": "boolean"},
        "where": {
            "type": "object",
            "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90}},
            "required": ["lat"],
        },
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "note": {"type": ["string", "null"]},
    },
    "required": ["city", "unit", "where", "tags"],
}


def openai_tool(name: str, schema: dict) -> str:
    return json.dumps({"type": "function", "function": {"name": name, "parameters": schema}})


def anthropic_tool(name: str, schema: dict) -> str:
    return json.dumps({"name": name, "input_schema": schema})


@pytest.mark.parametrize("tool", [openai_tool, anthropic_tool])
def test_the_arguments_are_valid_for_the_schema_at_every_seed(tool):
    prompt = ToolPrompt((tool("get_weather", WEATHER),), forced=True)
    for seed in range(200):
        made = forced_call(CARD, prompt, 1000, seed)
        assert made is not None and not made.cut
        jsonschema.validate(json.loads(made.call.arguments), WEATHER)
        tokens = count_text(CARD, made.call.name) + count_text(CARD, made.call.arguments)
        assert made.tokens == tokens


def test_a_call_is_made_only_when_forced_and_repeats_for_one_seed():
    tools = (openai_tool("get_weather", WEATHER), openai_tool("get_time", {"type": "object"}))
    assert forced_call(CARD, ToolPrompt(tools), 1000, 1) is None
    assert forced_call(CARD, None, 1000, 1) is None
    forced = ToolPrompt(tools, forced=True)
    assert forced_call(CARD, forced, 1000, 5) == forced_call(CARD, forced, 1000, 5)
    drawn = {forced_call(CARD, forced, 1000, seed).call.name for seed in range(40)}
    assert drawn == {"get_weather", "get_time"}  # required/any: one of the tools
    named = ToolPrompt(tools, forced=True, choices=("get_time",))
    assert {forced_call(CARD, named, 1000, seed).call.name for seed in range(40)} == {"get_time"}


def test_a_cap_below_the_call_cuts_its_arguments():
    prompt = ToolPrompt((openai_tool("get_weather", WEATHER),), forced=True)
    made = forced_call(CARD, prompt, 8, 3)
    assert made is not None and made.cut and made.tokens == 8
    whole = forced_call(CARD, prompt, 1000, 3)
    assert whole is not None and whole.call.arguments.startswith(made.call.arguments)


def test_server_tools_are_not_called_and_a_recursive_schema_ends():
    server = json.dumps({"type": "web_search_20250305", "name": "web_search"})
    assert forced_call(CARD, ToolPrompt((server,), forced=True), 1000, 1) is None
    tree: dict = {"type": "object", "properties": {}, "required": ["child"]}
    schema = tree
    for _ in range(20):  # deeper than any depth the simulator follows
        child: dict = {"type": "object", "properties": {}, "required": ["child"]}
        schema["properties"]["child"] = child
        schema = child
    made = forced_call(CARD, ToolPrompt((anthropic_tool("tree", tree),), forced=True), 1000, 1)
    assert made is not None and json.loads(made.call.arguments)["child"]["child"] is not None


def test_a_forced_call_names_only_the_tools_its_choice_allows():
    tools = tuple(openai_tool(name, {"type": "object"}) for name in "abcd")
    allowed = ToolPrompt(tools, forced=True, choices=("a", "c"))
    assert {forced_call(CARD, allowed, 100, seed).call.name for seed in range(40)} == {"a", "c"}
    made = forced_call(CARD, ToolPrompt((openai_tool("f", {}),), forced=True), 100, 1)
    assert made is not None and made.call.arguments == "{}"  # arguments are always an object
