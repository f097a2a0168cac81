"""Pluggable prompt embedders for the semantic cache; every vector is L2-normalised float32.

- ``model2vec``: a static embedding model (the model2vec package: numpy and tokenizers, no torch),
  loaded from a local folder or a published model name.
- ``lexical``: hashed character n-grams. It needs no model and no download; it catches light
  rephrasings and little else, which makes it a safe fallback.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

import numpy as np


class EmbedderUnavailable(RuntimeError):
    """The configured embedding model could not be loaded."""


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, text: str) -> np.ndarray: ...


def _normalised(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


class Model2VecEmbedder:
    def __init__(self, model: str) -> None:
        try:
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(model)
        except Exception as exc:
            raise EmbedderUnavailable(
                f"cannot load the model2vec embedding model {model!r} "
                f"({type(exc).__name__}: {str(exc)[:200]}). Set GATEWAY_EMBEDDING_MODEL or "
                "cache.semantic.model to a local model folder or a published model name, or "
                "choose cache.semantic.embedder: lexical, which needs no model."
            ) from exc
        self.name = f"model2vec:{model}"
        self.dimensions = int(self._model.dim)

    def embed(self, text: str) -> np.ndarray:
        return _normalised(self._model.encode([text])[0])


class LexicalEmbedder:
    """Character 3- to 5-grams of the lowercased words, hashed into a fixed number of buckets."""

    def __init__(self, dimensions: int = 1024) -> None:
        self.name = "lexical:char-3-5-grams"
        self.dimensions = dimensions

    def embed(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimensions, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            padded = f" {word} "
            for n in (3, 4, 5):
                for i in range(max(len(padded) - n + 1, 1)):
                    gram = padded[i : i + n].encode()
                    bucket = int.from_bytes(hashlib.blake2b(gram, digest_size=4).digest(), "big")
                    vector[bucket % self.dimensions] += 1.0
        return _normalised(vector)


def open_embedder(kind: str, model: str | None) -> Embedder:
    if kind == "lexical":
        return LexicalEmbedder()
    if not model:
        raise EmbedderUnavailable(
            "the model2vec embedder needs a model: set GATEWAY_EMBEDDING_MODEL or "
            "cache.semantic.model, or choose cache.semantic.embedder: lexical"
        )
    return Model2VecEmbedder(model)
