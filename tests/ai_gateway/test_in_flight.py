"""Identical requests in flight: one goes to the provider, its copies share its answer as it is
generated (in_flight.py), on both stores and over HTTP with the simulated latency on."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from ai_gateway.app import GatewayHTTP, create_app
from ai_gateway.cache import CachedCompletion, exact_key
from ai_gateway.domain import AUTO_MODEL, GatewayError
from ai_gateway.in_flight import Drawn, InFlight
from ai_gateway.simulator import LatencyPlan
from ai_gateway.store import RedisStore
from tests.ai_gateway.support import EXACT_ONLY, ask, budget_settings, sample

QUESTION = "How do I rotate my API key?"
KEY = {"authorization": "Bearer sk-demo-team-a"}
SETTLE_S = 0.05  # long enough for a waiting task to have run, were it free to


def drawn_answer(started: float = 0.0) -> Drawn:
    entry = CachedCompletion("gpt-4", "An answer.", 12, 3, "stop", cost_usd=0.001)
    return Drawn(entry, LatencyPlan(0.3, 0.01), started)


async def test_a_lead_is_held_once_per_key_and_shares_its_answer_once_drawn():
    in_flight = InFlight()
    lead = in_flight.lead("k")
    assert lead is not None and in_flight.lead("k") is None
    assert in_flight.lead("other") is not None
    follower = asyncio.create_task(in_flight.follow("k"))
    await asyncio.sleep(SETTLE_S)
    assert not follower.done()  # nothing drawn yet
    answer = drawn_answer()
    InFlight.draw(lead, answer)
    assert await follower is lead and lead.drawn is answer
    assert await in_flight.follow("k") is lead  # drawn: a later copy shares it at once
    assert lead.sharers == 2
    InFlight.unshare(lead)  # one copy left
    assert lead.sharers == 1
    in_flight.release(lead)
    assert await in_flight.follow("k") is None  # nobody answers it any more
    in_flight.release(lead)  # twice is harmless
    assert in_flight.lead("k") is not None


async def test_a_follower_waits_for_the_draw_within_the_grace_and_no_longer():
    in_flight = InFlight(grace_s=SETTLE_S)
    lead = in_flight.lead("slow")
    assert await in_flight.follow("slow") is None
    in_flight.release(None)
    assert in_flight.lead("slow") is None  # still held by the slow one
    assert lead is not None and lead.sharers == 0
    in_flight.release(lead)
    assert len(in_flight) == 0


async def test_a_lead_that_ends_or_is_withdrawn_without_an_answer_sends_its_followers_alone():
    in_flight = InFlight()
    lead = in_flight.lead("k")
    followers = [asyncio.create_task(in_flight.follow("k")) for _ in range(3)]
    await asyncio.sleep(SETTLE_S)
    in_flight.release(lead)
    assert await asyncio.gather(*followers) == [None] * 3
    cut = in_flight.lead("cut")
    InFlight.draw(cut, drawn_answer())
    InFlight.withdraw(cut)  # its client left before anyone shared it
    assert await in_flight.follow("cut") is None
    assert cut is not None and cut.sharers == 0


async def test_identical_requests_in_flight_pay_the_provider_once(store, make_gateway):
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION), "team-a")
    copies = [await gateway.begin(ask(QUESTION), "team-a") for _ in range(3)]
    served = [copy.completion for copy in copies]
    assert all(copy.settlement is None for copy in copies)  # hits: nothing to settle
    first = await gateway.finish(leader)
    assert [c.cache for c in served] == ["exact"] * 3
    assert {c.text for c in served} == {first.text}
    assert all(c.cost_usd == 0 and c.saved_usd == first.baseline_usd for c in served)
    # Each copy is delivered at the provider's pace, from as far as the leader's answer had got.
    assert {(c.latency.first_token_s, c.latency.per_token_s) for c in served} == {
        (first.latency.first_token_s, first.latency.per_token_s)
    }
    assert all(c.latency.joined_s >= 0 for c in served)
    m = gateway.meter.metrics
    assert sample(m, "ai_cache_misses_total", team="team-a") == 1
    assert sample(m, "ai_cache_hits_total", kind="exact", team="team-a") == 3
    assert sample(m, "ai_cache_coalesced_total", team="team-a") == 3
    assert len(gateway.in_flight) == 0


async def test_another_team_or_request_does_not_wait(make_gateway):
    gateway = make_gateway("optimized", **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION), "team-a")
    other_team = await asyncio.wait_for(gateway.begin(ask(QUESTION), "team-b"), 1)
    other_question = await asyncio.wait_for(gateway.begin(ask("Another one?"), "team-a"), 1)
    assert other_team.completion.cache == other_question.completion.cache == "miss"
    for answer in (leader, other_team, other_question):
        await gateway.finish(answer)
    assert len(gateway.in_flight) == 0


async def test_a_leader_whose_client_leaves_is_generated_whole_for_the_copies_sharing_it(
    make_gateway,
):
    """A gateway that tees one stream to several clients keeps reading it while any of them is
    left: the leader is billed, metered and cached whole, and a later copy finds the answer."""
    gateway = make_gateway("optimized", **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION), "team-a")
    copy = await gateway.begin(ask(QUESTION), "team-a")
    whole = leader.completion
    billed = await gateway.finish(leader, delivered=whole.generated[:3])
    assert (billed.completion_tokens, billed.cost_usd) == (whole.completion_tokens, whole.cost_usd)
    assert copy.completion.text == whole.text
    later = await gateway.begin(ask(QUESTION), "team-a")
    assert later.completion.cache == "exact"
    assert sample(gateway.meter.metrics, "ai_cache_misses_total", team="team-a") == 1


async def test_a_shared_answer_cut_at_its_leader_is_cached_only_when_whole(make_gateway):
    """The leader's client left while a copy reads the answer: the provider goes on, so the
    answer is settled and cached when it would be whole, not at once (a request then found it
    before it existed); meanwhile a new copy still shares it, from as far as it has got."""
    gateway = make_gateway("optimized", latency_scale=1, **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION, max_tokens=16), "team-a")
    await gateway.begin(ask(QUESTION, max_tokens=16), "team-a")
    whole = leader.completion
    finishing = asyncio.create_task(gateway.finish(leader, delivered=whole.generated[:3]))
    await asyncio.sleep(SETTLE_S)
    assert not finishing.done()  # the provider's stream runs on for the copy
    later = await gateway.begin(ask(QUESTION, max_tokens=16), "team-a")
    assert later.shared is not None and later.completion.latency.joined_s >= SETTLE_S
    billed = await finishing
    assert billed.completion_tokens == whole.completion_tokens
    assert len(gateway.in_flight) == 0
    cached = await gateway.begin(ask(QUESTION, max_tokens=16), "team-a")
    assert cached.shared is None and cached.completion.cache == "exact"


async def test_a_copy_refused_or_gone_stops_keeping_the_answer_whole(make_gateway):
    """A refused copy, or one whose client left, reads nothing: a leader cut short afterwards
    is billed as far as it was delivered, not whole."""
    settings = {**budget_settings(requests_per_minute=1), **EXACT_UNDER_LIMITS}
    limited = make_gateway("optimized", **settings)
    leader = await limited.begin(ask(QUESTION), "team-a")
    with pytest.raises(GatewayError):
        await limited.begin(ask(QUESTION), "team-a")
    assert leader.settlement.lead.sharers == 0
    cut = await limited.finish(leader, delivered=leader.completion.generated[:3])
    assert cut.completion_tokens < leader.completion.completion_tokens
    gateway = make_gateway("optimized", **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION), "team-a")
    copy = await gateway.begin(ask(QUESTION), "team-a")
    await gateway.finish(copy, delivered=copy.completion.generated[:3])  # its client left
    cut = await gateway.finish(leader, delivered=leader.completion.generated[:3])
    assert cut.completion_tokens < leader.completion.completion_tokens


async def test_a_copy_differing_only_in_unkeyed_whitespace_keeps_its_own_baseline(make_gateway):
    """Whitespace the exact key leaves out still changes what the request costs unoptimized:
    a copy is priced as itself, as the same request is as a later exact hit."""
    gateway = make_gateway("optimized", **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION), "team-a")
    padded = QUESTION + "   \n\n   "
    copy = await gateway.begin(ask(padded), "team-a")
    assert copy.shared is not None
    await gateway.finish(leader)
    later = await gateway.begin(ask(padded), "team-a")
    assert later.shared is None and later.completion.cache == "exact"
    assert copy.completion.baseline_usd == later.completion.baseline_usd
    assert copy.completion.baseline_usd != leader.completion.baseline_usd


async def test_a_leader_cut_short_with_no_copy_is_withdrawn_and_not_cached(make_gateway):
    """Its client left and nobody shares it: billed as far as it was delivered, and copies from
    then on, while it settles, go to the provider themselves."""
    gateway = make_gateway("optimized", **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION), "team-a")
    lead = leader.settlement.lead
    assert lead is not None and lead.drawn is not None
    billed = await gateway.finish(leader, delivered=leader.completion.generated[:3])
    assert billed.completion_tokens < leader.completion.completion_tokens
    assert lead.drawn is None and len(gateway.in_flight) == 0
    again = await gateway.begin(ask(QUESTION), "team-a")
    assert again.completion.cache == "miss"
    await gateway.finish(again)
    assert sample(gateway.meter.metrics, "ai_cache_coalesced_total", team="team-a") == 0


async def test_a_refused_or_semantically_answered_request_releases_its_lead(make_gateway):
    refusing = make_gateway(
        "optimized", **{**budget_settings(tokens_per_minute=10), "cache": {"exact": {}}}
    )
    with pytest.raises(GatewayError):
        await refusing.begin(ask("word " * 50), "team-a")
    assert len(refusing.in_flight) == 0
    semantic = make_gateway("optimized", routing={"enabled": False})
    await semantic.complete(ask(QUESTION), "team-a")
    rephrased = await semantic.begin(ask("How do I rotate my API key??"), "team-a")
    assert rephrased.completion.cache == "semantic"
    assert len(semantic.in_flight) == 0


def held_lead(gateway, request, team: str = "team-a"):
    """The lead of ``request``'s exact key, held as by a request still before its draw."""
    requested = gateway.catalog.requested(request)
    name = AUTO_MODEL if requested is None else requested.name
    lead = gateway.in_flight.lead(exact_key(team, request.canonical(name)))
    assert lead is not None
    return lead


async def test_a_copy_whose_leader_draws_nothing_in_time_goes_alone_and_leaves_the_lead(
    make_gateway,
):
    gateway = make_gateway("optimized", **EXACT_ONLY)
    gateway.in_flight = InFlight(grace_s=SETTLE_S)
    held = held_lead(gateway, ask(QUESTION))
    impatient = await gateway.begin(ask(QUESTION), "team-a")
    assert impatient.completion.cache == "miss" and impatient.settlement.lead is None
    await gateway.finish(impatient)
    assert len(gateway.in_flight) == 1  # still the held one's
    gateway.in_flight.release(held)
    assert len(gateway.in_flight) == 0


EXACT_UNDER_LIMITS = {"cache": {"exact": {"enabled": True}, "semantic": {"enabled": False}}}


async def test_a_copy_counts_against_the_minute_it_is_served_in(make_gateway, clock):
    """A copy that waited for its leader's answer across a minute's end is counted in the new
    minute, where a limit of one request a minute has room for it."""
    clock.now = (clock.now // 60 + 1) * 60 - 1  # one second before a minute ends
    settings = {**budget_settings(requests_per_minute=1), **EXACT_UNDER_LIMITS}
    gateway = make_gateway("optimized", **settings)
    await gateway.complete(ask("Another question?"), "team-a")  # this minute's one request
    held = held_lead(gateway, ask(QUESTION))
    copy = asyncio.create_task(gateway.begin(ask(QUESTION), "team-a"))
    await asyncio.sleep(SETTLE_S)
    clock.advance(2)
    InFlight.draw(held, drawn_answer(asyncio.get_running_loop().time()))
    assert (await copy).completion.text == "An answer."
    assert sample(gateway.meter.metrics, "ai_cache_coalesced_total", team="team-a") == 1
    gateway.in_flight.release(held)
    with pytest.raises(GatewayError) as refused:  # the copy took the new minute's request
        await gateway.begin(ask("A third question?"), "team-a")
    assert refused.value.kind == "rate_limit"


async def test_a_copy_refused_by_a_limit_is_no_wait_served(make_gateway):
    settings = {**budget_settings(requests_per_minute=1), **EXACT_UNDER_LIMITS}
    gateway = make_gateway("optimized", **settings)
    leader = await gateway.begin(ask(QUESTION), "team-a")
    with pytest.raises(GatewayError):
        await gateway.begin(ask(QUESTION), "team-a")
    await gateway.finish(leader)
    m = gateway.meter.metrics
    assert sample(m, "ai_cache_coalesced_total", team="team-a") == 0
    assert sample(m, "ai_cache_hits_total", kind="exact", team="team-a") == 0


def answer_text(response) -> str:
    """The assistant's text from a chat completion, whole or streamed."""
    if not response.headers["content-type"].startswith("text/event-stream"):
        return response.json()["choices"][0]["message"]["content"]
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: {")]
    deltas = (json.loads(event)["choices"] for event in events)
    return "".join(choices[0]["delta"].get("content") or "" for choices in deltas if choices)


@pytest.mark.parametrize("stream", [False, True])
async def test_over_http_a_copy_waits_for_the_providers_answer(app_client, stream):
    """A non-streamed answer is cached once the provider would have sent it, not before: a copy
    sent meanwhile waits for it, where it used to find the answer before it existed."""
    client = await app_client("optimized", latency_scale=1, **EXACT_ONLY)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    body |= {"max_tokens": 16, "stream": stream}
    first = asyncio.create_task(client.post("/v1/chat/completions", json=body, headers=KEY))
    await asyncio.sleep(SETTLE_S)
    sent = time.perf_counter()
    copy = await client.post("/v1/chat/completions", json=body, headers=KEY)
    # The provider's first token alone takes 320 ms for this model: the copy waited for it (a
    # lower bound, which a busy machine only makes longer).
    assert time.perf_counter() - sent > 0.2
    original = await first
    caches = (original.headers["x-gateway-cache"], copy.headers["x-gateway-cache"])
    assert caches == ("miss", "exact")
    assert answer_text(copy) == answer_text(original) != ""
    registry = client._transport.app.state.gateway.meter.metrics.registry
    assert registry.get_sample_value("ai_cache_coalesced_total", {"team": "team-a"}) == 1


async def test_a_request_cancelled_while_its_answer_is_generated_is_still_settled(
    app_client, flush_valkey, clock
):
    """A provider bills an abandoned non-streamed request in full: its answer is metered and
    cached when it is whole, and its lead released, though nobody reads it; until then a copy
    shares it. A second cancellation does not cut the settlement short."""
    store = RedisStore(flush_valkey, clock)
    client = await app_client("optimized", store, latency_scale=1, **EXACT_ONLY)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    body["max_tokens"] = 16
    abandoned = asyncio.create_task(client.post("/v1/chat/completions", json=body, headers=KEY))
    await asyncio.sleep(0.1)
    abandoned.cancel()
    await asyncio.sleep(0)  # its settlement is under way, on its own
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    gateway = client._transport.app.state.gateway
    assert len(gateway.in_flight) == 1  # its answer is not whole yet (320 ms to a first token)
    copy = await client.post("/v1/chat/completions", json=body, headers=KEY)
    assert copy.headers["x-gateway-cache"] == "exact"  # shared, at the provider's pace
    await asyncio.sleep(SETTLE_S)  # the settlement, due with the copy's answer, goes on alone
    assert len(gateway.in_flight) == 0
    registry = gateway.meter.metrics.registry
    assert registry.get_sample_value("ai_cache_misses_total", {"team": "team-a"}) == 1
    assert registry.get_sample_value("ai_cache_coalesced_total", {"team": "team-a"}) == 1
    again = await client.post("/v1/chat/completions", json=body, headers=KEY)
    assert again.headers["x-gateway-cache"] == "exact"
    assert registry.get_sample_value("ai_cache_coalesced_total", {"team": "team-a"}) == 1


async def test_a_stream_whose_response_cannot_be_built_releases_its_lead(app_client, monkeypatch):
    """Its stream never starts, so nothing else would settle it: the next copy must not wait."""
    client = await app_client("optimized", **EXACT_ONLY)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    with monkeypatch.context() as patch:
        patch.setattr(GatewayHTTP, "_headers", lambda *_: 1 / 0)
        broken = await client.post(
            "/v1/chat/completions", json=body | {"stream": True}, headers=KEY
        )
    assert broken.status_code == 500 and broken.json()["error"]["type"] == "server_error"
    gateway = client._transport.app.state.gateway
    assert len(gateway.in_flight) == 0
    assert gateway.budgets.unsettled == 0
    again = await asyncio.wait_for(client.post("/v1/chat/completions", json=body, headers=KEY), 2)
    assert again.headers["x-gateway-cache"] == "miss"  # the broken one was not cached


async def test_a_cancelled_requests_failed_settlement_is_logged(app_client, monkeypatch, caplog):
    client = await app_client("optimized", latency_scale=1, **EXACT_ONLY)
    gateway = client._transport.app.state.gateway

    async def failing(answer, delivered=None):
        raise RuntimeError("the ledger did not answer")

    monkeypatch.setattr(gateway, "finish", failing)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    abandoned = asyncio.create_task(client.post("/v1/chat/completions", json=body, headers=KEY))
    await asyncio.sleep(0.1)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    await asyncio.sleep(0)
    assert "settling an answer whose client left failed" in caplog.text
    assert "the ledger did not answer" in caplog.text


async def test_a_stream_whose_client_left_before_its_first_byte_is_settled(app_client):
    """Starlette ends a response whose client is gone before the body's first step, so the
    stream's own settlement never ran: its lead stayed held, and the request in flight."""
    client = await app_client("optimized", **EXACT_ONLY)
    app = client._transport.app
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    messages = [{"type": "http.request", "body": json.dumps(body | {"stream": True}).encode()}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        await asyncio.sleep(0)  # the client is gone: the disconnect is heard before the body

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"",
        "query_string": b"", "root_path": "", "server": ("gateway", 80), "client": None,
        "headers": [(b"authorization", KEY["authorization"].encode()),
                    (b"content-type", b"application/json")],
    }  # fmt: skip
    await app(scope, receive, send)
    gateway = app.state.gateway
    registry = gateway.meter.metrics.registry
    assert len(gateway.in_flight) == 0
    assert registry.get_sample_value("ai_active_requests") == 0
    assert registry.get_sample_value("ai_streams_aborted_total", {"api": "openai"}) == 1
    again = await asyncio.wait_for(client.post("/v1/chat/completions", json=body, headers=KEY), 2)
    assert again.headers["x-gateway-cache"] == "miss"  # nothing was delivered, so nothing cached


async def test_shutdown_waits_for_a_cancelled_requests_settlement(make_gateway):
    """A cancelled request's settlement waits for its answer to be whole: a shutdown meanwhile
    waits for it too, or its cost would never be recorded."""
    gateway = make_gateway("optimized", latency_scale=1, **EXACT_ONLY)
    app = create_app(gateway)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
    body["max_tokens"] = 16
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            abandoned = asyncio.create_task(
                client.post("/v1/chat/completions", json=body, headers=KEY)
            )
            await asyncio.sleep(0.1)
            abandoned.cancel()
            await asyncio.sleep(0)
            abandoned.cancel()  # the request goes; its settlement waits for the answer
            with pytest.raises(asyncio.CancelledError):
                await abandoned
            assert sample(gateway.meter.metrics, "ai_cache_misses_total", team="team-a") == 0
    assert sample(gateway.meter.metrics, "ai_cache_misses_total", team="team-a") == 1
    assert len(gateway.in_flight) == 0


async def test_a_cut_leaders_settlement_survives_its_callers_cancellation(make_gateway):
    """The leader's settlement waits for the answer to be whole: a caller cancelled meanwhile
    (a server's shutdown timeout) left the lead registered for good, its answer never metered
    nor cached, and every later copy sharing it."""
    gateway = make_gateway("optimized", latency_scale=1, **EXACT_ONLY)
    leader = await gateway.begin(ask(QUESTION, max_tokens=16), "team-a")
    await gateway.begin(ask(QUESTION, max_tokens=16), "team-a")
    finishing = asyncio.create_task(gateway.finish(leader, delivered="cut"))
    await asyncio.sleep(SETTLE_S)
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    lead = leader.settlement.lead
    await asyncio.sleep(lead.drawn.due - asyncio.get_running_loop().time() + SETTLE_S)
    assert len(gateway.in_flight) == 0
    assert sample(gateway.meter.metrics, "ai_cache_misses_total", team="team-a") == 1
    cached = await gateway.begin(ask(QUESTION, max_tokens=16), "team-a")
    assert cached.shared is None and cached.completion.cache == "exact"


async def test_a_copy_refused_while_priced_stops_sharing(make_gateway):
    """A copy whose whitespace the key leaves out is priced as itself, and its own prompt may
    overflow the model's window: refused, it reads nothing."""
    gateway = make_gateway("optimized", **EXACT_ONLY)
    long = "word " * 8166  # 8,174 tokens with its cap of 16: two short of gpt-4's window
    leader = await gateway.begin(ask(long, max_tokens=16), "team-a")
    with pytest.raises(GatewayError) as refused:
        await gateway.begin(ask(long + " \n" * 8, max_tokens=16), "team-a")
    assert refused.value.code == "context_length_exceeded"
    assert leader.settlement.lead.sharers == 0


async def test_a_copy_that_waited_in_vain_counts_in_the_minute_it_goes_on(make_gateway, clock):
    """A copy whose leader drew nothing within the grace asks the provider itself, counted in
    the minute it does, not the one it arrived in."""
    clock.now = (clock.now // 60 + 1) * 60 - 1  # one second before a minute ends
    settings = {**budget_settings(requests_per_minute=1), **EXACT_UNDER_LIMITS}
    gateway = make_gateway("optimized", **settings)
    gateway.in_flight = InFlight(grace_s=2 * SETTLE_S)
    await gateway.complete(ask("Another question?"), "team-a")  # this minute's one request
    held = held_lead(gateway, ask(QUESTION))
    copy = asyncio.create_task(gateway.begin(ask(QUESTION), "team-a"))
    await asyncio.sleep(SETTLE_S)
    clock.advance(2)
    alone = await copy
    assert alone.completion.cache == "miss"  # admitted in the new minute
    await gateway.finish(alone)
    gateway.in_flight.release(held)
