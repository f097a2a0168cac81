"""The per-request log: what the gateway did, next to the ground truth it was sent."""

from __future__ import annotations

import httpx

from finops_sim.results import read_log


def test_served_and_refused_requests_are_logged_with_ground_truth(start_gateway, tmp_path):
    log = tmp_path / "requests.jsonl"
    gateway = start_gateway(
        request_log=str(log),
        cache={"semantic": {"enabled": False}},
        teams={"team-a": {"keys": ["sk-demo-team-a"], "routing": "all",
                          "limits": {"requests_per_minute": 2}}},
    )  # fmt: skip
    sim = {"x-sim-intent": "cancel-order", "x-sim-question": "cancel-order:1",
           "x-sim-difficulty": "simple", "x-sim-kind": "new"}  # fmt: skip
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "How do I cancel?"}]}
    auth = {"authorization": "Bearer sk-demo-team-a", **sim}
    responses = [
        httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=auth, timeout=10)
        for _ in range(3)
    ]
    responses.append(
        httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=sim, timeout=10)
    )
    records = read_log(log)
    first, hit, limited, unauthenticated = records
    # Each line names the request as its response did, under both APIs' header names.
    ids = [r.headers["x-request-id"] for r in responses]
    assert [record.request_id for record in records] == ids
    assert [r.headers["request-id"] for r in responses] == ids
    assert len(set(ids)) == 4 and all(i.startswith("req_") for i in ids)
    assert first.sim == {"intent": "cancel-order", "question": "cancel-order:1",
                         "difficulty": "simple", "kind": "new"}  # fmt: skip
    assert (first.cache, first.requested_model) == ("miss", "gpt-4")
    # The semantic cache is off; routing still opens the embedder for the learned router.
    tier_models = {"simple": "gpt-5.4-nano", "standard": "gpt-5.4-mini"}
    assert first.served_model == tier_models[str(first.route_tier)]
    assert first.baseline_usd is not None and first.baseline_usd > first.cost_usd > 0
    assert hit.cache == "exact" and hit.cached_label == "cancel-order:1"
    assert hit.cost_usd == 0 and hit.saved_usd == hit.baseline_usd
    assert (limited.status, limited.error, limited.served) == (429, "rate_limit", False)
    # Priced like every refusal of a valid request, though the refused request was a cache hit.
    assert limited.baseline_usd == hit.baseline_usd
    assert (unauthenticated.status, unauthenticated.team) == (401, None)
