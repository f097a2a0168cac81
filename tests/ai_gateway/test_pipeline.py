"""The pipeline without HTTP: caches, routing, budgets and metering in order, on both stores."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import socket
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from ai_gateway import pipeline
from ai_gateway.adapters.openai import OpenAIAdapter
from ai_gateway.budgets import to_nanos
from ai_gateway.cache import CachedCompletion, exact_key
from ai_gateway.domain import ChatRequest, GatewayError
from ai_gateway.embeddings import LEXICAL_MAX_CHARS, Model2VecEmbedder
from ai_gateway.pipeline import Gateway
from ai_gateway.router import default_router
from ai_gateway.semantic import SNAPSHOT, SNAPSHOT_MARK, SnapshotPolicy
from ai_gateway.store import MemoryStore, RedisStore
from ai_gateway.tokens import PromptMessage
from ai_gateway.wiring import build_gateway
from tests.ai_gateway.reliability_support import persistent_valkey
from tests.ai_gateway.support import EXACT_ONLY, ask, sample, settings_for


def test_complete_reads_top_to_bottom_in_under_60_lines():
    source = textwrap.dedent(inspect.getsource(Gateway.complete))
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.AsyncFunctionDef)
    assert function.end_lineno is not None and function.end_lineno - function.lineno + 1 < 60


async def test_exact_cache_hit_costs_nothing_and_counts_the_saving(store, make_gateway):
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    first = await gateway.complete(ask("How do I rotate my API key?"), "team-a")
    second = await gateway.complete(ask("How do I rotate my API key?  "), "team-a")
    assert (first.cache, second.cache) == ("miss", "exact")
    assert second.cost_usd == 0.0
    assert first.baseline_usd == first.cost_usd  # unrouted: the baseline is what was paid
    assert second.saved_usd == second.baseline_usd  # a hit saves this request's baseline
    assert second.text == first.text
    m = gateway.meter.metrics
    assert sample(m, "ai_cache_hits_total", kind="exact", team="team-a") == 1
    assert sample(m, "ai_cache_misses_total", team="team-a") == 1
    assert sample(m, "ai_cost_saved_total", reason="cache", team="team-a") == pytest.approx(
        second.saved_usd
    )
    billed = sum(
        sample(m, "ai_cost_total", type=kind, model="gpt-4", team="team-a")
        for kind in ("input", "output")
    )
    assert billed == pytest.approx(first.cost_usd)


async def test_an_exact_hit_reuses_its_entrys_baseline_while_the_prices_hold(
    store, make_gateway, monkeypatch
):
    """The same request costs the same unoptimized: the miss's baseline is stored with its exact
    entry, and a hit does not count the prompt and draw the answer's length again (an eighth of
    a hit's CPU). An entry whose baseline model or prices have changed since is priced anew."""
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    question = ask("How do I rotate my API key?")
    first = await gateway.complete(question, "team-a")
    priced: list[str] = []
    baseline_cost = gateway.catalog.baseline_cost

    def counted(requested, request, tokens):
        priced.append(request.model)
        return baseline_cost(requested, request, tokens)

    monkeypatch.setattr(gateway.catalog, "baseline_cost", counted)
    hit = await gateway.complete(question, "team-a")
    assert (hit.cache, hit.saved_usd, priced) == ("exact", first.baseline_usd, [])
    key = exact_key("team-a", question.canonical("gpt-4"))
    stored = CachedCompletion.from_json(await store.get(key))
    expected_of = gateway.catalog.baseline_of(gateway.catalog.requested(question))
    assert (stored.baseline_usd, stored.baseline_of) == (first.baseline_usd, expected_of)
    await store.set(key, replace(stored, baseline_usd=99.0, baseline_of="gpt-4:old").to_json(), 60)
    fresh = make_gateway("optimized", store, **EXACT_ONLY)  # no kept copy of the entry
    monkeypatch.setattr(fresh.catalog, "baseline_cost", counted)
    repriced = await fresh.complete(question, "team-a")
    assert (repriced.cache, repriced.saved_usd, priced) == ("exact", first.baseline_usd, ["gpt-4"])


async def test_a_hit_whose_request_the_key_trimmed_is_priced_as_sent(store, make_gateway):
    """The key trims each message's surrounding whitespace, which the providers bill: a padded
    request shares its key with the plain one but not its baseline, nor its fit in the window."""
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    plain = await gateway.complete(ask("How do I rotate my API key?"), "team-a")
    padded = ask("How do I rotate my API key?" + " \n" * 3000)
    hit = await gateway.complete(padded, "team-a")
    assert hit.cache == "exact" and hit.saved_usd > plain.baseline_usd * 2
    fresh = make_gateway("optimized", MemoryStore(), **EXACT_ONLY)
    assert hit.saved_usd == (await fresh.complete(padded, "team-a")).baseline_usd
    with pytest.raises(GatewayError) as too_long:  # gpt-4's 8,192 tokens: refused, not served
        await gateway.complete(ask("How do I rotate my API key?" + " \n" * 20_000), "team-a")
    assert too_long.value.code == "context_length_exceeded"


async def test_a_padded_requests_baseline_is_not_kept_for_the_plain_one(store, make_gateway):
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    await gateway.complete(ask("  Where is my parcel?\r\n"), "team-a")
    hit = await gateway.complete(ask("Where is my parcel?"), "team-a")
    fresh = make_gateway("optimized", MemoryStore(), **EXACT_ONLY)
    plain = await fresh.complete(ask("Where is my parcel?"), "team-a")
    assert (hit.cache, hit.saved_usd) == ("exact", plain.baseline_usd)


async def test_exact_cache_is_scoped_by_team_and_parameters(store, make_gateway):
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    await gateway.complete(ask("Summarise the outage", temperature=0.2), "team-a")
    other_team = await gateway.complete(ask("Summarise the outage", temperature=0.2), "team-b")
    other_temperature = await gateway.complete(
        ask("Summarise the outage", temperature=0.9), "team-a"
    )
    other_model = await gateway.complete(
        ask("Summarise the outage", model="gpt-4o", temperature=0.2), "team-a"
    )
    assert {other_team.cache, other_temperature.cache, other_model.cache} == {"miss"}


@pytest.mark.parametrize(
    "changed",
    [{"max_tokens": 3}, {"top_p": 0.5}, {"stop": ("END",)}, {"seed": 9}],
    ids=["max_tokens", "top_p", "stop", "seed"],
)
async def test_every_answer_changing_parameter_splits_the_exact_cache(store, make_gateway, changed):
    """Each of them changes the answer: dropping one from the key served the other's answer as
    an exact hit. The same request again is still a hit."""
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    base = {"max_tokens": 64, "seed": 1}
    await gateway.complete(ask("Summarise the outage", **base), "team-a")
    varied = await gateway.complete(ask("Summarise the outage", **{**base, **changed}), "team-a")
    assert varied.cache == "miss"
    again = await gateway.complete(ask("Summarise the outage", **{**base, **changed}), "team-a")
    assert again.cache == "exact"


async def test_exact_entries_expire_with_the_clock(make_gateway, clock):
    gateway = make_gateway(
        "optimized",
        routing={"enabled": False},
        cache={"semantic": {"enabled": False}, "exact": {"ttl_seconds": 60}},
    )
    await gateway.complete(ask("Expire me"), "team-a")
    clock.advance(59)
    assert (await gateway.complete(ask("Expire me"), "team-a")).cache == "exact"
    clock.advance(2)
    assert (await gateway.complete(ask("Expire me"), "team-a")).cache == "miss"


async def test_streaming_flag_does_not_split_the_cache(store, make_gateway):
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    await gateway.complete(ask("Explain NAT costs", stream=False), "team-a")
    streamed = await gateway.complete(ask("Explain NAT costs", stream=True), "team-a")
    assert streamed.cache == "exact"


async def test_semantic_hit_reports_its_similarity_and_label(make_gateway):
    gateway = make_gateway("optimized", routing={"enabled": False})
    await gateway.complete(ask("How do I cancel my order?"), "team-a", label="cancel-order")
    hit = await gateway.complete(ask("hi, how can I cancel my order please"), "team-a")
    assert hit.cache == "semantic"
    assert hit.similarity is not None and hit.similarity >= 0.6
    assert hit.cached_label == "cancel-order"
    assert hit.cost_usd == 0.0


async def test_a_turn_longer_than_the_embedder_reads_is_exact_cached_only(make_gateway):
    gateway = make_gateway("optimized", routing={"enabled": False})
    head = "Summarise this incident report for the on-call channel. " * 60
    long_prompt = head + "The database failover took 14 minutes."
    assert len(long_prompt) > LEXICAL_MAX_CHARS
    first = await gateway.complete(ask(long_prompt), "team-a")
    again = await gateway.complete(ask(long_prompt), "team-a")
    rephrased = await gateway.complete(ask(long_prompt.lower()), "team-a")
    assert [first.cache, again.cache, rephrased.cache] == ["miss", "exact", "miss"]
    assert gateway.semantic is not None and gateway.semantic.size == 0
    assert sample(gateway.meter.metrics, "ai_semantic_skips_total", reason="too long") == 2
    await gateway.complete(ask("\u200b"), "team-a")
    assert sample(gateway.meter.metrics, "ai_semantic_skips_total", reason="no content") == 1


async def test_long_prompts_sharing_the_embedders_window_are_not_one_semantic_entry():
    """model2vec reads 512 tokens: past them two prompts have one vector. Without the guard,
    the second was served the first one's answer."""
    model = os.environ.get("GATEWAY_EMBEDDING_MODEL")
    if not model:
        pytest.skip("GATEWAY_EMBEDDING_MODEL names no model2vec model")
    settings = settings_for(
        cache={
            "exact": {"enabled": False},
            "semantic": {"embedder": "model2vec", "model": model, "verify": False},
        },
        routing={"enabled": False},
    )
    gateway = build_gateway(settings)
    assert gateway.embedder is not None
    head = "Our checkout service logs every payment attempt with its status. " * 60
    first, second = head + "Why did refunds fail?", head + "How do I rotate the API keys?"
    assert np.array_equal(gateway.embedder.embed(first), gateway.embedder.embed(second))
    await gateway.complete(ask(first), "team-a")
    answer = await gateway.complete(ask(second), "team-a")
    assert answer.cache == "miss"


NO_EXACT = {"exact": {"enabled": False}}


async def test_a_request_that_is_not_routed_is_answered_by_its_own_model_only(make_gateway):
    """gpt-4o and claude-opus-4-5 share the complex tier; with routing off, a request named one
    of them never gets the other's answer, which would come from another provider."""
    gateway = make_gateway("optimized", routing={"enabled": False}, cache=NO_EXACT)
    await gateway.complete(ask("How do I cancel my order?", model="gpt-4o"), "team-a")
    other = await gateway.complete(
        ask("How do I cancel my order?", model="claude-opus-4-5"), "team-a"
    )
    same = await gateway.complete(ask("how can I cancel my order", model="gpt-4o"), "team-a")
    assert (other.cache, other.model.name) == ("miss", "claude-opus-4-5")
    assert (same.cache, same.model.name) == ("semantic", "gpt-4o")


async def test_a_routed_request_gets_only_answers_its_router_could_have_served(make_gateway):
    """A team that routes every request shares the tier's scope, but a request for one model is
    served only by it or a routing tier's cheaper model: their answers serve it, and another
    model's of the tier (another provider's, a pricier one) never does."""
    gateway = make_gateway("optimized", cache=NO_EXACT)
    assert gateway.settings.teams["team-a"].routing == "all"
    tier_models = set(gateway.settings.routing.tiers.values())
    routed = await gateway.complete(ask("How do I cancel my order?", model="gpt-4o"), "team-a")
    assert routed.model.name in tier_models
    other = await gateway.complete(
        ask("How do I cancel my order?", model="claude-opus-4-5"), "team-a"
    )
    assert (other.cache, other.model.name) == ("semantic", routed.model.name)
    # claude-haiku-4-5 and gpt-5.4-nano share the simple tier; no tier model is cheaper than
    # the nano, so the haiku's answer (another provider's, four times the price) never serves it.
    question = "Prove that the reconciliation of our ledger is idempotent, step by step."
    kept = await gateway.complete(ask(question, model="claude-haiku-4-5"), "team-a")
    assert (kept.cache, kept.model.name) == ("miss", "claude-haiku-4-5")
    nano = await gateway.complete(ask(question, model="gpt-5.4-nano"), "team-a")
    assert (nano.cache, nano.model.name) == ("miss", "gpt-5.4-nano")
    assert sample(gateway.meter.metrics, "ai_semantic_refusals_total", reason="model") == 1


def booked(tool: str, date: str) -> ChatRequest:
    """A conversation whose earlier turns differ only in what the assistant called."""
    call = {"id": "call_1", "type": "function",
            "function": {"name": tool, "arguments": f'{{"date": "{date}"}}'}}  # fmt: skip
    return OpenAIAdapter().parse({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Book my trip."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        {"role": "user", "content": "What exactly did you just book, and for which date?"},
    ]})  # fmt: skip


async def test_earlier_tool_calls_keep_conversations_apart_in_both_caches(make_gateway):
    """They are context that changes the answer: the hotel booking got the flight's answer."""
    gateway = make_gateway("optimized", routing={"enabled": False})
    first = await gateway.complete(booked("book_flight", "2026-01-05"), "team-a")
    again = await gateway.complete(booked("book_flight", "2026-01-05"), "team-a")
    other = await gateway.complete(booked("book_hotel", "2026-03-09"), "team-a")
    assert (first.cache, again.cache, other.cache) == ("miss", "exact", "miss")


async def test_another_users_question_is_not_a_semantic_hit(make_gateway):
    """The exact key had the last message's name; the semantic scope did not."""
    gateway = make_gateway("optimized", routing={"enabled": False}, cache=NO_EXACT)

    def balance(user: str) -> ChatRequest:
        question = PromptMessage("user", "What is my current account balance?", user)
        return ChatRequest("gpt-4o", (question,))

    assert (await gateway.complete(balance("alice"), "team-a")).cache == "miss"
    assert (await gateway.complete(balance("bob"), "team-a")).cache == "miss"
    assert (await gateway.complete(balance("alice"), "team-a")).cache == "semantic"


async def test_cache_series_exist_at_zero_from_the_start(make_gateway):
    """rate() cannot see a series appear: the hit-ratio alert could not fire before a pod's
    first hit, and a hit mid-window read as a ratio of 0."""
    m = make_gateway("optimized").meter.metrics
    for team in ("team-a", "team-b"):
        assert m.registry.get_sample_value("ai_cache_misses_total", {"team": team}) == 0.0
        for kind in ("exact", "semantic"):
            labels = {"kind": kind, "team": team}
            assert m.registry.get_sample_value("ai_cache_hits_total", labels) == 0.0
    plain = make_gateway("unoptimized").meter.metrics
    assert plain.registry.get_sample_value("ai_cache_misses_total", {"team": "team-a"}) is None


async def test_savings_and_answers_series_exist_at_zero_from_the_start(make_gateway):
    """The savings panel reads increase(ai_cost_saved_total): each pod's first saving by cache
    or routing was lost. Only the reasons a profile can save by are made."""
    m = make_gateway("optimized").meter.metrics
    for reason in ("cache", "routing"):
        labels = {"reason": reason, "team": "team-b"}
        assert m.registry.get_sample_value("ai_cost_saved_total", labels) == 0.0
    for api in ("openai", "anthropic"):
        for status in ("200", "500", "503"):  # the server-error alert's numerator too
            labels = {"api": api, "status": status}
            assert m.registry.get_sample_value("ai_requests_total", labels) == 0.0
    plain = make_gateway("unoptimized").meter.metrics
    labels = {"reason": "cache", "team": "team-a"}
    assert plain.registry.get_sample_value("ai_cost_saved_total", labels) is None
    answers = {"api": "openai", "status": "200"}
    assert plain.registry.get_sample_value("ai_requests_total", answers) == 0.0


async def test_unoptimized_profile_never_caches(store, make_gateway):
    gateway = make_gateway("unoptimized", store)
    results = [await gateway.complete(ask("Same question"), "team-a") for _ in range(3)]
    assert [r.cache for r in results] == ["miss"] * 3
    m = gateway.meter.metrics
    assert sample(m, "ai_cache_misses_total", team="team-a") == 0
    billed = sum(
        sample(m, "ai_cost_total", type=kind, model="gpt-4", team="team-a")
        for kind in ("input", "output")
    )
    assert billed == pytest.approx(sum(r.cost_usd for r in results))


async def test_tokens_metric_counts_billed_tokens(store, make_gateway):
    gateway = make_gateway("optimized", store, **EXACT_ONLY)
    miss = await gateway.complete(ask("Count me", model="gpt-4o-mini"), "team-b")
    await gateway.complete(ask("Count me", model="gpt-4o-mini"), "team-b")
    labels = {"model": "gpt-4o-mini", "team": "team-b"}
    m = gateway.meter.metrics
    assert sample(m, "ai_tokens_total", type="input", **labels) == miss.prompt_tokens
    assert sample(m, "ai_tokens_total", type="output", **labels) == miss.completion_tokens


async def test_auto_is_routed_and_the_saving_is_against_the_complex_tier(make_gateway):
    gateway = make_gateway("optimized", cache={"exact": {"enabled": False},
                                               "semantic": {"enabled": False}})  # fmt: skip
    simple = await gateway.complete(ask("What is the capital of France?", model="auto"), "team-a")
    assert simple.route is not None and simple.routed_from == "auto"
    assert simple.model.name == gateway.settings.routing.tiers[simple.route.tier]
    assert simple.saved_usd == pytest.approx(max(simple.baseline_usd - simple.cost_usd, 0.0))
    m = gateway.meter.metrics
    assert sample(m, "ai_routed_requests_total", requested="auto", served=simple.model.name) == 1


async def test_named_model_is_not_routed_for_an_auto_only_team(make_gateway):
    gateway = make_gateway("optimized", **EXACT_ONLY)
    served = await gateway.complete(ask("What is the capital of France?"), "team-a")
    assert served.model.name == "gpt-4" and served.route is None and served.routed_from is None


async def test_cache_hits_consume_no_budget(make_gateway):
    gateway = make_gateway(
        "optimized",
        **EXACT_ONLY,
        teams={"team-a": {"keys": ["sk-demo-team-a"], "limits": {"usd": 0.01}}},
    )
    first = await gateway.complete(ask("Repeat me", max_tokens=60), "team-a")
    assert first.cache == "miss"
    refused = None
    for i in range(50):
        try:
            await gateway.complete(ask(f"fresh prompt {i}", max_tokens=60), "team-a")
        except GatewayError as error:
            refused = error
            break
    assert refused is not None and refused.kind == "budget"
    assert refused.baseline_usd is not None and refused.baseline_usd > 0
    assert (await gateway.complete(ask("Repeat me", max_tokens=60), "team-a")).cache == "exact"


@pytest.mark.parametrize("ttl", ["5m", "1h"])
async def test_admission_reserves_the_prompt_cache_write_surcharge(make_gateway, ttl):
    """Anthropic bills a prompt-cache write at 1.25x the input price, 2x for a 1-hour entry: the
    reservation covers it, so an answer never settles for more than its team had reserved."""
    limits = {"usd": 100.0}
    gateway = make_gateway(
        "optimized", **EXACT_ONLY, teams={"team-a": {"keys": ["sk-demo-team-a"], "limits": limits}}
    )
    handbook = " ".join(["cost", "team", "budget", "report"] * 400)
    request = ChatRequest(
        model="claude-sonnet-4-6",
        messages=(
            PromptMessage("system", handbook, cache_mark=ttl),
            PromptMessage("user", "Where is my order?"),
        ),
        max_tokens=5,
    )
    answer = await gateway.begin(request, "team-a")
    assert answer.completion.cache_write_tokens > 0
    assert answer.completion.cache_write_1h_tokens == (
        answer.completion.cache_write_tokens if ttl == "1h" else 0
    )
    assert answer.settlement is not None and answer.settlement.reservation is not None
    assert answer.settlement.reservation.cost_nanos >= to_nanos(answer.completion.cost_usd)
    await gateway.finish(answer)


async def test_a_cut_answer_keeps_its_prompt_billed_as_the_prompt_cache_billed_it(make_gateway):
    """A client that disconnects pays for the prompt as written to the provider's cache (a 1-hour
    write at 2x input) and the tokens generated so far, as the metrics count them."""
    gateway = make_gateway("optimized", **EXACT_ONLY)
    handbook = " ".join(["cost", "team", "budget", "report"] * 400)
    request = ChatRequest(
        model="claude-sonnet-4-6",
        messages=(
            PromptMessage("system", handbook, cache_mark="1h"),
            PromptMessage("user", "Where is my order?"),
        ),
        max_tokens=200,
    )
    answer = await gateway.begin(request, "team-a")
    whole = answer.completion
    cut = await gateway.finish(answer, delivered=whole.text[:20])
    assert cut.cache_write_1h_tokens == whole.cache_write_1h_tokens > 0
    assert cut.completion_tokens < whole.completion_tokens
    card = whole.model
    prompt_only = card.cost_usd(
        cut.prompt_tokens, 0, 0, cut.cache_write_tokens, cut.cache_write_1h_tokens
    )
    assert cut.cost_usd == pytest.approx(prompt_only + card.cost_usd(0, cut.completion_tokens))
    assert cut.cost_usd > card.cost_usd(cut.prompt_tokens, cut.completion_tokens)


async def test_a_tool_call_cut_by_a_disconnect_bills_its_delivered_arguments_and_is_not_cached(
    make_gateway,
):
    """A stream of a forced call's arguments, cut short: what was delivered is billed, the call
    keeps its name and the delivered arguments, and nothing is cached."""
    gateway = make_gateway("optimized", **EXACT_ONLY)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": schema}}
    request = OpenAIAdapter().parse({
        "model": "gpt-4o", "tools": [tool], "tool_choice": "required", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Weather in Oslo?"}]})  # fmt: skip
    answer = await gateway.begin(request, "team-a")
    whole = answer.completion
    assert whole.tool_call is not None and whole.text == "" and whole.finish_reason == "tool_calls"
    cut = await gateway.finish(answer, delivered=whole.tool_call.arguments[:5])
    assert cut.tool_call is not None and cut.tool_call.arguments == whole.tool_call.arguments[:5]
    assert (cut.finish_reason, cut.text) == ("length", "")
    assert cut.completion_tokens < whole.completion_tokens
    again = await gateway.begin(request, "team-a")
    assert again.completion.cache == "miss"  # a partial call is never cached
    await gateway.finish(again)
    hit = await gateway.begin(request, "team-a")
    assert hit.completion.cache == "exact" and hit.completion.tool_call == whole.tool_call


class CountingEmbedder(Model2VecEmbedder):
    """The router's own model2vec model, counting what it embeds."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.texts: list[str] = []

    def embed(self, text: str) -> np.ndarray:
        self.texts.append(text)
        return super().embed(text)

    def embed_whole(self, text: str) -> np.ndarray | None:
        self.texts.append(text)
        return super().embed_whole(text)


async def test_the_semantic_cache_and_the_router_share_one_embedding_per_request():
    model = os.environ.get("GATEWAY_EMBEDDING_MODEL")
    embedder = CountingEmbedder(model) if model else None
    if not default_router().accepts(embedder):
        pytest.skip("GATEWAY_EMBEDDING_MODEL is not the router's model2vec model")
    assert embedder is not None
    settings = settings_for(
        cache={"exact": {"enabled": False}, "semantic": {"embedder": "model2vec", "model": model}},
        routing={"threshold": 0.4},
    )
    gateway = build_gateway(settings, embedder=embedder)
    embedder.texts.clear()
    prompt = "Design a migration plan for our payments database, step by step."
    served = await gateway.complete(ask(prompt, model="auto"), "team-a")
    assert embedder.texts == [prompt]
    assert served.route is not None and served.route.head == "embedding+features"
    assert served.route.threshold == 0.4


async def test_a_replica_saves_a_snapshot_once_the_log_tail_is_due(
    flush_valkey, make_gateway, monkeypatch
):
    """The replica's own loop asks the policy, then saves: the snapshot and its mark."""
    monkeypatch.setattr(pipeline, "SNAPSHOT_CHECK_S", 0.01)
    policy = SnapshotPolicy(max_tail=2, min_interval_s=0, max_interval_s=3600)
    monkeypatch.setattr(pipeline, "SNAPSHOT_POLICY", policy)
    store = RedisStore(flush_valkey)
    gateway = make_gateway("optimized", store, cache={"semantic": {"embedder": "lexical"}})
    await gateway.start()
    try:
        for prompt in ("How do I cancel my order?", "How do I upload a file to S3?"):
            await gateway.complete(ask(prompt), "team-a")
        await asyncio.sleep(0.2)
        assert await store.get(SNAPSHOT_MARK) is None  # one entry read: the tail is short
        await gateway.complete(ask("Where is my invoice for March?"), "team-a")
        for _ in range(200):
            if await store.get(SNAPSHOT_MARK) is not None:
                break
            await asyncio.sleep(0.01)
        assert await store.get(SNAPSHOT_MARK) is not None
        assert await store.get_bulk(SNAPSHOT) is not None
    finally:
        await gateway.close()


async def test_a_failed_snapshot_is_logged_and_the_next_ones_still_run(
    flush_valkey, make_gateway, monkeypatch, caplog
):
    """A snapshot that fails for any reason (a bug, not the store) is logged; the loop goes on,
    and the replica still closes cleanly (its budget settlements are retried)."""
    monkeypatch.setattr(pipeline, "SNAPSHOT_CHECK_S", 0.01)
    store = RedisStore(flush_valkey)
    gateway = make_gateway("optimized", store, cache={"semantic": {"embedder": "lexical"}})
    asked: list[int] = []
    real_due = gateway.semantic.snapshot_due

    async def due_or_broken(policy):
        asked.append(len(asked))
        if len(asked) == 1:
            raise TypeError("a bug in the snapshot")
        return await real_due(policy)

    monkeypatch.setattr(gateway.semantic, "snapshot_due", due_or_broken)
    await gateway.start()
    try:
        for _ in range(200):
            if len(asked) > 2:
                break
            await asyncio.sleep(0.01)
        assert len(asked) > 2
        assert [r for r in caplog.records if r.getMessage() == "semantic cache snapshot failed"]
    finally:
        await gateway.close()


async def test_snapshot_checks_wait_quietly_while_the_store_is_down(
    make_gateway, monkeypatch, caplog
):
    """The snapshot loop asks the store every second; while the store is down it does not ask,
    nor log a warning each time (the store watch reports the outage)."""
    monkeypatch.setattr(pipeline, "SNAPSHOT_CHECK_S", 0.01)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    gateway = make_gateway("optimized", store, cache={"semantic": {"embedder": "lexical"}})
    await gateway.start()
    try:
        await asyncio.sleep(0.3)
        assert not gateway.store_up
        assert not [r for r in caplog.records if "snapshot" in r.getMessage()]
    finally:
        await gateway.close()


async def test_a_hit_on_the_replicas_own_copy_does_not_say_the_store_is_up(make_gateway, tmp_path):
    """``ai_store_up`` says whether the store answers. A hit on the replica's copy of an answer
    asks it nothing, so during an outage it must leave the gauge at 0: it used to set it to 1,
    which held off the store-down alert and made /readyz say the store was up."""
    with persistent_valkey(tmp_path) as valkey:
        store = RedisStore(valkey.url, timeout_s=0.5)
        gateway = make_gateway(
            "optimized", store, **EXACT_ONLY, teams={"team-a": {"keys": ["sk-demo-team-a"]}}
        )
        try:
            assert (await gateway.complete(ask("Where is my parcel?"), "team-a")).cache == "miss"
            valkey.kill()
            assert not await gateway.check_store()
            hit = await gateway.complete(ask("Where is my parcel?"), "team-a")
            assert hit.cache == "exact"
            assert not gateway.store_up
            assert sample(gateway.meter.metrics, "ai_store_up") == 0
        finally:
            await gateway.close()
            await store.close()


async def test_store_failures_outside_requests_are_counted_by_operation(make_gateway):
    """A replica that starts while the store is down, or cannot refresh its budgets, used to only
    log it: ai_store_errors_total showed no failure at all during such an outage."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    gateway = make_gateway("optimized", store, cache={"semantic": {"embedder": "lexical"}})
    metrics = gateway.meter.metrics
    await gateway.start()
    try:
        await gateway.refresh_budgets()
        for op in ("semantic_warmup", "budget_refresh"):
            assert sample(metrics, "ai_store_errors_total", op=op) == 1
        assert sample(metrics, "ai_store_up") == 0
    finally:
        await gateway.close()
        await store.close()


async def test_replicas_save_snapshots_only_to_a_shared_store(store, make_gateway):
    """A snapshot is for the next replica; the in-process store has none, so a single replica
    never pauses to serialise its index."""
    gateway = make_gateway("optimized", store, cache={"semantic": {"embedder": "lexical"}})
    await gateway.start()
    try:
        assert (gateway._snapshots is not None) is store.shared
    finally:
        await gateway.close()


async def test_a_starting_replica_publishes_the_shared_remaining_budget_at_once(
    store, make_gateway
):
    """A new pod must not report the whole budget (and so resolve the 80% alert) until it
    happens to serve the team: its store watch reads the ledger on start."""
    if not store.shared:
        pytest.skip("the in-process store's ledger is its own replica's: there is no other pod")
    serving = make_gateway("optimized", store, **EXACT_ONLY)
    await serving.complete(ask("How do I rotate my API key?"), "team-a")
    remaining = sample(serving.meter.metrics, "ai_budget_remaining_usd", team="team-a")
    limit = sample(serving.meter.metrics, "ai_budget_limit_usd", team="team-a")
    assert 0 < remaining < limit
    starting = make_gateway("optimized", store, **EXACT_ONLY)
    assert sample(starting.meter.metrics, "ai_budget_remaining_usd", team="team-a") == limit
    await starting.start()
    try:
        for _ in range(100):
            published = sample(starting.meter.metrics, "ai_budget_remaining_usd", team="team-a")
            if published != limit:
                break
            await asyncio.sleep(0.01)
        assert published == pytest.approx(remaining)
    finally:
        await starting.close()


async def test_a_cache_hit_refused_by_the_rate_limit_carries_its_baseline(store, make_gateway):
    """Every refusal of a valid request carries its baseline (domain.GatewayError), whether it
    was refused on the miss path or as a cache hit."""
    limited = {"team-a": {"keys": ["sk-demo-team-a"], "limits": {"requests_per_minute": 1}}}
    gateway = make_gateway("optimized", store, **EXACT_ONLY, teams=limited)
    first = await gateway.complete(ask("How do I rotate my API key?"), "team-a")
    with pytest.raises(GatewayError) as info:
        await gateway.complete(ask("How do I rotate my API key?"), "team-a")
    assert info.value.kind == "rate_limit"
    assert info.value.baseline_usd == pytest.approx(first.baseline_usd)
