"""BERT's WordPiece tokenizer for ASCII text, in Python, with each word's pieces remembered.

The embedding model's tokenizer (Hugging Face ``tokenizers``) normalises, splits and looks up
every word of every prompt, and builds a full ``Encoding`` (tokens, offsets, masks) that the
embedder throws away. On a busy gateway that costs more than the rest of the embedding. Prompts
repeat their words, so this module splits ASCII text the way BERT's normaliser and pre-tokenizer
do and looks each word's pieces up in a dictionary filled on first sight. It is used only for a
tokenizer whose configuration it reproduces exactly (``AsciiWordPiece.of`` returns None
otherwise); text with non-ASCII characters or a literal added token goes to the real tokenizer.
Tests compare both on every evaluation prompt and on generated ASCII text.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any, Protocol

MAX_REMEMBERED_WORDS = 200_000
# BERT's normaliser drops control characters, then maps tab, newline and return to a space; its
# pre-tokenizer splits on whitespace and makes each punctuation character a word of its own.
_DROPPED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORDS = re.compile(
    r"[^\s" + re.escape(string.punctuation) + r"]+|[" + re.escape(string.punctuation) + r"]"
)


class HFTokenizer(Protocol):
    def to_str(self) -> str: ...


class AsciiWordPiece:
    def __init__(
        self, vocab: dict[str, int], unk_id: int, prefix: str, max_chars: int, added: list[str]
    ) -> None:
        self._vocab = vocab
        self._unk = (unk_id,)
        self._prefix = prefix
        self._max_chars = max_chars
        self._added = added
        self._words: dict[str, tuple[int, ...]] = {}

    @classmethod
    def of(cls, tokenizer: HFTokenizer) -> AsciiWordPiece | None:
        """The Python twin of ``tokenizer``, or None if its configuration is not BERT's."""
        config: dict[str, Any] = json.loads(tokenizer.to_str())
        model = config.get("model") or {}
        bert_normaliser = {
            "type": "BertNormalizer",
            "clean_text": True,
            "handle_chinese_chars": True,
            "strip_accents": None,
            "lowercase": True,
        }
        added = config.get("added_tokens") or []
        if (
            config.get("normalizer") != bert_normaliser
            or config.get("pre_tokenizer") != {"type": "BertPreTokenizer"}
            or model.get("type") != "WordPiece"
            or model.get("unk_token") not in model.get("vocab", {})
            or any(not token.get("special") or token.get("normalized") for token in added)
        ):
            return None
        return cls(
            vocab=model["vocab"],
            unk_id=model["vocab"][model["unk_token"]],
            prefix=model.get("continuing_subword_prefix", "##"),
            max_chars=int(model.get("max_input_chars_per_word", 100)),
            added=[token["content"] for token in added],
        )

    def ids(self, text: str) -> list[int] | None:
        """The token ids of ``text`` (no special tokens), or None when only the real tokenizer
        can tell: non-ASCII text, or text containing an added token such as ``[UNK]``."""
        if not text.isascii() or any(token in text for token in self._added):
            return None
        ids: list[int] = []
        for word in _WORDS.findall(_DROPPED.sub("", text).lower()):
            pieces = self._words.get(word)
            if pieces is None:
                if len(self._words) >= MAX_REMEMBERED_WORDS:
                    self._words.clear()
                pieces = self._words[word] = self._pieces(word)
            ids.extend(pieces)
        return ids

    def _pieces(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first; a word with an unmatched part is one unknown token."""
        if len(word) > self._max_chars:
            return self._unk
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else self._prefix + word[start:end]
                if piece in self._vocab:
                    pieces.append(self._vocab[piece])
                    start = end
                    break
            else:
                return self._unk
        return tuple(pieces)
