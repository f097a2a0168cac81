"""Pluggable prompt embedders for the semantic cache; every vector is L2-normalised float32.

- ``model2vec``: a static embedding model (the model2vec package: numpy and tokenizers, no torch),
  loaded from a local folder or a published model name.
- ``lexical``: hashed character n-grams. It needs no model and no download; it catches light
  rephrasings and little else, which makes it a safe fallback.

``embed`` reads what the model reads (model2vec cuts a long text), which suits the router.
``embed_whole`` is for the semantic cache: a vector of a cut text stands for its beginning
alone, so two long prompts that share it would look identical, and the guard would then have to
compare them whole (seconds of CPU at 1 MiB). It returns None for such a text.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

import numpy as np

from .wordpiece import AsciiWordPiece


class EmbedderUnavailable(RuntimeError):
    """The configured embedding model could not be loaded."""


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, text: str) -> np.ndarray: ...

    def embed_whole(self, text: str) -> np.ndarray | None: ...


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
        loaded = self._model
        self._direct = loaded.token_mapping is None and loaded.weights is None
        self._max_tokens = loaded.max_length
        self._max_chars = (
            None if loaded.max_length is None else loaded.max_length * loaded.median_token_length
        )
        self._wordpiece = AsciiWordPiece.of(loaded.tokenizer) if self._direct else None

    def embed(self, text: str) -> np.ndarray:
        if not self._direct:
            return _normalised(self._model.encode([text])[0])
        return _normalised(self._mean_vector(self._token_ids(text)))

    def embed_whole(self, text: str) -> np.ndarray | None:
        """None past the model's window: ``max_length`` tokens, after a first cut at
        ``max_length`` x the median token length in characters."""
        if self._max_chars is not None and len(text) > self._max_chars:
            return None
        ids = self._token_ids(text)
        if self._max_tokens is not None and len(ids) > self._max_tokens:
            return None
        if not self._direct:
            return self.embed(text)
        return _normalised(self._mean_vector(ids))

    def _token_ids(self, text: str) -> list[int]:
        """The ids ``StaticModel.encode`` embeds, before its token cut: the same character cut
        and tokenizer. One text runs on this thread; the batch methods hand it to a thread
        pool, which waits for a free core on a busy server."""
        if self._max_chars is not None:
            text = text[: self._max_chars]
        ids = None if self._wordpiece is None else self._wordpiece.ids(text)
        if ids is None:
            ids = self._model.tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def _mean_vector(self, ids: list[int]) -> np.ndarray:
        """``StaticModel.encode`` for one text's ids, bit for bit, without its batching, progress
        bar and dispatch (which cost more than the tokenizer on a short prompt): the same token
        cut, unknown-token removal, mean in the model's dtype and normalisation."""
        loaded = self._model
        if self._max_tokens is not None:
            ids = ids[: self._max_tokens]
        if loaded.unk_token_id is not None:
            ids = [i for i in ids if i != loaded.unk_token_id]
        if not ids:
            return np.zeros(self.dimensions, dtype=np.float32)
        rows = loaded.embedding[ids]
        # np.mean's and np.linalg.norm's own arithmetic (accumulator type, summation order,
        # division) without their argument handling, which was half of this function's time.
        total = np.add.reduce(rows, axis=0, dtype=_mean_accumulator(rows.dtype))
        total /= len(ids)
        mean: np.ndarray = total.astype(np.float32 if rows.dtype == np.int8 else rows.dtype)
        if loaded.normalize:
            mean32 = mean.astype(np.float32)
            norm = np.sqrt(np.add.reduce(mean32 * mean32)) + 1e-32
            mean = (mean32 / norm).astype(mean.dtype)
        return mean


def _mean_accumulator(dtype: np.dtype) -> type[np.floating]:
    """The type np.mean sums in: float64 for integers, float32 for float16, else the dtype's."""
    if dtype.kind in "iub":
        return np.float64
    return np.float32 if dtype == np.float16 else dtype.type


# The longest text the lexical embedder embeds whole: it hashes about 5 ms of n-grams per 1,000
# characters, and the guard then compares every word. The same cut as minilm-l6-m2v-256's (512
# tokens x 6 characters).
LEXICAL_MAX_CHARS = 3072


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

    def embed_whole(self, text: str) -> np.ndarray | None:
        return None if len(text) > LEXICAL_MAX_CHARS else self.embed(text)


def open_embedder(kind: str, model: str | None) -> Embedder:
    if kind == "lexical":
        return LexicalEmbedder()
    if not model:
        raise EmbedderUnavailable(
            "the model2vec embedder needs a model: set GATEWAY_EMBEDDING_MODEL or "
            "cache.semantic.model, or choose cache.semantic.embedder: lexical"
        )
    return Model2VecEmbedder(model)
