"""The HTTP layer: FastAPI routes, body limits, API keys, response headers and the OpenAPI document.

Each chat route is bound once to its adapter. Bodies are read and validated once, by the adapter's
pydantic model (not by FastAPI, so the body-size limit applies before parsing and the hot path
validates only once); the same models are declared to the OpenAPI document at /openapi.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Match
from starlette.routing import Route as BaseRoute
from starlette.types import Receive, Scope, Send

from .adapters import anthropic, openai
from .adapters.base import Adapter
from .body_deadlines import BodyDeadlines
from .budgets import STORE_RETRY_AFTER_S, BudgetRow
from .domain import ChatRequest, Completion, GatewayError, RateLimitState
from .pipeline import Answer, Gateway
from .request_ids import HEADERS as REQUEST_ID_HEADERS
from .request_ids import RequestIds, request_id
from .request_log import SIM_HEADER_PREFIX, RequestLog, refused_record, served_record
from .settings import GatewaySettings
from .store import StoreUnavailable

log = logging.getLogger("ai_gateway")
OPENAI = openai.OpenAIAdapter()
ANTHROPIC = anthropic.AnthropicAdapter()
Endpoint = Callable[[Request], Awaitable[Response]]


def _api_key(request: Request) -> str | None:
    """The bearer token, else the x-api-key header (a blank bearer does not hide the latter)."""
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return bearer or request.headers.get("x-api-key") or None


_JSON_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects, found in one linear scan without parsing
    (brackets inside strings skipped)."""
    depth = deepest = 0
    for token in _JSON_STRING_OR_BRACKET.findall(body):
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _refuse_constant(text: str) -> float:
    raise ValueError(f"{text} is not valid JSON")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _invalid(message: str) -> GatewayError:
    return GatewayError("invalid_request", message)


async def _read_json(request: Request, settings: GatewaySettings, deadlines: BodyDeadlines) -> Any:
    """The body as JSON, within the size, time and nesting limits, with finite numbers and valid
    text."""
    limit, max_depth = settings.max_body_bytes, settings.max_json_depth
    too_large = GatewayError(
        "too_large", f"Request body is larger than the limit of {limit} bytes."
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        with deadlines:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large
    except ClientDisconnect:
        raise GatewayError(
            "client_closed", "The client closed the connection before sending the whole body."
        ) from None
    except TimeoutError:
        raise GatewayError(
            "timeout",
            f"The request body did not arrive within {settings.body_timeout_seconds:g} s.",
        ) from None
    raw = bytes(body)
    if raw.count(b"[") + raw.count(b"{") > max_depth and _json_depth(raw) > max_depth:
        raise _invalid(f"The JSON body is nested deeper than the limit of {max_depth} levels.")
    try:
        # Decoded strictly first: json.loads on bytes would also take UTF-16 and UTF-8-encoded
        # surrogates (b"\xed\xa0\x80"), which no later stage can encode.
        text = raw.decode("utf-8")
        parsed = json.loads(text, parse_float=_finite, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise _invalid(
            "We could not parse the JSON body of your request: it must be valid JSON in UTF-8."
        ) from exc
    if _ESCAPED_SURROGATE.search(raw) and _has_lone_surrogate(parsed):
        raise _invalid("The JSON body contains a lone UTF-16 surrogate, which is not valid text.")
    return parsed


def _sim_labels(request: Request) -> dict[str, str]:
    """Ground truth from a simulation's ``x-sim-*`` headers, logged and never decided on."""
    return {
        name[len(SIM_HEADER_PREFIX) :]: value
        for name, value in request.headers.items()
        if name.startswith(SIM_HEADER_PREFIX)
    }


def usd_header(amount: float) -> str:
    """Dollars to 12 significant digits: a difference of two prices (a saving) carries binary
    noise in its last digits (0.0006000000000000001), which no price has."""
    return f"{amount:.12g}"


def gateway_headers(c: Completion) -> dict[str, str]:
    """What the gateway did, as ``x-gateway-*`` response headers."""
    headers = {
        "x-gateway-cost-usd": usd_header(c.cost_usd),
        "x-gateway-saved-usd": usd_header(c.saved_usd),
        "x-gateway-model": c.model.name,
        "x-gateway-team": c.team,
        "x-gateway-cache": c.cache,
    }
    if c.similarity is not None:
        headers["x-gateway-similarity"] = f"{c.similarity:.4f}"
    if c.routed_from is not None and c.route is not None:
        headers["x-gateway-routed-from"] = c.routed_from
        headers["x-gateway-route-reason"] = c.route.reason
    return headers


def error_response(adapter: Adapter, error: GatewayError, request: Request) -> JSONResponse:
    status, body = adapter.render_error(error, request_id(request))
    headers = {"retry-after": str(error.retry_after)} if error.retry_after else {}
    if not error.retryable:
        headers["x-should-retry"] = "false"
    return JSONResponse(body, status_code=status, headers=headers or None)


@dataclass(frozen=True)
class OpenStream:
    """A streamed answer's request, from its begin to its settlement."""

    adapter: Adapter
    request: Request
    sim: dict[str, str]
    chat_request: ChatRequest
    answer: Answer
    started: float  # perf_counter() when the request arrived


class SettledStream(StreamingResponse):
    """A stream settled even if Starlette never starts its body: a client gone before the first
    byte ends the response before the body's first step, so the body's ``finally``, which
    settles a stream, never runs."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        settle_unstarted: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        self._started = False
        self._settle_unstarted = settle_unstarted
        super().__init__(self._marked(body), **kwargs)

    async def _marked(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        self._started = True
        async for part in body:
            yield part

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._started:
                with anyio.CancelScope(shield=True):
                    await self._settle_unstarted()


class GatewayHTTP:
    """Binds the pipeline to HTTP: one endpoint per adapter, plus models, budgets and health."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.metrics = gateway.meter.metrics
        self.body_deadlines = BodyDeadlines(gateway.settings.body_timeout_seconds)
        path = gateway.settings.request_log
        self.request_log = RequestLog(path) if path else None

    def _refuse(
        self,
        adapter: Adapter,
        request: Request,
        sim: dict[str, str],
        team: str | None,
        model: str | None,
        error: GatewayError,
    ) -> JSONResponse:
        response = self._error(adapter, error, request)
        if self.request_log is not None:
            self.request_log.write(
                refused_record(
                    adapter.api, sim, team, model, error, response.status_code, request_id(request)
                )
            )
        return response

    def _error(self, adapter: Adapter, error: GatewayError, request: Request) -> JSONResponse:
        """A chat route's refusal, counted in ``ai_requests_total`` as its answers are (the
        models, budgets and token-count routes count none of theirs)."""
        response = error_response(adapter, error, request)
        response.headers.update(self._rate_limit_headers(adapter, error.rate_limits))
        self.metrics.requests.labels(api=adapter.api, status=str(response.status_code)).inc()
        return response

    def _headers(self, adapter: Adapter, c: Completion) -> dict[str, str]:
        """An answer's headers: what the gateway did, and the team's rate-limit standing."""
        headers = gateway_headers(c)
        headers.update(self._rate_limit_headers(adapter, c.rate_limits))
        return headers

    def _rate_limit_headers(self, adapter: Adapter, state: RateLimitState | None) -> dict[str, str]:
        return {} if state is None else adapter.rate_limit_headers(state, self.gateway.clock())

    def chat(self, adapter: Adapter) -> Endpoint:
        """The completion endpoint of one API shape."""

        async def endpoint(request: Request) -> Response:
            return await self._serve(adapter, request)

        return endpoint

    async def _serve(self, adapter: Adapter, request: Request) -> Response:
        started = time.perf_counter()
        self.metrics.active.inc()
        streaming = False
        sim = _sim_labels(request)
        team = model = None
        gateway = self.gateway
        try:
            team = gateway.identity.team(_api_key(request))
            adapter.check_headers(request.headers)
            chat_request = adapter.parse(
                await _read_json(request, gateway.settings, self.body_deadlines)
            )
            model = chat_request.model
            named = gateway.catalog.table.resolve(model)
            if named is not None:
                adapter.check_model(chat_request, named)
            label = sim.get("question")
            if chat_request.stream:
                answer = await gateway.begin(chat_request, team, label=label)
                response = await self._stream_response(
                    OpenStream(adapter, request, sim, chat_request, answer, started)
                )
                self.metrics.requests.labels(api=adapter.api, status="200").inc()
                streaming = True
                return response
            completion = await self._delivered(await gateway.begin(chat_request, team, label=label))
            headers = self._headers(adapter, completion)
            response_id = adapter.new_id()
            self.metrics.requests.labels(api=adapter.api, status="200").inc()
            self._finished(adapter, request, sim, completion, started)
            return JSONResponse(adapter.render(completion, response_id), headers=headers)
        except GatewayError as refusal:
            return self._refuse(adapter, request, sim, team, model, refusal)
        except StoreUnavailable as exc:
            self.metrics.store_failed("request")
            log.error("store unavailable: %s", exc)
            unavailable = GatewayError(
                "unavailable",
                "The gateway's store is unavailable.",
                retry_after=STORE_RETRY_AFTER_S,
            )
            return self._refuse(adapter, request, sim, team, model, unavailable)
        except Exception:
            log.exception("unexpected error while serving %s", request.url.path)
            internal = GatewayError("internal", "The gateway had an internal error.")
            return self._refuse(adapter, request, sim, team, model, internal)
        finally:
            if not streaming:
                self.metrics.active.dec()

    async def _delivered(self, answer: Answer) -> Completion:
        """A non-streamed answer once the provider would have sent it whole: only then is it
        cached, so an identical request meanwhile shares it at the provider's pace (in_flight.py)
        rather than finding it before it exists. A request cancelled while it waits is still
        settled, on its own, when the answer is whole (a provider bills an abandoned request in
        full); uvicorn does not cancel a request whose client leaves, so that happens at
        shutdown, which waits for it."""
        completion = answer.completion
        loop = asyncio.get_running_loop()
        whole_at = loop.time() + completion.latency.remaining_s(completion.completion_tokens)
        try:
            await self.gateway.provider.deliver(completion.latency, completion.completion_tokens)
        except asyncio.CancelledError:
            if answer.settlement is None:
                self.gateway.left(answer)  # a hit: nothing to settle
                raise
            settling = self.gateway.finish_when_whole(answer, whole_at)
            with contextlib.suppress(Exception):  # the gateway logs it
                await asyncio.shield(settling)
            raise
        return await self.gateway.finish(answer)

    async def _stream_response(self, stream: OpenStream) -> StreamingResponse:
        """The stream's response; if it cannot be built, or its body never starts, the stream's
        own settlement never runs, so the answer is settled here as undelivered, or its lead,
        reservation and ``ai_active_requests`` would wait for it."""
        try:
            headers = self._headers(stream.adapter, stream.answer.completion)
            return SettledStream(
                self._stream(stream),
                lambda: self._settle_stream(stream, False, []),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        except Exception:
            await self.gateway.finish(stream.answer, delivered="")
            raise

    async def _stream(self, stream: OpenStream) -> AsyncIterator[bytes]:
        """The answer as server-sent events; settled, metered, logged and cached by what was
        generated when it ended: the whole answer, or the text up to a client's disconnect."""
        adapter, completion = stream.adapter, stream.answer.completion
        generated: list[str] = []

        async def pieces() -> AsyncIterator[str]:
            async for piece in self.gateway.provider.pieces(
                completion.generated, completion.latency
            ):
                generated.append(piece)
                yield piece

        complete = False
        try:
            parts = adapter.stream(completion, stream.chat_request, adapter.new_id(), pieces())
            async for part in parts:
                yield part
            complete = True
        finally:
            # A disconnect cancels this generator; settling must still run to its end.
            with anyio.CancelScope(shield=True):
                await self._settle_stream(stream, complete, generated)

    async def _settle_stream(
        self, stream: OpenStream, complete: bool, generated: list[str]
    ) -> None:
        try:
            delivered = None if complete else "".join(generated)
            if not complete:
                self.metrics.streams_aborted.labels(api=stream.adapter.api).inc()
            completion = await self.gateway.finish(stream.answer, delivered)
            self._finished(stream.adapter, stream.request, stream.sim, completion, stream.started)
        except Exception:
            log.exception("settling a stream failed")
        finally:
            self.metrics.active.dec()

    def _finished(
        self,
        adapter: Adapter,
        request: Request,
        sim: dict[str, str],
        completion: Completion,
        started: float,
    ) -> None:
        elapsed = time.perf_counter() - started
        self.metrics.duration.labels(model=completion.model.name).observe(elapsed)
        if self.request_log is not None:
            self.request_log.write(
                served_record(adapter.api, sim, completion, elapsed, request_id(request))
            )

    async def count_tokens(self, request: Request) -> Response:
        """Anthropic's ``messages.count_tokens``: the prompt counted as a message request bills
        it, in the model's tokenizer ("auto": the complex tier's model, its baseline). Not an
        answer, so not in ``ai_requests_total`` (SDKs may count before every message)."""
        try:
            self.gateway.identity.team(_api_key(request))
            ANTHROPIC.check_headers(request.headers)
            settings = self.gateway.settings
            prompt = ANTHROPIC.parse_count_tokens(
                await _read_json(request, settings, self.body_deadlines)
            )
            tokens = self.gateway.catalog.prompt_tokens(prompt)
        except GatewayError as error:
            return error_response(ANTHROPIC, error, request)
        return JSONResponse({"input_tokens": tokens})

    async def models(self, request: Request) -> Response:
        """Anthropic's shape when the client sends ``anthropic-version`` (its SDK does)."""
        adapter = _models_adapter(request)
        try:
            self.gateway.identity.team(_api_key(request))
            listed = adapter.list_models(self.gateway.catalog.table, request.query_params)
        except GatewayError as error:
            return error_response(adapter, error, request)
        return JSONResponse(listed)

    async def model(self, request: Request) -> Response:
        """One model by its name or an alias (``models.retrieve`` in both SDKs)."""
        adapter = _models_adapter(request)
        try:
            self.gateway.identity.team(_api_key(request))
            card = self.gateway.catalog.resolve(request.path_params["model_id"])
        except GatewayError as error:
            return error_response(adapter, error, request)
        return JSONResponse(adapter.model_object(card))

    async def budgets(self, request: Request) -> Response:
        """A team's key sees its own budget; an admin key sees every team's."""
        key = _api_key(request)
        gateway = self.gateway
        try:
            if gateway.identity.is_admin(key):
                teams = list(gateway.settings.teams)
            else:
                teams = [gateway.identity.team(key)]
            report = await gateway.budget_report(teams)
        except GatewayError as error:
            return error_response(OPENAI, error, request)
        except StoreUnavailable as exc:
            gateway.meter.store_failed("budget_report", exc, "the budget report failed")
            return error_response(OPENAI, GatewayError("unavailable", str(exc)), request)
        return JSONResponse({"object": "list", "data": [row.model_dump() for row in report]})

    def _health(self, status: str) -> Response:
        """Up or down, and the store's state: nothing a tenant could learn another team from."""
        store = "up" if self.gateway.store_up else "down"
        return JSONResponse({"status": status, "store": store})

    async def healthz(self, _request: Request) -> Response:
        return self._health("ok")

    async def readyz(self, _request: Request) -> Response:
        """Ready means this process can serve; a store outage is reported, not a reason to leave
        the Service (teams without limits, or ``on_store_error: open``, are still served)."""
        return self._health("ready")


def _models_adapter(request: Request) -> Adapter:
    """The models routes are shared: Anthropic's SDK is told apart by its version header."""
    return ANTHROPIC if "anthropic-version" in request.headers else OPENAI


def _error_adapter(request: Request) -> Adapter:
    """The API shape an error outside the chat routes answers in: Anthropic's under its path,
    OpenAI's on the gateway's own budgets route (as its other errors), else as the models routes
    choose."""
    path = request.url.path
    if path.startswith("/v1/messages"):
        return ANTHROPIC
    return OPENAI if path.startswith("/v1/budgets") else _models_adapter(request)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug's 500 still answers in the called API's error shape (the server logs the exception).
    Starlette calls this outside every middleware, so it names the request itself."""
    internal = GatewayError("internal", "The gateway had an internal error.")
    response = error_response(_error_adapter(request), internal, request)
    name = request_id(request)
    if name is not None:
        for header in REQUEST_ID_HEADERS:
            response.headers[header.decode()] = name
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods, in the error shape of the API the path belongs to."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = GatewayError("not_found", f"Unknown request URL: {request.method} {request.url.path}.")
    if status == 405:
        error = GatewayError(
            "not_allowed", f"Method {request.method} is not allowed for {request.url.path}."
        )
    elif status != 404:
        error = GatewayError("internal", "The gateway had an internal error.")
    response = error_response(_error_adapter(request), error, request)
    if status == 405:
        response.headers["allow"] = _allowed_methods(request)  # RFC 9110 requires it on 405
    return response


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette's 405 names only the first
    route's, and a GET route's HEAD is a route of its own here."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, BaseRoute) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


class DirectRoute(APIRoute):
    """A documented route whose endpoint takes the Request and returns the Response itself.

    FastAPI still builds the route's OpenAPI entry, but runs no per-request dependency solving or
    body parsing: the adapter validates the body once, so the hot path costs what plain Starlette
    costs.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def create_app(gateway: Gateway, freeze_heap: bool = False) -> FastAPI:
    """The HTTP app over ``gateway``. ``freeze_heap`` is for the server process (see
    ``_lifespan``)."""
    http = GatewayHTTP(gateway)
    # /docs loads Swagger UI from fastapi-offline's copy (under /static-offline-docs, as /redoc
    # loads ReDoc's script), not from a CDN, so it renders on a machine without internet; no
    # validator badge either, which would send the document's URL to swagger.io.
    app = FastAPIOffline(
        title="finops-sim AI gateway",
        # The gateway exports Prometheus metrics (/metrics); FastAPI's OpenTelemetry stays off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        version="1.0",
        description=DESCRIPTION,
        lifespan=_lifespan(http, freeze_heap),
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
        swagger_ui_parameters={"validatorUrl": None},
        # A path with a trailing slash is no route: Starlette's 307 to the path without it had
        # no body, and an SDK that follows it resends without the API's error shape.
        redirect_slashes=False,
    )
    app.router.route_class = DirectRoute
    app.add_middleware(RequestIds)
    _add_routes(app, http)
    app.openapi = lambda: _openapi(app, gateway.catalog.models_offered())  # type: ignore[method-assign]
    app.state.gateway = gateway
    return app


def _lifespan(
    http: GatewayHTTP, freeze_heap: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the gateway and the body reads' sweeper before the first request and close them,
    and the request log, after the last. With ``freeze_heap``, everything allocated by then
    (modules, the embedding model, the tokenizers' tables, a restored semantic index) is moved
    out of the garbage collector's sight (``gc.freeze``), so a full collection scans only what
    requests allocated instead of pausing the server for over 100 ms (README, "Benchmarks")."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await http.gateway.start()
        http.body_deadlines.start()
        if freeze_heap:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await http.body_deadlines.close()
            await http.gateway.close()
            if http.request_log is not None:
                http.request_log.close()

    return lifespan


def _add_routes(app: FastAPI, http: GatewayHTTP) -> None:
    """Both APIs' chat routes (OpenAI's also without its /v1 prefix, undocumented), the token
    count, and the read-only routes, which answer HEAD as well."""
    for path in ("/v1/chat/completions", "/chat/completions"):
        app.add_api_route(
            path,
            http.chat(OPENAI),
            methods=["POST"],
            include_in_schema=path.startswith("/v1/"),
            **_chat_doc(OPENAI, openai.ChatCompletion, openai.ChatCompletionChunk, "[DONE]"),
        )
    app.add_api_route(
        "/v1/messages",
        http.chat(ANTHROPIC),
        methods=["POST"],
        **_chat_doc(
            ANTHROPIC, anthropic.Message, anthropic.MessageStreamEvent, None, [_REQUIRED_VERSION]
        ),
    )
    app.add_api_route(
        "/v1/messages/count_tokens", http.count_tokens, methods=["POST"], **_count_tokens_doc()
    )
    for path, endpoint, doc in (
        ("/v1/models", http.models, _models_doc()),
        ("/v1/models/{model_id}", http.model, _model_doc()),
        ("/v1/budgets", http.budgets, _budgets_doc()),
        ("/healthz", http.healthz, _health_doc()),
        ("/readyz", http.readyz, _ready_doc()),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], **doc)
        # A GET route answers HEAD too (RFC 9110), as monitors and load balancers probe with it:
        # the same status and headers, and uvicorn sends no body.
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)


# ---- the OpenAPI document --------------------------------------------------------------------

DESCRIPTION = (
    "OpenAI- and Anthropic-compatible gateway over simulated providers, with exact and semantic "
    "caching, routing and per-team budgets. Send a team's key as `Authorization: Bearer <key>` or "
    "`x-api-key: <key>`. Every answer carries `x-gateway-*` headers (cost, saving, served model, "
    "team, cache status, similarity, routing). Request fields that are not simulated are "
    "documented on each body as ignored or refused."
)
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"x-api-key": []}]
_REQUEST_BODIES: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": openai.ChatCompletionBody,
    "/v1/messages": anthropic.MessagesBody,
    "/v1/messages/count_tokens": anthropic.CountTokensBody,
}
_GATEWAY_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in {
        "x-gateway-cost-usd": "What this answer cost, in USD (0 for a cache hit).",
        "x-gateway-saved-usd": "What caching or routing saved, in USD.",
        "x-gateway-model": "The model that served the request.",
        "x-gateway-team": "The team the key belongs to.",
        "x-gateway-cache": "miss, exact or semantic.",
        "x-request-id": "This request's id (on every response, as in OpenAI's API).",
        "request-id": "The same id, under Anthropic's header name.",
    }.items()
}


def _rate_limit_headers_doc(adapter: Adapter) -> dict[str, dict[str, Any]]:
    """An API shape's rate-limit headers, sent when the team has that per-minute limit."""
    reset = "a wait such as 12ms or 34.5s" if adapter is OPENAI else "an RFC 3339 time"
    texts = {
        "limit": "The team's {unit} per minute.",
        "remaining": "The {unit} left in this minute, this request's worst case counted.",
        "reset": f"When the minute's counters reset: {reset}.",
    }
    return {
        name: {"description": texts[part].format(unit=unit), "schema": {"type": "string"}}
        for (unit, part), name in adapter.rate_limit_header_names.items()
    }


def _errors(model: type[BaseModel], statuses: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": text} for status, text in statuses.items()}


_CHAT_ERRORS = {
    400: "Invalid body or parameter; the error names the parameter.",
    401: "Missing or unknown API key.",
    404: "Unknown model.",
    408: "The body did not arrive whole within the gateway's body_timeout_seconds.",
    413: "Body larger than the gateway's limit.",
    429: "Team budget or rate limit reached; see retry-after (absent when the request could never "
    "fit the limit as sent), and the rate-limit headers of a 200. A spent budget and a request "
    "that could never fit also say x-should-retry: false, so the SDKs raise instead of waiting.",
    500: "Internal error.",
    503: "The store behind budgets is unavailable.",
}


def _chat_doc(
    adapter: Adapter,
    answer: type[BaseModel],
    event: type[BaseModel],
    last_event: str | None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A chat route's responses: the answer as JSON, or as server-sent events, or an error."""
    stream_doc = f"With stream: true, server-sent events whose data are {event.__name__} objects"
    data: dict[str, Any] = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {"$ref": f"#/components/schemas/{event.__name__}"},
    }
    if last_event is not None:
        stream_doc += f", then {last_event}"
        data = {"anyOf": [data, {"type": "string", "enum": [last_event]}]}
    event_schema = {
        "type": "object",
        "required": ["data"],
        "properties": {"event": {"type": "string"}, "data": data},
    }
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "model": answer,
            "description": f"The answer, or its event stream. {stream_doc}.",
            "headers": {**_GATEWAY_HEADERS, **_rate_limit_headers_doc(adapter)},
            "content": {"text/event-stream": {"schema": event_schema}},
        },
        **_errors(_error_model(adapter), _CHAT_ERRORS),
    }
    summary = {
        "openai": "Create a chat completion (OpenAI Chat Completions)",
        "anthropic": "Create a message (Anthropic Messages)",
    }
    return {
        "summary": summary[adapter.api],
        "tags": [adapter.api],
        "responses": responses,
        "openapi_extra": {
            "security": _SECURITY,
            **({"parameters": parameters} if parameters else {}),
        },
    }


def _error_model(adapter: Adapter) -> type[BaseModel]:
    return anthropic.AnthropicErrorResponse if adapter is ANTHROPIC else openai.OpenAIErrorResponse


def _either_shape(description: str, openai_schema: str, anthropic_schema: str) -> dict[str, Any]:
    """A models-route response: OpenAI's schema, or Anthropic's for its SDK."""
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in (openai_schema, anthropic_schema)]
    return {
        "description": description,
        "content": {"application/json": {"schema": {"anyOf": refs}}},
    }


def _string_parameter(name: str, where: str, description: str) -> dict[str, Any]:
    required = where == "path"
    return {"name": name, "in": where, "required": required, "schema": {"type": "string"},
            "description": description}  # fmt: skip


_VERSION_HEADER = _string_parameter(
    "anthropic-version", "header", "Any value selects Anthropic's response shape."
)
_REQUIRED_VERSION = {
    **_VERSION_HEADER,
    "required": True,
    "description": "Required, as by Anthropic's API (its SDKs send it); any value is taken.",
}


def _either_error(description: str) -> dict[str, Any]:
    return _either_shape(description, "OpenAIErrorResponse", "AnthropicErrorResponse")


_NO_KEY = _either_error("Missing or unknown API key.")


def _models_doc() -> dict[str, Any]:
    return {
        "summary": "List the catalog's models",
        "description": "OpenAI's list shape; Anthropic's page shape when `anthropic-version` is "
        "sent, paged by `limit`, `after_id` and `before_id` as Anthropic's API pages it. Errors "
        "follow the same choice.",
        "tags": ["models"],
        "responses": {
            200: _either_shape("The models.", "ModelList", "ModelsPage"),
            400: _either_error("An invalid page (Anthropic's shape only)."),
            401: _NO_KEY,
        },
        "openapi_extra": {"security": _SECURITY, "parameters": [_VERSION_HEADER, *_PAGE_QUERY]},
    }


_PAGE_QUERY = [
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
     "description": "Anthropic's shape: models per page."},
    _string_parameter("after_id", "query", "Anthropic's shape: the page after this model id."),
    _string_parameter("before_id", "query", "Anthropic's shape: the page before this model id."),
]  # fmt: skip


def _model_doc() -> dict[str, Any]:
    model_id = _string_parameter("model_id", "path", "A model of the catalog, or an alias of one.")
    return {
        "summary": "Retrieve one model",
        "description": "The model's entry of the list, in the same shape as `GET /v1/models`.",
        "tags": ["models"],
        "responses": {
            200: _either_shape("The model.", "Model", "ModelInfo"),
            401: _NO_KEY,
            404: _either_error("Not a model of the catalog."),
        },
        "openapi_extra": {"security": _SECURITY, "parameters": [model_id, _VERSION_HEADER]},
    }


class BudgetReport(BaseModel):
    object: str
    data: list[BudgetRow]


def _count_tokens_doc() -> dict[str, Any]:
    return {
        "summary": "Count a message's tokens (Anthropic Messages)",
        "tags": ["anthropic"],
        "responses": {
            200: {"model": anthropic.MessageTokensCount, "description": "The prompt's tokens."},
            **_errors(
                anthropic.AnthropicErrorResponse,
                {k: v for k, v in _CHAT_ERRORS.items() if k not in (429, 503)},
            ),
        },
        "openapi_extra": {"security": _SECURITY, "parameters": [_REQUIRED_VERSION]},
    }


def _budgets_doc() -> dict[str, Any]:
    return {
        "summary": "Budgets and limits",
        "description": "A team's key sees its own team; an admin key sees every team. A team "
        "without any limit keeps no ledger: its `spent_usd` and `reserved_usd` are null.",
        "tags": ["budgets"],
        "responses": {
            200: {"model": BudgetReport, "description": "One row per team."},
            **_errors(
                openai.OpenAIErrorResponse,
                {401: "Missing or unknown API key.", 503: "The store is unavailable."},
            ),
        },
        "openapi_extra": {"security": _SECURITY},
    }


class Health(BaseModel):
    status: Literal["ok", "ready"]
    store: Literal["up", "down"]


def _health_doc() -> dict[str, Any]:
    return {
        "summary": "Liveness, and the store's state",
        "tags": ["health"],
        "responses": {200: {"model": Health, "description": "The process answers."}},
    }


def _ready_doc() -> dict[str, Any]:
    return {
        "summary": "Readiness: this process can serve; the store's state is reported, not required",
        "tags": ["health"],
        "responses": {200: {"model": Health, "description": "Ready."}},
    }


def _openapi(app: FastAPI, models: list[str]) -> dict[str, Any]:
    """FastAPI's document, plus the request bodies the adapters validate (their ``model`` listed
    from the catalog in force) and the key schemes."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (openai.Model, anthropic.ModelInfo, openai.ModelList, anthropic.ModelsPage,
                  openai.OpenAIErrorResponse, anthropic.AnthropicErrorResponse,
                  openai.ChatCompletionChunk, anthropic.MessageStreamEvent):  # fmt: skip
        _add_schema(schemas, model, "serialization")
    for path, body in _REQUEST_BODIES.items():
        _add_schema(schemas, body, "validation")
        model = schemas[body.__name__]["properties"]["model"]
        model["enum"] = models
        model["description"] += " Aliases of these names are accepted too."
        document["paths"][path]["post"]["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}
            },
        }
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A team's API key."},
        "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    }
    app.openapi_schema = document
    return document


def _add_schema(schemas: dict[str, Any], model: type[BaseModel], mode: str) -> None:
    schema = model.model_json_schema(
        ref_template="#/components/schemas/{model}",
        mode="validation" if mode == "validation" else "serialization",
    )
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
