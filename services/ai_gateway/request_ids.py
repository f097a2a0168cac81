"""A request id on every response, under both APIs' header names: OpenAI's SDK reads
``x-request-id`` and Anthropic's ``request-id`` (each exposes it as ``_request_id``), so a client
can quote it and the operator can find its line in the request log."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = (b"x-request-id", b"request-id")


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_id(request: Request) -> str | None:
    """The id :class:`RequestIds` gave this request (None outside it, as in unit tests)."""
    state: dict[str, object] = request.scope.get("state") or {}
    found = state.get("request_id")
    return found if isinstance(found, str) else None


class RequestIds:
    """ASGI middleware: names each HTTP request and adds the name to its response's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = new_request_id()
        scope.setdefault("state", {})["request_id"] = name
        value = name.encode()

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *((h, value) for h in HEADERS)]
            await send(message)

        await self.app(scope, receive, send_named)
