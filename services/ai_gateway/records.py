"""One line of the per-request log: what the gateway did with a request, and what it cost.

The gateway writes these (request_log.py) and the simulation reads them back (finops_sim.results),
both through this model, so a field cannot be renamed on one side only. A leaf module: reading a
log needs no part of the gateway's pipeline.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from finops_common.config import StrictModel

from .pricing import Tier

CacheStatus = Literal["miss", "exact", "semantic"]
API_SHAPES = ("openai", "anthropic")  # each adapter's ``api``: the request log's and metrics' label
ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "not_found",
    "not_allowed",
    "too_large",
    "rate_limit",
    "budget",
    "unavailable",
    "internal",
    "client_closed",
    "timeout",
]


class RequestRecord(StrictModel):
    """A served request has the serving fields; a refused one has ``error`` and no serving fields.

    ``sim`` is the ground truth a simulation sent in ``x-sim-*`` headers (prefix removed). It is
    logged next to the gateway's decisions and never read by them.
    """

    ts: float = Field(description="Unix time the gateway answered, in seconds")
    request_id: str | None = Field(
        default=None, description="the id the response carried (x-request-id and request-id)"
    )
    api: str = Field(description="the API the request came in on: " + " or ".join(API_SHAPES))
    status: int
    team: str | None
    sim: dict[str, str] = Field(default_factory=dict)
    requested_model: str | None
    served_model: str | None = None
    served_tier: Tier | None = None
    cache: CacheStatus | None = None
    similarity: float | None = None
    cached_label: str | None = Field(
        default=None, description="the sim question of the request whose answer was reused"
    )
    route_tier: Tier | None = Field(default=None, description="set when the router chose a model")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    baseline_usd: float | None = Field(
        default=None,
        description="what the request would cost unoptimized; None if refused before pricing",
    )
    saved_usd: float = 0.0
    cached_tokens: int = Field(default=0, description="prompt tokens read from the provider cache")
    cache_write_tokens: int = Field(
        default=0, description="prompt tokens written to the provider's prompt cache"
    )
    cache_write_1h_tokens: int = Field(
        default=0, description="of those, the ones written as 1-hour entries (Anthropic)"
    )
    prompt_cache_saved_usd: float = Field(
        default=0.0,
        description="these tokens at the plain input price minus what they were billed "
        "(negative when a cache write's surcharge is not yet repaid)",
    )
    gateway_ms: float = 0.0
    provider_ms: float = 0.0
    error: ErrorKind | None = None

    @property
    def served(self) -> bool:
        return self.status == 200

    @property
    def latency_ms(self) -> float:
        """What the client waited: gateway time plus the simulated provider's time."""
        return self.gateway_ms + self.provider_ms
