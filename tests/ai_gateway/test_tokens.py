"""Token counting: every text a client may send is counted, within the body limit."""

from __future__ import annotations

from ai_gateway.tokens import PIECE_CHARS, PromptMessage, get_encoding, message_tokens, token_count


def test_a_run_the_tokenizer_gives_up_on_is_counted_in_pieces():
    """999,999 spaces (inside the 1 MiB body limit) stop tiktoken's o200k regex with "Max stack
    size exceeded for backtracking"; the count must still come out, close to the pieces' sum."""
    spaces = " " * 999_999
    enc = get_encoding("o200k_base")
    per_piece = len(enc.encode(" " * PIECE_CHARS))
    count = message_tokens("o200k_base", PromptMessage("user", spaces))
    assert abs(count - 10 * per_piece) <= 10 + 3  # one split token per boundary, plus overhead
    assert token_count(enc, "hello world") == len(enc.encode("hello world"))
