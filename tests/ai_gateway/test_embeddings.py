"""Embedders: normalised vectors, a lexical fallback that needs no model, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ai_gateway.embeddings import EmbedderUnavailable, LexicalEmbedder, open_embedder


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
