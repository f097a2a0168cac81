"""Statistics from request logs: rates, risks, percentiles and the savings split."""

from __future__ import annotations

import pytest

from ai_gateway.records import RequestRecord
from finops_sim.results import compare, percentile, phase_summary, read_log


def served(question, difficulty="simple", cache="miss", cached=None, tier="complex",
           model="gpt-4", cost=1.0, baseline=1.0, routed=None, team="team-a", ms=10.0):  # fmt: skip
    return RequestRecord(
        ts=0.0, api="openai", status=200, team=team, requested_model=model, cache=cache,
        cached_label=cached, sim={"question": question, "difficulty": difficulty},
        served_model=model, served_tier=tier, route_tier=routed,
        prompt_tokens=10, completion_tokens=20, cost_usd=cost,
        baseline_usd=baseline, saved_usd=baseline - cost,
        gateway_ms=ms, provider_ms=0.0,
    )  # fmt: skip


def refused(error, baseline=2.0):
    return RequestRecord(ts=0.0, api="openai", status=429, team="team-a", requested_model="gpt-4",
                         error=error, baseline_usd=baseline)  # fmt: skip


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_phase_summary_counts_hits_false_hits_risk_and_savings():
    records = [
        served("q1", cost=1.0, baseline=1.0),
        served("q1", cache="exact", cached="q1", cost=0.0, baseline=1.0),
        served("q2", cache="semantic", cached="q2", cost=0.0, baseline=3.0),
        served("q3", cache="semantic", cached="q9", cost=0.0, baseline=3.0),  # wrong answer
        served(
            "q4",
            difficulty="complex",
            tier="simple",
            model="claude-3-haiku",
            cost=0.1,
            baseline=2.0,
            routed="simple",
        ),
        served("q5", difficulty="complex", tier="complex", cost=2.0, baseline=2.0),
        refused("budget", baseline=5.0),
        refused("rate_limit", baseline=4.0),
    ]
    s = phase_summary(records)
    assert (s.requests, s.served, s.budget_rejections, s.rate_limited) == (8, 6, 1, 1)
    assert s.spend_usd == pytest.approx(3.1)
    assert s.baseline_usd == pytest.approx(1 + 1 + 3 + 3 + 2 + 2 + 5 + 4)
    assert s.cache.exact_hit_rate == pytest.approx(1 / 6)
    assert s.cache.semantic_false_hits == 1
    assert s.cache.semantic_false_hit_rate == pytest.approx(0.5)
    assert s.routing.quality_risk == pytest.approx(0.5)
    assert s.routing.complex_served_by_tier == {"standard": 0, "simple": 1}
    assert s.routing.served_by_model == {"claude-3-haiku": 1, "gpt-4": 2}
    assert s.spend_by_model_usd == {"claude-3-haiku": pytest.approx(0.1), "gpt-4": 3.0}
    assert dict(s.savings_by_cause_usd) == {
        "cache": pytest.approx(7.0),
        "routing": pytest.approx(1.9),
        "budgets": pytest.approx(5.0),
        "prompt_caching": 0.0,
    }


def test_the_four_causes_add_up_to_the_cent_with_provider_prompt_caching():
    """A routed answer whose prompt the provider partly cached saves twice: routing is priced
    without the cache, and the cache's share is its own cause."""
    routed = served("q2", tier="simple", cost=0.07, baseline=2.0, routed="simple")
    routed = routed.model_copy(update={"prompt_cache_saved_usd": 0.03, "cached_tokens": 1024})
    cached = served("q3", cost=4.5, baseline=6.0)  # 1.5 off the requested model's own price
    cached = cached.model_copy(update={"prompt_cache_saved_usd": 1.5, "saved_usd": 0.0})
    written = served("q4", cost=1.2, baseline=1.0)  # an Anthropic cache write's surcharge
    written = written.model_copy(update={"prompt_cache_saved_usd": -0.2, "saved_usd": 0.0})
    unoptimized = [("q1", 7.0), ("q2", 2.0), ("q3", 6.0), ("q4", 1.0), ("q5", 5.0)]
    before = phase_summary([served(q, cost=b, baseline=b) for q, b in unoptimized])
    after = phase_summary(
        [
            served("q1", cache="exact", cached="q1", cost=0.0, baseline=7.0),
            routed,
            cached,
            written,
            refused("budget", baseline=5.0),
        ]
    )
    result = compare(before, after)
    causes = result.by_cause_usd
    assert (causes.cache, causes.routing, causes.budgets) == pytest.approx((7.0, 1.9, 5.0))
    assert causes.prompt_caching == pytest.approx(1.33)
    assert round(sum(usd for _, usd in causes), 2) == round(result.savings_usd, 2) == 15.23
    assert result.unattributed_usd == pytest.approx(0.0, abs=1e-9)
    assert after.tokens.cached_input == 1024


def test_compare_splits_the_saving_and_reports_what_it_cannot_attribute():
    before = phase_summary([served("q1", cost=20.0, baseline=20.0)])
    after = phase_summary(
        [
            served("q1", cache="exact", cached="q1", cost=0.0, baseline=7.0),
            served("q2", tier="simple", cost=0.1, baseline=2.0, routed="simple"),
            served("q3", cost=6.0, baseline=6.0),
            refused("budget", baseline=5.0),
        ]
    )
    result = compare(before, after)
    assert result.savings_usd == pytest.approx(13.9)
    assert result.savings_pct == pytest.approx(0.695)
    assert result.by_cause_pct.cache == pytest.approx(0.35)
    assert result.by_cause_pct.budgets == pytest.approx(0.25)
    assert result.unattributed_usd == pytest.approx(0.0)


def test_compare_reports_the_saving_its_causes_do_not_explain():
    before = phase_summary([served("q1", cost=10.0, baseline=10.0)])
    after = phase_summary([served("q1", cost=4.0, baseline=4.0)])
    result = compare(before, after)
    assert result.unattributed_usd == pytest.approx(6.0)
    assert result.by_cause_usd.cache == 0.0


def test_compare_of_a_free_unoptimized_phase_has_no_shares():
    nothing = phase_summary([refused("budget", baseline=0.0)])
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
