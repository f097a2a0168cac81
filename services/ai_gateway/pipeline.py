"""The gateway pipeline, independent of any wire format; read ``Gateway.complete`` top to bottom.

exact cache (or an identical request in flight) -> semantic cache -> route -> admit -> provider
-> meter -> settle -> store.

Cache lookups come before the budget check on purpose: a cache hit costs nothing, so it consumes no
budget and is refused only by a team's requests-per-minute limit. Each stage lives in its own
module; wiring.build_gateway assembles them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

from .budgets import BudgetRow, Budgets, Reservation
from .cache import CachedCompletion, ExactCache, exact_key
from .catalog import Catalog, PromptTokens
from .domain import AUTO_MODEL, ChatRequest, Completion, GatewayError, RateLimitState
from .embeddings import Embedder
from .identity import Identity
from .in_flight import Drawn, InFlight, Lead
from .metering import Meter
from .pricing import ModelCard
from .prompt_cache import NO_USE, ProviderPromptCache
from .records import CacheStatus
from .router import RouteDecision
from .semantic import SNAPSHOT_POLICY, SemanticCache, SemanticHit, semantic_scope
from .settings import GatewaySettings
from .simulator import LatencyPlan, SimulatedProvider
from .store import Clock, Store, StoreUnavailable, write_together
from .tokens import count_text
from .tool_calls import ToolCall

log = logging.getLogger("ai_gateway")
NO_LATENCY = LatencyPlan(0.0, 0.0)
SNAPSHOT_CHECK_S = 1.0  # how often a replica asks whether a snapshot is due (one small GET)
STORE_PING_INTERVAL_S = 1.0
# How often each replica republishes the teams' remaining budgets: well inside Prometheus'
# default 30 s scrape, so every scrape sees the ledger's figure.
BUDGET_REFRESH_S = 15.0


@contextlib.contextmanager
def _refusal_priced(baseline: float) -> Iterator[None]:
    """A refusal carries what the request would have cost unoptimized, for the request log (the
    report counts budget refusals' baselines as the budgets' saving)."""
    try:
        yield
    except GatewayError as refusal:
        refusal.baseline_usd = baseline
        raise


@dataclass(frozen=True)
class SemanticProbe:
    """Where a request's last user turn is looked up and stored in the semantic cache."""

    scope: str
    prompt: str
    vector: np.ndarray
    may_answer: frozenset[str] | None = None  # Catalog.may_answer: None, any answer of the scope


@dataclass(frozen=True)
class Settlement:
    """What a miss still owes once its delivery is known: the budget reservation to settle and
    where the answer is cached."""

    reservation: Reservation | None
    key: str | None
    probe: SemanticProbe | None
    label: str | None
    # Catalog.baseline_of, stored with the exact entry and its baseline; None when the request
    # is not keyed as sent (ChatRequest.keyed_as_sent), whose baseline no other request shares.
    baseline_of: str | None
    lead: Lead | None = None  # this request answers ``key`` for its copies in flight
    # The answer as the semantic and exact caches will hold it, built once with the answer.
    entry: CachedCompletion | None = None
    exact_entry: CachedCompletion | None = None


class ExactLookup(NamedTuple):
    """An exact-cache look-up: the entry found (cached, or the answer an identical request in
    flight drew, whose lead is ``shared``), else this request's lead of the key; all None when
    that request drew no answer. ``waited``: it waited for that request."""

    hit: CachedCompletion | None
    lead: Lead | None
    shared: Lead | None = None
    waited: bool = False


@dataclass(frozen=True)
class Answer:
    """A completion before :meth:`Gateway.finish`; a cache hit has nothing left to settle."""

    completion: Completion
    settlement: Settlement | None = None
    shared: Lead | None = None  # a copy's: the request in flight whose answer it reads


@dataclass
class Gateway:
    """The stages of the pipeline, already built; see wiring.build_gateway."""

    settings: GatewaySettings
    store: Store
    identity: Identity
    catalog: Catalog
    budgets: Budgets
    meter: Meter
    provider: SimulatedProvider
    exact: ExactCache | None
    semantic: SemanticCache | None
    embedder: Embedder | None
    clock: Clock
    prompt_cache: ProviderPromptCache | None = None
    in_flight: InFlight = field(default_factory=InFlight)
    _snapshots: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _store_watch: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    # Settlements running on their own (finish_when_whole), awaited by close().
    _held: set[asyncio.Task[Completion]] = field(default_factory=set, init=False, repr=False)

    async def complete(
        self, request: ChatRequest, team: str, now: datetime | None = None, label: str | None = None
    ) -> Completion:
        """Serve one request whole. ``label`` is ground truth from a simulation: it is stored with
        cache entries and reported back on hits, and never changes a decision."""
        return await self.finish(await self.begin(request, team, now, label))

    async def begin(
        self, request: ChatRequest, team: str, now: datetime | None = None, label: str | None = None
    ) -> Answer:
        """Every stage up to the provider's answer; a miss is metered, settled and cached by
        :meth:`finish`, once it is known how much of the answer was delivered."""
        asked_at = now
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        tokens = PromptTokens(request.messages, request.tool_prompt)
        requested = self.catalog.requested(request)
        if requested is not None:
            self.catalog.check_sampling(requested, request)
        requested_name = AUTO_MODEL if requested is None else requested.name
        baseline_of = self.catalog.baseline_of(requested) if request.keyed_as_sent() else None

        key = exact_key(team, request.canonical(requested_name)) if self.exact else None
        lead = None
        if key is not None and self.exact is not None:
            found = await self._exact_or_lead(self.exact, key)
            if found.waited and asked_at is None:
                now = datetime.fromtimestamp(self.clock(), UTC)  # limits count the minute served
            if found.hit is not None:
                try:
                    baseline = self._hit_baseline(
                        found.hit, baseline_of, requested, request, tokens
                    )
                    hit = await self._from_cache(
                        request, team, found.hit, "exact", None, baseline, now
                    )
                except BaseException:
                    if found.shared is not None:
                        self.in_flight.unshare(found.shared)  # refused, or gone: it reads nothing
                    raise
                return Answer(hit) if found.shared is None else self._paced(hit, found.shared)
            lead = found.lead
        try:
            pending = Settlement(None, key, None, label, baseline_of, lead)
            answer = await self._past_exact(request, team, now, tokens, requested, pending)
        except BaseException:
            self.in_flight.release(lead)
            raise
        if answer.settlement is None:
            self.in_flight.release(lead)  # a semantic hit: nothing will be written under the key
        return answer

    async def _exact_or_lead(self, exact: ExactCache, key: str) -> ExactLookup:
        """The exact entry of ``key``; without one, the lead of ``key``, or, while an identical
        request is answered on this replica, its answer once drawn (in_flight.py). A copy whose
        leader draws no answer goes on alone: copies never queue behind one another."""
        hit = await self.meter.guarded(exact.get(key), "cache_get")
        if hit is not None:
            return ExactLookup(hit, None, None)
        lead = self.in_flight.lead(key)
        if lead is not None:
            return ExactLookup(None, lead, None)
        shared = await self.in_flight.follow(key)
        if shared is None or shared.drawn is None:
            return ExactLookup(None, None, waited=True)
        return ExactLookup(shared.drawn.entry, None, shared, waited=True)

    def _hit_baseline(
        self,
        entry: CachedCompletion,
        baseline_of: str | None,
        requested: ModelCard | None,
        request: ChatRequest,
        tokens: PromptTokens,
    ) -> float:
        """The same request as sent: its entry's baseline, unless prices changed since."""
        baseline = entry.baseline_for(baseline_of)
        if baseline is None:
            baseline = self.catalog.baseline_cost(requested, request, tokens)
        return baseline

    def _paced(self, copy: Completion, lead: Lead) -> Answer:
        """A copy of a request in flight, an exact hit on its answer: delivered at the provider's
        pace from as far as it has got. It counts among the lead's sharers, who keep the
        provider's stream open, until it has read the answer or left."""
        self.meter.metrics.cache_coalesced.labels(team=copy.team).inc()
        drawn = lead.drawn
        assert drawn is not None  # a lead with a sharer is never withdrawn
        elapsed = asyncio.get_running_loop().time() - drawn.started
        return Answer(replace(copy, latency=drawn.plan.joined(elapsed)), shared=lead)

    def left(self, answer: Answer) -> None:
        """A hit's client left before its answer was whole: a copy stops keeping the provider's
        stream of the answer it reads open."""
        if answer.shared is not None:
            self.in_flight.unshare(answer.shared)

    async def _past_exact(
        self,
        request: ChatRequest,
        team: str,
        now: datetime,
        tokens: PromptTokens,
        requested: ModelCard | None,
        pending: Settlement,
    ) -> Answer:
        """The stages after an exact miss: semantic cache, route, admit, provider. ``pending``
        holds what the miss will settle, but its reservation and semantic probe."""
        baseline = self.catalog.baseline_cost(requested, request, tokens)
        routes_all = self.settings.teams[team].routing == "all"
        probe = self._semantic_probe(team, request, requested, routes_all)
        found = await self._semantic_lookup(probe)
        if found is not None:
            completion = await self._from_cache(
                request, team, found.entry, "semantic", found.similarity, baseline, now
            )
            return Answer(completion)

        embedded = None if probe is None else (probe.prompt, probe.vector)
        card, decision = self.catalog.route(request, requested, routes_all, tokens, embedded)
        requested_name = AUTO_MODEL if requested is None else requested.name
        route = None if decision is None else (decision, requested_name)
        prompt_tokens = tokens(card)
        cap = self.catalog.completion_cap(card, request, prompt_tokens, routed=decision is not None)
        worst_cost = self._worst_cost(card, request, prompt_tokens, cap)
        with _refusal_priced(baseline):
            admitted = await self.budgets.admit(team, worst_cost, prompt_tokens + cap, now)

        completion = self._generate(
            request, team, card, cap, tokens, baseline, route, admitted.rate_limits
        )
        entry, exact_entry = self._cache_entries(pending, probe, completion)
        if pending.lead is not None and exact_entry is not None:
            started = asyncio.get_running_loop().time()
            self.in_flight.draw(pending.lead, Drawn(exact_entry, completion.latency, started))
        settlement = replace(
            pending,
            reservation=admitted.reservation,
            probe=probe,
            entry=entry,
            exact_entry=exact_entry,
        )
        return Answer(completion, settlement)

    def _worst_cost(
        self, card: ModelCard, request: ChatRequest, prompt_tokens: int, cap: int
    ) -> float:
        """What admission reserves: the whole cap generated and, where the provider bills prompt
        cache writes, every cacheable prompt token written at the write price."""
        written = written_1h = 0
        if self.prompt_cache is not None:
            written, written_1h = self.prompt_cache.worst_write_tokens(
                card, request.messages, prompt_tokens, request.tool_prompt
            )
        return card.cost_usd(prompt_tokens, cap, cache_write=written, cache_write_1h=written_1h)

    async def finish(self, answer: Answer, delivered: str | None = None) -> Completion:
        """Meter, settle and cache an answer. ``delivered`` is the text generated before a client
        disconnected: only the prompt and those tokens are billed (as providers bill an aborted
        stream), and a partial answer is never cached."""
        settlement, completion = answer.settlement, answer.completion
        partial = delivered is not None and delivered != completion.generated
        if settlement is None:
            if partial:
                self.left(answer)
            return completion
        lead = settlement.lead
        if partial and lead is not None and lead.sharers and lead.drawn is not None:
            # The provider's stream runs on for the copies reading it: the answer is settled and
            # cached whole when the provider would have finished it, whatever becomes of this
            # caller.
            return await asyncio.shield(self.finish_when_whole(answer, lead.drawn.due))
        if partial:
            self.in_flight.withdraw(lead)  # copies from now on go to the provider themselves
        try:
            completion = await self._settle(settlement, completion, delivered if partial else None)
        finally:
            self.in_flight.release(lead)
        return completion

    def finish_when_whole(self, answer: Answer, whole_at: float) -> asyncio.Task[Completion]:
        """``finish`` the whole answer at event-loop time ``whole_at``, on its own: its client
        left, but the provider goes on (for its copies, or billing an abandoned request in full).
        Held until done, its failure logged, and awaited by ``close``."""

        async def when_whole() -> Completion:
            await asyncio.sleep(max(whole_at - asyncio.get_running_loop().time(), 0.0))
            return await self.finish(answer)

        settling = asyncio.ensure_future(when_whole())
        self._held.add(settling)
        settling.add_done_callback(self._settled)
        return settling

    def _settled(self, settling: asyncio.Task[Completion]) -> None:
        self._held.discard(settling)
        if not settling.cancelled() and (failure := settling.exception()) is not None:
            log.error("settling an answer whose client left failed", exc_info=failure)

    async def _settle(
        self, settlement: Settlement, completion: Completion, partial: str | None
    ) -> Completion:
        """Meter, settle and cache; ``partial``, the text delivered of a cut answer, is billed
        alone and never cached."""
        if partial is not None:
            completion = self._cut(completion, partial)
        self.meter.record(completion)
        writes = [] if partial is not None else self._remember(settlement)
        if settlement.reservation is not None:
            used = completion.prompt_tokens + completion.completion_tokens
            settle = self.budgets.settle(
                completion.team, settlement.reservation, completion.cost_usd, used
            )
            writes.insert(0, settle)
        await write_together(self.store, writes)
        return completion

    @staticmethod
    def _cut(completion: Completion, delivered: str) -> Completion:
        """The answer as far as it was generated: its tokens, its cost (the prompt as it was
        billed, prompt cache included), and no routing saving claimed."""
        c, card = completion, completion.model
        generated = min(count_text(card, delivered), c.completion_tokens)
        cost = card.cost_usd(
            c.prompt_tokens,
            generated,
            c.cached_tokens,
            c.cache_write_tokens,
            c.cache_write_1h_tokens,
        )
        call = c.tool_call
        return replace(
            c,
            text=delivered if call is None else "",
            tool_call=None if call is None else replace(call, arguments=delivered),
            completion_tokens=generated,
            finish_reason="length",
            stop_sequence=None,
            cost_usd=cost,
            saved_usd=0.0,
        )

    def _generate(
        self,
        request: ChatRequest,
        team: str,
        card: ModelCard,
        cap: int,
        tokens: PromptTokens,
        baseline: float,
        route: tuple[RouteDecision, str] | None,
        rate_limits: RateLimitState | None,
    ) -> Completion:
        """The simulated provider's answer, priced with the provider's prompt cache. ``route`` is
        the router's decision and the model it replaced; a routed answer saves what its baseline
        costs more than the served model without prompt caching (that saving is counted apart)."""
        answer = self.provider.complete(
            card, cap, request.generation_form(card.name), request.shape
        )
        prompt_tokens = tokens(card)
        cache = self.prompt_cache
        use = (
            NO_USE
            if cache is None
            else cache.use(team, card, request.messages, prompt_tokens, request.tool_prompt)
        )
        cost = card.cost_usd(
            prompt_tokens,
            answer.completion_tokens,
            use.cached_tokens,
            use.cache_write_tokens,
            use.cache_write_1h_tokens,
        )
        uncached_cost = card.cost_usd(prompt_tokens, answer.completion_tokens)
        return Completion(
            requested_model=request.model,
            model=card,
            team=team,
            text=answer.text,
            prompt_tokens=prompt_tokens,
            completion_tokens=answer.completion_tokens,
            finish_reason=answer.finish_reason,
            stop_sequence=answer.stop_sequence,
            tool_call=answer.tool_call,
            cost_usd=cost,
            saved_usd=0.0 if route is None else max(baseline - uncached_cost, 0.0),
            cache="miss",
            latency=self.provider.latency(card),
            baseline_usd=baseline,
            route=None if route is None else route[0],
            routed_from=None if route is None else route[1],
            cached_tokens=use.cached_tokens,
            cache_write_tokens=use.cache_write_tokens,
            cache_write_1h_tokens=use.cache_write_1h_tokens,
            prompt_cache_saved_usd=uncached_cost - cost,
            rate_limits=rate_limits,
        )

    def _semantic_probe(
        self, team: str, request: ChatRequest, requested: ModelCard | None, routes_all: bool
    ) -> SemanticProbe | None:
        if self.semantic is None or self.embedder is None:
            return None
        prompt = request.messages[-1].content
        vector = self.embedder.embed_whole(prompt)
        if vector is None:
            # Longer than the embedder reads: exact-cached only (embeddings.py says why).
            self.meter.metrics.semantic_skips.labels(reason="too long").inc()
            return None
        if not np.isfinite(vector).all() or not np.any(vector):
            # No embeddable content (empty, zero-width, emoji only): a zero vector would be
            # "identical" to every other one, so such a prompt is never looked up nor stored.
            self.meter.metrics.semantic_skips.labels(reason="no content").inc()
            return None
        models = self.catalog.answering_models(requested, routes_all)
        return SemanticProbe(
            semantic_scope(team, models, request),
            prompt,
            vector,
            self.catalog.may_answer(requested, routes_all),
        )

    async def _semantic_lookup(self, probe: SemanticProbe | None) -> SemanticHit | None:
        if probe is None or self.semantic is None:
            return None
        lookup = self.semantic.lookup(probe.scope, probe.prompt, probe.vector, probe.may_answer)
        outcome = await self.meter.guarded(lookup, "semantic_get")
        if outcome is None:
            return None
        if outcome.best_similarity is not None:
            self.meter.metrics.semantic_similarity.observe(outcome.best_similarity)
        for reason in outcome.refusals:
            self.meter.metrics.semantic_refusals.labels(reason=reason).inc()
        return outcome.hit

    async def _from_cache(
        self,
        request: ChatRequest,
        team: str,
        hit: CachedCompletion,
        kind: CacheStatus,
        similarity: float | None,
        baseline: float,
        now: datetime,
    ) -> Completion:
        """A cache hit costs nothing and saves what the request would have cost unoptimized."""
        with _refusal_priced(baseline):
            rate_limits = await self.budgets.admit_free(team, now)
        card = self.catalog.table.resolve(hit.model) or self.catalog.resolve(request.model)
        completion = Completion(
            requested_model=request.model,
            model=card,
            team=team,
            text=hit.text,
            prompt_tokens=hit.prompt_tokens,
            completion_tokens=hit.completion_tokens,
            finish_reason=hit.finish_reason,
            stop_sequence=hit.stop_sequence,
            tool_call=None if hit.tool_call is None else ToolCall(**hit.tool_call),
            cost_usd=0.0,
            saved_usd=baseline,
            cache=kind,
            latency=NO_LATENCY,
            baseline_usd=baseline,
            similarity=similarity,
            cached_label=hit.label,
            rate_limits=rate_limits,
        )
        self.meter.record(completion)
        return completion

    def _remember(self, settlement: Settlement) -> list[Coroutine[Any, Any, object]]:
        """The cache writes for an answer, not yet awaited (see store.write_together)."""
        key, probe = settlement.key, settlement.probe
        writes: list[Coroutine[Any, Any, object]] = []
        if key is not None and self.exact is not None and settlement.exact_entry is not None:
            put = self.exact.put(key, settlement.exact_entry)
            writes.append(self.meter.guarded(put, "cache_put"))
        if probe is not None and self.semantic is not None and settlement.entry is not None:
            add = self.semantic.add(probe.scope, probe.prompt, probe.vector, settlement.entry)
            writes.append(self.meter.guarded(add, "semantic_put"))
        return writes

    @classmethod
    def _cache_entries(
        cls, pending: Settlement, probe: SemanticProbe | None, c: Completion
    ) -> tuple[CachedCompletion | None, CachedCompletion | None]:
        """``c`` as the semantic and as the exact cache hold it, where each will: the exact entry
        keeps the request's baseline, for a hit on the same request as sent, which a semantic
        hit (another request) cannot use."""
        if pending.key is None and probe is None:
            return None, None
        entry = cls._cache_entry(c, pending.label)
        if pending.key is None:
            return entry, None
        shared = pending.baseline_of is not None
        exact_entry = replace(
            entry,
            baseline_usd=c.baseline_usd if shared else None,
            baseline_of=pending.baseline_of,
        )
        return entry, exact_entry

    @staticmethod
    def _cache_entry(c: Completion, label: str | None) -> CachedCompletion:
        """What a hit on ``c`` answers, and what ``c`` cost."""
        return CachedCompletion(
            model=c.model.name,
            text=c.text,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens,
            finish_reason=c.finish_reason,
            stop_sequence=c.stop_sequence,
            tool_call=None if c.tool_call is None else vars(c.tool_call),
            cost_usd=c.cost_usd,
            label=label,
        )

    async def budget_report(self, teams: list[str]) -> list[BudgetRow]:
        return await self.budgets.report(teams, datetime.fromtimestamp(self.clock(), UTC))

    async def start(self) -> None:
        """Warm the semantic index from the shared store before serving (its snapshot, then the
        log's tail), save snapshots for the next replica from then on, and watch the store's
        health. The in-process store has no next replica: nothing to snapshot for."""
        if self.semantic is not None:
            try:
                await self.semantic.sync()
            except StoreUnavailable as exc:
                self.meter.store_failed(
                    "semantic_warmup", exc, "semantic cache warm-up failed, starting empty"
                )
            if self.store.shared:
                self._snapshots = asyncio.create_task(self._save_snapshots(self.semantic))
        self._store_watch = asyncio.create_task(self._watch_store())

    async def _watch_store(self) -> None:
        """A light periodic ping keeps ``ai_store_up`` true while no request touches the store;
        once it answers, the settlements it did not answer are retried, and every
        ``BUDGET_REFRESH_S`` (and at once on start) the remaining budgets are republished from
        the ledger."""
        refreshed_at: float | None = None
        while True:
            due = refreshed_at is None or self.clock() - refreshed_at >= BUDGET_REFRESH_S
            if await self.check_store():
                await self.budgets.retry_unsettled()
                if due:
                    refreshed_at = self.clock()
                    await self.refresh_budgets()
            await asyncio.sleep(STORE_PING_INTERVAL_S)

    async def refresh_budgets(self) -> None:
        try:
            await self.budgets.refresh_remaining(datetime.fromtimestamp(self.clock(), UTC))
        except StoreUnavailable as exc:
            self.meter.store_failed("budget_refresh", exc, "refreshing remaining budgets failed")

    async def check_store(self) -> bool:
        """Ping the store; ``ai_store_up`` follows the answer."""
        try:
            await self.store.ping()
        except StoreUnavailable as exc:
            if self.store_up:
                log.warning("store ping failed: %s", exc)
            self.meter.metrics.store_up.set(0)
            return False
        self.meter.metrics.store_up.set(1)
        return True

    @property
    def store_up(self) -> bool:
        """The store's state as last observed by a request or a ping."""
        (family,) = self.meter.metrics.store_up.collect()
        return bool(family.samples[0].value)

    async def _save_snapshots(self, semantic: SemanticCache) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_CHECK_S)
            if not self.store_up:
                continue  # the store watch reports the outage once; snapshots wait for the store
            try:
                if await semantic.snapshot_due(SNAPSHOT_POLICY):
                    await semantic.sync()
                    await semantic.save_snapshot()
            except StoreUnavailable as exc:
                self.meter.store_failed("semantic_snapshot", exc, "semantic cache snapshot failed")
            except Exception:  # a failed snapshot must not end the next ones, nor close()
                log.exception("semantic cache snapshot failed")

    async def close(self) -> None:
        if self._held:  # settlements still waiting for their answers: record them first
            await asyncio.wait(set(self._held))
        if self._snapshots is not None:
            self._snapshots.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshots
        if self._store_watch is not None:
            self._store_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._store_watch
        await self.budgets.retry_unsettled()
        if self.budgets.unsettled:
            log.error(
                "%d budget settlements were never recorded: the store did not answer",
                self.budgets.unsettled,
            )
        await self.store.close()
