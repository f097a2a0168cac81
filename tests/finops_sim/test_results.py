"""Statistics from request logs: rates, risks, percentiles and the savings split."""

from __future__ import annotations

import pytest

from ai_gateway.records import RequestRecord
from finops_sim.results import compare, percentile, phase_summary, read_log


def served(question, difficulty="simple", cache="miss", cached=None, tier="complex",
           model="gpt-4", cost=1.0, baseline=1.0, routed=None, team="team-a", ms=10.0,
           index=None, tokens=(10, 20), read=0, written=0):  # fmt: skip
    sim = {"question": question, "difficulty": difficulty}
    if index is not None:
        sim["index"] = str(index)
    return RequestRecord(
        ts=0.0, api="openai", status=200, team=team, requested_model=model, cache=cache,
        cached_label=cached, sim=sim,
        served_model=model, served_tier=tier, route_tier=routed,
        prompt_tokens=tokens[0], completion_tokens=tokens[1], cost_usd=cost,
        baseline_usd=baseline, saved_usd=baseline - cost,
        cached_tokens=read, cache_write_tokens=written,
        gateway_ms=ms, provider_ms=0.0,
    )  # fmt: skip


def refused(error, baseline=2.0, index=None):
    sim = {} if index is None else {"index": str(index)}
    return RequestRecord(ts=0.0, api="openai", status=429, team="team-a", requested_model="gpt-4",
                         error=error, baseline_usd=baseline, sim=sim)  # fmt: skip


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_phase_summary_counts_hits_false_hits_risk_and_savings():
    records = [
        served("q1", cost=1.0, baseline=1.0, tokens=(100, 40), read=64),
        # Hits carry the cached answer's token counts, but no provider billed them.
        served("q1", cache="exact", cached="q1", cost=0.0, baseline=1.0, tokens=(100, 40)),
        served("q2", cache="semantic", cached="q2", cost=0.0, baseline=3.0, tokens=(50, 30)),
        served("q3", cache="semantic", cached="q9", cost=0.0, baseline=3.0),  # wrong answer
        served(
            "q4",
            difficulty="complex",
            tier="simple",
            model="claude-3-haiku",
            cost=0.1,
            baseline=2.0,
            routed="simple",
            tokens=(200, 7),
            written=128,
        ),
        served("q5", difficulty="complex", tier="complex", cost=2.0, baseline=2.0, tokens=(300, 5)),
        refused("budget", baseline=5.0),
        refused("rate_limit", baseline=4.0),
    ]
    s = phase_summary(records)
    assert (s.requests, s.served, s.budget_rejections, s.rate_limited) == (8, 6, 1, 1)
    # Both refusals are limits doing their job, not failures: an error would set off the
    # report's "failed requests" warning.
    assert s.errors == 0
    # Billed tokens are the misses' (q1, q4, q5): 100+200+300 in, 40+7+5 out, 64 read from and
    # 128 written to the providers' caches; the hits' 100+50+10 in would be double-counted.
    assert s.tokens.model_dump() == {"input": 600, "cached_input": 64, "cache_write": 128,
                                     "output": 52}  # fmt: skip
    assert s.routing.routed_requests == 1  # q4; q5 went to the model it named
    assert s.routing.served_by_tier == {"complex": 2, "simple": 1}
    assert s.spend_usd == pytest.approx(3.1)
    assert s.baseline_usd == pytest.approx(1 + 1 + 3 + 3 + 2 + 2 + 5 + 4)
    assert s.cache.exact_hit_rate == pytest.approx(1 / 6)
    assert s.cache.semantic_false_hits == 1
    assert s.cache.semantic_false_hit_rate == pytest.approx(0.5)
    assert s.routing.quality_risk == pytest.approx(0.5)
    assert s.routing.complex_served_by_tier == {"standard": 0, "simple": 1}
    assert s.routing.served_by_model == {"claude-3-haiku": 1, "gpt-4": 2}
    assert s.spend_by_model_usd == {"claude-3-haiku": pytest.approx(0.1), "gpt-4": 3.0}


def test_only_failures_are_errors_and_a_routed_request_is_a_routed_models_answer():
    """The routed count is the routing cause's set (compare): a hit is the cache's saving even
    if its record names the tier the router chose, and every refusal but a budget's or a rate
    limit's is a failure."""
    records = [
        served("q1", routed="simple", tier="simple", model="claude-3-haiku"),
        served("q1", cache="exact", cached="q1", routed="simple", tier="simple", cost=0.0),
        served("q2", cache="semantic", cached="q2", routed="standard", cost=0.0),
        refused("rate_limit"),
        refused("rate_limit"),
        refused("budget"),
        refused("internal"),
        refused("authentication"),
    ]
    s = phase_summary(records)
    assert s.routing.routed_requests == 1
    assert (s.errors, s.rate_limited, s.budget_rejections) == (2, 2, 1)


def test_each_request_saves_what_its_unoptimized_twin_cost_more_by_what_was_done_with_it():
    """Both phases are billed with the providers' prompt caches: a hit saves its twin's cost as
    billed (prompt cache discount included), not the list price; a same-model answer that found
    the provider's cache colder (its twin's prefix was cached, its own was not) costs more."""
    before = [
        served("q0", cost=5.6, baseline=7.0, index=0),  # the provider cached part of its prompt
        served("q1", cost=2.0, baseline=2.0, index=1),
        served("q2", cost=4.5, baseline=6.0, index=2),
        served("q3", cost=5.0, baseline=5.0, index=3),
        served("q4", cost=4.0, baseline=4.0, index=4),
    ]
    after = [
        served("q0", cache="exact", cached="q0", cost=0.0, baseline=7.0, index=0),
        served("q1", tier="simple", cost=0.07, baseline=2.0, routed="simple", index=1),
        served("q2", cost=6.0, baseline=6.0, index=2),  # colder provider cache: $1.50 more
        refused("budget", baseline=5.0, index=3),
        refused("rate_limit", baseline=4.0, index=4),
    ]
    result = compare(before, after)
    causes = result.by_cause_usd
    assert dict(causes) == pytest.approx(
        {"cache": 5.6, "routing": 1.93, "budgets": 5.0, "prompt_caching": -1.5}
    )
    assert result.savings_usd == pytest.approx(21.1 - 6.07)
    assert result.unattributed_usd == pytest.approx(4.0)  # the rate-limited request
    assert result.by_cause_pct.cache == pytest.approx(5.6 / 21.1)


def test_a_request_one_phase_did_not_log_or_serve_is_unattributed():
    before = [served("q1", cost=10.0, baseline=10.0, index=1), refused("internal", index=2)]
    after = [
        served("q1", cost=4.0, baseline=10.0, routed="simple", index=1),
        served("q2", cost=1.0, baseline=1.0, index=2),  # its twin failed
        served("q3", cost=2.0, baseline=2.0, index=3),  # no twin
    ]
    result = compare(before, after)
    assert result.by_cause_usd.routing == pytest.approx(6.0)
    assert result.unattributed_usd == pytest.approx(10.0 - 7.0 - 6.0)


def test_compare_of_a_free_unoptimized_phase_has_no_shares():
    nothing = [refused("budget", baseline=0.0, index=0)]
    result = compare(nothing, nothing)
    assert result.savings_pct is None and result.by_cause_pct.cache is None


def test_read_log_round_trips_records_and_names_a_bad_line(tmp_path):
    log = tmp_path / "requests.jsonl"
    records = [served("q1"), refused("rate_limit")]
    log.write_text("".join(r.model_dump_json() + "\n" for r in records) + "\n")
    assert read_log(log) == records
    log.write_text(records[0].model_dump_json() + '\n{"status": 200}\n')
    with pytest.raises(ValueError, match=r"requests\.jsonl:2: not a request record"):
        read_log(log)


def test_a_repeated_index_pairs_once():
    """Two optimized records claiming one twin would count its cost twice."""
    before = [served("q1", cost=5.0, index=1), served("q1", cost=9.0, index=1)]
    after = [
        served("q1", cache="exact", cached="q1", cost=0.0, index=1),
        served("q1", cache="exact", cached="q1", cost=0.0, index=1),
    ]
    result = compare(before, after)
    assert result.by_cause_usd.cache == pytest.approx(5.0)  # the first twin, once
    assert result.savings_usd == pytest.approx(14.0)
    assert result.unattributed_usd == pytest.approx(9.0)
