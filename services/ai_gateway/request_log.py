"""The per-request log: one JSON line per answered request, for reports that must be recomputable.

Ground truth sent by a simulation (``x-sim-*`` headers) is written next to what the gateway did,
and never read by any decision.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from .domain import Completion, GatewayError
from .records import RequestRecord

SIM_HEADER_PREFIX = "x-sim-"


def served_record(
    api: str,
    sim: dict[str, str],
    c: Completion,
    gateway_seconds: float,
    request_id: str | None = None,
) -> RequestRecord:
    return RequestRecord(
        ts=round(time.time(), 3),
        request_id=request_id,
        api=api,
        status=200,
        team=c.team,
        sim=sim,
        requested_model=c.requested_model,
        served_model=c.model.name,
        served_tier=c.model.tier,
        cache=c.cache,
        similarity=c.similarity,
        cached_label=c.cached_label,
        route_tier=c.route.tier if c.route else None,
        prompt_tokens=c.prompt_tokens,
        completion_tokens=c.completion_tokens,
        cost_usd=c.cost_usd,
        baseline_usd=c.baseline_usd,
        saved_usd=c.saved_usd,
        cached_tokens=c.cached_tokens,
        cache_write_tokens=c.cache_write_tokens,
        cache_write_1h_tokens=c.cache_write_1h_tokens,
        prompt_cache_saved_usd=c.prompt_cache_saved_usd,
        gateway_ms=round(gateway_seconds * 1000, 3),
        provider_ms=round(c.provider_seconds * 1000, 3),
    )


def refused_record(
    api: str,
    sim: dict[str, str],
    team: str | None,
    model: str | None,
    e: GatewayError,
    status: int,
    request_id: str | None = None,
) -> RequestRecord:
    """``status`` is the HTTP status the API's adapter answered with; the domain error has none."""
    return RequestRecord(
        ts=round(time.time(), 3),
        request_id=request_id,
        api=api,
        status=status,
        team=team,
        sim=sim,
        requested_model=model,
        error=e.kind,
        baseline_usd=e.baseline_usd,
    )


class RequestLog:
    def __init__(self, path: str) -> None:
        self._file: IO[str] = (
            sys.stdout if path == "-" else open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        )

    def write(self, record: RequestRecord) -> None:
        self._file.write(record.model_dump_json() + "\n")

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()
