"""What a request's tool definitions add to its prompt tokens, as each provider bills them.

A provider renders the tools a request offers into the prompt, so they are billed as input tokens
whether or not the model calls one:

- OpenAI renders functions in a compact form of its own, counted here by the rule of OpenAI's
  cookbook "How to count tokens with tiktoken" (section 7, tools): a fixed cost per function, per
  property and per enum item, plus the tokens of ``name:description`` and
  ``property:type:description`` lines, and a fixed end. The cookbook's figures are for gpt-4o and
  gpt-4o-mini (o200k_base) and gpt-4 and gpt-3.5-turbo (cl100k_base); newer models are counted
  with their encoding's figures. A nested schema (an object or array property) is counted as its
  JSON, which the cookbook leaves out.
- Anthropic adds a tool-use system prompt (its pricing page's tool-use table: 346 tokens with
  ``tool_choice`` auto or none, 313 with any or tool, for the Claude 4 models; later models are
  assumed the same) to the tokens of the definitions themselves (name, description and schema),
  counted as JSON with the Claude approximation.
- Gemini's function declarations are counted as JSON, with no fixed prompt: Google publishes none.

A ``response_format`` JSON schema is counted as JSON too. These are approximations: no provider
publishes its rendering. The definitions are billed at the uncached input price (the provider
prompt cache models messages only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .pricing import ModelCard
from .tokens import count_text, encoding_name


@dataclass(frozen=True)
class ToolPrompt:
    """The tools a request offers, each as canonical JSON of its definition, and whether its
    ``tool_choice`` forces a call (OpenAI's ``required`` or a named function, Anthropic's
    ``any`` or ``tool``)."""

    tools: tuple[str, ...] = ()
    forced: bool = False
    response_schema: str | None = None
    # The tools a forced call may name, where the choice narrows them (a named tool, OpenAI's
    # allowed_tools); empty: any of ``tools``.
    choices: tuple[str, ...] = ()

    @cached_property
    def parsed(self) -> tuple[dict[str, Any], ...]:
        """The tools as objects, decoded once for the counts and a forced call."""
        return tuple(json.loads(tool) for tool in self.tools)


@dataclass(frozen=True)
class _OpenAIFigures:
    function: int
    property_start: int = 3
    property: int = 3
    enum_start: int = -3
    enum_item: int = 3
    end: int = 12


OPENAI_FIGURES = {"o200k_base": _OpenAIFigures(function=7), "cl100k_base": _OpenAIFigures(10)}
ANTHROPIC_TOOL_SYSTEM_PROMPT = {False: 346, True: 313}  # keyed by ToolPrompt.forced


def tool_prompt_tokens(card: ModelCard, prompt: ToolPrompt | None) -> int:
    """The input tokens ``prompt`` adds to a request served by ``card``."""
    if prompt is None:
        return 0
    schema = 0 if prompt.response_schema is None else count_text(card, prompt.response_schema)
    return schema + definitions_tokens(card, prompt)


def definitions_tokens(card: ModelCard, prompt: ToolPrompt) -> int:
    """The tool definitions' share (the part a provider's prompt cache starts with)."""
    if not prompt.tools:
        return 0
    if card.provider == "openai":
        return _openai_tools(card, prompt.parsed)
    tools = sum(count_text(card, tool) for tool in prompt.tools)
    if card.provider == "anthropic":
        return tools + ANTHROPIC_TOOL_SYSTEM_PROMPT[prompt.forced]
    return tools


def _openai_tools(card: ModelCard, tools: tuple[dict[str, Any], ...]) -> int:
    figures = OPENAI_FIGURES.get(encoding_name(card), OPENAI_FIGURES["o200k_base"])
    total = figures.end
    for tool in tools:
        function = definition(tool)
        total += figures.function
        total += count_text(card, f"{function.get('name', '')}:{_sentence(function)}")
        schema = _dict(function.get("parameters") or function.get("input_schema"))
        if not schema and "format" in function:  # a custom tool's grammar, counted as JSON
            total += count_text(card, json.dumps(function["format"]))
        properties = _dict(schema.get("properties"))
        if properties:
            total += figures.property_start
        for key, spec in properties.items():
            total += figures.property + _openai_property(card, figures, key, spec)
    return total


def definition(tool: dict[str, Any]) -> dict[str, Any]:
    """The named definition inside a tool of either API's shape: OpenAI's ``function`` or
    ``custom`` object, or Anthropic's tool itself (a request routed from Claude to GPT, whose
    tools OpenAI would render too)."""
    inner = tool.get(tool.get("type", "function")) if isinstance(tool.get("type"), str) else None
    return _dict(inner) or _dict(tool.get("function")) or tool


def _dict(value: Any) -> dict[str, Any]:
    """A malformed part of a client's schema counts as nothing, never as a 500."""
    return value if isinstance(value, dict) else {}


def _openai_property(card: ModelCard, figures: _OpenAIFigures, key: str, spec: Any) -> int:
    if not isinstance(spec, dict):
        return count_text(card, f"{key}:{json.dumps(spec)}")
    total = count_text(card, f"{key}:{spec.get('type', '')}:{_sentence(spec)}")
    if isinstance(spec.get("enum"), list):
        total += figures.enum_start
        for item in spec["enum"]:
            total += figures.enum_item + count_text(card, str(item))
    nested = {name: spec[name] for name in ("properties", "items") if name in spec}
    if nested:
        total += count_text(card, json.dumps(nested, separators=(",", ":")))
    return total


def _sentence(definition: dict[str, Any]) -> str:
    """A description as OpenAI renders it: without its final period."""
    description = str(definition.get("description") or "")
    return description.removesuffix(".")
