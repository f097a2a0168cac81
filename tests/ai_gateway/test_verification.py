"""The semantic cache guard: near-misses are refused with a reason, light rephrasings pass."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_gateway.evaluation import load_semantic_set
from ai_gateway.verification import (
    actions_in,
    agreement_key,
    content_words,
    is_negated,
    languages_in,
    named_in,
    numbers_in,
    quoted_in,
    verify,
)

NEAR_MISSES = [
    ("How do I track my order?", "How do I cancel my order?", "actions differ"),
    ("Install Python 3.12 on Ubuntu", "Install Python 3.11 on Ubuntu", "numbers differ"),
    ("Translate this into Italian: hello", "Translate this into French: hello", "languages differ"),
    ("How do I download a file from S3?", "How do I upload a file to S3?", "actions differ"),
    ('Search for "red shoes"', 'Search for "blue shoes"', "quoted text differs"),
    ("Is it not safe to fly?", "Is it safe to fly?", "negation differs"),
    ("How do I configure Nginx?", "How do I configure Apache?", "named terms differ"),
    ("Convert 100 euros to dollars.", "Convert 100 dollars to euros.", "direction differs"),
    ("How do I cancel my subscription?", "How do I cancel my order?", "content words differ"),
    # Found by an audit: a repeated number, an operator, a long snippet differing in one operator.
    ("What is 2 + 2 + 2?", "What is 2 + 2?", "numbers differ"),
    ("Which rows have x > 5?", "Which rows have x < 5?", "comparisons differ"),
    (
        "Why does this fail? `"
        + "total = sum(row.amount for row in rows if row.ok); " * 6
        + "assert total >= limit`",
        "Why does this fail? `"
        + "total = sum(row.amount for row in rows if row.ok); " * 6
        + "assert total <= limit`",
        "comparisons differ",
    ),
]

LIGHT = [
    ("how do i cancel my order", "How do I cancel my order?"),
    ("Hi, could you tell me how I can cancel my order please?", "How do I cancel my order?"),
    ("What's your refund policy?", "What is your refund policy?"),
    ("Summarise this article.", "Summarize this article."),
    ("What is the difference between UDP and TCP?", "What is the difference between TCP and UDP?"),
    ("Where's my package? It hasn't arrived.", "Where is my package? It has not arrived."),
    # -ed against the bare verb: the stemming's -ed rule, which no other pair here reaches
    ("What happened to my refund?", "What happens to my refund?"),
    (
        "In TypeScript, what does => mean in x => x + 1?",
        "what does => mean in x => x + 1, in TypeScript",
    ),
]


@pytest.mark.parametrize(("query", "cached", "reason"), NEAR_MISSES)
def test_near_misses_are_refused_with_the_check_that_caught_them(query, cached, reason):
    verdict = verify(query, cached)
    assert not verdict.ok
    assert verdict.reason == reason


@pytest.mark.parametrize(("query", "cached"), LIGHT)
def test_light_rephrasings_pass(query, cached):
    assert verify(query, cached).ok, verify(query, cached).reason


def test_each_class_of_salient_terms_is_extracted():
    prompt = 'Deploy v2.3.1 of "billing-api" to EKS in eu-west-1 without downtime'
    assert {"2.3.1", "1"} <= set(numbers_in(prompt))
    assert quoted_in(prompt) == ("billing-api",)
    assert "eks" in named_in(prompt)
    assert is_negated(prompt)


def test_remembered_terms_are_invisible_to_the_garbage_collector():
    """A cache of 65k prompts' terms must not lengthen every full collection."""
    prompt = 'Cancel order #1042 for "Acme" in French, not via Python, and move it to Berlin'
    extractors = [numbers_in, quoted_in, named_in, languages_in, actions_in]
    classes = [extract(prompt) for extract in extractors]
    content = content_words(prompt)
    for _ in range(3):  # a nested tuple is untracked one level per pass
        gc.collect()
    assert all(classes) and all(content)
    assert not any(gc.is_tracked(values) for values in [*classes, content, *content])


def test_thousands_separators_are_one_number():
    assert numbers_in("Refund $1,200 now") == numbers_in("Refund $1200 now")


def test_content_words_stem_plurals_and_british_spelling():
    words, _ = content_words("Summarising the invoices")
    assert words == content_words("summarizing the invoice")[0]


DATA = Path(__file__).resolve().parents[2] / "bench" / "data"
# The checks whose terms the key holds (actions, languages and these quotes by their words);
# operators are not words, so "x > 5" and "x < 5" share a key and the guard refuses the pair.
KEYED_CHECKS = {
    "numbers differ",
    "quoted text differs",
    "languages differ",
    "actions differ",
    "negation differs",
    "content words differ",
}


def evaluation_pairs() -> list[tuple[str, str]]:
    """Every query of both semantic evaluation sets against its group's cached prompt."""
    pairs = []
    for name in ("semantic_cache_eval.yaml", "semantic_cache_heldout.yaml"):
        for group in load_semantic_set(DATA / name).groups:
            for label in ("light", "hard", "near"):
                pairs += [(query, group.cached) for query in getattr(group, label)]
    return pairs


def test_every_pair_the_guard_passes_shares_its_agreement_key():
    """The semantic cache compares a prompt only with cached prompts of its key
    (``semantic_index.BlockIndex``), so no pair the guard passes may have two keys."""
    pairs = [*evaluation_pairs(), *LIGHT, *((query, cached) for query, cached, _ in NEAR_MISSES)]
    passed = [(query, cached) for query, cached in pairs if verify(query, cached).ok]
    assert len(passed) >= 150  # the light rephrasings of both sets
    assert [pair for pair in passed if agreement_key(pair[0]) != agreement_key(pair[1])] == []


@pytest.mark.parametrize(
    ("query", "cached", "reason"), [case for case in NEAR_MISSES if case[2] in KEYED_CHECKS]
)
def test_a_near_miss_refused_on_a_keyed_check_has_another_key(query, cached, reason):
    """What keeps a miss cheap: such a near-miss is never even a candidate."""
    assert agreement_key(query) != agreement_key(cached)


FILLER = ["please", "hi", "thanks", "could", "you", "tell", "me", "the", "a", "kindly"]
WORDS = [
    "cancel", "order", "refund", "invoice", "Python", "3.11", "S3", "upload", "to", "from",
    "euros", "dollars", "not", "French", "x", ">", "5", '"red shoes"', "account", "42",
]  # fmt: skip


@given(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=10),
    st.lists(st.sampled_from(FILLER), max_size=4),
)
def test_a_prompt_with_filler_added_passes_the_guard_and_keeps_its_key(words, filler):
    """Politeness and filler around any mix of numbers, operators, quotes, named things,
    directions and negation: the guard passes it, and the key is the same."""
    prompt = " ".join(words)
    rephrased = f"hi, {prompt} {' '.join(filler)}?"
    assert verify(rephrased, prompt).ok, verify(rephrased, prompt).reason
    assert agreement_key(rephrased) == agreement_key(prompt)
