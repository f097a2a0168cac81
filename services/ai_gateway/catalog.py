"""The model catalog stage: names to model cards, the completion cap, the baseline and the route.

It wraps the price table (pricing.py) and the complexity classifier (router.py) without changing
either: this is where a request's model is resolved, capped, priced as the unoptimized setup would
price it, and, when routing is on, replaced by a cheaper tier's model.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from .domain import AUTO_MODEL, ChatRequest, GatewayError
from .embeddings import Embedder
from .pricing import TIERS, ModelCard, PriceTable
from .router import RequestText, RouteDecision, classify, request_turn_indices
from .settings import RoutingSettings
from .simulator import SimulatedProvider
from .tokens import REPLY_PRIMING_TOKENS, PromptMessage, encoding_name, message_tokens
from .tool_prompt import ToolPrompt, tool_prompt_tokens


class PromptTokens:
    """A request's prompt token counts. A count depends only on the encoding, so each message is
    encoded once per encoding per request: the baseline, the router (the user turns alone) and
    the served model share the counts."""

    def __init__(
        self, messages: tuple[PromptMessage, ...], tools: ToolPrompt | None = None
    ) -> None:
        self._messages = messages
        self._tools = tools
        self._per_message: dict[str, tuple[int, ...]] = {}

    def _counts(self, card: ModelCard) -> tuple[int, ...]:
        encoding = encoding_name(card)
        counts = self._per_message.get(encoding)
        if counts is None:
            counts = tuple(message_tokens(encoding, m) for m in self._messages)
            self._per_message[encoding] = counts
        return counts

    def __call__(self, card: ModelCard) -> int:
        """The whole prompt as ``card``'s provider bills it: messages, then tool definitions."""
        return (
            REPLY_PRIMING_TOKENS + sum(self._counts(card)) + tool_prompt_tokens(card, self._tools)
        )

    def request_turns(self, card: ModelCard) -> list[int]:
        """Each turn the routers read (``router.request_turns``), counted as a prompt alone."""
        counts = self._counts(card)
        return [REPLY_PRIMING_TOKENS + counts[i] for i in request_turn_indices(self._messages)]


# How much of an unknown model's name an error repeats: a body may hold a megabyte of it.
SHOWN_NAME_CHARS = 100
# Why a provider refuses a request whatever its sampling values (Catalog.refusal): routing passes
# over a tier whose model would, and a decision raised past one names it.
PREFILL_REFUSED = "refuses a conversation that ends with an assistant message"
STOP_REFUSED = "refuses stop sequences"


class Catalog:
    def __init__(
        self,
        table: PriceTable,
        routing: RoutingSettings,
        provider: SimulatedProvider,
        embedder: Embedder | None = None,
    ) -> None:
        self.table = table
        self._routing = routing
        self._provider = provider
        self._embedder = embedder
        self._may_answer: dict[str, frozenset[str]] = {}  # by requested model, see may_answer
        self._baseline_fingerprints: dict[str, str] = {}  # by baseline model, see baseline_of

    def resolve(self, name: str) -> ModelCard:
        card = self.table.resolve(name)
        if card is None:
            hint = (
                " Model 'auto' needs routing, which is off in this profile."
                if name == AUTO_MODEL
                else self.table.retirement_note(name)
            )
            shown = name if len(name) <= SHOWN_NAME_CHARS else f"{name[:SHOWN_NAME_CHARS]}..."
            raise GatewayError(
                "not_found",
                f"The model {shown!r} does not exist.{hint} Available models: "
                + ", ".join(self.table.names()),
                param="model",
                code="model_not_found",
            )
        return card

    def models_offered(self) -> list[str]:
        """The model names a request may ask for: the table's, and "auto" when routing is on."""
        return self.table.names() + ([AUTO_MODEL] if self._routing.enabled else [])

    def requested(self, request: ChatRequest) -> ModelCard | None:
        """The model the client named; None for "auto" when routing is on."""
        if request.model == AUTO_MODEL and self._routing.enabled:
            return None
        return self.resolve(request.model)

    @staticmethod
    def check_sampling(card: ModelCard, request: ChatRequest) -> None:
        """Refuse the sampling values the named model's provider refuses (``sampling`` in
        data/models.yaml), whichever API shape carried them: that provider would, with these
        messages. A routed request's served model gets the request as the gateway passes it."""
        if card.sampling == "reasoning" and request.temperature not in (None, 1):
            raise GatewayError(
                "invalid_request",
                f"Unsupported value: 'temperature' does not support {request.temperature:g} "
                "with this model. Only the default (1) value is supported.",
                param="temperature",
                code="unsupported_value",
            )
        if card.sampling == "reasoning" and request.top_p not in (None, 1):
            raise GatewayError(
                "invalid_request",
                "Unsupported parameter: 'top_p' is not supported with this model.",
                param="top_p",
                code="unsupported_parameter",
            )
        Catalog.check_refusals(card, request)
        both = request.temperature is not None and request.top_p is not None
        if card.sampling == "temperature_or_top_p" and both:
            raise GatewayError(
                "invalid_request",
                "`temperature` and `top_p` cannot both be specified for this model. Please use "
                "only one.",
            )

    @staticmethod
    def refusal(card: ModelCard, request: ChatRequest) -> str | None:
        """Why ``card``'s provider would refuse ``request`` whatever its sampling values, or
        None (``assistant_prefill`` and ``stop_sequences`` in data/models.yaml)."""
        if not card.assistant_prefill and request.messages[-1].role == "assistant":
            return PREFILL_REFUSED
        if not card.stop_sequences and request.stop:
            return STOP_REFUSED
        return None

    @staticmethod
    def check_refusals(card: ModelCard, request: ChatRequest) -> None:
        """The 400 ``card``'s provider answers for a ``refusal``, in its words."""
        why = Catalog.refusal(card, request)
        if why == PREFILL_REFUSED:
            raise GatewayError(
                "invalid_request",
                "This model does not support assistant message prefill. The conversation must "
                "end with a user message.",
                param="messages",
            )
        if why == STOP_REFUSED:
            raise GatewayError(
                "invalid_request",
                f"Unsupported parameter: '{request.stop_parameter}' is not supported with this "
                "model.",
                param=request.stop_parameter,
                code="unsupported_parameter",
            )

    def prompt_tokens(self, request: ChatRequest) -> int:
        """The prompt's tokens in its baseline model's tokenizer."""
        tokens = PromptTokens(request.messages, request.tool_prompt)
        return tokens(self.baseline_model(self.requested(request)))

    def completion_cap(
        self, card: ModelCard, request: ChatRequest, prompt_tokens: int, routed: bool
    ) -> int:
        """Validate max_tokens against the model and return the effective cap.

        A routed request asked for another model, so its cap is clamped to the served model's
        limits instead of being refused.
        """
        too_many = request.max_tokens is not None and request.max_tokens > card.max_output_tokens
        if too_many and not routed:
            raise GatewayError(
                "invalid_request",
                f"{request.cap_parameter} is too large: {request.max_tokens}. This model "
                f"supports at most {card.max_output_tokens} completion tokens.",
                param=request.cap_parameter,
                worded={
                    "anthropic": f"max_tokens: {request.max_tokens} > {card.max_output_tokens}, "
                    f"which is the maximum allowed number of output tokens for {card.name}"
                },
            )
        if not self.holds(card, request, prompt_tokens):
            raise self._window_exceeded(card, prompt_tokens, self.least_completion(card, request))
        room = card.context_window - prompt_tokens
        return min(request.max_tokens or card.max_output_tokens, card.max_output_tokens, room)

    @staticmethod
    def _window_exceeded(card: ModelCard, prompt_tokens: int, requested: int) -> GatewayError:
        """OpenAI's refusal, and Anthropic's two wordings, which agent frameworks match to
        compact a conversation: a prompt over the window, or one that leaves no room for
        ``max_tokens``."""
        window = card.context_window
        anthropic = (
            f"prompt is too long: {prompt_tokens} tokens > {window} maximum"
            if prompt_tokens >= window
            else f"input length and `max_tokens` exceed context limit: {prompt_tokens} + "
            f"{requested} > {window}, decrease input length or `max_tokens` and try again"
        )
        return GatewayError(
            "invalid_request",
            f"This model's maximum context length is {window} tokens. However, you requested "
            f"{prompt_tokens + requested} tokens ({prompt_tokens} in the messages, {requested} "
            "in the completion).",
            param="messages",
            code="context_length_exceeded",
            worded={"anthropic": anthropic},
        )

    @staticmethod
    def least_completion(card: ModelCard, request: ChatRequest) -> int:
        """The completion a prompt must leave room for: its max_tokens, up to the model's limit,
        or with none, one token (a prompt that fills the window is refused, not answered with
        nothing)."""
        return min(request.max_tokens or 1, card.max_output_tokens)

    def holds(self, card: ModelCard, request: ChatRequest, prompt_tokens: int) -> bool:
        """Whether ``card``'s context window holds the prompt and its least completion."""
        return prompt_tokens + self.least_completion(card, request) <= card.context_window

    def baseline_of(self, requested: ModelCard | None) -> str:
        """What a request's baseline figure depends on beyond the request: the baseline model
        and its card (prices, length model), as a short fingerprint made once per model. An
        exact hit reuses its entry's baseline only while this is unchanged (a price update, or
        another complex tier for "auto", gives another)."""
        card = self.baseline_model(requested)
        fingerprint = self._baseline_fingerprints.get(card.name)
        if fingerprint is None:
            digest = hashlib.sha256(card.model_dump_json().encode()).hexdigest()[:16]
            fingerprint = self._baseline_fingerprints[card.name] = f"{card.name}:{digest}"
        return fingerprint

    def baseline_model(self, requested: ModelCard | None) -> ModelCard:
        """The model a request is priced and counted against unoptimized: the one it names, or
        the complex tier's for "auto"."""
        return requested or self.resolve(self._routing.tiers["complex"])

    def baseline_cost(
        self, requested: ModelCard | None, request: ChatRequest, tokens: PromptTokens
    ) -> float:
        """What the unoptimized setup would pay for this request: the requested model (the
        complex tier's for "auto"), its own prompt count and its own completion length."""
        card = self.baseline_model(requested)
        prompt_tokens = tokens(card)
        cap = self.completion_cap(card, request, prompt_tokens, routed=requested is None)
        seed_form = request.generation_form(card.name)
        length = self._provider.length(card, cap, seed_form, request.shape)
        return card.cost_usd(prompt_tokens, length)

    def routable(self, requested: ModelCard | None, team_routes_all: bool) -> bool:
        """Whether the router picks the served model: always for "auto"; for a named model only
        when routing is on and the team routes every request."""
        return requested is None or (self._routing.enabled and team_routes_all)

    def answering_models(self, requested: ModelCard | None, team_routes_all: bool) -> str:
        """Which models may answer, as the semantic cache scopes its entries: any model of the
        tier when the router picks ("auto" for "auto"), else the named model alone, so a request
        that is not routed is never answered by another model or provider."""
        if requested is None:
            return AUTO_MODEL
        return requested.tier if self.routable(requested, team_routes_all) else requested.name

    def may_answer(
        self, requested: ModelCard | None, team_routes_all: bool
    ) -> frozenset[str] | None:
        """The models whose cached answer a request may get within its semantic scope. A routed
        named model shares its tier's scope, but ``route`` serves it only with itself or a
        routing tier's model cheaper than it, so only their answers serve it (a tier-wide scope
        gave a request for claude-opus-4-7 an answer o3 wrote). None: any answer of the scope
        ("auto", whose scope holds only the router's picks, or a named model alone)."""
        if requested is None or not self.routable(requested, team_routes_all):
            return None
        if requested.name not in self._may_answer:
            price = requested.cost_usd(1000, 1000)
            tiers = (self.resolve(name) for name in self._routing.tiers.values())
            cheaper = {card.name for card in tiers if card.cost_usd(1000, 1000) < price}
            self._may_answer[requested.name] = frozenset({requested.name, *cheaper})
        return self._may_answer[requested.name]

    def route(
        self, request: ChatRequest, requested: ModelCard | None, team_routes_all: bool,
        tokens: PromptTokens, embedded: tuple[str, np.ndarray] | None = None,
    ) -> tuple[ModelCard, RouteDecision | None]:  # fmt: skip
        """Pick the served model; never route a named model to a pricier one. ``embedded`` is a
        text and its vector the caller already has (the semantic cache's), reused if it is the
        last request turn the learned router reads."""
        if requested is not None and not self.routable(requested, team_routes_all):
            return requested, None
        reference = self.baseline_model(requested)
        last_turn = RequestText.of(request.messages).last
        decision = classify(
            request.messages,
            tokens.request_turns(reference),
            request.max_tokens,
            embedder=self._embedder,
            threshold=self._routing.threshold,
            last_turn_vector=embedded[1] if embedded and embedded[0] == last_turn else None,
        )
        fitting = self.fitting_tier(decision, request, tokens)
        if fitting is None:  # no tier serves it: served as asked, or refused as its model would
            if requested is not None:
                return requested, None
            self.check_refusals(reference, request)  # "auto" where no tier would take it
            return reference, replace(decision, tier="complex", raised="no tier's window holds it")
        chosen, decision = fitting
        if requested is not None and chosen.cost_usd(1000, 1000) >= requested.cost_usd(1000, 1000):
            return requested, None
        return chosen, decision

    def fitting_tier(
        self, decision: RouteDecision, request: ChatRequest, tokens: PromptTokens
    ) -> tuple[ModelCard, RouteDecision] | None:
        """The decided tier's model, or the next tier up whose context window holds the prompt
        and one completion token and whose provider takes the request (``refusal``): a 300k-token
        log sent to a 1M-token model was routed to a 272k-token one and refused, a request the
        named model would have answered."""
        first = self.resolve(self._routing.tiers[decision.tier])
        for tier in TIERS[TIERS.index(decision.tier) :]:
            card = self.resolve(self._routing.tiers[tier])
            prompt = tokens(card)
            if self.holds(card, request, prompt) and self.refusal(card, request) is None:
                if tier == decision.tier:
                    return card, decision
                why = (
                    self.refusal(first, request)
                    or f"cannot fit the prompt's {tokens(first)} tokens in its window"
                )
                raised = f"raised from {decision.tier}: {first.name} {why}"
                return card, replace(decision, tier=tier, raised=raised)
        return None
