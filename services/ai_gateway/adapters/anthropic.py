"""Anthropic Messages and Models: request body, responses, stream events and errors.

The body and response models follow the official ``anthropic`` SDK's types. They validate requests
(once, here) and document the API in /openapi.json; responses are rendered as plain dicts on the
hot path, and tests check them against these models.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ..domain import ChatRequest, Completion, GatewayError, RateLimitState
from ..pricing import ModelCard, PriceTable
from ..records import ErrorKind
from ..tokens import CacheTTL, PromptMessage
from ..tool_prompt import ToolPrompt
from .base import (
    HTTP_STATUS,
    JSON,
    KEYED,
    RATE_LIMIT_PARTS,
    RATE_LIMIT_UNITS,
    Lenient,
    canonical_json,
    parse_body,
    rate_limit_headers,
    sse,
    unsimulated,
)

_ERROR_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "not_found": "not_found_error",
    "not_allowed": "invalid_request_error",
    "too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "budget": "rate_limit_error",
    "unavailable": "api_error",
    "internal": "api_error",
    "client_closed": "invalid_request_error",
    "timeout": "invalid_request_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
TOOLS = (
    "Part of the cache key, and billed as prompt tokens. A tool_choice that forces a call (any, "
    "or a named tool) gets a tool_use block, its input drawn from the tool's input_schema; with "
    "auto or none the simulated model answers in text."
)
_SEEDS = "Seeds the deterministic simulated answer (part of the cache key); nothing is sampled."
_IGNORED = "Accepted and ignored: the simulated provider does not implement it."
MODELS_PAGE_DEFAULT, MODELS_PAGE_MAX = 20, 1000


class CacheControl(Lenient):
    """A prompt-cache breakpoint: the prompt up to this block is cached for ``ttl``."""

    type: Literal["ephemeral"]
    ttl: CacheTTL = Field(
        default="5m",
        description='How long the entry lives idle: "5m" (written at 1.25x the input price) or '
        '"1h" (2x). A "1h" mark may not come after a "5m" one (tools, system, then messages).',
    )


class TextBlock(Lenient):
    """Text, tool calls and tool results are accepted; image and document blocks are refused
    (400)."""

    type: Literal["text"]
    text: str = Field(description="Non-empty, and not only whitespace (Anthropic's rule).")
    cache_control: CacheControl | None = Field(
        default=None, description="Marks a prompt-cache breakpoint at the end of this block."
    )

    @field_validator("text")
    @classmethod
    def _has_text(cls, text: str) -> str:
        return _non_whitespace(text)


def _non_whitespace(text: str) -> str:
    if not text:
        raise ValueError("text content blocks must be non-empty")
    if text.isspace():
        raise ValueError("text content blocks must contain non-whitespace text")
    return text


class ToolUseBlock(Lenient):
    """An assistant's tool call, replayed in a conversation: billed as prompt tokens and part of
    the cache key; the simulated model never makes one."""

    type: Literal["tool_use"]
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]
    cache_control: CacheControl | None = None


class ToolResultBlock(Lenient):
    """What the client's tool answered, in the next user message: billed as prompt tokens and
    part of the cache key."""

    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: str | list[TextBlock] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class _Unmarked(Lenient):
    """A block the prompt cache cannot mark: a ``cache_control`` on it is refused, where it
    passed as an unknown field and failed the breakpoint count (a 500)."""

    cache_control: None = Field(
        default=None, description="Refused: thinking blocks cannot be marked for caching."
    )

    @field_validator("cache_control", mode="before")
    @classmethod
    def _refused(cls, mark: Any) -> None:
        if mark is not None:
            raise ValueError("thinking blocks cannot be marked with cache_control")


class ThinkingBlock(_Unmarked):
    """An assistant's earlier thinking, replayed as a tool loop with thinking must: accepted,
    and neither keyed nor billed (Anthropic drops earlier turns' thinking from the context)."""

    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(_Unmarked):
    type: Literal["redacted_thinking"]
    data: str


ContentBlock = Annotated[
    TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
    Field(discriminator="type"),
]
ASSISTANT_ONLY = ("tool_use", "thinking", "redacted_thinking")
Content = str | list[ContentBlock]


class InputMessage(Lenient):
    role: Literal["user", "assistant"]
    content: Content

    @model_validator(mode="after")
    def _tool_blocks_in_their_roles(self) -> InputMessage:
        """A tool call comes from the assistant, its result from the user (Anthropic's rule)."""
        if isinstance(self.content, list):
            wrong = ("tool_result",) if self.role == "assistant" else ASSISTANT_ONLY
            for block in self.content:
                if block.type in wrong:
                    raise ValueError(
                        f"`{block.type}` blocks are not allowed in {self.role} messages"
                    )
        return self


def anthropic_wording(path: tuple[Any, ...], problem: Any) -> str:
    """Anthropic's: the field's dotted place, list positions as numbers, then the validator's
    message (``max_tokens: Field required``). A rule of Anthropic's own (a ValueError here) is
    in its words, under the top-level field as Anthropic reports it (``messages: text content
    blocks must be non-empty``) unless its words name their place."""
    if problem["type"] == "value_error":
        said = str(problem["ctx"]["error"])
        top = str(path[0]) if path else ""
        return said if not top or said.startswith(top) else f"{top}: {said}"
    where = ".".join(str(part) for part in path)
    return f"{where}: {problem['msg']}" if where else str(problem["msg"])


class JSONOutputFormat(Lenient):
    """Structured outputs: the answer is JSON that the schema accepts."""

    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")


class OutputConfig(Lenient):
    format: JSONOutputFormat | None = None


class PromptBody(Lenient):
    """What a message request and a token count share: the model and the prompt."""

    model: str = Field(
        min_length=1,
        description="A model of the catalog (GET /v1/models), an alias, or 'auto' when routing "
        "is on; OpenAI models are served too.",
    )
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1, description=_SEEDS)
    top_p: float | None = Field(default=None, ge=0, le=1, description=_SEEDS)
    top_k: int | None = Field(default=None, ge=0, description=KEYED)
    stop_sequences: list[str] | None = Field(
        default=None,
        description="The simulated text ends where one first occurs (stop_reason "
        '"stop_sequence"), without it; part of the cache key.',
    )
    stream: bool | None = Field(default=False, description="Answer as server-sent events.")
    metadata: dict[str, Any] | None = Field(default=None, description=_IGNORED)
    tools: list[dict[str, Any]] | None = Field(default=None, description=TOOLS)
    tool_choice: dict[str, Any] | None = Field(
        default=None, description="Part of the cache key; see tools."
    )
    thinking: dict[str, Any] | None = Field(default=None, description=KEYED)
    output_config: OutputConfig | None = Field(
        default=None,
        description="Part of the cache key. format (structured outputs) answers a value its "
        "schema accepts, the schema billed as prompt tokens; effort is not simulated.",
    )
    cache_control: CacheControl | None = Field(
        default=None,
        description="Automatic prompt caching: a breakpoint on the last block of the request.",
    )

    @field_validator("messages")
    @classmethod
    def _not_empty(cls, messages: list[InputMessage]) -> list[InputMessage]:
        """Anthropic's rules: a final assistant message (a prefill) may be empty, no other; text
        is never only whitespace; a prefill does not end with whitespace."""
        for at, message in enumerate(messages):
            last_assistant = at == len(messages) - 1 and message.role == "assistant"
            if not message.content and not last_assistant:
                raise ValueError(
                    f"messages.{at}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
            if isinstance(message.content, str) and message.content.isspace():
                raise ValueError("text content blocks must contain non-whitespace text")
            text = _text(message.content)
            if last_assistant and text and text[-1].isspace():
                raise ValueError("final assistant content cannot end with trailing whitespace")
        return messages


class OutputText(BaseModel):
    type: Literal["text"]
    text: str


class OutputToolUse(BaseModel):
    """The call a forcing tool_choice gets instead of text."""

    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class MessagesBody(PromptBody):
    """POST /v1/messages. Fields not listed here are accepted, not simulated, and part of the
    cache key, except a few that leave the answer alone (service tier, inference region, prompt
    caching, account bookkeeping)."""

    max_tokens: int = Field(ge=1, description="Completion token cap.")


class CountTokensBody(PromptBody):
    """POST /v1/messages/count_tokens: a message request without its token cap."""


class MessageTokensCount(BaseModel):
    input_tokens: int = Field(
        description="The prompt's tokens in the model's tokenizer: what a message request with "
        "this prompt is billed as input before any prompt caching."
    )


class CacheCreation(BaseModel):
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class AnthropicUsage(BaseModel):
    input_tokens: int = Field(description="Prompt tokens neither read from nor written to cache.")
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cache_creation: CacheCreation = Field(
        description="cache_creation_input_tokens by the written entries' ttl."
    )
    output_tokens: int


class Message(BaseModel):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str = Field(description="The model that served the request.")
    content: list[OutputText | OutputToolUse]
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"] | None
    stop_sequence: str | None = Field(description="The stop sequence that ended the text.")
    usage: AnthropicUsage


class MessageStreamEvent(BaseModel):
    """One event of a stream: message_start, content_block_start, ping, content_block_delta
    (text_delta), content_block_stop, message_delta, message_stop."""

    type: Literal[
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


class ModelInfo(BaseModel):
    type: Literal["model"]
    id: str
    display_name: str
    created_at: str


class ModelsPage(BaseModel):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None


class AnthropicError(BaseModel):
    type: str
    message: str


class AnthropicErrorResponse(BaseModel):
    type: Literal["error"]
    error: AnthropicError
    request_id: str | None = Field(default=None, description="The request-id header's value.")


def _text(content: str | Sequence[ContentBlock]) -> str:
    """The text blocks' text; tool calls and results are the message's keyed fields."""
    if isinstance(content, str):
        return content
    return "".join(block.text for block in content if isinstance(block, TextBlock))


def _keyed(content: str | Sequence[ContentBlock]) -> str:
    """A message's tool calls and results, as canonical JSON: counted and keyed."""
    if isinstance(content, str):
        return ""
    tools = [
        block.model_dump(exclude={"cache_control"}, exclude_none=True)
        for block in content
        if isinstance(block, ToolUseBlock | ToolResultBlock)
    ]
    return canonical_json(tools) if tools else ""


def _check_tool_results(messages: list[InputMessage]) -> None:
    """Anthropic's pairing: every tool call is answered in the next message, and every result
    answers a call of the message before it."""
    calls: set[str] = set()
    for at, message in enumerate(messages):
        blocks = [] if isinstance(message.content, str) else message.content
        results = [isinstance(block, ToolResultBlock) for block in blocks]
        leading = results.index(False) if False in results else len(results)
        if calls and any(results) and leading < len(calls):  # results, but not all first
            raise _invalid(
                f"messages.{at}: Did not find {len(calls)} `tool_result` block(s) at the "
                "beginning of this message. Messages following `tool_use` blocks must begin with "
                "a matching number of `tool_result` blocks.",
                f"messages[{at}].content",
            )
        for index, block in enumerate(blocks):
            if isinstance(block, ToolResultBlock) and block.tool_use_id not in calls:
                raise _invalid(
                    f"messages.{at}.content.{index}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {block.tool_use_id}. Each `tool_result` block must "
                    "have a corresponding `tool_use` block in the previous message.",
                    f"messages[{at}].content[{index}].tool_use_id",
                )
        answered = {b.tool_use_id for b in blocks if isinstance(b, ToolResultBlock)}
        if calls - answered:
            missing = ", ".join(sorted(calls - answered))
            raise _invalid(
                f"messages.{at - 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {missing}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message.",
                f"messages[{at - 1}].content",
            )
        calls = {b.id for b in blocks if isinstance(b, ToolUseBlock)}


def _cache_mark(content: str | Sequence[ContentBlock]) -> CacheTTL | None:
    """The ttl of this content's ``cache_control`` marks, or None: the simulated breakpoint sits
    at the end of the message (see prompt_cache.py), so a message that marks a block for an hour
    and a later one for 5 minutes is kept an hour and billed as a 1-hour write whole (a little
    more than Anthropic bills, never less: a budget reserves enough)."""
    if isinstance(content, str):
        return None
    marks = {mark.ttl for block in content if (mark := getattr(block, "cache_control", None))}
    return "1h" if "1h" in marks else "5m" if marks else None


# Anthropic's limit on cache_control marks in one request, the top-level one included.
MAX_BREAKPOINTS = 4
# Anthropic's least thinking budget. It must also stay below max_tokens, except with the
# interleaved-thinking beta, which the adapter cannot see (headers are checked apart): that rule
# is left to the provider.
MIN_THINKING_BUDGET = 1024
TTL_ORDER_RULE = (
    "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block. Note that "
    "blocks are processed in the following order: `tools`, `system`, `messages`."
)


class _Tool(Lenient):
    """A tool as far as it is checked: its cache mark, and a custom tool's (no type, or
    "custom") name and input schema. Server tools and toolsets name themselves by their
    versioned type, some with no name at all."""

    name: str | None = Field(default=None, min_length=1)
    type: str | None = None
    input_schema: dict[str, Any] | None = None
    cache_control: CacheControl | None = None


class _ToolChoice(Lenient):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(default=None, min_length=1)


class _Thinking(Lenient):
    """The SDK knows more types than "enabled" (disabled, adaptive, between_tools); only an
    enabled one's budget is checked."""

    type: str
    budget_tokens: int | None = Field(default=None, ge=MIN_THINKING_BUDGET)


class _Metadata(Lenient):
    """Anthropic's metadata holds ``user_id`` alone, and its API refuses any other key (which is
    why LiteLLM strips the others before it calls Anthropic)."""

    user_id: str | None = None


class _CheckedFields(Lenient):
    """The keyed and ignored fields whose shape Anthropic checks; the body keeps them as sent,
    for the cache key."""

    tools: list[_Tool] = Field(default_factory=list)
    tool_choice: _ToolChoice | None = None
    thinking: _Thinking | None = None
    metadata: _Metadata | None = None


def _checked_fields(body: PromptBody) -> _CheckedFields:
    """Not simulated, but refused as Anthropic refuses them."""
    sent = {name: getattr(body, name) for name in _CheckedFields.model_fields}
    sent = {name: value for name, value in sent.items() if value is not None}
    if not sent:
        return _CheckedFields()  # the usual request: nothing to check
    fields = parse_body(_CheckedFields, sent, anthropic_wording)
    for at, tool in enumerate(fields.tools):
        for name in ("name", "input_schema"):
            if tool.type in (None, "custom") and getattr(tool, name) is None:
                raise _invalid(f"tools.{at}.{name}: Field required", f"tools[{at}].{name}")
    unknown = next(iter(fields.metadata.model_extra or {}), None) if fields.metadata else None
    if unknown is not None:
        raise _invalid(f"metadata.{unknown}: Extra inputs are not permitted", f"metadata.{unknown}")
    choice = fields.tool_choice
    if choice and choice.type == "tool" and not choice.name:
        raise _invalid("tool_choice.tool.name: Field required", "tool_choice.name")
    if choice and choice.name and choice.name not in {tool.name for tool in fields.tools}:
        raise _invalid(
            f"tool_choice.name: no tool named '{choice.name[:100]}' is in tools",
            "tool_choice.name",
        )
    thinking = fields.thinking
    if thinking and thinking.type == "enabled" and thinking.budget_tokens is None:
        raise _invalid("thinking.enabled.budget_tokens: Field required", "thinking.budget_tokens")
    if thinking and thinking.type in THINKING_ON:
        _check_thinking_compatible(body, fields)
    return fields


THINKING_ON = ("enabled", "adaptive")
THINKING_DOCS = "https://platform.claude.com/docs/en/build-with-claude/extended-thinking"
MIN_THINKING_TOP_P = 0.95


def _check_thinking_compatible(body: PromptBody, fields: _CheckedFields) -> None:
    """Thinking refuses sampling changes (a temperature but 1, top_k, a top_p under 0.95) and
    a forced tool call, as Anthropic's extended-thinking page lists them."""
    if body.temperature is not None and body.temperature != 1:
        raise _invalid(
            "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode. "
            f"Please consult our documentation at {THINKING_DOCS}",
            "temperature",
        )
    if body.top_p is not None and body.top_p < MIN_THINKING_TOP_P:
        raise _invalid(
            f"`top_p` must be between {MIN_THINKING_TOP_P} and 1 when thinking is enabled or "
            f"in adaptive mode. Please consult our documentation at {THINKING_DOCS}",
            "top_p",
        )
    if body.top_k is not None:
        raise _invalid(
            "`top_k` must be unset when thinking is enabled or in adaptive mode. Please consult "
            f"our documentation at {THINKING_DOCS}",
            "top_k",
        )
    if fields.tool_choice and fields.tool_choice.type in ("any", "tool"):
        raise _invalid(
            "Thinking may not be enabled when tool_choice forces tool use.", "tool_choice.type"
        )


def _output_schema(body: PromptBody) -> dict[str, Any] | None:
    """The schema structured outputs answer with, if the request asks for one."""
    answer_format = body.output_config.format if body.output_config else None
    return None if answer_format is None else answer_format.json_schema


def _tool_prompt(body: PromptBody, schema: dict[str, Any] | None) -> ToolPrompt | None:
    """What the tools and the output ``schema`` add to the prompt (tool_prompt.py); ``any`` and
    ``tool`` force a call."""
    if not body.tools and schema is None:
        return None
    choice = body.tool_choice or {}
    forced = bool(body.tools) and choice.get("type") in ("any", "tool")
    named = (choice["name"],) if choice.get("type") == "tool" else ()
    return ToolPrompt(
        tuple(canonical_json(tool) for tool in body.tools or ()),
        forced,
        response_schema=None if schema is None else canonical_json(schema),
        choices=named,
    )


def _content_block(c: Completion, whole: bool) -> JSON:
    """The answer's one block: its text, or the tool_use it made (a stream starts either
    empty and fills it with deltas). Arguments cut short by the cap are not JSON: the block
    then holds an empty input, as far as it can be read."""
    call = c.tool_call
    if call is None:
        return {"type": "text", "text": c.text if whole else ""}
    arguments: Any = {}
    if whole:
        with contextlib.suppress(ValueError):
            arguments = json.loads(call.arguments)
    tool_input = arguments if isinstance(arguments, dict) else {}
    return {"type": "tool_use", "id": f"toolu_{call.id}", "name": call.name, "input": tool_input}


def _stop_reason(c: Completion) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence``: the sequence that ended the text."""
    if c.stop_sequence is not None:
        return "stop_sequence", c.stop_sequence
    return _STOP_REASONS[c.finish_reason], None


def _invalid(message: str, param: str) -> GatewayError:
    return GatewayError("invalid_request", message, param=param)


def _marks(body: PromptBody, tools: list[_Tool]) -> list[tuple[str, CacheTTL]]:
    """Every cache_control mark, as the path of its ttl and the ttl, in the order Anthropic
    processes them: tools, system, messages, then the top-level one (on the last block)."""
    blocks: list[tuple[str, _Tool | ContentBlock]] = [
        (f"tools.{n}", tool) for n, tool in enumerate(tools)
    ]
    contents: list[tuple[str, str | Sequence[ContentBlock] | None]] = [("system", body.system)]
    contents += [(f"messages.{n}.content", m.content) for n, m in enumerate(body.messages)]
    blocks += [
        (f"{path}.{n}", block)
        for path, content in contents
        if isinstance(content, list)
        for n, block in enumerate(content)
    ]
    marks = [
        (f"{path}.cache_control.ttl", mark.ttl)
        for path, block in blocks
        if (mark := block.cache_control) is not None
    ]
    if body.cache_control is not None:
        marks.append(("cache_control.ttl", body.cache_control.ttl))
    return marks


def _check_breakpoints(body: PromptBody, tools: list[_Tool]) -> None:
    marks = _marks(body, tools)
    if len(marks) > MAX_BREAKPOINTS:
        raise GatewayError(
            "invalid_request",
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(marks)}.",
        )
    ttls = [ttl for _, ttl in marks]
    if "5m" in ttls:
        late = next((path for path, ttl in marks[ttls.index("5m") :] if ttl == "1h"), None)
        if late is not None:
            raise GatewayError("invalid_request", f"{late}: {TTL_ORDER_RULE}")


def _message(c: Completion, response_id: str, content: list[JSON]) -> JSON:
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": c.model.name,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": c.uncached_prompt_tokens,
            "cache_read_input_tokens": c.cached_tokens,
            "cache_creation_input_tokens": c.cache_write_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": c.cache_write_tokens - c.cache_write_1h_tokens,
                "ephemeral_1h_input_tokens": c.cache_write_1h_tokens,
            },
            "output_tokens": 0,
        },
    }


KEYED_FIELDS = ("top_k", "tools", "tool_choice", "thinking", "output_config")
# Fields of the SDK's create() that the body does not model and that leave the answer alone
# (billing tier, where it runs, prompt caching, account bookkeeping); any other unmodelled field
# is keyed (adapters.base.unsimulated).
NEUTRAL_FIELDS = frozenset(
    (
        "service_tier",
        "inference_geo",
        "diagnostics",
        "user_profile_id",
        "workspace_id",
    )
)


RATE_LIMIT_HEADERS = {
    (unit, part): f"anthropic-ratelimit-{unit}-{part}"
    for unit in RATE_LIMIT_UNITS
    for part in RATE_LIMIT_PARTS
}


# How Anthropic writes a time: a rate limit's reset, a model's creation.
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


@lru_cache(maxsize=4)
def rfc3339(seconds: float) -> str:
    """A reset time (seconds since the epoch) as Anthropic writes it; every request of a minute
    shares its reset."""
    return datetime.fromtimestamp(seconds, UTC).strftime(RFC3339)


class AnthropicAdapter:
    api = "anthropic"
    request_body = MessagesBody
    rate_limit_header_names = RATE_LIMIT_HEADERS

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Anthropic's API refuses a request without ``anthropic-version``; its SDKs always send
        one. Any value is taken: the gateway serves every version the same way."""
        if "anthropic-version" not in headers:
            raise GatewayError("invalid_request", "anthropic-version: header is required")

    def rate_limit_headers(self, state: RateLimitState, now: float) -> dict[str, str]:
        """Anthropic's ``anthropic-ratelimit-*``, whose reset is a time (so ``now`` is not read).
        The team's one token limit counts input and output together, so it is sent as
        ``tokens``, the family Anthropic gives for the most restrictive token limit."""
        return rate_limit_headers(RATE_LIMIT_HEADERS, state, rfc3339(state.resets_at))

    def parse(self, body: object) -> ChatRequest:
        return self._request(parse_body(MessagesBody, body, anthropic_wording))

    def parse_count_tokens(self, body: object) -> ChatRequest:
        return self._request(parse_body(CountTokensBody, body, anthropic_wording))

    def _request(self, parsed: PromptBody) -> ChatRequest:
        _check_breakpoints(parsed, _checked_fields(parsed).tools)
        schema = _output_schema(parsed)
        system = parsed.system
        messages = (
            [PromptMessage("system", _text(system), cache_mark=_cache_mark(system))]
            if system
            else []
        )
        _check_tool_results(parsed.messages)
        messages += [
            PromptMessage(
                m.role, _text(m.content), cache_mark=_cache_mark(m.content), keyed=_keyed(m.content)
            )
            for m in parsed.messages
        ]
        if parsed.cache_control is not None:
            messages[-1] = replace(messages[-1], cache_mark=parsed.cache_control.ttl)
        return ChatRequest(
            model=parsed.model,
            messages=tuple(messages),
            max_tokens=parsed.max_tokens if isinstance(parsed, MessagesBody) else None,
            temperature=parsed.temperature,
            top_p=parsed.top_p,
            stop=tuple(parsed.stop_sequences or ()),
            stop_parameter="stop_sequences",
            stream=bool(parsed.stream),
            unsimulated=unsimulated(parsed, KEYED_FIELDS, NEUTRAL_FIELDS),
            tool_prompt=_tool_prompt(parsed, schema),
            answer_format="text" if schema is None else "json_schema",
        )

    def check_model(self, request: ChatRequest, card: ModelCard) -> None:
        """Anthropic's API names the cap ``max_tokens`` for every model: no field to refuse."""

    def new_id(self) -> str:
        return "msg_" + uuid.uuid4().hex[:24]

    def render(self, c: Completion, response_id: str) -> JSON:
        message = _message(c, response_id, [_content_block(c, whole=True)])
        message["stop_reason"], message["stop_sequence"] = _stop_reason(c)
        message["usage"]["output_tokens"] = c.completion_tokens
        return message

    async def stream(
        self, c: Completion, request: ChatRequest, response_id: str, pieces: AsyncIterator[str]
    ) -> AsyncIterator[bytes]:
        start = _message(c, response_id, [])
        start["usage"]["output_tokens"] = 1
        yield sse({"type": "message_start", "message": start}, "message_start")
        block = _content_block(c, whole=False)
        yield sse(
            {"type": "content_block_start", "index": 0, "content_block": block},
            "content_block_start",
        )
        yield sse({"type": "ping"}, "ping")
        async for piece in pieces:
            delta = (
                {"type": "text_delta", "text": piece}
                if c.tool_call is None
                else {"type": "input_json_delta", "partial_json": piece}
            )
            yield sse(
                {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
            )
        yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        reason, sequence = _stop_reason(c)
        yield sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": {"output_tokens": c.completion_tokens},
            },
            "message_delta",
        )
        yield sse({"type": "message_stop"}, "message_stop")

    def render_error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, JSON]:
        """Anthropic's error body also names the request."""
        body: JSON = {
            "type": "error",
            "error": {
                "type": _ERROR_TYPES[error.kind],
                "message": error.worded.get(self.api, error.message),
            },
        }
        if request_id is not None:
            body["request_id"] = request_id
        return HTTP_STATUS[error.kind], body

    def model_object(self, card: ModelCard) -> JSON:
        """``created_at`` from the model's dated snapshot name, the epoch without one."""
        return {
            "type": "model",
            "id": card.name,
            "display_name": card.name,
            "created_at": _released(card).strftime(RFC3339),
        }

    def list_models(self, table: PriceTable, query: Mapping[str, str] | None = None) -> JSON:
        """One page, as Anthropic's API pages its list: ``limit`` (1-1000, default 20), and
        ``after_id`` or ``before_id`` (a model id of the list) to move forward or back. Anthropic
        lists the most recently released first; models of one date keep the table's order."""
        names = sorted(table.models, key=lambda name: _released(table.models[name]), reverse=True)
        start, stop, has_more = _page(names, query or {})
        page = names[start:stop]
        return {
            "data": [self.model_object(table.models[name]) for name in page],
            "has_more": has_more,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }


def _released(card: ModelCard) -> datetime:
    """A model's release for the list: its dated snapshot name, the epoch without one."""
    return card.released or datetime.fromtimestamp(0, UTC)


def _page(names: list[str], query: Mapping[str, str]) -> tuple[int, int, bool]:
    """The slice of ``names`` a models-list query asks for, and whether more lie beyond it in
    the direction it pages."""
    text = query.get("limit", str(MODELS_PAGE_DEFAULT))
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MODELS_PAGE_MAX:
        raise GatewayError(
            "invalid_request",
            f"limit: Input should be a whole number from 1 to {MODELS_PAGE_MAX}, not {text!r}.",
        )
    limit = int(text)
    after, before = query.get("after_id"), query.get("before_id")
    for name, value in (("after_id", after), ("before_id", before)):
        if value is not None and value not in names:
            raise GatewayError("invalid_request", f"{name}: {value!r} is not a model of this list.")
    if after is not None and before is not None:
        raise GatewayError("invalid_request", "Send after_id or before_id, not both.")
    if before is not None:
        stop = names.index(before)
        start = max(stop - limit, 0)
        return start, stop, start > 0
    start = names.index(after) + 1 if after is not None else 0
    stop = min(start + limit, len(names))
    return start, stop, stop < len(names)
