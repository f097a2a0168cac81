"""What every API adapter shares: body validation errors and the SSE framing."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..core import GatewayError

BodyT = TypeVar("BodyT", bound=BaseModel)


def _param(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_body(model: type[BodyT], body: Any) -> BodyT:
    """Validate a decoded JSON body; the first problem becomes a 400 naming the parameter."""
    if not isinstance(body, dict):
        raise GatewayError(400, "invalid_request", "The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problem = exc.errors()[0]
        loc = tuple(p for p in problem["loc"] if not str(p).startswith(("function-", "list[")))
        param = _param(loc) or None
        if problem["type"] == "missing":
            message = f"Missing required parameter: '{param}'."
        else:
            shown = json.dumps(problem.get("input"), default=str)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            message = f"Invalid value for '{param}': {shown}. {problem['msg']}."
        raise GatewayError(400, "invalid_request", message, param=param) from exc


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
