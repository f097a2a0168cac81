"""Per-team budgets and rate limits, enforced atomically in the store for every replica.

Before a request is served, its worst case is reserved: prompt tokens plus the completion cap, at
the served model's prices. The reservation is admitted only if spend + reservations + this one stay
within the budget, and the minute's tokens and requests within their limits; the check and the
reservation are one atomic step (a Lua script in Redis). Afterwards the reservation is settled to
the actual cost, which can only be lower. So concurrent requests can never push the recorded spend
over the budget. Money is counted in integer nano-dollars, so sums are exact.

Periods are calendar-aligned in UTC: a daily budget resets at 00:00 UTC, a monthly one on the 1st.
Cache hits reserve nothing and are refused only by the requests-per-minute limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

NANOS_PER_USD = 1_000_000_000
Period = Literal["day", "month"]
Reason = Literal["ok", "budget", "tokens_per_minute", "requests_per_minute"]


def to_nanos(usd: float, round_up: bool = False) -> int:
    scaled = usd * NANOS_PER_USD
    return math.ceil(scaled) if round_up else round(scaled)


@dataclass(frozen=True)
class TeamLimits:
    budget_nanos: int | None
    period: Period
    tokens_per_minute: int | None
    requests_per_minute: int | None

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.budget_nanos, self.tokens_per_minute, self.requests_per_minute)
        )


@dataclass(frozen=True)
class Window:
    """Where one team's counters live at one instant, and when they reset."""

    budget_key: str
    tokens_key: str
    requests_key: str
    period_start: datetime
    period_end: datetime
    minute_end: datetime


def window(team: str, period: Period, now: datetime) -> Window:
    now = now.astimezone(UTC)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        label = start.strftime("%Y%m%d")
    else:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        label = start.strftime("%Y%m")
    minute = now.replace(second=0, microsecond=0)
    minute_label = minute.strftime("%Y%m%d%H%M")
    return Window(
        budget_key=f"budget:{team}:{period}:{label}",
        tokens_key=f"tpm:{team}:{minute_label}",
        requests_key=f"rpm:{team}:{minute_label}",
        period_start=start,
        period_end=end,
        minute_end=minute + timedelta(minutes=1),
    )


@dataclass(frozen=True)
class Reservation:
    window: Window
    cost_nanos: int
    tokens: int


@dataclass(frozen=True)
class Admission:
    reason: Reason
    spent_nanos: int
    reservation: Reservation | None

    @property
    def admitted(self) -> bool:
        return self.reason == "ok"


def retry_after_seconds(admission: Admission, now: datetime) -> int:
    """Seconds until the counter that refused the request resets."""
    assert admission.reservation is not None
    w = admission.reservation.window
    until = w.period_end if admission.reason == "budget" else w.minute_end
    return max(1, math.ceil((until - now.astimezone(UTC)).total_seconds()))


def ttl_seconds(until: datetime, now: datetime) -> int:
    """Counters outlive their window by a day, so late settlements still find them."""
    return max(1, math.ceil((until - now.astimezone(UTC)).total_seconds())) + 86_400
