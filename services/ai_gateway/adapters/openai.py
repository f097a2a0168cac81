"""OpenAI Chat Completions and Models: request body, responses, stream chunks and errors.

The body and response models follow the official ``openai`` SDK's types. They validate requests
(once, here) and document the API in /openapi.json; responses are rendered as plain dicts on the
hot path, and tests check them against these models.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..domain import ChatRequest, Completion, GatewayError, RateLimitState
from ..pricing import ModelCard, PriceTable
from ..records import ErrorKind
from ..simulator import AnswerFormat
from ..tokens import PromptMessage
from ..tool_calls import ToolCall
from ..tool_prompt import ToolPrompt
from .base import (
    HTTP_STATUS,
    JSON,
    KEYED,
    RATE_LIMIT_PARTS,
    RATE_LIMIT_UNITS,
    Lenient,
    canonical_json,
    missing_parameter,
    parse_body,
    rate_limit_headers,
    sse,
    unsimulated,
)

TOOLS = (
    "Billed as prompt tokens. A tool_choice that forces a call (required, or a named function) "
    "gets one, with arguments drawn from the function's parameters schema; with auto or none "
    "the simulated model answers in text."
)

_ERROR_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "invalid_request_error",
    "not_found": "invalid_request_error",
    "not_allowed": "invalid_request_error",
    "too_large": "invalid_request_error",
    "rate_limit": "rate_limit_exceeded",
    "budget": "insufficient_quota",
    "unavailable": "server_error",
    "internal": "server_error",
    "client_closed": "invalid_request_error",
    "timeout": "invalid_request_error",
}
_DEFAULT_CODES: dict[ErrorKind, str] = {
    "rate_limit": "rate_limit_exceeded",
    "budget": "insufficient_quota",
}
_SEEDS = "Seeds the deterministic simulated answer (part of the cache key); nothing is sampled."
_IGNORED = "Accepted and ignored: the simulated provider does not implement it."


class TextPart(Lenient):
    """Only text parts are accepted; image, audio and file parts are refused (400)."""

    type: Literal["text"]
    text: str


class RefusalPart(Lenient):
    """An assistant's refusal, as a conversation replays it (assistant messages only)."""

    type: Literal["refusal"]
    refusal: str


ContentPart = TextPart | RefusalPart


class ChatMessage(Lenient):
    """A message; tool and function-call fields are accepted and ignored. As in OpenAI's API,
    only an assistant message (one that calls tools) may leave out its content, and only an
    assistant's content may hold a refusal. ``function`` is the deprecated role of a function
    call's result, which OpenAI still accepts."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)] | None = Field(
        default=None, validate_default=True
    )
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _present_unless_assistant(
        cls, content: str | list[TextPart | RefusalPart] | None, info: ValidationInfo
    ) -> str | list[TextPart | RefusalPart] | None:
        role = info.data.get("role")
        if content is None and role != "assistant":
            raise ValueError(f"a {role or 'non-assistant'} message needs content")
        refusals = isinstance(content, list) and any(isinstance(p, RefusalPart) for p in content)
        if refusals and role != "assistant":
            raise ValueError(f"a {role} message's content parts must be of type 'text'")
        return content


class StreamOptions(Lenient):
    include_usage: bool = Field(
        default=False, description="Send a last chunk with the usage and no choices."
    )


class ChatCompletionBody(Lenient):
    """POST /v1/chat/completions. Fields not listed here are accepted, not simulated, and part of
    the cache key, except a few that leave the answer alone (storage, service tier, prompt-cache
    routing, safety identifier)."""

    model: str = Field(
        min_length=1,
        description="A model of the catalog (GET /v1/models), an alias, or 'auto' when routing "
        "is on.",
    )
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, description="Completion token cap.")
    max_completion_tokens: int | None = Field(
        default=None, ge=1, description="Completion token cap; wins over max_tokens."
    )
    temperature: float | None = Field(default=None, ge=0, le=2, description=_SEEDS)
    top_p: float | None = Field(default=None, ge=0, le=1, description=_SEEDS)
    n: int | None = Field(
        default=None, ge=1, le=1, description="Only 1 is supported; more is refused (400)."
    )
    stream: bool | None = Field(default=False, description="Answer as server-sent events.")
    stream_options: StreamOptions | None = Field(
        default=None, description="Only with stream: true; otherwise refused (400)."
    )
    stop: str | list[str] | None = Field(
        default=None,
        description="Up to 4 sequences. The simulated text ends where one first occurs, "
        "without it (finish_reason stop); part of the cache key.",
    )
    seed: int | None = Field(default=None, description=_SEEDS)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2, description=KEYED)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2, description=KEYED)
    logit_bias: dict[str, Any] | None = Field(default=None, description=KEYED)
    logprobs: bool | None = Field(
        default=None, description=_IGNORED + " Responses carry logprobs: null."
    )
    top_logprobs: int | None = Field(default=None, ge=0, le=20, description=_IGNORED)
    response_format: dict[str, Any] | None = Field(
        default=None,
        description="Part of the cache key. json_object answers a JSON object (the messages must "
        "say 'json'); json_schema answers a value its schema accepts, the schema billed as "
        "prompt tokens.",
    )
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="Part of the cache key. " + TOOLS
    )
    tool_choice: str | dict[str, Any] | None = Field(
        default=None, description="Part of the cache key; see tools."
    )
    user: str | None = Field(default=None, description=_IGNORED)
    metadata: dict[str, Any] | None = Field(
        default=None,
        description=_IGNORED + " At most 16 pairs of strings: keys up to 64 characters, values "
        "up to 512, as OpenAI checks them.",
    )

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return stop


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="JSON text, drawn from the function's parameters schema.")


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"]
    function: FunctionCall


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None = Field(description="null when the answer is a tool call.")
    refusal: None
    tool_calls: list[ToolCallOut] | None = None


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None
    finish_reason: Literal["stop", "length", "tool_calls"]


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(description="Prompt tokens served from the provider's cache.")


class CompletionUsage(BaseModel):
    prompt_tokens: int = Field(description="All prompt tokens, cached ones included.")
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str = Field(description="The model that served the request.")
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: None


class ChunkToolCall(BaseModel):
    """A tool call's first delta carries its id, type and name; the next ones its arguments."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: dict[str, str]


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: ChunkDelta
    logprobs: None
    finish_reason: Literal["stop", "length", "tool_calls"] | None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a stream; the stream ends with ``data: [DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: None
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[Model]


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorResponse(BaseModel):
    error: OpenAIError


# A message's fields that change the answer but are not simulated: what the assistant called
# and which call a tool message answers. Two conversations that differ only in them must not
# share a cached answer.
KEYED_MESSAGE_FIELDS = ("tool_calls", "function_call", "tool_call_id", "audio")


def _tool_call(call: ToolCall) -> JSON:
    return {
        "id": f"call_{call.id}",
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _message(c: Completion) -> JSON:
    """The answer's message: its text, or (content null) the tool call it made."""
    if c.tool_call is None:
        return {"role": "assistant", "content": c.text, "refusal": None}
    return {"role": "assistant", "content": None, "refusal": None,
            "tool_calls": [_tool_call(c.tool_call)]}  # fmt: skip


def _keyed_fields(message: ChatMessage) -> str:
    extra = message.model_extra or {}
    keyed = {name: extra[name] for name in KEYED_MESSAGE_FIELDS if extra.get(name) is not None}
    return canonical_json(keyed) if keyed else ""


def _sent(value: object) -> bool:
    """Whether a parameter was given a value that asks for something: a reasoning model refuses
    `logprobs: true` or a penalty of 0.5, while None, false, 0 and {} are the defaults a client
    library may send for every model."""
    return value is not None and value is not False and value != 0 and value != {}


def _text(content: str | list[TextPart | RefusalPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text if isinstance(part, TextPart) else part.refusal for part in content)


def _usage(c: Completion) -> JSON:
    """OpenAI's usage: ``prompt_tokens`` includes the cached ones, reported apart; a cache write
    is not an OpenAI concept (its automatic cache bills none), so it stays in ``prompt_tokens``."""
    return {
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": c.cached_tokens},
    }


def _check_tool_turns(messages: list[ChatMessage]) -> None:
    """OpenAI's rules: an assistant message with ``tool_calls`` is followed by a tool message
    for each call, naming it (tool messages answer only the assistant message just before them);
    an assistant message without content calls tools."""
    called: frozenset[str] = frozenset()  # the calls tool messages may answer now
    unanswered: list[str] = []
    asked_at = -1
    for at, message in enumerate(messages):
        extra = message.model_extra or {}
        if message.role == "tool":
            called_id = extra.get("tool_call_id")
            if not called:
                raise GatewayError(
                    "invalid_request",
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages[{at}].role",
                )
            if not isinstance(called_id, str):
                raise missing_parameter(f"messages[{at}].tool_call_id")
            if called_id not in called:
                raise GatewayError(
                    "invalid_request",
                    f"Invalid parameter: 'tool_call_id' of '{called_id}' not found in "
                    "'tool_calls' of previous message.",
                    param=f"messages[{at}].tool_call_id",
                )
            unanswered = [i for i in unanswered if i != called_id]
            continue
        _check_answered(unanswered, asked_at)
        # OpenAI's message types let these stand in for an assistant's content.
        instead = ("tool_calls", "function_call", "audio", "refusal")
        answered = any(extra.get(name) is not None for name in instead)
        if message.role == "assistant" and message.content is None and not answered:
            raise missing_parameter(f"messages[{at}].content")
        refusal = extra.get("refusal")
        if refusal is not None and not isinstance(refusal, str):
            raise _wrong_type(f"messages[{at}].refusal", refusal, "a string")
        ids = _call_ids(extra.get("tool_calls"), at) if message.role == "assistant" else []
        called, unanswered, asked_at = frozenset(ids), ids, at
    _check_answered(unanswered, asked_at)


# Each kind of tool call OpenAI takes, and the string fields of its body.
_CALL_FIELDS = {"function": ("name", "arguments"), "custom": ("name", "input")}


def _call_ids(calls: Any, at: int) -> list[str]:
    """The ids of an assistant message's tool calls, each checked for what OpenAI requires."""
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise _wrong_type(f"messages[{at}].tool_calls", calls, "an array")
    ids = []
    for i, call in enumerate(calls):
        where = f"messages[{at}].tool_calls[{i}]"
        if not isinstance(call, dict):
            raise missing_parameter(f"{where}.id")
        call_id, kind = _string_field(call, "id", where), _string_field(call, "type", where)
        if kind not in _CALL_FIELDS:
            supported = " and ".join(f"'{name}'" for name in _CALL_FIELDS)
            raise GatewayError(
                "invalid_request",
                f"Invalid value: '{kind}'. Supported values are: {supported}.",
                param=f"{where}.type",
            )
        body = call.get(kind)
        for field in _CALL_FIELDS[kind]:
            if not isinstance(body, dict):
                raise missing_parameter(f"{where}.{kind}")
            _string_field(body, field, f"{where}.{kind}")
        ids.append(call_id)
    return ids


def _string_field(parent: dict[str, Any], field: str, where: str) -> str:
    """``parent[field]``, which OpenAI requires as a string, or its 400 naming the field."""
    value = parent.get(field)
    if value is None:
        raise missing_parameter(f"{where}.{field}")
    if not isinstance(value, str):
        raise _wrong_type(f"{where}.{field}", value, "a string")
    return value


_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", int: "an integer",
               float: "a decimal", str: "a string", type(None): "null"}  # fmt: skip


def _wrong_type(param: str, value: object, expected: str) -> GatewayError:
    """OpenAI's refusal of a field of another JSON type than its own."""
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    message = f"Invalid type for '{param}': expected {expected}, but got {got} instead."
    return GatewayError("invalid_request", message, param=param)


def _check_answered(unanswered: list[str], asked_at: int) -> None:
    if unanswered:
        raise GatewayError(
            "invalid_request",
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(unanswered)}",
            param=f"messages[{asked_at}].role",
        )


class Named(Lenient):
    """A definition that names itself: a function, a custom tool, a JSON schema."""

    name: str = Field(min_length=1)


class _Function(Named):
    parameters: dict[str, Any] | None = None  # a JSON schema: an object, as OpenAI requires


class _AllowedTools(Lenient):
    mode: Literal["auto", "required"]
    tools: list[_ToolReference] = Field(min_length=1)


class _ToolReference(Lenient):
    """A tool, or a choice of one, as far as it is checked: a function or custom one names
    itself; an allowed_tools choice lists the tools it allows."""

    type: str
    function: _Function | None = None
    custom: Named | None = None
    allowed_tools: _AllowedTools | None = None


class _ResponseFormat(Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: Named | None = None


class _ToolFields(Lenient):
    """The keyed fields whose shape OpenAI checks; the body keeps them as sent, for the key."""

    tools: list[_ToolReference] = Field(default_factory=list)
    tool_choice: Literal["none", "auto", "required"] | _ToolReference | None = None
    response_format: _ResponseFormat | None = None


def _unnamed(tool: _ToolReference) -> bool:
    """A function or custom tool (or choice of one) without the object that names it."""
    return tool.type in ("function", "custom") and getattr(tool, tool.type) is None


def _name(tool: _ToolReference) -> str | None:
    named = tool.function or tool.custom
    return None if named is None else named.name


def _check_choice_names(choice: _ToolReference, tools: list[_ToolReference]) -> None:
    """A choice may only name tools the request offers: a call to any other tool is one no
    provider would make."""
    offered = {_name(tool) for tool in tools}
    if choice.type == "allowed_tools" and choice.allowed_tools is None:
        raise missing_parameter("tool_choice.allowed_tools")
    named = [choice] if choice.allowed_tools is None else choice.allowed_tools.tools
    for tool in named:
        name = _name(tool)
        if name is not None and name not in offered:
            raise GatewayError(
                "invalid_request",
                f"Invalid value for 'tool_choice': no tool named '{name[:100]}' is in 'tools'.",
                param="tool_choice",
            )


def _check_tool_fields(body: ChatCompletionBody) -> _ToolFields | None:
    """Refused as OpenAI refuses them: a tool or a named choice without its definition, a
    choice of tools with none given or naming one not offered, an unknown response format.
    Returns the checked fields (None without any), which the tool prompt reads."""
    sent = {name: getattr(body, name) for name in _ToolFields.model_fields}
    sent = {name: value for name, value in sent.items() if value is not None}
    if not sent:
        return None  # the usual request: nothing to check
    fields = parse_body(_ToolFields, sent)
    for at, tool in enumerate(fields.tools):
        if _unnamed(tool):
            raise missing_parameter(f"tools[{at}].{tool.type}")
    choice = fields.tool_choice
    if isinstance(choice, _ToolReference) and _unnamed(choice):
        raise missing_parameter(f"tool_choice.{choice.type}")
    if choice not in (None, "none") and not fields.tools:
        raise GatewayError(
            "invalid_request",
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            param="tool_choice",
        )
    if isinstance(choice, _ToolReference):
        _check_choice_names(choice, fields.tools)
    answer_format = fields.response_format
    if answer_format and answer_format.type == "json_schema" and not answer_format.json_schema:
        raise missing_parameter("response_format.json_schema")
    return fields


METADATA_PAIRS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 16, 64, 512


def _check_metadata(metadata: dict[str, Any] | None) -> None:
    """OpenAI's documented bounds on ``metadata``: ignored here, but refused where OpenAI would."""
    if not metadata:
        return
    if len(metadata) > METADATA_PAIRS:
        raise GatewayError(
            "invalid_request",
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{METADATA_PAIRS} properties, but got an object with {len(metadata)} instead.",
            param="metadata",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_CHARS:
            raise GatewayError(
                "invalid_request",
                f"Invalid 'metadata': a key is too long. Expected keys of at most "
                f"{METADATA_KEY_CHARS} characters, but got one of {len(key)}.",
                param="metadata",
            )
        if not isinstance(value, str):
            raise _wrong_type(f"metadata.{key}", value, "a string")
        if len(value) > METADATA_VALUE_CHARS:
            raise GatewayError(
                "invalid_request",
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length {METADATA_VALUE_CHARS}, but got a string with length {len(value)} "
                "instead.",
                param=f"metadata.{key}",
            )


def _answer_format(body: ChatCompletionBody) -> AnswerFormat:
    """JSON mode or structured output; JSON mode needs the word "json" in the messages, as
    OpenAI refuses it without."""
    kind = (body.response_format or {}).get("type")
    if kind == "json_object" and not any("json" in _text(m.content).lower() for m in body.messages):
        raise GatewayError(
            "invalid_request",
            "'messages' must contain the word 'json' in some form, to use 'response_format' of "
            "type 'json_object'.",
            param="messages",
        )
    return kind if kind in ("json_object", "json_schema") else "text"


def _tool_prompt(body: ChatCompletionBody, fields: _ToolFields | None) -> ToolPrompt | None:
    """What the tools and a response schema add to the prompt (tool_prompt.py), from the body
    and its checked tool fields. A choice forces a call when it is ``required``, names a
    function, or allows tools in required mode."""
    answer_format = body.response_format or {}
    schema = (answer_format.get("json_schema") or {}).get("schema")
    if fields is None or (not body.tools and schema is None):
        return None
    choice = fields.tool_choice
    reference = choice if isinstance(choice, _ToolReference) else None
    allowed = None if reference is None else reference.allowed_tools
    forced = choice == "required" or (
        reference is not None and (allowed is None or allowed.mode == "required")
    )
    named = [reference] if allowed is None and reference is not None else []
    return ToolPrompt(
        tools=tuple(canonical_json(tool) for tool in body.tools or ()),
        forced=forced,
        response_schema=None if schema is None else canonical_json(schema),
        choices=tuple(
            name for tool in (allowed.tools if allowed else named) if (name := _name(tool))
        ),
    )


KEYED_FIELDS = (
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "response_format",
    "tools",
    "tool_choice",
)
# What OpenAI's reasoning models refuse (platform.openai.com/docs/guides/reasoning, limitations),
# in the order a refusal names them; temperature and top_p are the catalog's (any API shape).
REASONING_REFUSED = (
    "max_tokens",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
)
# Fields of the SDK's create() that the body does not model and that leave the answer alone
# (storage, billing tier, prompt-cache routing, abuse tracking); any other unmodelled field is
# keyed (adapters.base.unsimulated).
NEUTRAL_FIELDS = frozenset(
    (
        "store",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "safety_identifier",
    )
)


def go_duration(seconds: float) -> str:
    """A wait as OpenAI writes its reset headers, Go's duration form (12ms, 34.5s, 1m0s), in
    whole milliseconds rounded up: a client waiting that long finds the counter reset."""
    milliseconds = max(math.ceil(seconds * 1000), 0)
    if milliseconds == 0:
        return "0s"
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    minutes, rest = divmod(milliseconds, 60_000)
    text = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{text}" if minutes else text


RATE_LIMIT_HEADERS = {
    (unit, part): f"x-ratelimit-{part}-{unit}"
    for unit in RATE_LIMIT_UNITS
    for part in RATE_LIMIT_PARTS
}


class OpenAIAdapter:
    api = "openai"
    request_body = ChatCompletionBody
    rate_limit_header_names = RATE_LIMIT_HEADERS

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """OpenAI's API requires no header beyond the key."""

    def rate_limit_headers(self, state: RateLimitState, now: float) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*``, whose reset is the wait until the counters reset; the
        team's limits stand in for the organisation's."""
        reset = go_duration(state.resets_at - now)
        return rate_limit_headers(RATE_LIMIT_HEADERS, state, reset)

    def parse(self, body: object) -> ChatRequest:
        parsed = parse_body(ChatCompletionBody, body)
        _check_metadata(parsed.metadata)
        _check_tool_turns(parsed.messages)
        tool_fields = _check_tool_fields(parsed)
        if parsed.stream_options is not None and not parsed.stream:
            raise GatewayError(
                "invalid_request",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        stop = parsed.stop
        return ChatRequest(
            model=parsed.model,
            messages=tuple(
                PromptMessage(m.role, _text(m.content), m.name, keyed=_keyed_fields(m))
                for m in parsed.messages
            ),
            max_tokens=parsed.max_completion_tokens or parsed.max_tokens,
            cap_parameter=(
                "max_completion_tokens" if parsed.max_completion_tokens else "max_tokens"
            ),
            reasoning_refused=tuple(
                name for name in REASONING_REFUSED if _sent(getattr(parsed, name))
            ),
            temperature=parsed.temperature,
            top_p=parsed.top_p,
            stop=tuple(stop if isinstance(stop, list) else [stop] if stop else []),
            seed=parsed.seed,
            stream=bool(parsed.stream),
            include_usage=bool(parsed.stream_options and parsed.stream_options.include_usage),
            unsimulated=unsimulated(parsed, KEYED_FIELDS, NEUTRAL_FIELDS),
            tool_prompt=_tool_prompt(parsed, tool_fields),
            answer_format=_answer_format(parsed),
        )

    def check_model(self, request: ChatRequest, card: ModelCard) -> None:
        """OpenAI's reasoning models take their cap as ``max_completion_tokens`` only, and no
        penalty, logit bias or log probabilities (the sampling values every API shape must
        respect are the catalog's)."""
        if card.sampling != "reasoning" or not request.reasoning_refused:
            return
        name = request.reasoning_refused[0]
        instead = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
        raise GatewayError(
            "invalid_request",
            f"Unsupported parameter: '{name}' is not supported with this model.{instead}",
            param=name,
            code="unsupported_parameter",
        )

    def new_id(self) -> str:
        return "chatcmpl-" + uuid.uuid4().hex[:24]

    def render(self, c: Completion, response_id: str) -> JSON:
        return {
            "id": response_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": c.model.name,
            "choices": [
                {
                    "index": 0,
                    "message": _message(c),
                    "logprobs": None,
                    "finish_reason": c.finish_reason,
                }
            ],
            "usage": _usage(c),
            "system_fingerprint": None,
        }

    async def stream(
        self, c: Completion, request: ChatRequest, response_id: str, pieces: AsyncIterator[str]
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def chunk(delta: JSON, finish_reason: str | None) -> JSON:
            body: JSON = {
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": c.model.name,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if request.include_usage:
                body["usage"] = None
            return body

        call = c.tool_call
        if call is None:
            yield sse(chunk({"role": "assistant", "content": ""}, None))
        else:
            head = {**_tool_call(call), "index": 0}
            head["function"] = {"name": call.name, "arguments": ""}
            yield sse(chunk({"role": "assistant", "content": None, "tool_calls": [head]}, None))
        async for piece in pieces:
            if call is None:
                yield sse(chunk({"content": piece}, None))
            else:
                arguments = {"index": 0, "function": {"arguments": piece}}
                yield sse(chunk({"tool_calls": [arguments]}, None))
        yield sse(chunk({}, c.finish_reason))
        if request.include_usage:
            final = chunk({}, None)
            final["choices"] = []
            final["usage"] = _usage(c)
            yield sse(final)
        yield sse("[DONE]")

    def render_error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, JSON]:
        """OpenAI names the request in its x-request-id header only, not in the body."""
        body = {
            "error": {
                "message": error.message,
                "type": _ERROR_TYPES[error.kind],
                "param": error.param,
                "code": error.code or _DEFAULT_CODES.get(error.kind),
            }
        }
        return HTTP_STATUS[error.kind], body

    def model_object(self, card: ModelCard) -> JSON:
        """``created`` from the model's dated snapshot name, 0 (the epoch) without one."""
        created = 0 if card.released is None else int(card.released.timestamp())
        return {"id": card.name, "object": "model", "created": created, "owned_by": card.provider}

    def list_models(self, table: PriceTable, query: Mapping[str, str] | None = None) -> JSON:
        """OpenAI's list is not paginated."""
        return {
            "object": "list",
            "data": [self.model_object(card) for card in table.models.values()],
        }
