"""The gateway's domain types: a request, its completion and a refusal, with no HTTP in them.

The API adapters turn their wire format into a ChatRequest and a Completion or GatewayError back
into theirs; each adapter owns the HTTP status and body of every error kind.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from .pricing import ModelCard
from .records import CacheStatus, ErrorKind
from .router import RouteDecision
from .simulator import AnswerFormat, AnswerShape, LatencyPlan, latency_plan
from .tokens import PromptMessage
from .tool_calls import ToolCall
from .tool_prompt import ToolPrompt

AUTO_MODEL = "auto"


class RateLimitState(NamedTuple):
    """Where a team stands in its per-minute limits once a request was counted (or refused), for
    the rate-limit headers each API shape sends: clients pace themselves by them. A limit the
    team does not have is None, and its remaining count means nothing. A tuple: one is made per
    metered answer, on the hit path too, and a tuple is made in a third of a frozen dataclass's
    time."""

    requests_limit: int | None
    requests_remaining: int
    tokens_limit: int | None
    tokens_remaining: int
    resets_at: float  # the end of the minute the counters belong to, in seconds since the epoch


class GatewayError(Exception):
    """A request the gateway refuses; each adapter renders it in its API's status and body."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
        retryable: bool = True,
        worded: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        # The message as an API words it where it differs from ``message`` (by Adapter.api):
        # clients match some of these texts, such as Anthropic's "prompt is too long".
        self.worded = worded or {}
        self.param = param
        self.code = code
        self.retry_after = retry_after
        # False where no wait lets the request through as sent (the SDKs honour
        # ``x-should-retry: false`` and otherwise retry every 429).
        self.retryable = retryable
        self.baseline_usd: float | None = None  # set on refusals of valid requests
        self.rate_limits: RateLimitState | None = None  # set on refusals by a team's limits


@dataclass(frozen=True)
class ChatRequest:
    """A chat request in normalised form; system prompts are messages with role "system".

    ``include_usage`` asks a stream for a final usage event; it never changes the answer.
    """

    model: str
    messages: tuple[PromptMessage, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    cap_parameter: str = "max_tokens"
    """The field that carried ``max_tokens``, as the client's API names it (errors name it)."""
    stop_parameter: str = "stop"
    """The field that carried ``stop``, as the client's API names it (errors name it)."""
    reasoning_refused: tuple[str, ...] = ()
    """The OpenAI parameters this body set that OpenAI's reasoning models refuse (``max_tokens``,
    penalties, ``logit_bias``, log probabilities), in the order they are named."""
    unsimulated: tuple[tuple[str, str], ...] = ()
    """Answer-changing fields beyond the simulated ones above (tools, response_format, top_k...),
    as (name, canonical JSON): they keep requests apart in the caches, whether or not the
    simulator follows them (it follows a forcing tool_choice and JSON modes, not top_k)."""
    tool_prompt: ToolPrompt | None = None
    """The tool definitions (and response schema) the provider bills as prompt tokens."""
    answer_format: AnswerFormat = "text"
    """OpenAI's response_format type: JSON mode answers an object, json_schema one the schema
    in ``tool_prompt`` accepts."""
    _canonical: dict[str, str] = field(default_factory=dict, init=False, compare=False, repr=False)

    def _parameters(self) -> dict[str, object]:
        parameters: dict[str, object] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": list(self.stop),
            "seed": self.seed,
        }
        if self.unsimulated:
            parameters["unsimulated"] = dict(self.unsimulated)
        return parameters

    def canonical(self, model: str) -> str:
        """Everything that changes an answer, in a stable form; stream and usage excluded.
        Built once per model: the exact key, the baseline and the simulated answer all use it."""
        if model not in self._canonical:
            self._canonical[model] = json.dumps(
                {"model": model, "messages": _normalised(self.messages), **self._parameters()},
                sort_keys=True,
                separators=(",", ":"),
            )
        return self._canonical[model]

    def keyed_as_sent(self) -> bool:
        """Whether the keys read every message exactly as sent: they trim its surrounding
        whitespace and unify line ends, which change its token count, so only such a request
        costs what any other request under its exact key costs."""
        return all(m.content == m.content.replace("\r\n", "\n").strip() for m in self.messages)

    @property
    def shape(self) -> AnswerShape:
        """What the simulated provider must respect in the answer's form."""
        return AnswerShape(self.stop, self.tool_prompt, self.answer_format)

    def generation_form(self, model: str) -> str:
        """What the simulated answer is seeded by: the canonical form without the stop
        sequences, which only cut that answer short, as they cut a model's generation (a
        request without them seeds exactly as its canonical form)."""
        return replace(self, stop=()).canonical(model) if self.stop else self.canonical(model)

    def context_digest(self) -> str:
        """The answer-changing parameters, every message but the last turn, and the last turn
        but its text: its role (a system or tool message is not the user turn with the same
        text), its name (another user's question is not this one's) and its keyed fields."""
        last = _normalised(self.messages[-1:])
        last_turn = [last[0][0], *last[0][2:]] if last else None
        context = json.dumps(
            [_normalised(self.messages[:-1]), last_turn, self._parameters()], sort_keys=True
        )
        return hashlib.sha256(context.encode()).hexdigest()[:16]


def _normalised(messages: tuple[PromptMessage, ...]) -> list[list[str | None]]:
    """Each message as the keys read it; the keyed fields only where a message has any, so a
    plain conversation keys (and seeds its simulated answer) as it always has."""
    return [
        [m.role, m.content.replace("\r\n", "\n").strip(), m.name, *([m.keyed] if m.keyed else [])]
        for m in messages
    ]


@dataclass(frozen=True)
class Completion:
    """A served answer and what it cost; ``routed_from`` names the model a router replaced."""

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
    routed_from: str | None = None
    cached_tokens: int = 0  # prompt tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # prompt tokens written to it (billed by Anthropic)
    cache_write_1h_tokens: int = 0  # of those, the ones written as 1-hour entries
    prompt_cache_saved_usd: float = 0.0  # the same tokens at the input price, minus what they cost
    stop_sequence: str | None = None  # the request's stop sequence that ended the text, if one did
    tool_call: ToolCall | None = None  # the call made instead of text (tool_calls.py)
    rate_limits: RateLimitState | None = None  # the team's per-minute standing, when it has limits

    @property
    def generated(self) -> str:
        """What the answer streams: its text, or its tool call's arguments."""
        return self.text if self.tool_call is None else self.tool_call.arguments

    @property
    def uncached_prompt_tokens(self) -> int:
        """Prompt tokens at the plain input price (Anthropic's ``input_tokens``)."""
        return self.prompt_tokens - self.cached_tokens - self.cache_write_tokens

    @property
    def provider_seconds(self) -> float:
        """How long the simulated provider takes at full speed (0 for a cache hit)."""
        return (
            0.0
            if self.cache != "miss"
            else latency_plan(self.model, 1.0).total_s(self.completion_tokens)
        )
