"""The model `make embedding-model` distils (embedding-model/distill.py, also the gateway image's
first stage) is the one the router was trained on and the semantic cache was tuned with.

It needs PyTorch (about 1.5 GB, in a venv of its own), so these tests run once it is built: CI
builds it (.ci/run); on a clone, `make embedding-model` first.
"""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from ai_gateway.embeddings import Model2VecEmbedder
from ai_gateway.pricing import default_price_table
from ai_gateway.router import BUILT_MODEL_FOLDER, default_router, tiers_for
from ai_gateway.router_evaluation import load_routing_set, probabilities
from tests.paths import EMBEDDING_MODEL, REPO

BUILT = REPO / BUILT_MODEL_FOLDER
pytestmark = pytest.mark.skipif(
    not (BUILT / "model.safetensors").is_file(),
    reason=f"needs {BUILT}: run `make embedding-model` (PyTorch, about 1.5 GB; CI builds it)",
)
needs_shared = pytest.mark.skipif(
    not EMBEDDING_MODEL.is_dir(), reason=f"compares with {EMBEDDING_MODEL}, which is missing"
)


def test_the_router_uses_its_embedding_head_with_the_built_model():
    assert default_router().embedding_head_refusal(Model2VecEmbedder(str(BUILT))) is None


@needs_shared
def test_the_built_model_reproduces_the_copy_the_router_was_trained_on_row_for_row():
    built = load_file(str(BUILT / "model.safetensors"))["embeddings"].astype(np.float32)
    trained = load_file(str(EMBEDDING_MODEL / "model.safetensors"))["embeddings"]
    trained = trained.astype(np.float32)
    assert built.shape == trained.shape == (29525, 256)
    cosines = (built * trained).sum(1) / np.linalg.norm(built, axis=1)
    cosines /= np.linalg.norm(trained, axis=1)
    assert cosines.min() > 0.9999  # float16 rounding apart (0.9999998 when measured)
    tokenizer = (BUILT / "tokenizer.json").read_bytes()
    assert tokenizer == (EMBEDDING_MODEL / "tokenizer.json").read_bytes()


@needs_shared
@pytest.mark.parametrize("routing_set", ["routing_labelled.yaml", "routing_heldout.yaml"])
def test_routing_with_the_built_model_picks_the_same_tiers(routing_set):
    examples = load_routing_set(REPO / "bench" / "data" / routing_set).prompts
    card = default_price_table().resolve("gpt-5.4")
    assert card is not None
    router = default_router()
    head = router.embedding_head
    chosen = []
    for model in (BUILT, EMBEDDING_MODEL):
        p = probabilities(examples, card, router, Model2VecEmbedder(str(model)))
        chosen.append((p, tiers_for(p, head.default_threshold, head.simple_confidence)))
    (built_p, built_tiers), (trained_p, trained_tiers) = chosen
    assert np.abs(built_p - trained_p).max() < 0.001  # 0.0002 when measured
    assert (built_tiers == trained_tiers).all()
