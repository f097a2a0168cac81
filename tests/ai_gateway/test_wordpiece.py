"""The Python WordPiece gives the model's own tokenizer's ids, or declines."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from ai_gateway.wordpiece import AsciiWordPiece
from tests.paths import EMBEDDING_MODEL, REPO

pytestmark = pytest.mark.skipif(
    not EMBEDDING_MODEL.exists(), reason=f"the model2vec model is not at {EMBEDDING_MODEL}"
)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(EMBEDDING_MODEL / "tokenizer.json"))


@pytest.fixture(scope="module")
def wordpiece(tokenizer: Tokenizer) -> AsciiWordPiece:
    twin = AsciiWordPiece.of(tokenizer)
    assert twin is not None
    return twin


def expected(tokenizer: Tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False).ids


def test_every_evaluation_prompt_tokenizes_the_same(tokenizer, wordpiece):
    lines = [
        line
        for path in sorted((REPO / "bench" / "data").glob("*.yaml"))
        for line in path.read_text().splitlines()
    ]
    compared = 0
    for line in lines:
        ids = wordpiece.ids(line)
        if ids is not None:
            assert ids == expected(tokenizer, line), line
            compared += 1
    assert compared > 1000


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.characters(max_codepoint=127), max_size=120)
    | st.lists(
        st.sampled_from(
            ["cost", "Kubernetes", "EC2", "x" * 101, "3.11", "don't", "naïve", "\t", "\x0b", "--"]
        )
        | st.text(alphabet="abcxyzQ019_-#'.,!? \n\r\x00\x1f\x7f", max_size=12),
        max_size=12,
    ).map(" ".join)
)
def test_generated_ascii_text_tokenizes_the_same(tokenizer, wordpiece, text):
    ids = wordpiece.ids(text)
    if text.isascii() and "[UNK]" not in text and "[PAD]" not in text:
        assert ids == expected(tokenizer, text)
    else:
        assert ids is None


def test_it_declines_text_only_the_real_tokenizer_reads(wordpiece):
    assert wordpiece.ids("Résumé of the café") is None
    assert wordpiece.ids("a literal [UNK] token") is None
    assert wordpiece.ids("plain words") is not None


def test_it_declines_a_tokenizer_that_is_not_bert_wordpiece():
    other = Tokenizer(WordLevel({"hello": 0, "[UNK]": 1}, unk_token="[UNK]"))
    assert AsciiWordPiece.of(other) is None
