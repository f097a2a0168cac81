"""Token counting: real tiktoken encodings for OpenAI models, documented approximations for Claude
and Gemini.

OpenAI chat prompts are counted the way OpenAI documents it for its chat models: each message
costs its content tokens plus 3 (4 with a ``name``), and every reply is primed with 3 more.
Anthropic publishes no offline tokenizer for Claude 3 and later, so Claude prompts and completions
are counted with ``cl100k_base`` and the same per-message overhead. That is an approximation (it is
also what LiteLLM falls back to for Claude 3 models); the real count may differ by some percent.
Gemini's SentencePiece tokenizer is not published offline either; Gemini models are counted with
``o200k_base``, the encoding closest to its vocabulary size, under the same caveat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal

import tiktoken

from .pricing import ModelCard

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
CLAUDE_APPROXIMATION_ENCODING = "cl100k_base"
APPROXIMATIONS = {"claude-approx": CLAUDE_APPROXIMATION_ENCODING, "gemini-approx": "o200k_base"}


class TokenizerUnavailable(RuntimeError):
    """The BPE files of an encoding could not be loaded (usually: no internet and no cache)."""


CacheTTL = Literal["5m", "1h"]  # an Anthropic cache_control mark's ``ttl``


@dataclass(frozen=True)
class PromptMessage:
    role: str
    content: str
    name: str | None = None
    # An Anthropic cache_control mark at the end of this message, by its ttl; None: no mark.
    cache_mark: CacheTTL | None = None
    # The message's answer-changing fields the simulator does not implement (an assistant's
    # tool calls, a tool message's call id), as canonical JSON: part of the cache keys only.
    keyed: str = ""


def encoding_name(card: ModelCard) -> str:
    return APPROXIMATIONS.get(card.tokenizer, card.tokenizer)


@cache
def get_encoding(name: str) -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:
        raise TokenizerUnavailable(
            f"cannot load the tiktoken encoding {name!r} ({type(exc).__name__}: {exc}). "
            "Without internet, point TIKTOKEN_CACHE_DIR at a folder holding the encoding files "
            "(in this project's CI: ../shared/tiktoken)."
        ) from exc


# tiktoken's pre-tokenizing regex gives up on some long runs of one character ("Max stack size
# exceeded for backtracking": 999,999 spaces under o200k_base, inside the default body limit). Such
# a text is counted in pieces of this many characters; a piece boundary can split one token in two.
PIECE_CHARS = 100_000


def token_count(enc: tiktoken.Encoding, text: str) -> int:
    try:
        return len(enc.encode(text, disallowed_special=()))
    except ValueError:
        pieces = (text[at : at + PIECE_CHARS] for at in range(0, len(text), PIECE_CHARS))
        return sum(len(enc.encode(piece, disallowed_special=())) for piece in pieces)


def count_text(card: ModelCard, text: str) -> int:
    return token_count(get_encoding(encoding_name(card)), text)


def message_tokens(encoding: str, message: PromptMessage) -> int:
    """One message's share of a prompt count: its content, role and name, and the overhead."""
    enc = get_encoding(encoding)
    total = TOKENS_PER_MESSAGE + _text_tokens(encoding, message.role)
    total += token_count(enc, message.content)
    if message.keyed:  # an assistant's tool calls and their arguments are in the prompt too
        total += token_count(enc, message.keyed)
    if message.name:
        total += TOKENS_PER_NAME + _text_tokens(encoding, message.name)
    return total


@lru_cache(maxsize=1024)
def _text_tokens(encoding: str, text: str) -> int:
    """Roles and names repeat across requests: counted once."""
    return token_count(get_encoding(encoding), text)


def count_prompt(card: ModelCard, messages: Sequence[PromptMessage]) -> int:
    encoding = encoding_name(card)
    return REPLY_PRIMING_TOKENS + sum(message_tokens(encoding, m) for m in messages)


def describe(cards: Sequence[ModelCard]) -> dict[str, str]:
    """Which tokenizer counts each model, for /readyz."""
    return {
        card.name: (
            f"{APPROXIMATIONS[card.tokenizer]} (approximation: no offline tokenizer exists for "
            f"{card.provider}'s models)"
            if card.tokenizer in APPROXIMATIONS
            else f"{card.tokenizer} (tiktoken)"
        )
        for card in cards
    }
