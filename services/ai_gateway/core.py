"""The gateway pipeline, independent of any wire format.

auth -> exact cache -> semantic cache -> router -> budget reserve -> simulated provider -> meter
-> budget settle -> cache store. The API adapters turn HTTP bodies into a ChatRequest and a
Completion back into their own shape.

Cache lookups come before the budget check on purpose: a cache hit costs nothing, so it consumes no
budget and is refused only by a team's requests-per-minute limit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from .budgets import (
    NANOS_PER_USD,
    Admission,
    Reservation,
    TeamLimits,
    retry_after_seconds,
    to_nanos,
    window,
)
from .cache import CachedCompletion, ExactCache, exact_key
from .embeddings import Embedder, open_embedder
from .metrics import GatewayMetrics
from .pricing import ModelCard, PriceTable, default_price_table
from .records import CacheStatus, ErrorKind
from .router import RouteDecision, classify
from .semantic import SemanticCache
from .settings import GatewaySettings, key_digest
from .simulator import (
    LatencyPlan,
    completion_length,
    latency_plan,
    request_seed,
    simulate_completion,
)
from .store import Store, StoreUnavailable
from .tokens import PromptMessage, count_prompt, encoding_name

log = logging.getLogger("ai_gateway")

T = TypeVar("T")
AUTO_MODEL = "auto"
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
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.baseline_usd: float | None = None  # set on refusals of valid requests


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
    baseline_usd: float = 0.0
    similarity: float | None = None
    cached_label: str | None = None
    route: RouteDecision | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def provider_seconds(self) -> float:
        """How long the simulated provider takes at full speed (0 for a cache hit)."""
        return (
            0.0
            if self.cache != "miss"
            else latency_plan(self.model, 1.0).total_s(self.completion_tokens)
        )


def _parameters(request: ChatRequest) -> dict[str, object]:
    return {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop": list(request.stop),
        "seed": request.seed,
    }


def _normalised_messages(messages: tuple[PromptMessage, ...]) -> list[list[str | None]]:
    return [[m.role, m.content.replace("\r\n", "\n").strip(), m.name] for m in messages]


def canonical_request(model: str, request: ChatRequest) -> str:
    """Everything that changes an answer, in a stable form; stream and user fields excluded."""
    return json.dumps(
        {
            "model": model,
            "messages": _normalised_messages(request.messages),
            **_parameters(request),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def semantic_scope(team: str, tier: str, request: ChatRequest) -> str:
    """Team, model tier, answer-changing parameters and every message but the last user turn."""
    context = json.dumps(
        [_normalised_messages(request.messages[:-1]), _parameters(request)], sort_keys=True
    )
    return f"{team}|{tier}|{hashlib.sha256(context.encode()).hexdigest()[:16]}"


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        store: Store,
        metrics: GatewayMetrics,
        table: PriceTable | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.table = table or default_price_table()
        self._teams_by_digest = settings.team_by_key_digest()
        self._admin_digests = settings.admin_key_digests()
        exact = settings.cache.exact
        self._exact_cache = ExactCache(store, exact.ttl_seconds) if exact.enabled else None
        semantic = settings.cache.semantic
        self.embedder: Embedder | None = None
        self._semantic: SemanticCache | None = None
        if semantic.enabled:
            self.embedder = embedder or open_embedder(semantic.embedder, semantic.model)
            self._semantic = SemanticCache(
                store,
                self.embedder.dimensions,
                semantic.effective_threshold,
                semantic.verify,
                semantic.ttl_seconds,
                semantic.max_entries,
            )
        self._limits = {
            team: TeamLimits(
                budget_nanos=to_nanos(spec.limits.usd) if spec.limits.usd else None,
                period=spec.limits.period,
                tokens_per_minute=spec.limits.tokens_per_minute,
                requests_per_minute=spec.limits.requests_per_minute,
            )
            for team, spec in settings.teams.items()
        }
        for team, limits in self._limits.items():
            if limits.budget_nanos is not None:
                metrics.budget_limit.labels(team=team).set(limits.budget_nanos / NANOS_PER_USD)
                metrics.budget_remaining.labels(team=team).set(limits.budget_nanos / NANOS_PER_USD)

    async def start(self) -> None:
        """Warm the semantic index from the shared store before serving."""
        if self._semantic is not None:
            try:
                await self._semantic.sync()
            except StoreUnavailable as exc:
                log.warning("semantic cache warm-up failed, starting empty: %s", exc)

    # ---- identity -------------------------------------------------------------------------

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

    def is_admin(self, api_key: str | None) -> bool:
        return bool(api_key) and key_digest(api_key) in self._admin_digests

    # ---- models and limits ----------------------------------------------------------------

    def resolve_model(self, name: str) -> ModelCard:
        card = self.table.resolve(name)
        if card is None:
            hint = (
                " Model 'auto' needs routing, which is off in this profile."
                if name == AUTO_MODEL
                else self.table.retirement_note(name)
            )
            raise GatewayError(
                404,
                "not_found",
                f"The model {name!r} does not exist.{hint} Available models: "
                + ", ".join(self.table.names()),
                param="model",
                code="model_not_found",
            )
        return card

    def _completion_cap(
        self, card: ModelCard, request: ChatRequest, prompt_tokens: int, routed: bool
    ) -> int:
        """Validate max_tokens against the model and return the effective cap.

        A routed request asked for another model, so its cap is clamped to the served model's
        limits instead of being refused.
        """
        too_many = request.max_tokens is not None and request.max_tokens > card.max_output_tokens
        if too_many and not routed:
            raise GatewayError(
                400,
                "invalid_request",
                f"max_tokens is too large: {request.max_tokens}. This model supports at "
                f"most {card.max_output_tokens} completion tokens.",
                param="max_tokens",
            )
        requested = min(request.max_tokens or 0, card.max_output_tokens)
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
        return min(request.max_tokens or card.max_output_tokens, card.max_output_tokens, room)

    # ---- the pipeline ---------------------------------------------------------------------

    def _baseline_cost(
        self,
        requested: ModelCard | None,
        request: ChatRequest,
        prompt_tokens_of: Callable[[ModelCard], int],
    ) -> float:
        """What the unoptimized setup would pay for this request: the requested model (the
        complex tier's for "auto"), its own prompt count and its own completion length."""
        card = requested or self.resolve_model(self.settings.routing.tiers["complex"])
        prompt_tokens = prompt_tokens_of(card)
        cap = self._completion_cap(card, request, prompt_tokens, routed=requested is None)
        length, _ = completion_length(
            card, cap, request_seed(canonical_request(card.name, request))
        )
        return card.cost_usd(prompt_tokens, length)

    async def complete(
        self,
        request: ChatRequest,
        team: str,
        now: datetime | None = None,
        label: str | None = None,
    ) -> Completion:
        """Serve one request. ``label`` is ground truth from a simulation: it is stored with cache
        entries and reported back on hits, and never changes a decision."""
        now = now or datetime.now(UTC)
        routing = self.settings.routing
        auto = request.model == AUTO_MODEL and routing.enabled
        requested = None if auto else self.resolve_model(request.model)
        routed = routing.enabled and (auto or self.settings.teams[team].routing == "all")
        requested_name = AUTO_MODEL if requested is None else requested.name
        counted: dict[str, int] = {}

        def prompt_tokens_of(card: ModelCard) -> int:
            """The prompt's token count depends only on the encoding: count it once per request."""
            encoding = encoding_name(card)
            if encoding not in counted:
                counted[encoding] = count_prompt(card, request.messages)
            return counted[encoding]

        baseline = self._baseline_cost(requested, request, prompt_tokens_of)

        cache_key = None
        if self._exact_cache is not None:
            cache_key = exact_key(team, canonical_request(requested_name, request))
            hit = await self._guarded(self._exact_cache.get(cache_key), "cache_get")
            if hit is not None:
                return await self._serve_hit(request, team, hit, "exact", None, baseline, now)

        semantic_args = None
        if self._semantic is not None and self.embedder is not None:
            prompt = request.messages[-1].content
            tier = AUTO_MODEL if requested is None else requested.tier
            semantic_args = (
                semantic_scope(team, tier, request),
                prompt,
                self.embedder.embed(prompt),
            )
            outcome = await self._guarded(self._semantic.lookup(*semantic_args), "semantic_get")
            if outcome is not None:
                if outcome.best_similarity is not None:
                    self.metrics.semantic_similarity.observe(outcome.best_similarity)
                for reason in outcome.refusals:
                    self.metrics.semantic_refusals.labels(reason=reason).inc()
                if outcome.hit is not None:
                    hit = outcome.hit
                    return await self._serve_hit(
                        request, team, hit.entry, "semantic", hit.similarity, baseline, now
                    )

        card, decision = self._route(request, requested, routed, prompt_tokens_of)
        prompt_tokens = prompt_tokens_of(card)
        cap = self._completion_cap(card, request, prompt_tokens, routed=decision is not None)
        try:
            admission = await self._admit(
                team, card.cost_usd(prompt_tokens, cap), prompt_tokens + cap, now
            )
        except GatewayError as refusal:
            refusal.baseline_usd = baseline
            raise

        simulated = simulate_completion(
            card, cap, request_seed(canonical_request(card.name, request))
        )
        cost = card.cost_usd(prompt_tokens, simulated.completion_tokens)
        saved = 0.0
        headers: dict[str, str] = {}
        if decision is not None:
            saved = max(baseline - cost, 0.0)
            headers = {
                "x-gateway-routed-from": requested_name,
                "x-gateway-route-reason": decision.reason,
            }
            self.metrics.routed.labels(requested=requested_name, served=card.name).inc()
        completion = Completion(
            requested_model=request.model,
            model=card,
            team=team,
            text=simulated.text,
            prompt_tokens=prompt_tokens,
            completion_tokens=simulated.completion_tokens,
            finish_reason=simulated.finish_reason,
            cost_usd=cost,
            saved_usd=saved,
            cache="miss",
            latency=latency_plan(card, self.settings.latency_scale),
            baseline_usd=baseline,
            route=decision,
            extra_headers=headers,
        )
        self._meter(completion)
        if admission is not None and admission.reservation is not None:
            await self._settle(team, admission.reservation, completion)

        entry = CachedCompletion(
            model=card.name,
            text=completion.text,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            finish_reason=completion.finish_reason,
            cost_usd=completion.cost_usd,
            label=label,
        )
        if cache_key is not None and self._exact_cache is not None:
            await self._guarded(self._exact_cache.put(cache_key, entry), "cache_put")
        if semantic_args is not None and self._semantic is not None:
            await self._guarded(self._semantic.add(*semantic_args, entry), "semantic_put")
        return completion

    def _route(
        self,
        request: ChatRequest,
        requested: ModelCard | None,
        routed: bool,
        prompt_tokens_of: Callable[[ModelCard], int],
    ) -> tuple[ModelCard, RouteDecision | None]:
        """Pick the served model; never route a named model to a pricier one."""
        if not routed:
            assert requested is not None
            return requested, None
        reference = requested or self.resolve_model(self.settings.routing.tiers["complex"])
        decision = classify(
            request.messages,
            prompt_tokens_of(reference),
            request.max_tokens,
            embedder=self.embedder,
            threshold=self.settings.routing.threshold,
        )
        chosen = self.resolve_model(self.settings.routing.tiers[decision.tier])
        if requested is not None and chosen.cost_usd(1000, 1000) >= requested.cost_usd(1000, 1000):
            return requested, None
        return chosen, decision

    async def _serve_hit(
        self,
        request: ChatRequest,
        team: str,
        hit: CachedCompletion,
        kind: CacheStatus,
        similarity: float | None,
        baseline: float,
        now: datetime,
    ) -> Completion:
        """A cache hit saves what the request would have cost unoptimized."""
        await self._admit(team, 0.0, 0, now)
        card = self.table.resolve(hit.model) or self.resolve_model(request.model)
        headers = {"x-gateway-similarity": f"{similarity:.4f}"} if similarity is not None else {}
        completion = Completion(
            requested_model=request.model,
            model=card,
            team=team,
            text=hit.text,
            prompt_tokens=hit.prompt_tokens,
            completion_tokens=hit.completion_tokens,
            finish_reason=hit.finish_reason,
            cost_usd=0.0,
            saved_usd=baseline,
            cache=kind,
            latency=NO_LATENCY,
            baseline_usd=baseline,
            similarity=similarity,
            cached_label=hit.label,
            extra_headers=headers,
        )
        self._meter(completion)
        return completion

    # ---- budgets --------------------------------------------------------------------------

    async def _admit(
        self, team: str, worst_cost_usd: float, worst_tokens: int, now: datetime
    ) -> Admission | None:
        limits = self._limits[team]
        if not limits.any:
            return None
        reservation = Reservation(
            window(team, limits.period, now), to_nanos(worst_cost_usd, round_up=True), worst_tokens
        )
        try:
            reason, spent = await self.store.reserve(reservation, limits, now)
        except StoreUnavailable as exc:
            if self.settings.budgets.on_store_error == "open":
                log.warning("budget store unavailable, admitting without limits: %s", exc)
                self.metrics.store_errors.labels(op="budget_reserve").inc()
                return None
            raise GatewayError(
                503,
                "unavailable",
                "Budgets cannot be checked because the gateway's store is unavailable.",
            ) from exc
        admission = Admission(reason, spent, reservation)
        self._publish_remaining(team, spent)
        if admission.admitted:
            return admission
        self.metrics.budget_rejections.labels(team=team, reason=reason).inc()
        retry = retry_after_seconds(admission, now)
        if reason == "budget":
            assert limits.budget_nanos is not None
            raise GatewayError(
                429,
                "budget",
                f"Team {team!r} has used its {limits.period}ly budget of "
                f"${limits.budget_nanos / NANOS_PER_USD:.2f} (spent "
                f"${spent / NANOS_PER_USD:.4f}; this request may cost up to "
                f"${worst_cost_usd:.4f}). It resets in {retry} s.",
                retry_after=retry,
            )
        limit = (
            limits.tokens_per_minute
            if reason == "tokens_per_minute"
            else limits.requests_per_minute
        )
        unit = "tokens" if reason == "tokens_per_minute" else "requests"
        raise GatewayError(
            429,
            "rate_limit",
            f"Rate limit reached for team {team!r}: {limit} {unit} per minute"
            + (f" (this request may use {worst_tokens} tokens)" if unit == "tokens" else "")
            + f". Retry in {retry} s.",
            retry_after=retry,
        )

    async def _settle(self, team: str, reservation: Reservation, completion: Completion) -> None:
        try:
            spent = await self.store.settle(
                reservation,
                to_nanos(completion.cost_usd),
                completion.prompt_tokens + completion.completion_tokens,
            )
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels(op="budget_settle").inc()
            log.warning("budget settlement failed; the reservation stays counted: %s", exc)
            return
        self._publish_remaining(team, spent)

    def _publish_remaining(self, team: str, spent_nanos: int) -> None:
        limit = self._limits[team].budget_nanos
        if limit is not None:
            self.metrics.budget_remaining.labels(team=team).set(
                max(limit - spent_nanos, 0) / NANOS_PER_USD
            )

    async def budget_report(self, teams: list[str], now: datetime | None = None) -> list[dict]:
        now = now or datetime.now(UTC)
        report = []
        for team in teams:
            limits = self._limits[team]
            w = window(team, limits.period, now)
            spent, reserved = await self.store.budget_usage(w.budget_key)
            budget = limits.budget_nanos
            report.append(
                {
                    "team": team,
                    "period": limits.period,
                    "period_start": w.period_start.isoformat(),
                    "period_end": w.period_end.isoformat(),
                    "budget_usd": None if budget is None else budget / NANOS_PER_USD,
                    "spent_usd": spent / NANOS_PER_USD,
                    "reserved_usd": reserved / NANOS_PER_USD,
                    "remaining_usd": None
                    if budget is None
                    else max(budget - spent, 0) / NANOS_PER_USD,
                    "tokens_per_minute": limits.tokens_per_minute,
                    "requests_per_minute": limits.requests_per_minute,
                }
            )
        return report

    # ---- metering -------------------------------------------------------------------------

    async def _guarded(self, operation: Awaitable[T], op: str) -> T | None:
        """Run a cache operation; a store failure is logged, counted and treated as a miss."""
        try:
            return await operation
        except StoreUnavailable as exc:
            self.metrics.store_errors.labels(op=op).inc()
            log.warning("%s failed, continuing without it: %s", op, exc)
            return None

    def _meter(self, completion: Completion) -> None:
        m, team, model = self.metrics, completion.team, completion.model.name
        caching = self._exact_cache is not None or self._semantic is not None
        if completion.cache == "miss":
            m.tokens.labels(type="input", model=model, team=team).inc(completion.prompt_tokens)
            m.tokens.labels(type="output", model=model, team=team).inc(completion.completion_tokens)
            m.cost.labels(model=model, team=team).inc(completion.cost_usd)
            if caching:
                m.cache_misses.labels(team=team).inc()
            if completion.saved_usd > 0:
                m.saved.labels(reason="routing", team=team).inc(completion.saved_usd)
        else:
            m.cache_hits.labels(kind=completion.cache, team=team).inc()
            m.saved.labels(reason="cache", team=team).inc(completion.saved_usd)
