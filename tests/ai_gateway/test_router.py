"""The complexity routers: the learned router's decisions and explanations, its threshold, the
held-out targets, the original keyword router, and routing over HTTP."""

from __future__ import annotations

import itertools
import os
import re

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_gateway.embeddings import LexicalEmbedder, Model2VecEmbedder
from ai_gateway.pricing import TIERS, default_price_table
from ai_gateway.router import (
    _MATH,
    _PARTS,
    _REASONING,
    CONTEXT_TURNS,
    LEARNED_LENGTH_CAP_TOKENS,
    UNSCORED_LANGUAGE,
    _count_up_to,
    classify,
    default_router,
    keyword_classify,
    request_turns,
    tiers_for,
)
from ai_gateway.router_evaluation import (
    HELD_OUT_SET,
    STRESS_SET,
    TRAINING_SET,
    evaluate_keyword_router,
    evaluate_learned_router,
    feature_matrix,
    label_indices,
    length_only_cuts,
    load_routing_set,
    request_tokens,
    scores_by_group,
)
from ai_gateway.router_training import choose_thresholds, fit_head
from ai_gateway.tokens import PromptMessage, count_prompt

REFERENCE = default_price_table().resolve("gpt-5.4")
TRAINING = load_routing_set(TRAINING_SET).prompts
HELD_OUT = load_routing_set(HELD_OUT_SET).prompts
STRESS = load_routing_set(STRESS_SET).prompts


@pytest.fixture(scope="module")
def embedder():
    """The model the router was trained with (the Makefile and CI point at ../shared)."""
    model = os.environ.get("GATEWAY_EMBEDDING_MODEL")
    embedder = Model2VecEmbedder(model) if model else None
    if not default_router().accepts(embedder):
        pytest.skip("GATEWAY_EMBEDDING_MODEL is not the router's model2vec model")
    return embedder


def messages(prompt: str) -> list[PromptMessage]:
    return [PromptMessage("user", prompt)]


def decide(prompt: str, embedder=None, threshold=None, max_tokens=None):
    return decide_messages(messages(prompt), embedder, threshold, max_tokens)


def decide_messages(msgs, embedder=None, threshold=None, max_tokens=None):
    """As the gateway routes: each request turn counted alone (PromptTokens.request_turns)."""
    counts = [count_prompt(REFERENCE, [m]) for m in request_turns(msgs)]
    return classify(msgs, counts, max_tokens, embedder=embedder, threshold=threshold)


def test_clear_cases_go_to_their_tier_with_an_explanation(embedder):
    simple = decide("What is the capital of Portugal?", embedder)
    assert simple.tier == "simple"
    assert simple.head == "embedding+features"
    complex_ = decide(
        "Prove that every planar graph is 5-colourable, and explain where the proof for 4 colours "
        "becomes hard.",
        embedder,
    )
    assert complex_.tier == "complex"
    reason = complex_.reason
    assert reason.startswith("tier=complex; p(complex)=")
    assert "top features: " in reason and "nearest labelled: t" in reason
    reason.encode("ascii")  # it travels in the x-gateway-route-reason header
    assert complex_.nearest is not None and complex_.nearest[1] in TIERS
    top = max(complex_.contributions, key=lambda k: abs(complex_.contributions[k]))
    assert complex_.top_feature == top


def test_a_long_system_prompt_does_not_send_a_simple_question_to_the_complex_tier(embedder):
    """A shared handbook is context, not difficulty: the routers read the user turns' length."""
    handbook = " ".join(
        f"Policy {i}: refunds for damaged items within 30 days need a photo and the order number."
        for i in range(100)
    )
    question = "How do I cancel my order 1042?"
    alone = messages(question)
    with_handbook = [PromptMessage("system", handbook), *alone]
    assert count_prompt(REFERENCE, with_handbook) > 1500
    for head_embedder in (embedder, None):
        decisions = [
            classify(
                msgs,
                [count_prompt(REFERENCE, [m]) for m in request_turns(msgs)],
                None,
                embedder=head_embedder,
            )
            for msgs in (alone, with_handbook)
        ]
        assert decisions[1].tier != "complex"
        assert decisions[1].tier == decisions[0].tier
        assert decisions[1].probabilities == decisions[0].probabilities


def test_without_the_trained_embedder_the_features_head_decides():
    for embedder in (None, LexicalEmbedder()):
        decision = decide("Design a multi-region failover plan and compare trade-offs.", embedder)
        assert decision.head == "features"
        assert decision.nearest is None
        assert "meaning (embedding)" not in decision.contributions
        assert decide("Explain step by step how to derive Bayes' rule.", embedder).tier in TIERS


def test_a_higher_threshold_never_moves_a_prompt_to_a_pricier_tier(embedder):
    thresholds = np.linspace(0.0, 1.0, 21)
    for example in HELD_OUT[:40]:
        tiers = [TIERS.index(decide(example.prompt, embedder, float(t)).tier) for t in thresholds]
        assert all(a >= b for a, b in itertools.pairwise(tiers)), example.id
        assert tiers[0] == 2  # threshold 0: everything may need the complex tier


def test_tier_rule_on_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.05, 0.15, 0.8]])
    assert tiers_for(probs, 0.5, 0.6).tolist() == [0, 1, 2]
    assert tiers_for(probs, 0.25, 0.6).tolist() == [0, 2, 2]
    assert tiers_for(probs, 0.5, 0.9).tolist() == [1, 1, 2]


def test_shipped_thresholds_are_the_rules_choice_on_the_training_set():
    router = default_router()
    labels = label_indices(TRAINING)
    assert router.example_ids == tuple(e.id for e in TRAINING)
    for head in (router.embedding_head, router.features_head):
        threshold, confidence, _ = choose_thresholds(head.cv_probabilities, labels)
        assert (head.default_threshold, head.simple_confidence) == (threshold, confidence)
    assert not set(router.example_ids) & {e.id for e in HELD_OUT}


def test_fitting_learns_the_training_set_from_features():
    labels = label_indices(TRAINING)
    features = feature_matrix(TRAINING, request_tokens(TRAINING, REFERENCE))
    x = (features - features.mean(axis=0)) / np.where(features.std(axis=0) > 0, features.std(0), 1)
    head = fit_head(x, labels, l2=0.003, steps=400)
    accuracy = (head.probabilities(x).argmax(axis=1) == labels).mean()
    assert accuracy > 0.75


def test_held_out_targets_hold_at_the_default_threshold(embedder):
    """The issue's targets, re-measured on the held-out set (data, not timing)."""
    score = evaluate_learned_router(HELD_OUT, REFERENCE, default_router(), embedder)
    assert score.complex_reaching_complex >= 0.95
    assert score.share("complex", "simple") == 0
    assert score.share("simple", "simple") >= 0.85
    keyword = evaluate_keyword_router(HELD_OUT, REFERENCE)
    assert keyword.complex_reaching_complex < score.complex_reaching_complex


DESIGN = "Design a multi-region failover plan for our Postgres database and compare the trade-offs."


def test_a_follow_up_keeps_the_tier_of_the_request_it_continues(embedder):
    """Scored alone, "And for the EU region?" is a simple question; after a design request it is
    the same design. The explanation names the turn that decided."""
    assert decide("And for the EU region?", embedder).tier == "simple"
    conversation = [
        PromptMessage("user", DESIGN),
        PromptMessage("assistant", "Here is a plan with a replica in a second region."),
        PromptMessage("user", "And for the EU region?"),
    ]
    decision = decide_messages(conversation, embedder)
    assert decision.tier == "complex"
    assert decision.reason.endswith("; decided by request turn 1 of the last 2")


def test_only_the_last_turns_count_and_short_questions_stay_simple(embedder):
    """Twenty short exchanges used to read as one long request (the length of every user turn)
    and sent a trivial question to the complex tier; a complex request further back than the
    last CONTEXT_TURNS no longer holds the conversation up."""
    question = "How many tablespoons are in a cup?"
    small_talk = []
    for i in range(20):
        small_talk += [
            PromptMessage("user", f"What is {i} plus {i}?"),
            PromptMessage("assistant", "x"),
        ]
    long_chat = decide_messages([*small_talk, PromptMessage("user", question)], embedder)
    assert long_chat.tier == decide(question, embedder).tier == "simple"
    old_design = [PromptMessage("user", DESIGN), PromptMessage("assistant", "A plan.")]
    later = small_talk[: 2 * CONTEXT_TURNS]
    assert decide_messages(
        [*old_design, *later, PromptMessage("user", question)], embedder
    ).tier == ("simple")


def test_a_request_without_a_user_turn_reads_its_instructions(embedder):
    """A system- or developer-only request was read as an empty prompt: always simple."""
    for role in ("system", "developer"):
        alone = decide_messages([PromptMessage(role, DESIGN)], embedder)
        assert alone.tier == "complex"
        assert alone.probabilities == decide(DESIGN, embedder).probabilities


def test_a_blank_user_turn_is_not_the_request(embedder):
    """A developer message and an empty user turn: the instructions are the request."""
    blank = [PromptMessage("developer", DESIGN), PromptMessage("user", "  ")]
    assert decide_messages(blank, embedder).probabilities == decide(DESIGN, embedder).probabilities


def test_a_remembered_turn_decides_as_it_did_and_the_memory_is_bounded(embedder, monkeypatch):
    """Each request of a conversation carries its earlier turns: their decisions are remembered
    (by text, length, tokens and settings), never changed by it, and at most DECIDED_TURNS."""
    import ai_gateway.router as router_module

    router = default_router()
    fresh = router.decide_turn(DESIGN, 30, None, embedder.embed(DESIGN), None)
    assert router.decided_turn(DESIGN, 30, None, embedder, None, None) == fresh
    assert router.decided_turn(DESIGN, 30, None, embedder, None, None) == fresh  # remembered
    monkeypatch.setattr(router_module, "DECIDED_TURNS", 5)
    for i in range(12):
        router.decided_turn(f"What is {i} plus {i}?", 12, None, None, None, None)
    assert len(router._decided) == 5


def test_markers_are_read_from_the_start_of_a_long_turn():
    """Every training prompt is shorter than the sample; a 50 KB turn was scanned whole (6 ms)."""
    from ai_gateway.router import FEATURE_SAMPLE_CHARS

    head = "Explain step by step how to derive the formula. " * 100
    tail = "```python\ndef f(): return 1\n``` " * 2000
    turn = head[:FEATURE_SAMPLE_CHARS] + tail
    router = default_router()
    whole = router.decide_turn(turn, 40, None, None, None)
    sample = router.decide_turn(turn[:FEATURE_SAMPLE_CHARS], 40, None, None, None)
    assert whole.contributions["code markers"] == sample.contributions["code markers"]


@pytest.mark.parametrize(
    "prompt",
    [
        "Докажите, что существует бесконечно много простых чисел.",
        "为我们的PostgreSQL数据库设计一个多区域故障转移方案，并比较各种权衡。",
        "Dimostra che esistono infiniti numeri primi e spiega perché l'argomento non regge.",
    ],
)
def test_another_language_keeps_the_complex_tier_unscored(embedder, prompt):
    decision = decide(prompt, embedder)
    assert decision.tier == "complex" and decision.head == "not scored"
    assert decision.reason == f"tier=complex; not scored: {UNSCORED_LANGUAGE}"
    decision.reason.encode("ascii")  # it travels in the x-gateway-route-reason header


def test_the_length_cap_is_beyond_every_training_prompt():
    """The cap changes no training input, so the shipped weights and the evaluation figures
    stand; beyond it a longer turn reads as the cap (a 1 MB prompt read as +18 logits)."""
    assert max(request_tokens(TRAINING, REFERENCE)) < LEARNED_LENGTH_CAP_TOKENS
    long_turn = "What is the title of this report? " + "The quarter went well. " * 5000
    capped = decide(long_turn, None).contributions["request length"]
    at_cap = decide(long_turn[: len(long_turn) // 50], None).contributions["request length"]
    assert capped == pytest.approx(at_cap)


def test_the_stress_groups_hold_where_the_readme_says(embedder):
    """No group sends a complex request to the simple tier; follow-ups, small talk and
    instructions-only requests get their labels; other languages keep the complex tier."""
    scores = scores_by_group(STRESS, REFERENCE, default_router(), embedder)
    assert set(scores) == {
        "follow-up", "after-small-talk", "instructions-only", "other-language", "long-easy",
        "short-hard",
    }  # fmt: skip
    for group, score in scores.items():
        assert score.share("complex", "simple") == 0, group
    for group in ("follow-up", "after-small-talk", "instructions-only"):
        assert scores[group].accuracy == 1.0, group
    assert scores["other-language"].complex_reaching_complex == 1.0


def test_length_alone_passes_the_held_out_targets():
    """Why the stress set exists: two length cuts fitted on the training set meet the held-out
    targets too (README, "Routing"), so the held-out set alone cannot show routing reads more
    than length."""
    from ai_gateway.router_evaluation import evaluate_length_only

    cuts = length_only_cuts(TRAINING, REFERENCE)
    assert evaluate_length_only(HELD_OUT, REFERENCE, cuts).meets_targets


def test_keyword_router_keeps_its_original_behaviour():
    msgs = messages("What is the capital of Canada?")
    decision = keyword_classify(msgs, count_prompt(REFERENCE, msgs), None)
    assert decision.tier == "simple"
    assert decision.reason.startswith("tier=simple; score=")
    assert "simple question" in decision.reason


def chat(gateway, model: str, prompt: str, key: str = "sk-demo-team-a") -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": prompt}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


@pytest.fixture
def gateway(start_gateway):
    return start_gateway(cache={"exact": {"enabled": False}, "semantic": {"enabled": False}})


def test_team_policy_routes_a_gpt4_request_down_and_counts_the_saving(gateway, start_gateway):
    response = chat(gateway, "gpt-4", "What is the capital of Canada?")
    assert response.status_code == 200
    served = response.json()["model"]
    assert served in ("gpt-5.4-nano", "gpt-5.4-mini")
    assert response.headers["x-gateway-model"] == served
    assert response.headers["x-gateway-routed-from"] == "gpt-4"
    assert "top features: " in response.headers["x-gateway-route-reason"]
    # The saving is measured against what the unoptimized gateway charges for the same request.
    unoptimized = chat(
        start_gateway(profile="unoptimized"), "gpt-4", "What is the capital of Canada?"
    )
    expected = float(unoptimized.headers["x-gateway-cost-usd"]) - float(
        response.headers["x-gateway-cost-usd"]
    )
    assert float(response.headers["x-gateway-saved-usd"]) == pytest.approx(expected, rel=1e-9)
    metrics = httpx.get(gateway.metrics_url, timeout=5).text
    assert f'ai_routed_requests_total{{requested="gpt-4",served="{served}"}} 1.0' in metrics


def test_with_the_embedding_model_a_simple_request_reaches_the_simple_tier(embedder, start_gateway):
    gateway = start_gateway(
        cache={"exact": {"enabled": False}, "semantic": {"enabled": True, "embedder": "model2vec"}}
    )
    response = chat(gateway, "auto", "What is the capital of Canada?")
    assert response.json()["model"] == "gpt-5.4-nano"
    assert "nearest labelled: " in response.headers["x-gateway-route-reason"]


def test_model_auto_is_routed_for_any_team(gateway):
    response = chat(gateway, "auto", "Design a multi-region failover plan and compare trade-offs.")
    assert response.headers["x-gateway-routed-from"] == "auto"
    assert response.json()["model"] == "gpt-5.4"


def test_a_threshold_of_one_keeps_requests_off_the_complex_tier(start_gateway):
    gateway = start_gateway(
        cache={"exact": {"enabled": False}, "semantic": {"enabled": False}},
        routing={"threshold": 1.0},
    )
    response = chat(gateway, "auto", "Design a multi-region failover plan and compare trade-offs.")
    assert response.json()["model"] != "gpt-5.4"
    assert "threshold=1.00" in response.headers["x-gateway-route-reason"]


def test_routing_never_upgrades_a_named_model(gateway):
    prompt = "Analyze step by step the trade-offs of this architecture and design an alternative."
    response = chat(gateway, "gpt-4o-mini", prompt)
    assert response.json()["model"] == "gpt-4o-mini"
    assert "x-gateway-routed-from" not in response.headers


def test_unoptimized_profile_serves_what_is_asked_and_rejects_auto(start_gateway):
    gateway = start_gateway(profile="unoptimized")
    assert chat(gateway, "gpt-4", "What is the capital of Canada?").json()["model"] == "gpt-4"
    auto = chat(gateway, "auto", "hello")
    assert auto.status_code == 404
    assert "needs routing" in auto.json()["error"]["message"]


MARKERS = ["analyze", "compare", "design", "then", "first", "also", "; ", "? x", "(1) ", " 2. "]


@pytest.mark.parametrize("pattern", [_REASONING, _PARTS], ids=["reasoning", "parts"])
@given(pieces=st.lists(st.sampled_from([*MARKERS, "word", " ", "\n", "A"]), max_size=40))
def test_counting_stops_at_the_cap_with_findalls_count(pattern, pieces):
    text = "".join(pieces)
    for cap in (0, 1, 4):
        assert _count_up_to(pattern, text, cap) == min(len(pattern.findall(text)), cap)


def test_the_capped_counts_are_findalls_on_every_routing_prompt():
    for example in [*TRAINING, *HELD_OUT]:
        text = example.prompt.lower()
        for pattern in (_REASONING, _PARTS):
            assert _count_up_to(pattern, text, 4) == min(len(pattern.findall(text)), 4), text


# The maths marker as first written: it searched a run of digits from each of its digits.
PLAIN_MATH = re.compile(
    r"\d+\s*[-+*/^=×÷]\s*\d+|\b(prove|proof|derive|derivative|integral|equation|theorem|"
    r"probability|expected value|regression|variance|optimi[sz]ation problem|big-?o|"
    r"complexity of)\b",
)


EDGES = ["2+2", "a1 + 2", "x = 3", "12 * 4", "3 ^ 4", "10 ÷ 2", "v2 =3", "prove it",
         "1" * 4000, "1" * 4000 + "+2", "1 " * 2000]  # fmt: skip


@pytest.mark.parametrize("text", EDGES)
def test_the_maths_marker_gives_the_plain_patterns_verdict(text):
    assert bool(_MATH.search(text)) == bool(PLAIN_MATH.search(text))


def test_the_maths_marker_gives_the_plain_patterns_verdict_on_every_routing_prompt():
    """Starting a sum only at a run's first digit, and keeping its digits, changes no verdict:
    the evaluation figures stand."""
    for example in [*TRAINING, *HELD_OUT, *STRESS]:
        text = example.prompt.lower()
        assert bool(_MATH.search(text)) == bool(PLAIN_MATH.search(text)), text
