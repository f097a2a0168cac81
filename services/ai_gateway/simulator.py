"""The simulated provider: deterministic completions, their length, latency and pacing.

A completion is a pure function of the request: the same model, messages and sampling parameters
always give the same text, so runs are reproducible and exact repeats are recognisable. Its
length is drawn from the model's log-normal output distribution and capped by ``max_tokens``
(``finish_reason`` "length" when the cap cut it). The text is made of words that are one token
each in the model's encoding, so its token count is exact by construction (the tests check it by
encoding). A stop sequence ends the text where it first occurs, as a provider stops generating
there, without the sequence; that shorter text is counted again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal

from .json_values import draw
from .pricing import ModelCard
from .tokens import encoding_name, get_encoding, token_count
from .tool_calls import ToolCall, forced_call
from .tool_prompt import ToolPrompt

FinishReason = Literal["stop", "length", "tool_calls"]

_WORDS = """
the system service request cost model cache team budget token answer data cluster node pod
value report change result time user order account price plan rate limit query support issue
check update review step option case state point level group range share usage total spend
saving policy rule metric alert signal load traffic latency error status region zone network
storage memory server client record field table file event window period month week day hour
first next last other same small large high low fast slow simple clear direct short long new
good better best main key core open private public shared daily weekly current recent local can
will should may must would could does make take give keep use find show need set run read write
send move start stop add remove reduce increase measure compare follow apply this that these
each every all some most more less many few any both either and but or so if when then while
because after before during within without across into from with for to of in on at by about
over under between as is are was be has have it its we you they
""".split()

_SENTENCE_WORDS = (6, 16)


@dataclass(frozen=True)
class SimulatedCompletion:
    text: str
    completion_tokens: int
    finish_reason: FinishReason
    stop_sequence: str | None = None  # the request's stop sequence that ended the text
    tool_call: ToolCall | None = None  # made instead of text when the request forces one


@dataclass(frozen=True)
class LatencyPlan:
    """Seconds before the first token, then seconds per further token (already scaled)."""

    first_token_s: float
    per_token_s: float
    # How far into the plan its answer is when it is served: a copy sharing an answer the
    # provider is already generating (in_flight.py) gets what was generated at once.
    joined_s: float = 0.0

    def total_s(self, completion_tokens: int) -> float:
        return self.first_token_s + self.per_token_s * max(completion_tokens - 1, 0)

    def remaining_s(self, completion_tokens: int) -> float:
        """What is left of the answer's time for whoever is served it."""
        return max(self.total_s(completion_tokens) - self.joined_s, 0.0)

    def joined(self, elapsed_s: float) -> LatencyPlan:
        """The plan for a copy joining ``elapsed_s`` after the answer began."""
        return replace(self, joined_s=max(elapsed_s, 0.0))


@cache
def _one_token_words(encoding: str) -> tuple[str, ...]:
    """Words that are one token both alone and after a space, so any text of them counts exactly."""
    enc = get_encoding(encoding)
    words = tuple(w for w in _WORDS if len(enc.encode(w)) == 1 and len(enc.encode(" " + w)) == 1)
    if len(words) < 50:
        raise RuntimeError(f"too few one-token words for {encoding}: {len(words)}")
    return words


def request_seed(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw_length(card: ModelCard, rng: random.Random) -> int:
    dist = card.output_tokens
    return max(1, round(rng.lognormvariate(math.log(dist.median), dist.sigma)))


def _compose(words: tuple[str, ...], n_tokens: int, rng: random.Random, complete: bool) -> str:
    """Exactly ``n_tokens`` one-token pieces: sentences of 6 to 16 words, each full stop one
    token; a complete answer ends its last sentence, a cut one ends on a word."""
    body = n_tokens - 1 if complete else n_tokens
    drawn = rng.choices(words, k=body)  # one draw for the whole answer
    sentences: list[str] = []
    start = 0
    while start < body:
        end = start + rng.randint(*_SENTENCE_WORDS)
        if end >= body - 1:  # no full stop in the last piece: the sentence takes the rest
            sentences.append(" ".join(drawn[start:body]))
            break
        sentences.append(" ".join(drawn[start:end]))
        start = end + 1  # piece ``end`` is the full stop
    return ". ".join(sentences) + ("." if complete else "")


def completion_length(card: ModelCard, max_tokens: int, seed: int) -> tuple[int, FinishReason]:
    """How many tokens the simulated completion has, without composing its text."""
    wanted = draw_length(card, random.Random(seed))
    return min(wanted, max_tokens), "length" if wanted > max_tokens else "stop"


AnswerFormat = Literal["text", "json_object", "json_schema"]


@dataclass(frozen=True)
class AnswerShape:
    """What the request asks of the answer's form: stop sequences, the tools (a forcing choice
    gets a call), and JSON (an object, or one its response schema accepts)."""

    stop: tuple[str, ...] = ()
    tools: ToolPrompt | None = None
    answer_format: AnswerFormat = "text"


PLAIN = AnswerShape()


def simulate_completion(
    card: ModelCard, max_tokens: int, seed: int, shape: AnswerShape = PLAIN
) -> SimulatedCompletion:
    forced = forced_call(card, shape.tools, max_tokens, seed)
    if forced is not None:  # tool_calls.py: a call instead of text
        finish: FinishReason = "length" if forced.cut else "tool_calls"
        return SimulatedCompletion("", forced.tokens, finish, tool_call=forced.call)
    rng = random.Random(seed)
    wanted = draw_length(card, rng)
    finish = "length" if wanted > max_tokens else "stop"
    words = _one_token_words(encoding_name(card))
    length = min(wanted, max_tokens)
    # One-token words make the count exact by construction (tests encode every model's answers).
    completion = SimulatedCompletion(_compose(words, length, rng, finish == "stop"), length, finish)
    if shape.answer_format != "text":
        completion = _as_json(card, completion, shape, rng, max_tokens)
    return _stopped(card, completion, shape.stop) if shape.stop else completion


def _as_json(
    card: ModelCard,
    completion: SimulatedCompletion,
    shape: AnswerShape,
    rng: random.Random,
    max_tokens: int,
) -> SimulatedCompletion:
    """JSON mode's answer: an object holding the text, or a value the response schema accepts
    (json_values.py); recounted, and cut at the cap as a provider's model stops (then not
    valid JSON, with finish "length", as the providers' answers are)."""
    schema = None if shape.tools is None else shape.tools.response_schema
    if shape.answer_format == "json_schema" and schema is not None:
        value = draw(json.loads(schema), rng)
    else:
        value = {"answer": completion.text}
    text = json.dumps(value)
    enc = get_encoding(encoding_name(card))
    encoded = enc.encode(text, disallowed_special=())
    if len(encoded) > max_tokens:
        return SimulatedCompletion(enc.decode(encoded[:max_tokens]), max_tokens, "length")
    return SimulatedCompletion(text, len(encoded), "stop")


def _stopped(
    card: ModelCard, completion: SimulatedCompletion, stop: tuple[str, ...]
) -> SimulatedCompletion:
    """The text up to the earliest stop sequence in it (the longest one where two start
    together), recounted: a cut inside a word is not one token any more."""
    found = [(at, -len(seq), seq) for seq in stop if seq and (at := completion.text.find(seq)) >= 0]
    if not found:
        return completion
    at, _, sequence = min(found)
    text = completion.text[:at]
    tokens = token_count(get_encoding(encoding_name(card)), text)
    return SimulatedCompletion(text, tokens, "stop", sequence)


def _forces(shape: AnswerShape) -> bool:
    return shape.tools is not None and shape.tools.forced


def latency_plan(card: ModelCard, latency_scale: float) -> LatencyPlan:
    return LatencyPlan(
        first_token_s=card.latency.ttft_ms / 1000 * latency_scale,
        per_token_s=latency_scale / card.latency.tokens_per_second,
    )


_STREAM_PIECE = re.compile(r"\s*\S+")


def stream_pieces(text: str, words_per_piece: int = 1) -> list[str]:
    """Split text into the deltas a stream sends: one word (with its leading space) each."""
    words = _STREAM_PIECE.findall(text)
    pieces = [
        "".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)
    ]
    rest = text[sum(map(len, pieces)) :]  # trailing whitespace (a stop sequence cut there)
    return [*pieces, rest] if rest else pieces


class SimulatedProvider:
    """The one owner of the simulated provider: what it answers, and how fast it delivers.

    Answers are seeded by the request's canonical form for the served model (without its stop
    sequences, which cut the answer), so they repeat.
    """

    def __init__(self, latency_scale: float) -> None:
        self.latency_scale = latency_scale

    def complete(
        self, card: ModelCard, max_tokens: int, canonical: str, shape: AnswerShape = PLAIN
    ) -> SimulatedCompletion:
        return simulate_completion(card, max_tokens, request_seed(canonical), shape)

    def length(
        self, card: ModelCard, max_tokens: int, canonical: str, shape: AnswerShape = PLAIN
    ) -> int:
        """The completion's token count, without composing its text unless the shape asked for
        changes it (a stop sequence, a forced tool call, JSON)."""
        if shape.stop or shape.answer_format != "text" or _forces(shape):
            return self.complete(card, max_tokens, canonical, shape).completion_tokens
        return completion_length(card, max_tokens, request_seed(canonical))[0]

    def latency(self, card: ModelCard) -> LatencyPlan:
        return latency_plan(card, self.latency_scale)

    async def deliver(self, plan: LatencyPlan, completion_tokens: int) -> None:
        """Wait until a non-streamed answer would be complete."""
        remaining = plan.remaining_s(completion_tokens)
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def pieces(self, text: str, plan: LatencyPlan) -> AsyncIterator[str]:
        """The stream's text deltas, at the provider's pace; adapters only frame them."""
        behind = plan.joined_s  # the pieces generated before a copy joined come at once
        for index, piece in enumerate(stream_pieces(text)):
            delay = plan.first_token_s if index == 0 else plan.per_token_s
            wait, behind = delay - behind, max(behind - delay, 0.0)
            if wait > 0:
                await asyncio.sleep(wait)
            yield piece
