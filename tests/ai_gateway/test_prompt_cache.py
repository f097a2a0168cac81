"""The providers' prompt-cache rules, one by one, on a clock the tests move by hand."""

from __future__ import annotations

import pytest

from ai_gateway.pricing import default_price_table
from ai_gateway.prompt_cache import (
    ANTHROPIC_UNLISTED_MINIMUM,
    ProviderPromptCache,
    prefixes,
    readable_tokens,
    rules_for,
)
from ai_gateway.tokens import CacheTTL, PromptMessage, count_prompt
from tests.ai_gateway.support import ManualClock

TABLE = default_price_table()
GPT = TABLE.models["gpt-5.4"]
SONNET = TABLE.models["claude-sonnet-4-6"]
HAIKU = TABLE.models["claude-haiku-4-5"]
GEMINI = TABLE.models["gemini-2.5-flash"]


def handbook(words: int, marked: CacheTTL | None = None) -> PromptMessage:
    text = " ".join(["cost", "team", "budget", "report"] * (words // 4))
    return PromptMessage("system", text, cache_mark=marked)


def ask(system: PromptMessage, question: str = "Where is my order?") -> tuple[PromptMessage, ...]:
    return (system, PromptMessage("user", question))


def use(cache: ProviderPromptCache, card, messages, team: str = "team-a"):
    return cache.use(team, card, messages, count_prompt(card, messages))


@pytest.fixture
def cache(clock: ManualClock) -> ProviderPromptCache:
    return ProviderPromptCache(clock)


def test_openai_reads_the_longest_seen_prefix_in_128_token_steps(cache):
    messages = ask(handbook(1600))
    first = use(cache, GPT, messages)
    second = use(cache, GPT, ask(handbook(1600), "And my refund?"))
    system_tokens = prefixes(GPT, messages)[0].tokens
    assert first.cached_tokens == 0 and first.cache_write_tokens == 0
    assert second.cached_tokens == 1024 + (system_tokens - 1024) // 128 * 128
    assert second.cached_tokens <= system_tokens < second.cached_tokens + 128
    assert second.cache_write_tokens == 0  # OpenAI bills no write


def test_openai_ignores_prompts_under_1024_tokens(cache):
    messages = ask(handbook(600))
    use(cache, GPT, messages)
    assert use(cache, GPT, messages).cached_tokens == 0


def test_a_model_with_no_cached_price_has_no_prompt_cache(cache):
    """gpt-4 predates OpenAI's prompt caching: its repeats were counted as cache reads (at its
    full price, so the cost was right, but the report's cache row was not)."""
    gpt4 = TABLE.models["gpt-4"]
    assert gpt4.price_per_1m.cached_input is None
    messages = ask(handbook(1600))
    use(cache, gpt4, messages)
    assert use(cache, gpt4, messages).cached_tokens == 0
    use(cache, GPT, messages)
    assert use(cache, GPT, messages).cached_tokens > 0


def test_entries_expire_after_five_idle_minutes_and_a_hit_refreshes_them(cache, clock):
    messages = ask(handbook(1600))
    use(cache, GPT, messages)
    clock.advance(290)
    assert use(cache, GPT, messages).cached_tokens > 0  # refreshed here
    clock.advance(290)
    assert use(cache, GPT, messages).cached_tokens > 0
    clock.advance(301)
    assert use(cache, GPT, messages).cached_tokens == 0


def test_entries_are_per_team_and_per_model(cache):
    messages = ask(handbook(1600))
    use(cache, GPT, messages, team="team-a")
    assert use(cache, GPT, messages, team="team-b").cached_tokens == 0
    assert use(cache, TABLE.models["gpt-5.4-mini"], messages).cached_tokens == 0


def test_a_changed_prefix_misses(cache):
    use(cache, GPT, ask(handbook(1600)))
    changed = PromptMessage("system", "Today is Monday. " + handbook(1600).content)
    assert use(cache, GPT, ask(changed)).cached_tokens == 0


def test_anthropic_caches_only_at_a_breakpoint(cache):
    unmarked = ask(handbook(1600))
    use(cache, SONNET, unmarked)
    assert use(cache, SONNET, unmarked).cached_tokens == 0


def test_anthropic_writes_then_reads_the_marked_prefix(cache):
    marked = ask(handbook(1600, marked="5m"))
    system_tokens = prefixes(SONNET, marked)[0].tokens
    first = use(cache, SONNET, marked)
    second = use(cache, SONNET, ask(handbook(1600, marked="5m"), "Another question"))
    assert (first.cached_tokens, first.cache_write_tokens) == (0, system_tokens)
    assert (second.cached_tokens, second.cache_write_tokens) == (system_tokens, 0)


def test_anthropic_writes_only_the_part_after_the_last_hit(cache):
    system = handbook(1600, marked="5m")
    use(cache, SONNET, (system,))
    longer = (system, PromptMessage("user", handbook(400).content, cache_mark="5m"))
    spans = prefixes(SONNET, longer)
    outcome = use(cache, SONNET, longer)
    assert outcome.cached_tokens == spans[0].tokens
    assert outcome.cache_write_tokens == spans[1].tokens - spans[0].tokens


def conversation(turns: int) -> tuple[PromptMessage, ...]:
    """A handbook, then ``turns`` exchanges, the breakpoint on the last user turn only."""
    messages = [handbook(1600)]
    for turn in range(turns):
        if turn:
            messages.append(PromptMessage("assistant", f"Answer number {turn}."))
        messages.append(PromptMessage("user", f"Question number {turn + 1}?"))
    last = messages[-1]
    return (*messages[:-1], PromptMessage("user", last.content, cache_mark="5m"))


def test_anthropic_reads_what_the_previous_turn_wrote_when_the_breakpoint_moves_on(cache):
    """Anthropic's documented conversation pattern: the breakpoint rides the newest turn, and a
    read finds the entry the previous turn wrote at an earlier block boundary."""
    first, second = conversation(1), conversation(2)
    spans = prefixes(SONNET, second)
    assert spans[1].mark is None and spans[1].tokens == prefixes(SONNET, first)[-1].tokens
    written = use(cache, SONNET, first)
    assert (written.cached_tokens, written.cache_write_tokens) == (0, spans[1].tokens)
    moved_on = use(cache, SONNET, second)
    assert moved_on.cached_tokens == spans[1].tokens
    assert moved_on.cache_write_tokens == spans[-1].tokens - spans[1].tokens


@pytest.mark.parametrize(("notes", "reads"), [(19, True), (20, False)])
def test_anthropic_looks_back_at_most_20_blocks_before_a_breakpoint(clock, notes, reads):
    """The first turn wrote an entry at block 1; the breakpoint now sits ``notes`` + 1 blocks
    after it."""
    cache = ProviderPromptCache(clock)
    use(cache, SONNET, conversation(1))
    handbook_block, question = conversation(1)
    unmarked = PromptMessage("user", question.content)
    later = [PromptMessage("user", f"Note {n}.") for n in range(notes)]
    marked = PromptMessage("user", "And now?", cache_mark="5m")
    outcome = use(cache, SONNET, (handbook_block, unmarked, *later, marked))
    expected = prefixes(SONNET, conversation(1))[-1].tokens if reads else 0
    assert outcome.cached_tokens == expected


def test_anthropic_minimum_is_4096_for_haiku_4_5_and_1024_for_sonnet(cache):
    marked = ask(handbook(3000, marked="5m"))
    assert 2048 < prefixes(HAIKU, marked)[0].tokens < 4096
    assert use(cache, HAIKU, marked).cache_write_tokens == 0
    assert use(cache, SONNET, marked).cache_write_tokens > 0
    assert (rules_for(SONNET).minimum_tokens, rules_for(HAIKU).minimum_tokens) == (1024, 4096)
    longer = ask(handbook(4500, marked="5m"))
    assert use(cache, HAIKU, longer).cache_write_tokens == prefixes(HAIKU, longer)[0].tokens


def test_every_anthropic_model_of_the_table_has_its_listed_minimum():
    """An unlisted model would fall back to the largest minimum; the shipped ones are listed,
    and only Anthropic's minimums differ by model."""
    listed = {name for name, card in TABLE.models.items() if card.prompt_cache_min_tokens}
    anthropic = {name for name, card in TABLE.models.items() if card.provider == "anthropic"}
    assert listed == anthropic
    unlisted = HAIKU.model_copy(update={"name": "claude-next", "prompt_cache_min_tokens": None})
    assert rules_for(unlisted).minimum_tokens == ANTHROPIC_UNLISTED_MINIMUM == 4096
    assert max(TABLE.models[name].prompt_cache_min_tokens or 0 for name in anthropic) == 4096


def test_gemini_caches_implicitly_from_2048_tokens(cache):
    short, long = handbook(1600), handbook(2400)
    for system in (short, long):
        use(cache, GEMINI, ask(system))
    assert use(cache, GEMINI, ask(short, "Other question")).cached_tokens == 0
    again = ask(long, "Other question")
    assert use(cache, GEMINI, again).cached_tokens == prefixes(GEMINI, again)[0].tokens


def test_an_exact_repeat_reads_the_whole_prompt_but_the_reply_priming(cache):
    messages = ask(handbook(2400))
    use(cache, GEMINI, messages)
    assert use(cache, GEMINI, messages).cached_tokens == prefixes(GEMINI, messages)[-1].tokens


def test_readable_tokens_rounds_down_to_the_providers_increment():
    openai = rules_for(GPT)
    assert [readable_tokens(openai, n) for n in (1023, 1024, 1151, 1152, 2000)] == [
        0,
        1024,
        1024,
        1152,
        1920,
    ]


def test_cached_and_written_tokens_are_priced_at_their_own_prices():
    prices = SONNET.price_per_1m
    assert prices.cached_input is not None and prices.cache_write is not None
    cost = SONNET.cost_usd(3000, 100, cached=2000, cache_write=500)
    expected = 500 * prices.input + 2000 * prices.cached_input + 500 * prices.cache_write
    assert cost == pytest.approx((expected + 100 * prices.output) / 1e6)


def test_the_worst_write_is_what_a_first_request_writes(cache):
    """What a budget reserves at the write price: the longest marked prefix, when nothing is cached
    yet; nothing where the provider bills no writes or the prefix is under its minimum."""
    marked = ask(handbook(1600, marked="5m"))
    worst, worst_1h = ProviderPromptCache.worst_write_tokens(
        SONNET, marked, count_prompt(SONNET, marked)
    )
    assert worst > 0 and worst_1h == 0
    assert use(cache, SONNET, marked).cache_write_tokens == worst
    nothing = (0, 0)
    assert (
        ProviderPromptCache.worst_write_tokens(HAIKU, marked, count_prompt(HAIKU, marked))
        == nothing
    )
    plain = ask(handbook(1600))
    assert ProviderPromptCache.worst_write_tokens(GPT, plain, count_prompt(GPT, plain)) == nothing
    assert (
        ProviderPromptCache.worst_write_tokens(SONNET, plain, count_prompt(SONNET, plain))
        == nothing
    )


def test_a_one_hour_entry_outlives_five_minutes_and_a_hit_keeps_its_hour(cache, clock):
    one_hour = ask(handbook(1600, marked="1h"))
    written = use(cache, SONNET, one_hour)
    assert written.cache_write_1h_tokens == written.cache_write_tokens > 0
    clock.advance(50 * 60)
    assert use(cache, SONNET, one_hour).cached_tokens > 0  # refreshed for another hour
    clock.advance(59 * 60)
    assert use(cache, SONNET, one_hour).cached_tokens > 0
    clock.advance(3601)
    assert use(cache, SONNET, one_hour).cached_tokens == 0


def test_a_five_minute_entry_is_gone_where_a_one_hour_one_is_not(cache, clock):
    use(cache, SONNET, ask(handbook(1600, marked="5m")))
    use(cache, SONNET, ask(handbook(1200, marked="1h")))
    clock.advance(10 * 60)
    assert use(cache, SONNET, ask(handbook(1600, marked="5m"))).cached_tokens == 0
    assert use(cache, SONNET, ask(handbook(1200, marked="1h"))).cached_tokens > 0


def test_writes_are_one_hour_up_to_the_last_one_hour_mark_and_five_minutes_after(cache):
    """Anthropic's rule: from the hit (or the start) to the last 1-hour mark after it is written
    as 1-hour entries, and from there to the last mark as 5-minute ones."""
    system = handbook(1600, marked="1h")
    turn = PromptMessage("user", " ".join(["why"] * 300), cache_mark="5m")
    messages = (system, turn, PromptMessage("user", "And?"))
    system_tokens, turn_tokens = (p.tokens for p in prefixes(SONNET, messages)[:2])
    first = use(cache, SONNET, messages)
    assert (first.cache_write_tokens, first.cache_write_1h_tokens) == (turn_tokens, system_tokens)
    second = use(cache, SONNET, (system, turn, PromptMessage("user", "Or?")))
    assert (second.cached_tokens, second.cache_write_tokens) == (turn_tokens, 0)
    after_system = (system, PromptMessage("user", "New turn", cache_mark="5m"))
    third = use(cache, SONNET, after_system)
    written = prefixes(SONNET, after_system)[-1].tokens - system_tokens
    assert third.cached_tokens == system_tokens
    assert (third.cache_write_tokens, third.cache_write_1h_tokens) == (written, 0)


def test_one_hour_writes_are_priced_at_their_own_price_and_default_to_the_write_price():
    prices = SONNET.price_per_1m
    assert prices.cache_write is not None and prices.cache_write_1h == 2 * prices.input
    cost = SONNET.cost_usd(3000, 0, cache_write=1000, cache_write_1h=600)
    expected = 2000 * prices.input + 400 * prices.cache_write + 600 * prices.cache_write_1h
    assert cost == pytest.approx(expected / 1e6)
    unlisted = SONNET.model_copy(
        update={"price_per_1m": prices.model_copy(update={"cache_write_1h": None})}
    )
    assert unlisted.cost_usd(3000, 0, cache_write=1000, cache_write_1h=600) == pytest.approx(
        (2000 * prices.input + 1000 * prices.cache_write) / 1e6
    )


def test_a_read_entry_keeps_the_lifetime_it_was_written_with(cache, clock):
    """A mark that asks a read entry for another lifetime is billed nothing, so it changes
    nothing: no free upgrade of a 5-minute entry to an hour, no cut of a 1-hour one to 5 minutes,
    and no entry for an unbilled mark below the hit."""
    use(cache, SONNET, ask(handbook(1600, marked="5m")))
    upgraded = use(cache, SONNET, ask(handbook(1600, marked="1h")))
    assert upgraded.cached_tokens > 0 and upgraded.cache_write_tokens == 0
    clock.advance(10 * 60)
    assert use(cache, SONNET, ask(handbook(1600, marked="1h"))).cached_tokens == 0  # rewritten
    clock.advance(2 * 60)
    assert use(cache, SONNET, ask(handbook(1600, marked="5m"))).cached_tokens > 0  # still 1h
    clock.advance(30 * 60)
    assert use(cache, SONNET, ask(handbook(1600, marked="1h"))).cached_tokens > 0

    system = handbook(2000)
    turn = PromptMessage("user", "Summarise it.", cache_mark="5m")
    use(cache, SONNET, (system, turn))
    remarked = use(cache, SONNET, (handbook(2000, marked="1h"), turn))
    assert remarked.cached_tokens > 0 and remarked.cache_write_tokens == 0
    clock.advance(10 * 60)
    unbilled = use(cache, SONNET, ask(handbook(2000, marked="1h")))
    assert unbilled.cached_tokens == 0 and unbilled.cache_write_1h_tokens > 0


def test_the_tool_definitions_start_every_prefix():
    """Other tools are another prefix: a request with tool beta read what one with tool alpha
    wrote. Tool results are part of a message's prefix too."""
    from ai_gateway.tool_prompt import ToolPrompt

    alpha = ToolPrompt(('{"name":"alpha","input_schema":{}}',))
    beta = ToolPrompt(('{"name":"beta","input_schema":{}}',))
    messages = ask(handbook(5000, marked="5m"))
    cache = ProviderPromptCache(ManualClock())

    def tools_use(tools):
        return cache.use("team-a", HAIKU, messages, count_prompt(HAIKU, messages), tools)

    assert tools_use(alpha).cache_write_tokens > 0
    assert tools_use(beta).cached_tokens == 0  # another tool: another prefix
    assert tools_use(alpha).cached_tokens > prefixes(HAIKU, messages)[0].tokens  # tools included
    first = PromptMessage("user", "", keyed='[{"content":"4 C"}]', cache_mark="5m")
    second = PromptMessage("user", "", keyed='[{"content":"30 C"}]', cache_mark="5m")
    assert prefixes(HAIKU, (first,))[0].digest != prefixes(HAIKU, (second,))[0].digest
