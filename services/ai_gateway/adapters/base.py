"""The adapter protocol every API shape implements, and what the adapters share.

An adapter is bound once to its routes (app.py): it parses its wire format into a ChatRequest,
renders a Completion (whole, or framed as an event stream around the provider's paced text),
maps each error kind to its API's status and body, and lists the models in its API's shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..domain import ChatRequest, Completion, GatewayError, RateLimitState
from ..pricing import ModelCard, PriceTable
from ..records import ErrorKind

BodyT = TypeVar("BodyT", bound=BaseModel)
JSON = dict[str, Any]

HTTP_STATUS: dict[ErrorKind, int] = {
    "invalid_request": 400,
    "authentication": 401,
    "not_found": 404,
    "not_allowed": 405,
    "too_large": 413,
    "rate_limit": 429,
    "budget": 429,
    "unavailable": 503,
    "internal": 500,
    # nginx's "client closed request": no one reads the answer, and it is not a server error.
    "client_closed": 499,
    "timeout": 408,  # the body did not arrive in time
}


class Adapter(Protocol):
    @property
    def api(self) -> str: ...

    @property
    def request_body(self) -> type[BaseModel]:
        """The body model: it validates requests and documents them in /openapi.json."""
        ...

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Refuse (GatewayError) a request without a header this API requires."""
        ...

    def parse(self, body: object) -> ChatRequest: ...

    def check_model(self, request: ChatRequest, card: ModelCard) -> None:
        """Refuse (GatewayError) what this API refuses for the model the client named (its
        ``sampling`` rules in data/models.yaml)."""
        ...

    def new_id(self) -> str: ...

    @property
    def rate_limit_header_names(self) -> RateLimitHeaderNames:
        """This API's name for each rate-limit header, by (unit, part)."""
        ...

    def rate_limit_headers(self, state: RateLimitState, now: float) -> dict[str, str]:
        """A team's per-minute standing as this API's rate-limit response headers; ``now`` in
        seconds since the epoch."""
        ...

    def render(self, c: Completion, response_id: str) -> JSON: ...

    def stream(
        self, c: Completion, request: ChatRequest, response_id: str, pieces: AsyncIterator[str]
    ) -> AsyncIterator[bytes]: ...

    def render_error(
        self, error: GatewayError, request_id: str | None = None
    ) -> tuple[int, JSON]: ...

    def model_object(self, card: ModelCard) -> JSON: ...

    def list_models(self, table: PriceTable, query: Mapping[str, str] | None = None) -> JSON:
        """The table's models in this API's list shape; ``query`` holds the request's query
        parameters (Anthropic's pagination), refused with a GatewayError when invalid."""
        ...


# The rate-limit headers by (unit, part): both APIs send a limit, what remains of it and when it
# resets, for requests and for tokens, each under its own names.
RATE_LIMIT_UNITS = ("requests", "tokens")
RATE_LIMIT_PARTS = ("limit", "remaining", "reset")
RateLimitHeaderNames = Mapping[tuple[str, str], str]


def rate_limit_headers(
    names: RateLimitHeaderNames, state: RateLimitState, reset: str
) -> dict[str, str]:
    """Each per-minute limit the team has, what is left of it and ``reset``, under ``names``."""
    headers = {}
    for unit, limit, remaining in (
        ("requests", state.requests_limit, state.requests_remaining),
        ("tokens", state.tokens_limit, state.tokens_remaining),
    ):
        if limit is not None:
            headers[names[unit, "limit"]] = str(limit)
            headers[names[unit, "remaining"]] = str(remaining)
            headers[names[unit, "reset"]] = reset
    return headers


class Lenient(BaseModel):
    """A request body: strict types, and fields the gateway does not know are accepted."""

    model_config = ConfigDict(extra="allow", strict=True)


def _param(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _body_path(body: object, problem: Any) -> tuple[Any, ...]:
    """The parts of an error's location that are places in the body: pydantic also names the
    union member it tried (``str``, ``list[...]``, ``function-after[...]``, a block's ``type``),
    which no client sent. A field the body left out is the one name kept that is not in the body."""
    path: list[Any] = []
    value: Any = body
    loc = problem["loc"]
    for at, part in enumerate(loc):
        tag = isinstance(value, dict) and part == value.get("type") and at + 1 < len(loc)
        if tag and not isinstance(value.get(part), dict | list):
            continue  # a tagged union names the member by the block's own type, not a place
        in_list = isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        if in_list or (isinstance(value, dict) and isinstance(part, str) and part in value):
            path.append(part)
            value = value[part]
        elif (
            at == len(loc) - 1
            and isinstance(value, dict)
            and (problem["type"] == "missing" or problem["input"] is None)
        ):
            path.append(part)  # a field the object left out (missing, or refused as left out)
    return tuple(path)


def missing_parameter(param: str | None) -> GatewayError:
    """OpenAI's wording for a required field left out, naming it."""
    return GatewayError("invalid_request", f"Missing required parameter: '{param}'.", param=param)


# How an API words a body's problem: from the problem's place in the body and pydantic's error.
Wording = Callable[[tuple[Any, ...], Any], str]


def openai_wording(path: tuple[Any, ...], problem: Any) -> str:
    """OpenAI's: the parameter quoted, with the value given (``messages[0].role``)."""
    param = _param(path)
    if problem["type"] == "missing":
        return f"Missing required parameter: '{param}'."
    shown = json.dumps(problem.get("input"), default=str)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"Invalid value for '{param}': {shown}. {problem['msg']}."


def parse_body(model: type[BodyT], body: object, wording: Wording = openai_wording) -> BodyT:
    """Validate a decoded JSON body; the problem deepest in the body becomes a 400 naming the
    parameter (of a union's members, the one that got furthest says most; at the same depth, a
    member of the value's own type, whose complaint is not a type mismatch: an empty list is
    "too short", not "not a string"), in the API's ``wording``."""
    if not isinstance(body, dict):
        raise GatewayError("invalid_request", "The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = exc.errors()
        paths = [_body_path(body, problem) for problem in problems]
        deepest = max(
            range(len(problems)),
            key=lambda n: (len(paths[n]), not problems[n]["type"].endswith("_type")),
        )
        problem, path = problems[deepest], paths[deepest]
        if problem["type"] in ("union_tag_invalid", "union_tag_not_found") and path:
            path += ("type",)  # a block of a type the API does not take: its type is the field
        message = wording(path, problem)
        raise GatewayError("invalid_request", message, param=_param(path) or None) from exc


KEYED = (
    "Not simulated (the simulated model answers in text), but part of the cache key: a request "
    "with it never gets an answer cached without it."
)


def canonical_json(value: object) -> str:
    """One stable JSON form for what goes into a cache key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def unsimulated(
    body: BaseModel, fields: tuple[str, ...], neutral: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """For the cache key, as (name, canonical JSON): the given fields that ``body`` sets, and
    every top-level field it carries that the body does not model, unless it is known to leave
    the answer alone (``neutral``). The APIs gain fields that change answers (``reasoning_effort``,
    ``output_config``), and an unknown one served an answer cached without it."""
    extra = {
        name: value
        for name, value in (body.model_extra or {}).items()
        if name not in neutral and value is not None
    }
    if not extra and all(getattr(body, name) is None for name in fields):
        return ()  # the usual request: nothing to dump
    values = {**body.model_dump(include=set(fields), exclude_none=True, by_alias=True), **extra}
    return tuple((name, canonical_json(values[name])) for name in sorted(values))


def sse(data: object, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
