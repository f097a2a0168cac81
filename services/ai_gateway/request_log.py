"""The per-request log: one JSON line per answered request, for reports that must be recomputable.

Ground truth sent by a simulation (``x-sim-*`` headers) is written next to what the gateway did,
and never read by any decision.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from .domain import Completion, GatewayError

SIM_HEADER_PREFIX = "x-sim-"


class RequestLog:
    def __init__(self, path: str) -> None:
        self._file: IO[str] = (
            sys.stdout if path == "-" else open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        )

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def served(self, api: str, sim: dict[str, str], c: Completion, gateway_seconds: float) -> None:
        self._write(
            {
                "ts": round(time.time(), 3),
                "api": api,
                "status": 200,
                "team": c.team,
                "sim": sim,
                "requested_model": c.requested_model,
                "served_model": c.model.name,
                "served_tier": c.model.tier,
                "cache": c.cache,
                "similarity": c.similarity,
                "cached_label": c.cached_label,
                "route_tier": c.route.tier if c.route else None,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "cost_usd": c.cost_usd,
                "baseline_usd": c.baseline_usd,
                "saved_usd": c.saved_usd,
                "gateway_ms": round(gateway_seconds * 1000, 3),
                "provider_ms": round(c.provider_seconds * 1000, 3),
            }
        )

    def refused(
        self,
        api: str,
        sim: dict[str, str],
        team: str | None,
        model: str | None,
        e: GatewayError,
        status: int,
    ) -> None:
        self._write(
            {
                "ts": round(time.time(), 3),
                "api": api,
                "status": status,
                "team": team,
                "sim": sim,
                "requested_model": model,
                "error": e.kind,
                "cost_usd": 0.0,
                "baseline_usd": e.baseline_usd,
            }
        )

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()
