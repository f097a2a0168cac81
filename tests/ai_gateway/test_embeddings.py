"""Embedders: normalised vectors, a lexical fallback that needs no model, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ai_gateway.embeddings import (
    LEXICAL_MAX_CHARS,
    EmbedderUnavailable,
    LexicalEmbedder,
    Model2VecEmbedder,
    _normalised,
    open_embedder,
)
from tests.paths import EMBEDDING_MODEL, REPO

DATA = REPO / "bench" / "data"


def test_lexical_vectors_are_normalised_and_deterministic():
    embedder = LexicalEmbedder()
    a = embedder.embed("How do I cancel my order?")
    assert a.dtype == np.float32
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(a, LexicalEmbedder().embed("How do I cancel my order?"))


def test_lexical_similarity_orders_rephrasings_above_unrelated_text():
    embedder = LexicalEmbedder()
    base = embedder.embed("How do I cancel my order?")
    close = embedder.embed("how can I cancel my order")
    far = embedder.embed("Explain quantum entanglement to a child")
    assert float(base @ close) > 0.7 > float(base @ far)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(EmbedderUnavailable, match=r"cache\.semantic\.embedder: lexical"):
        open_embedder("model2vec", str(tmp_path / "no-such-model"))


@pytest.mark.skipif(
    not EMBEDDING_MODEL.exists(), reason=f"the model2vec model is not at {EMBEDDING_MODEL}"
)
@pytest.mark.parametrize("dtype", ["float16", "float32", "int8"])
def test_model2vec_fast_path_is_model2vec_encode_bit_for_bit(dtype):
    """The embedder skips StaticModel.encode's batching and numpy's mean and norm wrappers; its
    vectors must not move a bit, or the semantic cache and router evaluations would change. The
    model on disk is float16; published models also come in float32 and (quantised) int8."""
    embedder = Model2VecEmbedder(str(EMBEDDING_MODEL))
    table = embedder._model.embedding
    if dtype == "int8":
        table = np.clip(np.rint(table.astype(np.float32) * 30), -127, 127)
    embedder._model.embedding = table.astype(dtype)
    texts = [
        "Please summarize the invoice with reference 7-1042 for account 93.",
        "How do I reset my password?  Ünïcödé, emoji 😀, [UNK] [MASK] tokens",
        "x" * 5000,
        "",
        "\u200b",
        *(line for line in (DATA / "routing_heldout.yaml").read_text().splitlines()[:300]),
    ]
    for text in texts:
        reference = _normalised(embedder._model.encode([text])[0])
        vector = embedder.embed(text)
        assert vector.dtype == reference.dtype == np.float32
        assert np.array_equal(vector, reference), text


def test_lexical_embeds_whole_texts_up_to_its_window_only():
    embedder = LexicalEmbedder()
    inside = "cancel my order " * (LEXICAL_MAX_CHARS // 16)
    assert len(inside) <= LEXICAL_MAX_CHARS
    whole = embedder.embed_whole(inside)
    assert whole is not None and np.array_equal(whole, embedder.embed(inside))
    assert embedder.embed_whole(inside + "x" * (LEXICAL_MAX_CHARS - len(inside) + 1)) is None


@pytest.mark.skipif(
    not EMBEDDING_MODEL.exists(), reason=f"the model2vec model is not at {EMBEDDING_MODEL}"
)
def test_model2vec_embeds_whole_only_what_it_reads_whole():
    """A text past the model's window (its characters or its tokens) has no whole vector; one
    inside it has exactly the vector ``embed`` gives."""
    embedder = Model2VecEmbedder(str(EMBEDDING_MODEL))
    window = embedder._model.max_length
    short = "How do I reset my password?"
    vector = embedder.embed_whole(short)
    assert vector is not None and np.array_equal(vector, embedder.embed(short))
    # One token per digit: the token cut is reached long before the character cut.
    at_window, past_window = "1 " * window, "1 " * (window + 1)
    assert len(past_window) < window * embedder._model.median_token_length
    assert len(embedder._token_ids(at_window)) == window
    whole = embedder.embed_whole(at_window)
    assert whole is not None and np.array_equal(whole, embedder.embed(at_window))
    assert embedder.embed_whole(past_window) is None
    assert embedder.embed_whole("x" * (window * embedder._model.median_token_length + 1)) is None
