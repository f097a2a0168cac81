"""Per-team budgets and rate limits, enforced atomically in the store for every replica.

Before a request is served, its worst case is reserved: prompt tokens plus the completion cap, at
the served model's prices. The reservation is admitted only if spend + reservations + this one stay
within the budget, and the minute's tokens and requests within their limits; the check and the
reservation are one atomic step (a Lua script in Redis). Afterwards the reservation is settled to
the actual cost, which can only be lower. So concurrent requests can never push the recorded spend
over the budget. Money is counted in integer nano-dollars, so sums are exact.

Periods are calendar-aligned in UTC: a daily budget resets at 00:00 UTC, a monthly one on the 1st.
Cache hits reserve nothing and are refused only by the requests-per-minute limit.

Every admission also answers where the team then stands in its minute (RateLimitState), which the
adapters send as their API's rate-limit headers.

The counters live behind a Ledger: MemoryLedger for one replica, RedisLedger (one Lua script per
step) for many. Budgets is the pipeline's stage over it: admission, settlement, the Prometheus
gauges and the budget report.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal, NamedTuple, NoReturn, Protocol

from pydantic import BaseModel

from .domain import GatewayError, RateLimitState
from .metrics import GatewayMetrics
from .resp import RespClient, RespError, Script
from .settings import GatewaySettings
from .store import KEY_PREFIX, Clock, StoreUnavailable

log = logging.getLogger("ai_gateway")

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
    previous_budget_key: str  # the period before's, given a TTL once this period starts
    holds_key: str  # the open reservations' deadlines (RedisLedger)
    previous_holds_key: str
    tokens_key: str
    requests_key: str
    period_start: datetime
    period_end: datetime
    minute_end: datetime
    minute_end_s: float  # the same, in seconds since the epoch (the rate-limit headers')


def window(team: str, period: Period, now: datetime) -> Window:
    now = now.astimezone(UTC)
    return _window_of_minute(team, period, now.replace(second=0, microsecond=0))


@lru_cache(maxsize=4096)
def _window_of_minute(team: str, period: Period, minute: datetime) -> Window:
    """Every request of one minute shares its window: built once, not per request."""
    if period == "day":
        start = minute.replace(hour=0, minute=0)
        end = start + timedelta(days=1)
        label, previous = start.strftime("%Y%m%d"), (start - timedelta(days=1)).strftime("%Y%m%d")
    else:
        start = minute.replace(day=1, hour=0, minute=0)
        end = (start + timedelta(days=32)).replace(day=1)
        label, previous = start.strftime("%Y%m"), (start - timedelta(days=1)).strftime("%Y%m")
    minute_label = minute.strftime("%Y%m%d%H%M")
    # The team in a hash tag: one script's keys share a slot, as a Valkey cluster (ElastiCache
    # Serverless) requires of a multi-key script.
    tag = f"{{{team}}}"
    return Window(
        budget_key=f"budget:{tag}:{period}:{label}",
        previous_budget_key=f"budget:{tag}:{period}:{previous}",
        holds_key=f"holds:{tag}:{period}:{label}",
        previous_holds_key=f"holds:{tag}:{period}:{previous}",
        tokens_key=f"tpm:{tag}:{minute_label}",
        requests_key=f"rpm:{tag}:{minute_label}",
        period_start=start,
        period_end=end,
        minute_end=minute + timedelta(minutes=1),
        minute_end_s=(minute + timedelta(minutes=1)).timestamp(),
    )


@dataclass(frozen=True)
class Reservation:
    window: Window
    cost_nanos: int
    tokens: int
    hold_id: str = field(default_factory=lambda: os.urandom(8).hex())

    @property
    def hold(self) -> str:
        """Its entry among the period's holds: the id, then the nano-dollars it holds."""
        return f"{self.hold_id}:{self.cost_nanos}"


class Tally(NamedTuple):
    """A ledger's answer to an admission: the reason ("ok" when admitted), the spend recorded
    before this request, and the minute's requests and tokens, this request's own if admitted."""

    reason: Reason
    spent: int
    requests: int
    tokens: int


class Count(NamedTuple):
    """A ledger's answer to a request counted alone: whether it was, and the minute's requests
    (this one's if counted) and tokens."""

    counted: bool
    requests: int
    tokens: int


@dataclass(frozen=True)
class Admission:
    reason: Reason
    spent_nanos: int
    reservation: Reservation | None

    @property
    def admitted(self) -> bool:
        return self.reason == "ok"


def rate_limit_state(
    limits: TeamLimits, w: Window, requests: int, tokens: int
) -> RateLimitState | None:
    """The team's standing in its minute, for the rate-limit headers; None without a per-minute
    limit (a budget alone has no headers in either API)."""
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    if rpm is None and tpm is None:
        return None
    return RateLimitState(
        requests_limit=rpm,
        requests_remaining=0 if rpm is None else max(rpm - requests, 0),
        tokens_limit=tpm,
        tokens_remaining=0 if tpm is None else max(tpm - tokens, 0),
        resets_at=w.minute_end_s,
    )


class Admitted(NamedTuple):
    """An admitted request: its reservation to settle (None when there is nothing to settle)
    and where its team then stands in its minute."""

    reservation: Reservation | None
    rate_limits: RateLimitState | None


NOT_METERED = Admitted(None, None)


def retry_after_seconds(admission: Admission, now: datetime) -> int:
    """Seconds until the counter that refused the request resets."""
    assert admission.reservation is not None
    w = admission.reservation.window
    until = w.period_end if admission.reason == "budget" else w.minute_end
    return max(1, math.ceil((until - now.astimezone(UTC)).total_seconds()))


# How long a budget hash of an ended period is kept (for late settlements and reports).
PAST_PERIOD_TTL_S = 86_400
# How long a reservation holds its worst case before the next reservation releases it: a reply
# lost after the script ran (a timeout, a dropped connection) leaves a reservation nobody will
# settle. Longer than any answer the gateway delivers; a later settlement still records the cost.
RESERVATION_HOLD_S = 3_600


def ttl_seconds(until: datetime, now: datetime) -> int:
    """Counters outlive their window by a day, so late settlements still find them."""
    return max(1, math.ceil((until - now.astimezone(UTC)).total_seconds())) + 86_400


class Ledger(Protocol):
    """Where the budget and rate counters live; every step is atomic across replicas."""

    async def reserve(self, reservation: Reservation, limits: TeamLimits, now: datetime) -> Tally:
        """Check every limit and, if all pass, record the reservation, in one atomic step."""
        ...

    async def count_request(
        self, w: Window, requests_per_minute: int | None, now: datetime
    ) -> Count:
        """Count one request in the window's minute if the count stays within the limit (None:
        no limit), in one atomic step; past it, nothing is counted. A cache hit asks only this:
        it holds no money and no tokens, so the budget's holds and spend are not read."""
        ...

    async def settle(
        self, reservation: Reservation, cost_nanos: int, tokens: int, retry: bool = False
    ) -> int:
        """Replace a reservation by the actual cost and tokens; returns the spend after it. A
        ``retry`` of a settlement the store did not answer is applied only while the
        reservation's hold is in the ledger: the first attempt, had it run, removed it."""
        ...

    async def usage(self, w: Window) -> tuple[int, int]:
        """(spent, reserved) nano-dollars in a budget period, expired holds released first."""
        ...


class MemoryLedger:
    """The counters in this process, for a single replica; expiry follows the injected clock."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._counters: dict[str, tuple[float, dict[str, int]]] = {}
        self._clock = clock

    def _counter(self, key: str) -> dict[str, int]:
        item = self._counters.get(key)
        if item is None or item[0] <= self._clock():
            return {}
        return item[1]

    def _bump(self, key: str, field: str, delta: int, ttl: int) -> None:
        counter = self._counter(key)
        counter[field] = counter.get(field, 0) + delta
        self._counters[key] = (self._clock() + ttl, counter)

    async def reserve(self, reservation: Reservation, limits: TeamLimits, now: datetime) -> Tally:
        w = reservation.window
        budget = self._counter(w.budget_key)
        spent, reserved = budget.get("spent", 0), budget.get("reserved", 0)
        requests = self._counter(w.requests_key).get("n", 0)
        used = self._counter(w.tokens_key).get("n", 0)
        rpm = limits.requests_per_minute
        if rpm is not None and requests + 1 > rpm:
            return Tally("requests_per_minute", spent, requests, used)
        tpm, tokens = limits.tokens_per_minute, reservation.tokens
        if tpm is not None and tokens > 0 and used + tokens > tpm:
            return Tally("tokens_per_minute", spent, requests, used)
        cost, limit = reservation.cost_nanos, limits.budget_nanos
        if limit is not None and cost > 0 and spent + reserved + cost > limit:
            return Tally("budget", spent, requests, used)
        minute_ttl = ttl_seconds(w.minute_end, now)
        self._bump(w.requests_key, "n", 1, minute_ttl)
        if tokens > 0:
            self._bump(w.tokens_key, "n", tokens, minute_ttl)
        if cost > 0:
            self._bump(w.budget_key, "reserved", cost, ttl_seconds(w.period_end, now))
        return Tally("ok", spent, requests + 1, used + tokens)

    async def count_request(
        self, w: Window, requests_per_minute: int | None, now: datetime
    ) -> Count:
        requests = self._counter(w.requests_key).get("n", 0)
        tokens = self._counter(w.tokens_key).get("n", 0)
        if requests_per_minute is not None and requests + 1 > requests_per_minute:
            return Count(False, requests, tokens)
        self._bump(w.requests_key, "n", 1, ttl_seconds(w.minute_end, now))
        return Count(True, requests + 1, tokens)

    async def settle(
        self, reservation: Reservation, cost_nanos: int, tokens: int, retry: bool = False
    ) -> int:
        """``retry`` never happens here: this ledger always answers."""
        w = reservation.window
        budget = self._counter(w.budget_key)
        reserved = max(budget.get("reserved", 0), 0)
        budget["reserved"] = reserved - min(reservation.cost_nanos, reserved)  # as _SETTLE
        budget["spent"] = budget.get("spent", 0) + cost_nanos
        if w.budget_key not in self._counters:
            self._counters[w.budget_key] = (self._clock() + 86_400, budget)
        if reservation.tokens > 0:
            used = self._counter(w.tokens_key)
            used["n"] = used.get("n", 0) + tokens - reservation.tokens
        return budget["spent"]

    async def usage(self, w: Window) -> tuple[int, int]:
        budget = self._counter(w.budget_key)
        return budget.get("spent", 0), budget.get("reserved", 0)


def _take_reserved(budget: str, amount: str) -> str:
    """Lua that takes ``amount`` off the budget hash's reserved total, never below zero: a hash
    deleted since the reservation (a team's spend reset) no longer holds it."""
    return f"""
local reserved = math.max(tonumber(redis.call('HGET', {budget}, 'reserved') or '0'), 0)
redis.call('HINCRBY', {budget}, 'reserved', -math.min({amount}, reserved))
"""


def _release_expired_holds(budget: str, holds: str) -> str:
    """Lua that releases the reservations whose hold ran out, and sets ``now``: run first by each
    script that reads the reserved total, so neither an admission nor a report counts them. A
    reset deletes the budget hash and its holds together (README, "Budgets"); holds left by a
    reset that deleted the hash alone are dropped, and never take the reserved total below zero."""
    return f"""
local now = tonumber(redis.call('TIME')[1])
local expired = redis.call('ZRANGEBYSCORE', {holds}, '-inf', now)
if #expired > 0 then
  if redis.call('EXISTS', {budget}) == 1 then
    local freed = 0
    for _, entry in ipairs(expired) do freed = freed + tonumber(string.match(entry, ':(%d+)$')) end
    {_take_reserved(budget, "freed")}
  end
  redis.call('ZREMRANGEBYSCORE', {holds}, '-inf', now)
end
"""


# The current period's budget hash has no TTL: a store at its memory limit evicts with
# volatile-lru (ElastiCache's default), which only takes keys that have one, so the
# ledger is never evicted for the caches' sake. The period before's hash gets a day's TTL once
# this period's first reservation is made; a settlement of an ended period's request gives its
# hash one too.
_RESERVE = Script(
    _release_expired_holds("KEYS[1]", "KEYS[5]")
    + """
local budget_limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local tpm_limit, tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
local rpm_limit = tonumber(ARGV[5])
local minute_ttl, past_period_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local hold, hold_s = ARGV[8], tonumber(ARGV[9])
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local requests = tonumber(redis.call('GET', KEYS[3]) or '0')
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if rpm_limit >= 0 and requests + 1 > rpm_limit then
  return {'requests_per_minute', spent, requests, used}
end
if tpm_limit >= 0 and tokens > 0 and used + tokens > tpm_limit then
  return {'tokens_per_minute', spent, requests, used}
end
if budget_limit >= 0 and cost > 0 and spent + reserved + cost > budget_limit then
  return {'budget', spent, requests, used}
end
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], minute_ttl)
if tokens > 0 then
  redis.call('INCRBY', KEYS[2], tokens)
  redis.call('EXPIRE', KEYS[2], minute_ttl)
end
if cost > 0 then
  redis.call('HINCRBY', KEYS[1], 'reserved', cost)
  redis.call('ZADD', KEYS[5], now + hold_s, hold)
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[5])
  for _, past in ipairs({KEYS[4], KEYS[6]}) do
    if redis.call('TTL', past) == -1 then redis.call('EXPIRE', past, past_period_ttl) end
  end
end
return {'ok', spent, requests + 1, used + tokens}
"""
)

_COUNT_REQUEST = Script("""
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[1])
if limit >= 0 and requests + 1 > limit then return {0, requests, tokens} end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {1, requests + 1, tokens}
""")

_USAGE = Script(
    _release_expired_holds("KEYS[1]", "KEYS[2]")
    + "return redis.call('HMGET', KEYS[1], 'spent', 'reserved')"
)

_SETTLE = Script(f"""
local reserved_cost, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local reserved_tokens, tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
local period_end, past_period_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local held = redis.call('ZREM', KEYS[3], ARGV[7]) == 1  -- else a later reservation released it
if held then
  {_take_reserved("KEYS[1]", "reserved_cost")}
elseif ARGV[8] == '1' then  -- a retry whose first attempt ran (or whose hold ran out)
  return tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
end
local spent = redis.call('HINCRBY', KEYS[1], 'spent', cost)
if redis.call('TTL', KEYS[1]) == -1 and tonumber(redis.call('TIME')[1]) >= period_end then
  redis.call('EXPIRE', KEYS[1], past_period_ttl)
end
if reserved_tokens > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('INCRBY', KEYS[2], tokens - reserved_tokens)
end
return spent
""")


class RedisLedger:
    """The counters in Redis (or Valkey), shared by every replica; each step is one Lua script."""

    def __init__(self, client: RespClient) -> None:
        self._client = client

    async def reserve(self, reservation: Reservation, limits: TeamLimits, now: datetime) -> Tally:
        w = reservation.window

        def limit(value: int | None) -> int:
            return -1 if value is None else value

        try:
            reason, spent, requests, tokens = await self._client.run_script(
                _RESERVE,
                keys=[KEY_PREFIX + w.budget_key, KEY_PREFIX + w.tokens_key,
                      KEY_PREFIX + w.requests_key, KEY_PREFIX + w.previous_budget_key,
                      KEY_PREFIX + w.holds_key, KEY_PREFIX + w.previous_holds_key],
                args=[limit(limits.budget_nanos), reservation.cost_nanos,
                      limit(limits.tokens_per_minute), reservation.tokens,
                      limit(limits.requests_per_minute),
                      ttl_seconds(w.minute_end, now), PAST_PERIOD_TTL_S,
                      reservation.hold, RESERVATION_HOLD_S],
            )  # fmt: skip
        except RespError as exc:
            raise StoreUnavailable(f"redis budget reservation failed: {exc}") from exc
        return Tally(_reason(reason.decode()), int(spent), int(requests), int(tokens))

    async def count_request(
        self, w: Window, requests_per_minute: int | None, now: datetime
    ) -> Count:
        limit = -1 if requests_per_minute is None else requests_per_minute
        try:
            counted, requests, tokens = await self._client.run_script(
                _COUNT_REQUEST,
                keys=[KEY_PREFIX + w.requests_key, KEY_PREFIX + w.tokens_key],
                args=[limit, ttl_seconds(w.minute_end, now)],
            )
        except RespError as exc:
            raise StoreUnavailable(f"redis request count failed: {exc}") from exc
        return Count(counted == 1, int(requests), int(tokens))

    async def settle(
        self, reservation: Reservation, cost_nanos: int, tokens: int, retry: bool = False
    ) -> int:
        w = reservation.window
        try:
            spent = await self._client.run_script(
                _SETTLE,
                keys=[KEY_PREFIX + w.budget_key, KEY_PREFIX + w.tokens_key,
                      KEY_PREFIX + w.holds_key],
                args=[reservation.cost_nanos, cost_nanos, reservation.tokens, tokens,
                      int(w.period_end.timestamp()), PAST_PERIOD_TTL_S, reservation.hold,
                      int(retry)],
            )  # fmt: skip
        except RespError as exc:
            raise StoreUnavailable(f"redis budget settlement failed: {exc}") from exc
        return int(spent)

    async def usage(self, w: Window) -> tuple[int, int]:
        try:
            values = await self._client.run_script(
                _USAGE, keys=[KEY_PREFIX + w.budget_key, KEY_PREFIX + w.holds_key], args=[]
            )
        except RespError as exc:
            raise StoreUnavailable(f"redis budget read failed: {exc}") from exc
        return int(values[0] or 0), int(values[1] or 0)


def _reason(value: str) -> Reason:
    for reason in ("ok", "budget", "tokens_per_minute", "requests_per_minute"):
        if value == reason:
            return reason
    raise StoreUnavailable(f"the budget script answered an unknown reason {value!r}")


def team_limits(settings: GatewaySettings) -> dict[str, TeamLimits]:
    return {
        team: TeamLimits(
            budget_nanos=to_nanos(spec.limits.usd) if spec.limits.usd else None,
            period=spec.limits.period,
            tokens_per_minute=spec.limits.tokens_per_minute,
            requests_per_minute=spec.limits.requests_per_minute,
        )
        for team, spec in settings.teams.items()
    }


class BudgetRow(BaseModel):
    """One team's budget in its current period (GET /v1/budgets); money in USD. A team without
    any limit keeps no ledger, so its spend and reservations are null, not zero: its spend is in
    the metrics (``ai_cost_total``)."""

    team: str
    period: Period
    period_start: str
    period_end: str
    budget_usd: float | None
    spent_usd: float | None
    reserved_usd: float | None
    remaining_usd: float | None
    tokens_per_minute: int | None
    requests_per_minute: int | None


# The rejection reason of a request larger than a whole limit (its worst case costs more than
# the budget, or uses more tokens than a minute allows): no reset lets it through as sent.
TOO_LARGE = "too_large"


def rejection_reasons(limits: TeamLimits) -> tuple[str, ...]:
    """The ``reason`` labels a team's refusals can carry, by the limits it has."""
    reasons = [
        name
        for name, value in (
            ("budget", limits.budget_nanos),
            ("tokens_per_minute", limits.tokens_per_minute),
            ("requests_per_minute", limits.requests_per_minute),
        )
        if value is not None
    ]
    too_large = limits.budget_nanos is not None or limits.tokens_per_minute is not None
    return (*reasons, TOO_LARGE) if too_large else tuple(reasons)


@dataclass(frozen=True)
class Unsettled:
    """A settlement the store did not answer, kept for a retry."""

    team: str
    reservation: Reservation
    cost_nanos: int
    tokens: int


# Settlements kept while the store is down: about 200 bytes each, so at most ~20 MB; past it
# the oldest is dropped (its reservation is then released when its hold runs out).
UNSETTLED_MAX = 100_000


class Budgets:
    """The pipeline's budget stage: admit a worst case, settle the actual cost, report."""

    def __init__(
        self,
        limits: dict[str, TeamLimits],
        ledger: Ledger,
        metrics: GatewayMetrics,
        fail_open: bool,
    ) -> None:
        self._limits = limits
        self._ledger = ledger
        self._metrics = metrics
        self._fail_open = fail_open
        self._unsettled: deque[Unsettled] = deque(maxlen=UNSETTLED_MAX)
        metrics.budget_unsettled.set_function(lambda: len(self._unsettled))
        for team, team_limit in limits.items():
            if team_limit.budget_nanos is not None:
                usd = team_limit.budget_nanos / NANOS_PER_USD
                metrics.budget_limit.labels(team=team).set(usd)
                metrics.budget_remaining.labels(team=team).set(usd)
            # Each refusal's series exists from the start at 0: increase() cannot see a series
            # appear, so a team's first refusals on a pod never reached the alert or dashboard.
            for reason in rejection_reasons(team_limit):
                metrics.budget_rejections.labels(team=team, reason=reason)

    async def admit(
        self, team: str, worst_cost_usd: float, worst_tokens: int, now: datetime
    ) -> Admitted:
        """Reserve the worst case, or raise the refusal."""
        limits = self._limits[team]
        if not limits.any:
            return NOT_METERED
        w = window(team, limits.period, now)
        reservation = Reservation(w, to_nanos(worst_cost_usd, round_up=True), worst_tokens)
        try:
            tally = await self._ledger.reserve(reservation, limits, now)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return NOT_METERED
        self._metrics.store_up.set(1)
        self._publish_remaining(team, tally.spent)
        standing = rate_limit_state(limits, w, tally.requests, tally.tokens)
        admission = Admission(tally.reason, tally.spent, reservation)
        if not admission.admitted:
            self._refuse(team, limits, admission, worst_cost_usd, now, standing)
        return Admitted(reservation, standing)

    async def admit_free(self, team: str, now: datetime) -> RateLimitState | None:
        """Admit a request that costs nothing (a cache hit): it is checked against, and counted
        in, the team's requests-per-minute limit only; the minute's tokens are read for its
        rate-limit headers. Without a per-minute limit there is nothing to ask the ledger.
        Returns where the team then stands in its minute."""
        limits = self._limits[team]
        if limits.requests_per_minute is None and limits.tokens_per_minute is None:
            return None
        w = window(team, limits.period, now)
        try:
            count = await self._ledger.count_request(w, limits.requests_per_minute, now)
        except StoreUnavailable as exc:
            if limits.requests_per_minute is None:
                # Only the headers' standing was asked: a hit is never refused for it.
                self._metrics.store_failed("budget_reserve")
                log.warning("rate-limit standing unavailable, served without it: %s", exc)
                return None
            self._store_failed(exc)
            return None
        self._metrics.store_up.set(1)
        standing = rate_limit_state(limits, w, count.requests, count.tokens)
        if not count.counted:
            refused = Admission("requests_per_minute", 0, Reservation(w, 0, 0))
            self._refuse(team, limits, refused, 0.0, now, standing)
        return standing

    def _store_failed(self, exc: StoreUnavailable) -> None:
        """An admission the ledger did not answer: admitted without limits when budgets fail
        open, else refused with a 503."""
        self._metrics.store_failed("budget_reserve")
        if self._fail_open:
            log.warning("budget store unavailable, admitting without limits: %s", exc)
            return
        log.error("budget store unavailable, refusing: %s", exc)
        raise GatewayError(
            "unavailable",
            "Budgets cannot be checked because the gateway's store is unavailable.",
            retry_after=STORE_RETRY_AFTER_S,
        ) from exc

    def _refuse(
        self,
        team: str,
        limits: TeamLimits,
        admission: Admission,
        worst_cost_usd: float,
        now: datetime,
        standing: RateLimitState | None,
    ) -> NoReturn:
        refusal = _refusal(team, limits, admission, worst_cost_usd, now)
        refusal.rate_limits = standing
        # A request no reset lets through is not a spent budget (that alert is critical).
        counted = admission.reason if refusal.retry_after is not None else TOO_LARGE
        self._metrics.budget_rejections.labels(team=team, reason=counted).inc()
        raise refusal

    async def settle(
        self, team: str, reservation: Reservation, cost_usd: float, tokens: int
    ) -> None:
        unsettled = Unsettled(team, reservation, to_nanos(cost_usd), tokens)
        try:
            spent = await self._ledger.settle(reservation, unsettled.cost_nanos, tokens)
        except StoreUnavailable as exc:
            self._metrics.store_failed("budget_settle")
            log.warning("budget settlement failed, retried once the store answers: %s", exc)
            if reservation.cost_nanos > 0:  # only a reservation with a hold can be retried
                if len(self._unsettled) == UNSETTLED_MAX:
                    log.error("more than %d settlements wait: the oldest is dropped", UNSETTLED_MAX)
                    self._metrics.budget_settlements_dropped.inc()
                self._unsettled.append(unsettled)
            return
        self._publish_remaining(team, spent)

    async def retry_unsettled(self) -> None:
        """Settle, oldest first, what the store did not answer, until it fails again. The ledger
        applies a retry only while the reservation's hold is there, so a first attempt that did
        run is not counted twice; a cost retried after its hold ran out (an hour) is dropped."""
        while self._unsettled:
            item = self._unsettled[0]
            try:
                spent = await self._ledger.settle(
                    item.reservation, item.cost_nanos, item.tokens, retry=True
                )
            except StoreUnavailable:
                return
            self._unsettled.popleft()
            self._publish_remaining(item.team, spent)

    @property
    def unsettled(self) -> int:
        """How many settlements wait for the store."""
        return len(self._unsettled)

    def _publish_remaining(self, team: str, spent_nanos: int) -> None:
        limit = self._limits[team].budget_nanos
        if limit is not None:
            self._metrics.budget_remaining.labels(team=team).set(
                max(limit - spent_nanos, 0) / NANOS_PER_USD
            )

    async def refresh_remaining(self, now: datetime) -> None:
        """Publish every budgeted team's remaining budget from the ledger. A replica otherwise
        updates the gauge only when it serves the team: a new pod would show the whole limit,
        and a quiet team last period's figure."""
        for team, limits in self._limits.items():
            if limits.budget_nanos is not None:
                spent, _ = await self._ledger.usage(window(team, limits.period, now))
                self._publish_remaining(team, spent)

    async def report(self, teams: list[str], now: datetime) -> list[BudgetRow]:
        """Each team's period, spend, reservations and limits, for /v1/budgets."""
        rows = []
        for team in teams:
            limits = self._limits[team]
            w = window(team, limits.period, now)
            metered = limits.any
            spent, reserved = await self._ledger.usage(w) if metered else (0, 0)
            budget = limits.budget_nanos
            rows.append(
                BudgetRow(
                    team=team,
                    period=limits.period,
                    period_start=w.period_start.isoformat(),
                    period_end=w.period_end.isoformat(),
                    budget_usd=None if budget is None else budget / NANOS_PER_USD,
                    spent_usd=spent / NANOS_PER_USD if metered else None,
                    reserved_usd=reserved / NANOS_PER_USD if metered else None,
                    remaining_usd=None
                    if budget is None
                    else max(budget - spent, 0) / NANOS_PER_USD,
                    tokens_per_minute=limits.tokens_per_minute,
                    requests_per_minute=limits.requests_per_minute,
                )
            )
        return rows


STORE_RETRY_AFTER_S = 2
"""What a 503 for an unavailable store tells clients to wait: about a pod restart's time."""
PERIOD_ADJECTIVE = {"day": "daily", "month": "monthly"}


def dollars(amount: float) -> str:
    """A budget as its owner wrote it: cents at least, and every decimal up to the micro-dollar
    ($25.00, $0.10, $0.001); a smaller one in scientific notation, never rounded to $0.00."""
    if 0 < amount < 1e-6:
        return f"${amount:.3g}"
    whole, _, fraction = f"{amount:.6f}".rstrip("0").partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def _refusal(
    team: str, limits: TeamLimits, admission: Admission, worst_cost_usd: float, now: datetime
) -> GatewayError:
    """The 429 a refused admission becomes, with the seconds until its counter resets; or,
    for a request larger than the whole limit, without them: no reset lets it through."""
    retry = retry_after_seconds(admission, now)
    assert admission.reservation is not None
    worst_tokens = admission.reservation.tokens
    if admission.reason == "budget":
        budget = (limits.budget_nanos or 0) / NANOS_PER_USD
        if admission.reservation.cost_nanos > (limits.budget_nanos or 0):
            return GatewayError(
                "budget",
                f"Request too large for team {team!r}'s {PERIOD_ADJECTIVE[limits.period]} "
                f"budget of {dollars(budget)}: it may cost up to {dollars(worst_cost_usd)}. "
                "Lower max_tokens or shorten the prompt; retrying will not help.",
                retryable=False,
            )
        return GatewayError(
            "budget",
            f"Team {team!r} has used its {PERIOD_ADJECTIVE[limits.period]} budget of "
            f"{dollars(budget)} (spent "
            f"${admission.spent_nanos / NANOS_PER_USD:.4f}; this request may cost up to "
            f"${worst_cost_usd:.4f}). It resets in {retry} s.",
            retry_after=retry,
            # Hours or days away: an SDK that waits out Retry-After would block that long
            # (Anthropic's waits any length), so it is told not to retry and raises at once.
            retryable=False,
        )
    tokens = admission.reason == "tokens_per_minute"
    limit = limits.tokens_per_minute if tokens else limits.requests_per_minute
    if tokens and limit is not None and worst_tokens > limit:
        return GatewayError(
            "rate_limit",
            f"Request too large for team {team!r} on tokens per minute: limit {limit}, this "
            f"request may use {worst_tokens}. Lower max_tokens or shorten the prompt; retrying "
            "will not help.",
            retryable=False,
        )
    return GatewayError(
        "rate_limit",
        f"Rate limit reached for team {team!r}: {limit} {'tokens' if tokens else 'requests'} "
        "per minute"
        + (f" (this request may use {worst_tokens} tokens)" if tokens else "")
        + f". Retry in {retry} s.",
        retry_after=retry,
    )
