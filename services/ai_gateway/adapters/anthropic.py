"""Anthropic Messages wire format: request parsing, responses, event streams and errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core import ChatRequest, Completion, GatewayError
from ..pricing import PriceTable
from ..simulator import paced_pieces
from ..tokens import PromptMessage
from .base import parse_body, sse

API = "anthropic"

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "not_found": "not_found_error",
    "too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "budget": "rate_limit_error",
    "unavailable": "api_error",
    "internal": "api_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _TextBlock(_Lenient):
    type: Literal["text"]
    text: str


class _Message(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[_TextBlock]


class MessagesBody(_Lenient):
    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[_Message] = Field(min_length=1)
    system: str | list[_TextBlock] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    stream: bool | None = False


def _text(content: str | list[_TextBlock]) -> str:
    return content if isinstance(content, str) else "".join(block.text for block in content)


def parse_messages_request(body: Any) -> ChatRequest:
    parsed = parse_body(MessagesBody, body)
    messages = [PromptMessage("system", _text(parsed.system))] if parsed.system else []
    messages += [PromptMessage(m.role, _text(m.content)) for m in parsed.messages]
    return ChatRequest(
        model=parsed.model,
        messages=tuple(messages),
        max_tokens=parsed.max_tokens,
        temperature=parsed.temperature,
        top_p=parsed.top_p,
        stop=tuple(parsed.stop_sequences or ()),
        stream=bool(parsed.stream),
    )


def new_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def _message(c: Completion, response_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": c.model.name,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": c.prompt_tokens, "output_tokens": 0},
    }


def render_completion(c: Completion, response_id: str) -> dict[str, Any]:
    message = _message(c, response_id, [{"type": "text", "text": c.text}])
    message["stop_reason"] = _STOP_REASONS[c.finish_reason]
    message["usage"]["output_tokens"] = c.completion_tokens
    return message


async def stream_completion(c: Completion, response_id: str) -> AsyncIterator[bytes]:
    start = _message(c, response_id, [])
    start["usage"]["output_tokens"] = 1
    yield sse({"type": "message_start", "message": start}, "message_start")
    yield sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    )
    yield sse({"type": "ping"}, "ping")
    async for piece in paced_pieces(c.text, c.latency):
        yield sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
            "content_block_delta",
        )
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    yield sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP_REASONS[c.finish_reason], "stop_sequence": None},
            "usage": {"output_tokens": c.completion_tokens},
        },
        "message_delta",
    )
    yield sse({"type": "message_stop"}, "message_stop")


def render_error(error: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ERROR_TYPES[error.kind], "message": error.message}}


def render_models(table: PriceTable) -> dict[str, Any]:
    cards = list(table.models.values())
    return {
        "data": [
            {
                "type": "model",
                "id": card.name,
                "display_name": card.name,
                "created_at": "1970-01-01T00:00:00Z",
            }
            for card in cards
        ],
        "has_more": False,
        "first_id": cards[0].name if cards else None,
        "last_id": cards[-1].name if cards else None,
    }
