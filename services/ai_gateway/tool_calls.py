"""The simulated model's tool call, when a request forces one.

A request whose ``tool_choice`` forces a call (OpenAI's ``required`` or a named function,
Anthropic's ``any`` or ``tool``) gets a call instead of text, as the providers' models make one:
the named tool, or one of the request's tools drawn by the request's seed, with arguments drawn
from that tool's JSON schema (json_values.py). With ``auto`` or ``none`` the simulated
model answers in text. The call is output tokens: its name and its arguments, counted with the
served model's tokenizer; a cap below that cuts the arguments short, as a provider's model stops.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from .json_values import draw
from .pricing import ModelCard
from .tokens import encoding_name, get_encoding, token_count
from .tool_prompt import ToolPrompt, definition


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
    names = sorted(name for name in tools if not prompt.choices or name in prompt.choices)
    if not names:
        return None
    rng = random.Random(seed)
    name = rng.choice(names)
    drawn = draw(tools[name], rng)
    arguments = json.dumps(drawn if isinstance(drawn, dict) else {})  # arguments are an object
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
    for tool in prompt.parsed:
        named = definition(tool)
        function = tool.get("type") == "function"
        schema = named.get("parameters") if function else named.get("input_schema")
        if isinstance(named.get("name"), str) and (function or isinstance(schema, dict)):
            tools[named["name"]] = schema or {}
    return tools
