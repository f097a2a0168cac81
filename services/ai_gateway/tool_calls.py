"""The simulated model's tool call, when a request forces one.

A request whose ``tool_choice`` forces a call (OpenAI's ``required`` or a named function,
Anthropic's ``any`` or ``tool``) gets a call instead of text, as the providers' models make one:
the named tool, or one of the request's tools drawn by the request's seed, with arguments drawn
from that tool's JSON schema (every required property, each optional one by a coin, enums,
numbers within their bounds, nested objects and arrays of their least length; a string is two
words, whatever its format or pattern asks). With ``auto`` or ``none`` the simulated
model answers in text. The call is output tokens: its name and its arguments, counted with the
served model's tokenizer; a cap below that cuts the arguments short, as a provider's model stops.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from .pricing import ModelCard
from .tokens import encoding_name, get_encoding, token_count
from .tool_prompt import ToolPrompt

MAX_DEPTH = 6  # a recursive schema ($ref cycles aside) stops here with an empty value
_WORDS = "alpha beta delta north south report plan order cluster region spend team".split()


@dataclass(frozen=True)
class ToolCall:
    """A call the simulated model made: the id's suffix (each API adds its own prefix), the
    tool's name and its arguments as JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class SimulatedCall:
    call: ToolCall
    tokens: int
    cut: bool  # the cap ended the arguments early


def forced_call(
    card: ModelCard, prompt: ToolPrompt | None, max_tokens: int, seed: int
) -> SimulatedCall | None:
    """The call a forcing ``tool_choice`` makes, or None: the model answers in text."""
    if prompt is None or not prompt.forced:
        return None
    tools = _callable(prompt)
    if not tools:
        return None
    rng = random.Random(seed)
    name = prompt.forced_name if prompt.forced_name in tools else rng.choice(sorted(tools))
    arguments = json.dumps(_value(tools[name], rng, 0))
    enc = get_encoding(encoding_name(card))
    name_tokens = token_count(enc, name)
    encoded = enc.encode(arguments, disallowed_special=())
    room = max(max_tokens - name_tokens, 0)
    cut = len(encoded) > room
    if cut:
        arguments = enc.decode(encoded[:room])
    call = ToolCall(f"{seed:016x}"[:16], name, arguments)
    return SimulatedCall(call, min(name_tokens + len(encoded), max_tokens), cut)


def _callable(prompt: ToolPrompt) -> dict[str, dict[str, Any]]:
    """Each tool the model can call, by name, with its input schema: OpenAI's functions and
    Anthropic's client tools (server tools run at the provider, not in the answer)."""
    tools: dict[str, dict[str, Any]] = {}
    for text in prompt.tools:
        tool = json.loads(text)
        function = tool.get("function") if tool.get("type") == "function" else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tools[function["name"]] = function.get("parameters") or {}
        elif isinstance(tool.get("input_schema"), dict) and isinstance(tool.get("name"), str):
            tools[tool["name"]] = tool["input_schema"]
    return tools


def _value(schema: Any, rng: random.Random, depth: int) -> Any:
    """A value the schema accepts, drawn by ``rng``."""
    if not isinstance(schema, dict):
        return rng.choice(_WORDS)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _value(schema[key][0], rng, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if depth >= MAX_DEPTH:
        return {} if kind == "object" else [] if kind == "array" else None
    if kind == "object":
        required = set(schema.get("required") or ())
        properties = schema.get("properties") or {}
        return {
            key: _value(spec, rng, depth + 1)
            for key, spec in properties.items()
            if key in required or rng.random() < 0.5
        }
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        return [_value(schema.get("items", {}), rng, depth + 1) for _ in range(count)]
    return _scalar(kind, schema, rng)


def _scalar(kind: str, schema: dict[str, Any], rng: random.Random) -> Any:
    low, high = schema.get("minimum", 0), schema.get("maximum", 100)
    if kind == "integer":
        return rng.randint(int(low), max(int(low), int(high)))
    if kind == "number":
        return round(rng.uniform(float(low), max(float(low), float(high))), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choices(_WORDS, k=2))
