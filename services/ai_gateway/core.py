"""The gateway pipeline, independent of any wire format.

auth -> resolve model -> count tokens -> exact cache -> simulated provider -> meter -> cache store.
The API adapters turn HTTP bodies into a ChatRequest and a Completion back into their own shape.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

from .cache import CachedCompletion, ExactCache, exact_key
from .metrics import GatewayMetrics
from .pricing import ModelCard, PriceTable, default_price_table
from .settings import GatewaySettings, key_digest
from .simulator import LatencyPlan, latency_plan, request_seed, simulate_completion
from .store import Store, StoreUnavailable
from .tokens import PromptMessage, count_prompt

log = logging.getLogger("ai_gateway")

ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "not_found",
    "too_large",
    "rate_limit",
    "budget",
    "unavailable",
    "internal",
]
CacheStatus = Literal["miss", "exact"]
NO_LATENCY = LatencyPlan(0.0, 0.0)


class GatewayError(Exception):
    """A request the gateway refuses; adapters render it in their API's error shape."""

    def __init__(
        self,
        status: int,
        kind: ErrorKind,
        message: str,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True)
class ChatRequest:
    """A chat request in normalised form; system prompts are messages with role "system"."""

    model: str
    messages: tuple[PromptMessage, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False


@dataclass(frozen=True)
class Completion:
    requested_model: str
    model: ModelCard
    team: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    cost_usd: float
    saved_usd: float
    cache: CacheStatus
    latency: LatencyPlan


def canonical_request(card: ModelCard, request: ChatRequest) -> str:
    """Everything that changes an answer, in a stable form; stream and user fields excluded."""
    return json.dumps(
        {
            "model": card.name,
            "messages": [
                [m.role, m.content.replace("\r\n", "\n").strip(), m.name] for m in request.messages
            ],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": list(request.stop),
            "seed": request.seed,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        store: Store,
        metrics: GatewayMetrics,
        table: PriceTable | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.table = table or default_price_table()
        self._teams_by_digest = settings.team_by_key_digest()
        exact = settings.cache.exact
        self._exact_cache = ExactCache(store, exact.ttl_seconds) if exact.enabled else None

    def authenticate(self, api_key: str | None) -> str:
        if not api_key:
            raise GatewayError(
                401,
                "authentication",
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="invalid_api_key",
            )
        team = self._teams_by_digest.get(key_digest(api_key))
        if team is None:
            raise GatewayError(
                401, "authentication", "Incorrect API key provided.", code="invalid_api_key"
            )
        return team

    def resolve_model(self, name: str) -> ModelCard:
        card = self.table.resolve(name)
        if card is None:
            raise GatewayError(
                404,
                "not_found",
                f"The model {name!r} does not exist. Available models: "
                + ", ".join(self.table.names()),
                param="model",
                code="model_not_found",
            )
        return card

    def _check_limits(self, card: ModelCard, request: ChatRequest, prompt_tokens: int) -> int:
        """Validate max_tokens against the model and return the effective cap."""
        if request.max_tokens is not None and request.max_tokens > card.max_output_tokens:
            raise GatewayError(
                400,
                "invalid_request",
                f"max_tokens is too large: {request.max_tokens}. This model supports at most "
                f"{card.max_output_tokens} completion tokens.",
                param="max_tokens",
            )
        requested = request.max_tokens or 0
        if prompt_tokens + requested > card.context_window:
            raise GatewayError(
                400,
                "invalid_request",
                f"This model's maximum context length is {card.context_window} tokens. However, "
                f"you requested {prompt_tokens + requested} tokens ({prompt_tokens} in the "
                f"messages, {requested} in the completion).",
                param="messages",
                code="context_length_exceeded",
            )
        room = card.context_window - prompt_tokens
        return min(request.max_tokens or card.max_output_tokens, room)

    async def _cache_get(self, key: str) -> CachedCompletion | None:
        assert self._exact_cache is not None
        try:
            return await self._exact_cache.get(key)
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels(op="cache_get").inc()
            log.warning("exact cache lookup failed, serving as a miss: %s", exc)
            return None

    async def _cache_put(self, key: str, entry: CachedCompletion) -> None:
        assert self._exact_cache is not None
        try:
            await self._exact_cache.put(key, entry)
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels(op="cache_put").inc()
            log.warning("exact cache store failed: %s", exc)

    async def complete(self, request: ChatRequest, team: str) -> Completion:
        card = self.resolve_model(request.model)
        prompt_tokens = count_prompt(card, request.messages)
        max_tokens = self._check_limits(card, request, prompt_tokens)
        canonical = canonical_request(card, request)

        cache_key = exact_key(team, canonical) if self._exact_cache else None
        if cache_key is not None:
            hit = await self._cache_get(cache_key)
            if hit is not None:
                completion = Completion(
                    requested_model=request.model,
                    model=self.table.resolve(hit.model) or card,
                    team=team,
                    text=hit.text,
                    prompt_tokens=hit.prompt_tokens,
                    completion_tokens=hit.completion_tokens,
                    finish_reason=hit.finish_reason,
                    cost_usd=0.0,
                    saved_usd=hit.cost_usd,
                    cache="exact",
                    latency=NO_LATENCY,
                )
                self._meter(completion)
                return completion

        simulated = simulate_completion(card, max_tokens, request_seed(canonical))
        completion = Completion(
            requested_model=request.model,
            model=card,
            team=team,
            text=simulated.text,
            prompt_tokens=prompt_tokens,
            completion_tokens=simulated.completion_tokens,
            finish_reason=simulated.finish_reason,
            cost_usd=card.cost_usd(prompt_tokens, simulated.completion_tokens),
            saved_usd=0.0,
            cache="miss",
            latency=latency_plan(card, self.settings.latency_scale),
        )
        self._meter(completion)
        if cache_key is not None:
            await self._cache_put(
                cache_key,
                CachedCompletion(
                    model=card.name,
                    text=completion.text,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                    finish_reason=completion.finish_reason,
                    cost_usd=completion.cost_usd,
                ),
            )
        return completion

    def _meter(self, completion: Completion) -> None:
        m, team, model = self.metrics, completion.team, completion.model.name
        if completion.cache == "miss":
            m.tokens.labels(type="input", model=model, team=team).inc(completion.prompt_tokens)
            m.tokens.labels(type="output", model=model, team=team).inc(completion.completion_tokens)
            m.cost.labels(model=model, team=team).inc(completion.cost_usd)
            if self._exact_cache is not None:
                m.cache_misses.labels(team=team).inc()
        else:
            m.cache_hits.labels(kind=completion.cache, team=team).inc()
            m.saved.labels(reason="cache", team=team).inc(completion.saved_usd)
