"""The request record: the one schema of the request log, for its writer and its readers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ai_gateway.records import RequestRecord

REFUSED = {"ts": 1.0, "api": "anthropic", "status": 402, "team": "team-a",
           "requested_model": "gpt-4", "error": "budget", "baseline_usd": 0.25}  # fmt: skip


def test_a_record_survives_a_json_line_unchanged():
    record = RequestRecord.model_validate(REFUSED)
    line = record.model_dump_json()
    assert "\n" not in line
    assert RequestRecord.model_validate_json(line) == record
    assert not record.served and record.cost_usd == 0.0


def test_latency_is_gateway_plus_provider_time():
    record = RequestRecord(ts=1.0, api="openai", status=200, team="team-a", requested_model="auto",
                           served_model="gpt-4o-mini", served_tier="standard", cache="miss",
                           gateway_ms=1.5, provider_ms=800.0)  # fmt: skip
    assert record.served and record.latency_ms == 801.5


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"cost": 1.0}, "extra_forbidden"),  # a renamed field is an error, not a silent default
        ({"cache": "fuzzy"}, "literal_error"),
        ({"error": "teapot"}, "literal_error"),
        ({"served_tier": "premium"}, "literal_error"),
    ],
)
def test_a_record_the_gateway_would_not_write_is_refused(change, problem):
    with pytest.raises(ValidationError) as info:
        RequestRecord.model_validate({**REFUSED, **change})
    assert info.value.errors()[0]["type"] == problem


def test_records_are_immutable():
    record = RequestRecord.model_validate(REFUSED)
    with pytest.raises(ValidationError):
        record.status = 200
