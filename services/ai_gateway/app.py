"""The HTTP layer: routes, body limits, auth headers and response headers. No business logic."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import tokens
from .adapters import anthropic, openai
from .core import ChatRequest, Completion, Gateway, GatewayError
from .request_log import SIM_HEADER_PREFIX, RequestLog, refused_record, served_record
from .simulator import wait_for_completion
from .store import StoreUnavailable

log = logging.getLogger("ai_gateway")


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def _read_json(request: Request, limit: int) -> Any:
    too_large = GatewayError(
        413, "too_large", f"Request body is larger than the limit of {limit} bytes."
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GatewayError(
            400,
            "invalid_request",
            "We could not parse the JSON body of your request: it must be valid JSON.",
        ) from exc


def _sim_labels(request: Request) -> dict[str, str]:
    """Ground truth from a simulation's ``x-sim-*`` headers, logged and never decided on."""
    return {
        name[len(SIM_HEADER_PREFIX) :]: value
        for name, value in request.headers.items()
        if name.startswith(SIM_HEADER_PREFIX)
    }


def _gateway_headers(c: Completion) -> dict[str, str]:
    return {
        "x-gateway-cost-usd": repr(c.cost_usd),
        "x-gateway-saved-usd": repr(c.saved_usd),
        "x-gateway-model": c.model.name,
        "x-gateway-team": c.team,
        "x-gateway-cache": c.cache,
        **c.extra_headers,
    }


class GatewayApp:
    """Binds the pipeline to HTTP for both API shapes."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.metrics = gateway.metrics
        path = gateway.settings.request_log
        self.request_log = RequestLog(path) if path else None

    def _refuse(
        self,
        api: str,
        sim: dict[str, str],
        team: str | None,
        model: str | None,
        error: GatewayError,
    ) -> JSONResponse:
        if self.request_log is not None:
            self.request_log.write(refused_record(api, sim, team, model, error))
        return self._error(api, error)

    def _error(self, api: str, error: GatewayError) -> JSONResponse:
        self.metrics.requests.labels(api=api, status=str(error.status)).inc()
        return _error_response(api, error)

    async def _serve(
        self,
        request: Request,
        api: str,
        parse: Callable[[Any], tuple[ChatRequest, bool]],
        render: Callable[[Completion, str], dict[str, Any]],
        stream: Callable[[Completion, str, bool], AsyncIterator[bytes]],
        new_id: Callable[[], str],
    ) -> Response:
        started = time.perf_counter()
        self.metrics.active.inc()
        streaming_started = False
        sim = _sim_labels(request)
        team = model = None
        try:
            team = self.gateway.authenticate(_api_key(request))
            body = await _read_json(request, self.gateway.settings.max_body_bytes)
            chat_request, include_usage = parse(body)
            model = chat_request.model
            completion = await self.gateway.complete(chat_request, team, label=sim.get("question"))
            headers = _gateway_headers(completion)
            response_id = new_id()
            self.metrics.requests.labels(api=api, status="200").inc()
            if chat_request.stream:
                streaming_started = True
                return StreamingResponse(
                    self._finish_stream(
                        stream(completion, response_id, include_usage),
                        lambda: self._finished(api, sim, completion, started),
                    ),
                    media_type="text/event-stream",
                    headers={**headers, "cache-control": "no-cache"},
                )
            await wait_for_completion(completion.latency, completion.completion_tokens)
            self._finished(api, sim, completion, started)
            return JSONResponse(render(completion, response_id), headers=headers)
        except GatewayError as refusal:
            return self._refuse(api, sim, team, model, refusal)
        except StoreUnavailable as exc:
            log.error("store unavailable: %s", exc)
            unavailable = GatewayError(503, "unavailable", "The gateway's store is unavailable.")
            return self._refuse(api, sim, team, model, unavailable)
        except Exception:
            log.exception("unexpected error while serving %s", request.url.path)
            internal = GatewayError(500, "internal", "The gateway had an internal error.")
            return self._refuse(api, sim, team, model, internal)
        finally:
            if not streaming_started:
                self.metrics.active.dec()

    async def _finish_stream(
        self, body: AsyncIterator[bytes], finished: Callable[[], None]
    ) -> AsyncIterator[bytes]:
        try:
            async for part in body:
                yield part
            finished()
        finally:
            self.metrics.active.dec()

    def _finished(
        self, api: str, sim: dict[str, str], completion: Completion, started: float
    ) -> None:
        elapsed = time.perf_counter() - started
        self.metrics.duration.labels(model=completion.model.name).observe(elapsed)
        if self.request_log is not None:
            self.request_log.write(served_record(api, sim, completion, elapsed))

    async def chat_completions(self, request: Request) -> Response:
        return await self._serve(
            request,
            openai.API,
            openai.parse_chat_request,
            openai.render_completion,
            openai.stream_completion,
            openai.new_id,
        )

    async def messages(self, request: Request) -> Response:
        return await self._serve(
            request,
            anthropic.API,
            lambda body: (anthropic.parse_messages_request(body), False),
            anthropic.render_completion,
            lambda c, response_id, _usage: anthropic.stream_completion(c, response_id),
            anthropic.new_id,
        )

    async def models(self, request: Request) -> Response:
        try:
            self.gateway.authenticate(_api_key(request))
        except GatewayError as error:
            api = anthropic.API if "anthropic-version" in request.headers else openai.API
            return self._error(api, error)
        if "anthropic-version" in request.headers:
            return JSONResponse(anthropic.render_models(self.gateway.table))
        return JSONResponse(openai.render_models(self.gateway.table))

    async def budgets(self, request: Request) -> Response:
        """A team's key sees its own budget; an admin key sees every team's."""
        key = _api_key(request)
        try:
            if self.gateway.is_admin(key):
                teams = list(self.gateway.settings.teams)
            else:
                teams = [self.gateway.authenticate(key)]
            report = await self.gateway.budget_report(teams)
        except GatewayError as error:
            return self._error(openai.API, error)
        except StoreUnavailable as exc:
            return self._error(openai.API, GatewayError(503, "unavailable", str(exc)))
        return JSONResponse({"object": "list", "data": report})

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        gateway = self.gateway
        store = {"kind": gateway.store.kind, "ok": True}
        try:
            await gateway.store.ping()
        except StoreUnavailable as exc:
            store.update(ok=False, error=str(exc))
        body = {
            "status": "ready" if store["ok"] else "not ready",
            "store": store,
            "tokenizers": tokens.describe(list(gateway.table.models.values())),
            "models": gateway.table.names(),
            "embedder": gateway.embedder.name if gateway.embedder else None,
            "settings": gateway.settings.public_view(),
        }
        return JSONResponse(body, status_code=200 if store["ok"] else 503)

    async def metrics_endpoint(self, _request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=self.metrics.content_type)


def _error_response(api: str, error: GatewayError) -> JSONResponse:
    adapter = anthropic if api == anthropic.API else openai
    headers = {"retry-after": str(error.retry_after)} if error.retry_after else None
    return JSONResponse(adapter.render_error(error), status_code=error.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"Unknown request URL: {request.method} {request.url.path}."
    if status == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}."
    kind = "not_found" if status == 404 else "invalid_request"
    api = anthropic.API if request.url.path.startswith("/v1/messages") else openai.API
    return _error_response(api, GatewayError(status, kind, message))


def create_app(gateway: Gateway) -> Starlette:
    http = GatewayApp(gateway)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.store.close()
            if http.request_log is not None:
                http.request_log.close()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", http.chat_completions, methods=["POST"]),
            Route("/chat/completions", http.chat_completions, methods=["POST"]),
            Route("/v1/messages", http.messages, methods=["POST"]),
            Route("/v1/models", http.models, methods=["GET"]),
            Route("/v1/budgets", http.budgets, methods=["GET"]),
            Route("/healthz", http.healthz, methods=["GET"]),
            Route("/readyz", http.readyz, methods=["GET"]),
            Route("/metrics", http.metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
