"""What the gateway's tests share besides fixtures: a clock they move by hand, settings with the
tests' defaults, a one-turn request and a metric's value."""

from __future__ import annotations

import time
from typing import Any

from ai_gateway.domain import ChatRequest
from ai_gateway.metrics import GatewayMetrics
from ai_gateway.settings import deep_merge, resolve_settings
from ai_gateway.tokens import PromptMessage

# The exact cache alone: no semantic cache, no routing.
EXACT_ONLY = {"cache": {"semantic": {"enabled": False}}, "routing": {"enabled": False}}


def ask(text: str, model: str = "gpt-4", **kwargs: Any) -> ChatRequest:
    """A request of one user turn."""
    return ChatRequest(model=model, messages=(PromptMessage("user", text),), **kwargs)


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    """A metric's value; 0 for a series not yet created."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


class ManualClock:
    """Seconds since the epoch that move only when a test says so (from the real time, so a
    Redis server's own entry ids agree with it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


TEST_DEFAULTS: dict[str, Any] = {
    "latency_scale": 0,
    "cache": {"semantic": {"embedder": "lexical"}},
}


def settings_for(profile: str = "optimized", **overrides: Any):
    """A profile with the tests' defaults (no latency, the lexical embedder) and overrides."""
    return resolve_settings(profile, deep_merge(TEST_DEFAULTS, overrides), "test settings")


ADMIN_KEY = "sk-admin-key-for-tests"


def budget_settings(**limits: Any) -> dict[str, Any]:
    """Caches and routing off, team-a under ``limits``, team-b unlimited, and an admin key."""
    return {
        "cache": {"exact": {"enabled": False}, "semantic": {"enabled": False}},
        "routing": {"enabled": False},
        "admin_keys": [ADMIN_KEY],
        "teams": {
            "team-a": {"keys": ["sk-demo-team-a"], "limits": limits},
            "team-b": {"keys": ["sk-demo-team-b"]},
        },
    }
