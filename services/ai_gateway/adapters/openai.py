"""OpenAI Chat Completions wire format: request parsing, responses, streams and errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core import ChatRequest, Completion, GatewayError
from ..pricing import PriceTable
from ..simulator import paced_pieces
from ..tokens import PromptMessage
from .base import parse_body, sse

API = "openai"

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "invalid_request_error",
    "not_found": "invalid_request_error",
    "too_large": "invalid_request_error",
    "rate_limit": "rate_limit_exceeded",
    "budget": "insufficient_quota",
    "unavailable": "server_error",
    "internal": "server_error",
}
_DEFAULT_CODES = {"rate_limit": "rate_limit_exceeded", "budget": "insufficient_quota"}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _TextPart(_Lenient):
    type: Literal["text"]
    text: str


class _Message(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_TextPart] | None = None
    name: str | None = None


class _StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionBody(_Lenient):
    model: str = Field(min_length=1)
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool | None = False
    stream_options: _StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return stop


def _text(content: str | list[_TextPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)


def parse_chat_request(body: Any) -> tuple[ChatRequest, bool]:
    """The normalised request, and whether the final usage chunk was asked for."""
    parsed = parse_body(ChatCompletionBody, body)
    if parsed.stream_options is not None and not parsed.stream:
        raise GatewayError(
            400,
            "invalid_request",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    stop = parsed.stop if isinstance(parsed.stop, list) else [parsed.stop] if parsed.stop else []
    request = ChatRequest(
        model=parsed.model,
        messages=tuple(PromptMessage(m.role, _text(m.content), m.name) for m in parsed.messages),
        max_tokens=parsed.max_completion_tokens or parsed.max_tokens,
        temperature=parsed.temperature,
        top_p=parsed.top_p,
        stop=tuple(stop),
        seed=parsed.seed,
        stream=bool(parsed.stream),
    )
    include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
    return request, include_usage


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def _usage(c: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
    }


def render_completion(c: Completion, response_id: str) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": c.model.name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": c.text, "refusal": None},
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
        ],
        "usage": _usage(c),
        "system_fingerprint": None,
    }


async def stream_completion(
    c: Completion, response_id: str, include_usage: bool
) -> AsyncIterator[bytes]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": c.model.name,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            body["usage"] = None
        return body

    yield sse(chunk({"role": "assistant", "content": ""}, None))
    async for piece in paced_pieces(c.text, c.latency):
        yield sse(chunk({"content": piece}, None))
    yield sse(chunk({}, c.finish_reason))
    if include_usage:
        final = chunk({}, None)
        final["choices"] = []
        final["usage"] = _usage(c)
        yield sse(final)
    yield sse("[DONE]")


def render_error(error: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": _ERROR_TYPES[error.kind],
            "param": error.param,
            "code": error.code or _DEFAULT_CODES.get(error.kind),
        }
    }


def render_models(table: PriceTable) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": card.name, "object": "model", "created": 0, "owned_by": card.provider}
            for card in table.models.values()
        ],
    }
