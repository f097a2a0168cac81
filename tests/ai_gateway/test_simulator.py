"""The simulated provider: deterministic, exact token counts, bounded by max_tokens."""

from __future__ import annotations

import json
import statistics

import jsonschema
import pytest

from ai_gateway.pricing import default_price_table
from ai_gateway.simulator import (
    AnswerShape,
    LatencyPlan,
    SimulatedProvider,
    latency_plan,
    simulate_completion,
    stream_pieces,
)
from ai_gateway.tokens import count_text
from ai_gateway.tool_prompt import ToolPrompt


def test_same_seed_same_text_and_different_seed_different_text():
    card = default_price_table().resolve("gpt-4")
    assert simulate_completion(card, 500, 1) == simulate_completion(card, 500, 1)
    assert simulate_completion(card, 500, 1).text != simulate_completion(card, 500, 2).text


def test_token_count_is_exact_and_capped():
    table = default_price_table()
    for name in table.names():
        card = table.resolve(name)
        for seed in range(200):
            result = simulate_completion(card, 120, seed)
            assert result.completion_tokens == count_text(card, result.text)
            assert result.completion_tokens <= 120
            if result.finish_reason == "stop":
                assert result.text.endswith(".")
            else:
                assert result.completion_tokens == 120


def test_short_answers_count_exactly_at_every_cap():
    """Sentence breaks near the end of an answer are where a miscount would hide."""
    card = default_price_table().resolve("gpt-4o-mini")
    for cap in range(1, 40):
        for seed in range(30):
            result = simulate_completion(card, cap, seed)
            assert result.completion_tokens == count_text(card, result.text) <= cap
            assert ".." not in result.text and not result.text.startswith(" ")


def test_lengths_follow_the_models_median():
    card = default_price_table().resolve("gpt-4o-mini")
    lengths = [simulate_completion(card, 16_000, seed).completion_tokens for seed in range(300)]
    assert (
        abs(statistics.median(lengths) - card.output_tokens.median)
        < 0.15 * card.output_tokens.median
    )


def test_latency_plan_scales_and_zero_turns_it_off():
    card = default_price_table().resolve("gpt-4")
    plan = latency_plan(card, 1.0)
    assert plan.first_token_s == card.latency.ttft_ms / 1000
    assert plan.total_s(101) == plan.first_token_s + 100 / card.latency.tokens_per_second
    assert latency_plan(card, 0).total_s(1000) == 0


def test_stream_pieces_reassemble_the_text():
    text = "alpha beta. gamma delta epsilon."
    assert "".join(stream_pieces(text)) == text


def test_provider_length_is_the_length_of_its_completion():
    """The baseline prices a request by length() without composing it; it must agree."""
    provider = SimulatedProvider(latency_scale=0)
    for name in ("gpt-4", "gpt-4o-mini", "claude-haiku-4-5"):
        card = default_price_table().resolve(name)
        for i in range(20):
            canonical = f"request {i}"
            answer = provider.complete(card, 200, canonical)
            assert provider.length(card, 200, canonical) == answer.completion_tokens


def test_a_stop_sequence_ends_the_text_where_it_first_occurs_and_is_recounted():
    card = default_price_table().resolve("gpt-4o-mini")
    full = simulate_completion(card, 400, 7)
    first_words = full.text.split()[:5]
    sequence = " " + first_words[3]  # occurs after the third word at the latest
    stopped = simulate_completion(card, 400, 7, AnswerShape(stop=(sequence, "never in the text")))
    cut_at = full.text.find(sequence)
    assert stopped.text == full.text[:cut_at] and sequence not in stopped.text
    assert (stopped.finish_reason, stopped.stop_sequence) == ("stop", sequence)
    assert stopped.completion_tokens == count_text(card, stopped.text) < full.completion_tokens
    mid_word = first_words[0][1:3]  # cuts inside a word: the rest is counted as it encodes
    inside = simulate_completion(card, 400, 7, AnswerShape(stop=(mid_word,)))
    assert inside.completion_tokens == count_text(card, inside.text)
    assert simulate_completion(card, 400, 7, AnswerShape(stop=("no such words",))) == full


def test_the_earliest_stop_sequence_wins_and_the_longest_of_two_at_one_place():
    card = default_price_table().resolve("gpt-4o-mini")
    text = simulate_completion(card, 400, 11).text
    second, third = text.split()[1], text.split()[2]
    earliest = simulate_completion(card, 400, 11, AnswerShape(stop=(" " + third, " " + second)))
    assert earliest.stop_sequence == " " + second
    longer = " " + second + " " + third
    both = simulate_completion(card, 400, 11, AnswerShape(stop=(" " + second, longer)))
    assert both.stop_sequence == longer and both.text == text[: text.find(longer)]


def test_provider_length_sees_the_stop_sequence():
    """The baseline of a request with stop sequences is priced at the stopped length."""
    provider = SimulatedProvider(latency_scale=0)
    card = default_price_table().resolve("gpt-4")
    text = provider.complete(card, 300, "a request").text
    stop = AnswerShape(stop=(" " + text.split()[2],))
    stopped = provider.complete(card, 300, "a request", stop)
    assert provider.length(card, 300, "a request", stop) == stopped.completion_tokens
    assert stopped.completion_tokens < provider.length(card, 300, "a request")


async def test_provider_pieces_are_the_text_in_order():
    provider = SimulatedProvider(latency_scale=0)
    card = default_price_table().resolve("gpt-4")
    answer = provider.complete(card, 50, "pieces")
    pieces = [piece async for piece in provider.pieces(answer.text, provider.latency(card))]
    assert len(pieces) > 1 and "".join(pieces) == answer.text


class RecordedSleeps:
    """asyncio.sleep for the simulator, recording each wait instead of taking it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(round(seconds, 9))


async def test_a_copy_joining_late_gets_what_was_generated_at_once_then_the_providers_pace(
    monkeypatch,
):
    sleeps = RecordedSleeps()
    monkeypatch.setattr("ai_gateway.simulator.asyncio.sleep", sleeps)
    provider = SimulatedProvider(latency_scale=1)
    plan = LatencyPlan(first_token_s=1.0, per_token_s=0.1)
    text = "one two three four five"
    assert [p async for p in provider.pieces(text, plan)] == stream_pieces(text)
    assert sleeps.waits == [1.0, 0.1, 0.1, 0.1, 0.1]
    sleeps.waits.clear()
    # 1.25 s in, three pieces were out and the fourth half-way: 0.05 s left of it.
    assert "".join([p async for p in provider.pieces(text, plan.joined(1.25))]) == text
    assert sleeps.waits == [0.05, 0.1]
    sleeps.waits.clear()
    await provider.deliver(plan.joined(1.25), completion_tokens=5)
    assert sleeps.waits == [0.15]  # 1.4 s for the whole answer, 1.25 s of it past
    await provider.deliver(plan.joined(2.0), completion_tokens=5)
    assert sleeps.waits == [0.15]  # already whole: no wait


DAYS = {"type": "integer", "minimum": 1, "maximum": 7}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": DAYS},
    "required": ["city", "days"],
}


def test_json_answers_are_json_and_counted_exactly():
    """JSON mode answers an object; structured output a value its schema accepts."""
    card = default_price_table().resolve("gpt-4o")
    schema = ToolPrompt(response_schema=json.dumps(SCHEMA))
    stopped = 0
    for seed in range(50):
        shape = AnswerShape(tools=schema, answer_format="json_schema")
        structured = simulate_completion(card, 500, seed, shape)
        jsonschema.validate(json.loads(structured.text), SCHEMA)
        assert structured.completion_tokens == count_text(card, structured.text)
        mode = simulate_completion(card, 500, seed, AnswerShape(answer_format="json_object"))
        assert mode.completion_tokens == count_text(card, mode.text) <= 500
        if mode.finish_reason == "stop":
            assert isinstance(json.loads(mode.text)["answer"], str)
            stopped += 1
        else:  # the cap cut the object short, as a provider's model stops
            assert mode.completion_tokens == 500
    assert stopped > 25  # most answers fit their cap whole


def test_a_json_answer_cut_by_its_cap_is_not_json_and_says_length():
    card = default_price_table().resolve("gpt-4o")
    cut = simulate_completion(card, 6, 3, AnswerShape(answer_format="json_object"))
    assert (cut.finish_reason, cut.completion_tokens) == ("length", 6)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.text)


def test_stream_pieces_keep_trailing_whitespace():
    """A stop sequence may cut the text after a space; the stream must end as the text does."""
    assert "".join(stream_pieces("alpha beta ")) == "alpha beta "
    assert "".join(stream_pieces("  ")) == "  "
