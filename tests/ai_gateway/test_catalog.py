"""The catalog stage: model names, the completion cap, the context window and the baseline."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ai_gateway.catalog import SHOWN_NAME_CHARS, Catalog, PromptTokens
from ai_gateway.domain import ChatRequest, GatewayError
from ai_gateway.pricing import default_price_table
from ai_gateway.router import classify, request_turns
from ai_gateway.settings import RoutingSettings
from ai_gateway.simulator import SimulatedProvider
from ai_gateway.tokens import PromptMessage, count_prompt
from tests.ai_gateway.support import ask


def catalog(routing: bool = False) -> Catalog:
    return Catalog(default_price_table(), RoutingSettings(enabled=routing), SimulatedProvider(0))


def test_unknown_model_is_not_found_naming_the_parameter():
    with pytest.raises(GatewayError) as info:
        catalog().resolve("gpt-5-ultra")
    assert (info.value.kind, info.value.param, info.value.code) == (
        "not_found",
        "model",
        "model_not_found",
    )


def test_an_unknown_models_name_is_repeated_only_in_part():
    """A 900 KB name came back whole in the 404's body."""
    with pytest.raises(GatewayError) as info:
        catalog().resolve("x" * 900_000)
    assert f"The model '{'x' * SHOWN_NAME_CHARS}...' does not exist." in info.value.message
    assert len(info.value.message) < 10_000


def test_auto_without_routing_explains_itself():
    with pytest.raises(GatewayError) as info:
        catalog(routing=False).requested(ask("hi", model="auto"))
    assert "routing, which is off" in info.value.message
    assert catalog(routing=True).requested(ask("hi", model="auto")) is None


def test_alias_resolves_to_the_canonical_model():
    assert catalog().resolve("claude-haiku-4-5-20251001").name == "claude-haiku-4-5"


def test_a_retired_model_is_not_found_and_the_error_names_its_replacement():
    with pytest.raises(GatewayError) as info:
        catalog().resolve("claude-3-haiku")
    assert (info.value.kind, info.value.param) == ("not_found", "model")
    assert "retired" in info.value.message and "'claude-haiku-4-5'" in info.value.message


def test_context_window_is_enforced():
    card = catalog().resolve("gpt-4")
    request = ask("alpha " * 5000, max_tokens=4096)
    with pytest.raises(GatewayError) as info:
        catalog().completion_cap(card, request, PromptTokens(request.messages)(card), routed=False)
    assert (info.value.kind, info.value.code) == ("invalid_request", "context_length_exceeded")


def test_default_cap_leaves_room_in_the_context_window():
    card = catalog().resolve("gpt-4")
    request = ask("alpha " * 8000)
    prompt = PromptTokens(request.messages)(card)
    assert prompt + catalog().completion_cap(card, request, prompt, routed=False) == (
        card.context_window
    )


@pytest.mark.parametrize("spare", [0, 1])
def test_a_prompt_must_leave_room_for_one_completion_token(spare):
    card = catalog().resolve("gpt-4")
    request = ask("hi")
    prompt = card.context_window - spare
    if spare == 0:
        with pytest.raises(GatewayError) as info:
            catalog().completion_cap(card, request, prompt, routed=False)
        assert info.value.code == "context_length_exceeded"
    else:
        assert catalog().completion_cap(card, request, prompt, routed=False) == 1


def test_too_large_max_tokens_is_refused_unless_routed():
    card = catalog().resolve("gpt-4")
    request = ask("hi", max_tokens=card.max_output_tokens + 1)
    with pytest.raises(GatewayError) as info:
        catalog().completion_cap(card, request, 10, routed=False)
    assert info.value.param == "max_tokens"
    assert catalog().completion_cap(card, request, 10, routed=True) == card.max_output_tokens


def test_baseline_of_auto_is_the_complex_tier():
    cat = catalog(routing=True)
    request = ask("Compare two plans", model="auto")
    complex_card = cat.resolve(RoutingSettings().tiers["complex"])
    tokens = PromptTokens(request.messages)
    baseline = cat.baseline_cost(None, request, tokens)
    named = ChatRequest(model=complex_card.name, messages=request.messages)
    assert baseline > 0
    assert baseline == cat.baseline_cost(complex_card, named, tokens)


def test_prompt_tokens_are_counted_once_per_encoding(monkeypatch):
    import ai_gateway.catalog as module

    calls = []
    real = module.message_tokens
    monkeypatch.setattr(
        module, "message_tokens", lambda e, m: calls.append((e, m.role)) or real(e, m)
    )
    messages = (
        PromptMessage("system", "You are terse."),
        PromptMessage("user", "count me once"),
        PromptMessage("assistant", "Counted."),
        PromptMessage("user", "and again", name="ops"),
    )
    tokens = PromptTokens(messages)
    table = default_price_table()
    gpt4, haiku = table.resolve("gpt-4"), table.resolve("claude-haiku-4-5")
    assert tokens(gpt4) == tokens(haiku) == count_prompt(gpt4, messages)
    # Each user turn counted as a prompt alone: the router scores turns one by one.
    assert tokens.request_turns(gpt4) == [count_prompt(gpt4, [m]) for m in request_turns(messages)]
    assert len(tokens.request_turns(gpt4)) == 2
    assert len(calls) == len(messages)  # one encoding (cl100k_base), each message once


def long_log_request(model: str) -> ChatRequest:
    """A short question about a pasted log of about 300k tokens: more than the small tiers'
    272k-token windows, less than the flagship models' 1M."""
    log = "ERR id=7f3a lat=12.5ms path=/api/v1/items status=500\n" * 17_000
    return ChatRequest(
        model=model,
        messages=(PromptMessage("system", log), PromptMessage("user", "How many ERR lines?")),
        max_tokens=50,
    )


def test_routing_never_picks_a_model_whose_window_cannot_hold_the_prompt():
    """It picked gpt-5.4-nano (272k) for a request a 1M-token model could answer, and the
    gateway refused it as too long for a model the client never named."""
    routed = catalog(routing=True)
    request = long_log_request("claude-opus-4-7")
    tokens = PromptTokens(request.messages)
    served, decision = routed.route(request, routed.resolve("claude-opus-4-7"), True, tokens)
    assert decision is not None and decision.tier == "complex"
    assert served.name == "gpt-5.4" and tokens(served) + 50 <= served.context_window
    assert "raised from simple: gpt-5.4-nano cannot fit the prompt's" in decision.reason
    assert "tokens in its window" in decision.reason
    routed.completion_cap(served, request, tokens(served), routed=True)  # not refused
    # For gpt-4.1 (1M tokens) the only tier that fits is pricier: it is served as asked.
    request = long_log_request("gpt-4.1")
    asked = routed.resolve("gpt-4.1")
    assert routed.route(request, asked, True, PromptTokens(request.messages)) == (asked, None)


PREFILLED = (PromptMessage("user", "Name three colours."), PromptMessage("assistant", "Red,"))


@pytest.mark.parametrize(
    ("model", "refused"),
    [("claude-sonnet-4-6", True), ("claude-opus-4-7", True), ("claude-opus-4-5", False),
     ("claude-haiku-4-5", False), ("gpt-4o", False)],
)  # fmt: skip
def test_claude_4_6_and_later_refuse_a_prefill_in_anthropics_words(model, refused):
    card = catalog().resolve(model)
    request = ChatRequest(model=model, messages=PREFILLED)
    if not refused:
        Catalog.check_sampling(card, request)
        return
    with pytest.raises(GatewayError) as info:
        Catalog.check_sampling(card, request)
    assert (info.value.kind, info.value.param) == ("invalid_request", "messages")
    assert info.value.message.startswith("This model does not support assistant message prefill")
    Catalog.check_sampling(card, ChatRequest(model=model, messages=PREFILLED[:1]))


def test_routing_passes_over_a_tier_whose_model_refuses_a_prefill():
    """A prefilled auto request routed to a model that refuses it would be the gateway's 400."""
    tiers = {"simple": "claude-haiku-4-5", "standard": "claude-sonnet-4-6",
             "complex": "claude-opus-4-5"}  # fmt: skip
    routed = Catalog(default_price_table(), RoutingSettings(enabled=True, tiers=tiers),
                     SimulatedProvider(0))  # fmt: skip
    request = ChatRequest(model="auto", messages=PREFILLED)
    tokens = PromptTokens(request.messages)
    decision = classify(request.messages, tokens.request_turns(routed.resolve("claude-opus-4-5")),
                        None)  # fmt: skip
    standard = replace(decision, tier="standard")
    card, raised = routed.fitting_tier(standard, request, tokens)
    assert card.name == "claude-opus-4-5"
    assert "claude-sonnet-4-6 refuses a conversation that ends with an assistant message" in (
        raised.reason
    )


def test_routing_passes_over_a_tier_whose_model_refuses_stop_sequences():
    """gpt-5-nano and gpt-5-mini refuse `stop`: a request with one decided for either goes to
    the next tier up that takes it, and the decision says why."""
    tiers = {"simple": "gpt-5-nano", "standard": "gpt-5-mini", "complex": "gpt-5.4"}
    routed = Catalog(default_price_table(), RoutingSettings(enabled=True, tiers=tiers),
                     SimulatedProvider(0))  # fmt: skip
    plain = ask("What is the capital of France?", model="auto")
    tokens = PromptTokens(plain.messages)
    card, decided = routed.route(plain, None, True, tokens)
    assert decided is not None and card.name in ("gpt-5-nano", "gpt-5-mini")
    served, raised = routed.route(replace(plain, stop=("\n",)), None, True, tokens)
    assert served.name == "gpt-5.4"
    assert raised is not None and raised.tier == "complex"
    assert f"raised from {decided.tier}: {card.name} refuses stop sequences" in raised.reason


def test_an_auto_request_with_stop_no_tier_takes_is_refused_as_its_provider_would():
    tiers = {"simple": "gpt-5-nano", "standard": "gpt-5-mini", "complex": "gpt-5"}
    routed = Catalog(default_price_table(), RoutingSettings(enabled=True, tiers=tiers),
                     SimulatedProvider(0))  # fmt: skip
    request = ask("What is the capital of France?", model="auto", stop=("END",))
    with pytest.raises(GatewayError) as info:
        routed.route(request, None, True, PromptTokens(request.messages))
    assert (info.value.param, info.value.code) == ("stop", "unsupported_parameter")


def test_an_auto_prefill_no_tier_takes_is_refused_as_its_provider_would():
    """Every tier refusing a prefill fell back to the complex tier's model, which served it
    with the reason "no tier's window holds it"; the same body naming that model gets a 400."""
    tiers = {"simple": "claude-sonnet-4-6", "standard": "claude-sonnet-4-6",
             "complex": "claude-opus-4-7"}  # fmt: skip
    routed = Catalog(default_price_table(), RoutingSettings(enabled=True, tiers=tiers),
                     SimulatedProvider(0))  # fmt: skip
    request = ChatRequest(model="auto", messages=PREFILLED)
    with pytest.raises(GatewayError) as info:
        routed.route(request, None, True, PromptTokens(request.messages))
    assert "does not support assistant message prefill" in info.value.message
