"""The HTTP layer in this process (httpx's ASGI transport): error shapes, headers, limits, budgets.

Bad input is always a 4xx in the called API's error shape, never a 500.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
import socket

import httpx
import pytest

from ai_gateway.adapters.openai import go_duration
from ai_gateway.app import create_app, usd_header
from ai_gateway.store import RedisStore
from tests.ai_gateway.support import ADMIN_KEY, budget_settings

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
KEY = {"authorization": "Bearer sk-demo-team-a"}
ANTHROPIC_KEY = {"x-api-key": "sk-demo-team-a", "anthropic-version": "2023-06-01"}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def client(app_client) -> httpx.AsyncClient:
    return await app_client("unoptimized", max_body_bytes=4096)


async def post(client, path: str, content: bytes | str, headers: dict[str, str] | None = None):
    return await client.post(
        path, content=content, headers={"content-type": "application/json", **(headers or KEY)}
    )


def counted_answers(client: httpx.AsyncClient) -> dict[tuple[str, str], float]:
    """The non-zero ``ai_requests_total`` series by (api, status): each API's 200 series exists
    from start-up at 0."""
    registry = client._transport.app.state.gateway.meter.metrics.registry
    return {
        (sample.labels["api"], sample.labels["status"]): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "ai_requests_total" and sample.value
    }


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ('{"messages": [{"role": "user", "content": "x"}]}', "model"),
        ('{"model": "gpt-4"}', "messages"),
        ('{"model": 4, "messages": [{"role": "user", "content": "x"}]}', "model"),
        ('{"model": "gpt-4", "messages": "hello"}', "messages"),
        ('{"model": "gpt-4", "messages": [{"role": "robot", "content": "x"}]}', "messages[0].role"),
        (
            '{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}',
            "max_tokens",
        ),
        (
            '{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            '{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}], '
            '"stream_options": {"include_usage": true}}',
            "stream_options",
        ),
    ],
)
async def test_openai_bad_bodies(client, body, param):
    assert_openai_error(await post(client, OPENAI, body), 400, param)


async def test_openai_missing_key(client):
    response = await post(client, OPENAI, '{"model": "gpt-4"}', headers={"x-other": "1"})
    assert_openai_error(response, 401)
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_a_blank_bearer_does_not_hide_the_x_api_key(client):
    body = json.dumps({"model": "gpt-4o-mini", "messages": HI})
    headers = {"authorization": "Bearer  ", "x-api-key": "sk-demo-team-b"}
    response = await post(client, OPENAI, body, headers=headers)
    assert response.status_code == 200
    assert response.headers["x-gateway-team"] == "team-b"


async def test_key_accepted_as_x_api_key_on_openai_route(client):
    body = json.dumps({"model": "gpt-4o-mini", "messages": HI})
    response = await post(client, OPENAI, body, headers={"x-api-key": "sk-demo-team-b"})
    assert response.status_code == 200
    assert response.headers["x-gateway-team"] == "team-b"


async def test_openai_oversized_body_is_413(client):
    big = '{"model": "gpt-4", "messages": [{"role": "user", "content": "' + "x" * 5000 + '"}]}'
    assert_openai_error(await post(client, OPENAI, big), 413)


ANTHROPIC_USER = '"messages": [{"role": "user", "content": "x"}]'


@pytest.mark.parametrize(
    "body",
    [
        "{broken",
        '{"model": "claude-haiku-4-5", ' + ANTHROPIC_USER + "}",
        '{"model": "claude-haiku-4-5", "max_tokens": -1, ' + ANTHROPIC_USER + "}",
        '{"model": "claude-haiku-4-5", "max_tokens": 5, "top_p": 3, ' + ANTHROPIC_USER + "}",
        '{"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}',
        '{"model": "claude-haiku-4-5", "max_tokens": 5, '
        '"messages": [{"role": "system", "content": "x"}]}',
    ],
)
async def test_anthropic_bad_bodies(client, body):
    response = await post(client, ANTHROPIC, body, headers=ANTHROPIC_KEY)
    assert_anthropic_error(response, 400, "invalid_request_error")


async def test_anthropic_requires_its_version_header_as_its_api_does(client):
    body = '{"model": "claude-haiku-4-5", "max_tokens": 5, ' + ANTHROPIC_USER + "}"
    response = await post(client, ANTHROPIC, body, headers={"x-api-key": "sk-demo-team-a"})
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["message"] == "anthropic-version: header is required"
    unknown_key = await post(client, ANTHROPIC, body, headers={"x-api-key": "sk-nobody"})
    assert_anthropic_error(unknown_key, 401, "authentication_error")  # the key comes first
    newest = {**ANTHROPIC_KEY, "anthropic-version": "2026-10-21"}  # the SDK's, any is taken
    assert (await post(client, ANTHROPIC, body, headers=newest)).status_code == 200


async def test_count_tokens_needs_the_version_header_and_names_a_bad_body(client):
    body = json.dumps({"model": "claude-haiku-4-5", "messages": HI})
    counted = await post(client, "/v1/messages/count_tokens", body, headers=ANTHROPIC_KEY)
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    no_version = {"x-api-key": "sk-demo-team-a"}
    response = await post(client, "/v1/messages/count_tokens", body, headers=no_version)
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert "anthropic-version" in response.json()["error"]["message"]
    bad = json.dumps({"model": "claude-haiku-4-5", "messages": "hi"})
    response = await post(client, "/v1/messages/count_tokens", bad, headers=ANTHROPIC_KEY)
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert counted_answers(client) == {}  # a count is not an answer


@pytest.mark.parametrize(
    "block",
    [
        {"type": "thinking", "thinking": "t", "signature": "s", "cache_control": {"type": "x"}},
        {"type": "redacted_thinking", "data": "d", "cache_control": {"type": "ephemeral"}},
    ],
)
@pytest.mark.parametrize("path", [ANTHROPIC, "/v1/messages/count_tokens"])
async def test_a_thinking_block_marked_for_caching_is_refused(client, block, path):
    """It passed as an unknown field and failed the breakpoint count: a 500."""
    turns = [*HI, {"role": "assistant", "content": [block]}, {"role": "user", "content": "go"}]
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 20, "messages": turns})
    response = await post(client, path, body, headers=ANTHROPIC_KEY)
    assert_anthropic_error(response, 400, "invalid_request_error")
    message = response.json()["error"]["message"]
    assert message == "messages: thinking blocks cannot be marked with cache_control"
    unmarked = {key: value for key, value in block.items() if key != "cache_control"}
    turns[1] = {"role": "assistant", "content": [unmarked]}
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 20, "messages": turns})
    assert (await post(client, path, body, headers=ANTHROPIC_KEY)).status_code == 200


async def test_a_schema_bound_past_the_largest_float_is_no_server_error(client):
    """maxLength 10**309 overflowed the float the answer's drawing put it in: a 500."""
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 10**309}},
              "required": ["a"]}  # fmt: skip
    form = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = json.dumps({"model": "gpt-4o-mini", "messages": HI, "response_format": form})
    response = await post(client, OPENAI, body)
    assert response.status_code == 200
    assert isinstance(json.loads(response.json()["choices"][0]["message"]["content"])["a"], str)


async def test_anthropic_missing_key(client):
    response = await post(client, ANTHROPIC, "{}", headers={"anthropic-version": "2023-06-01"})
    assert_anthropic_error(response, 401, "authentication_error")


async def test_anthropic_oversized_body(client):
    big = (
        '{"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "'
        + "y" * 5000
        + '"}]}'
    )
    response = await post(client, ANTHROPIC, big, headers=ANTHROPIC_KEY)
    assert_anthropic_error(response, 413, "request_too_large")


async def test_unknown_route_is_404_json(client):
    assert_openai_error(await client.get("/v1/nothing"), 404)
    assert_anthropic_error(await client.get("/v1/messages/batches"), 404, "not_found_error")
    # A trailing slash was Starlette's empty 307; it is no route in either API.
    assert_openai_error(await client.post("/v1/chat/completions/", json={}), 404)
    assert_anthropic_error(await client.post("/v1/messages/", json={}), 404, "not_found_error")


async def test_wrong_method_is_405_json_and_says_what_is_allowed(client):
    response = await client.get(OPENAI)
    assert_openai_error(response, 405)
    assert response.headers["allow"] == "POST"  # RFC 9110: a 405 names the allowed methods
    assert (await client.put("/v1/models")).headers["allow"] == "GET, HEAD"
    assert (await client.delete("/healthz")).headers["allow"] == "GET, HEAD"
    # The budgets route answers in OpenAI's shape, as its 401, whatever version header comes.
    wrong = await client.post("/v1/budgets", headers={"anthropic-version": "2023-06-01"})
    assert_openai_error(wrong, 405)
    unknown = await client.get("/v1/budgets", headers={"anthropic-version": "2023-06-01"})
    assert_openai_error(unknown, 401)


async def test_a_get_route_answers_head_with_its_status_and_no_body(client):
    """Monitors and load balancers probe with HEAD (RFC 9110: a GET route should answer it)."""
    for path, status in (("/healthz", 200), ("/readyz", 200), ("/v1/models", 200)):
        get, head = await client.get(path, headers=KEY), await client.head(path, headers=KEY)
        assert (head.status_code, head.content) == (status, b"")
        assert head.headers["content-type"] == get.headers["content-type"]
    unauthorized = await client.head("/v1/models")
    assert (unauthorized.status_code, unauthorized.content) == (401, b"")
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path, operations in paths.items() if "head" in operations]


async def test_bad_requests_are_counted_as_4xx_and_none_as_500(client):
    await post(client, OPENAI, "{not json")
    await post(client, ANTHROPIC, "{}", headers=ANTHROPIC_KEY)
    await client.post(OPENAI, json={"model": "gpt-9", "messages": HI}, headers=KEY)
    assert (await client.get("/metrics")).status_code == 404  # served on its own port
    assert counted_answers(client) == {
        ("openai", "400"): 1.0,
        ("openai", "404"): 1.0,
        ("anthropic", "400"): 1.0,
    }


async def test_gateway_headers_describe_the_answer(app_client):
    client = await app_client("optimized", routing={"enabled": True})
    body = {"model": "auto", "messages": [{"role": "user", "content": "What is DNS?"}]}
    routed = await client.post(OPENAI, json=body, headers=KEY)
    assert routed.status_code == 200
    headers = routed.headers
    assert headers["x-gateway-routed-from"] == "auto"
    assert headers["x-gateway-route-reason"]
    assert headers["x-gateway-model"] == routed.json()["model"]
    assert (headers["x-gateway-team"], headers["x-gateway-cache"]) == ("team-a", "miss")
    assert float(headers["x-gateway-cost-usd"]) > 0
    assert "x-gateway-similarity" not in headers
    paraphrase = {"model": "auto", "messages": [{"role": "user", "content": "what is dns?"}]}
    hit = await client.post(OPENAI, json=paraphrase, headers=KEY)
    assert hit.headers["x-gateway-cache"] in ("exact", "semantic")
    assert float(hit.headers["x-gateway-cost-usd"]) == 0.0
    assert "x-gateway-routed-from" not in hit.headers


@pytest.mark.parametrize(
    ("amount", "header"),
    [(0.0008 - 0.0002, "0.0006"), (0.0, "0"), (4.5e-07, "4.5e-07"), (12.5, "12.5")],
)
def test_dollar_headers_carry_no_binary_noise(amount, header):
    """A saving is a difference of two prices, which repr() showed with binary noise."""
    assert repr(0.0008 - 0.0002) == "0.0006000000000000001"  # the noise this guards against
    assert usd_header(amount) == header
    assert float(usd_header(1 / 3)) == pytest.approx(1 / 3, rel=1e-12)


async def test_limits_are_worded_as_each_api_words_them(app_client):
    """Agent frameworks match Anthropic's own texts to compact a conversation; OpenAI's keep
    their code. gpt-4's window (8,192 tokens) is the smallest in the table."""
    client = await app_client("unoptimized")
    long_prompt = [{"role": "user", "content": "alpha " * 9000}]
    over = {"model": "gpt-4", "max_tokens": 10, "messages": long_prompt}
    anthropic = await client.post(ANTHROPIC, json=over, headers=ANTHROPIC_KEY)
    assert_anthropic_error(anthropic, 400, "invalid_request_error")
    message = anthropic.json()["error"]["message"]
    assert re.fullmatch(r"prompt is too long: \d+ tokens > 8192 maximum", message), message
    openai = await client.post(OPENAI, json=over, headers=KEY)
    assert openai.json()["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 8192 tokens" in openai.json()["error"]["message"]
    room = {"model": "gpt-4", "max_tokens": 4000, "messages": [
        {"role": "user", "content": "alpha " * 5000}]}  # fmt: skip
    message = (await client.post(ANTHROPIC, json=room, headers=ANTHROPIC_KEY)).json()["error"]
    assert re.fullmatch(
        r"input length and `max_tokens` exceed context limit: \d+ \+ 4000 > 8192, decrease "
        r"input length or `max_tokens` and try again",
        message["message"],
    ), message
    cap = {"model": "gpt-4", "max_tokens": 5000, "messages": [{"role": "user", "content": "hi"}]}
    message = (await client.post(ANTHROPIC, json=cap, headers=ANTHROPIC_KEY)).json()["error"]
    assert message["message"] == (
        "max_tokens: 5000 > 4096, which is the maximum allowed number of output tokens for gpt-4"
    )


async def test_streams_are_event_streams_in_both_shapes(client):
    streamed = await client.post(
        OPENAI, json={"model": "gpt-4o", "messages": HI, "stream": True}, headers=KEY
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.rstrip().endswith("data: [DONE]")
    messages = await client.post(
        ANTHROPIC,
        json={"model": "claude-haiku-4-5", "max_tokens": 20, "messages": HI, "stream": True},
        headers=ANTHROPIC_KEY,
    )
    events = [line[7:] for line in messages.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"


async def test_a_stop_sequence_ends_the_answer_in_both_apis_and_on_a_cache_hit(app_client):
    client = await app_client("optimized")
    question = [{"role": "user", "content": "Summarise our cluster spend for the week."}]
    body = {"model": "claude-haiku-4-5", "max_tokens": 300, "messages": question}
    full = (await client.post(ANTHROPIC, json=body, headers=ANTHROPIC_KEY)).json()
    text = full["content"][0]["text"]
    sequence = " " + text.split()[4]
    stopped_body = {**body, "stop_sequences": ["zzz", sequence]}
    for attempt in ("miss", "exact"):
        response = await client.post(ANTHROPIC, json=stopped_body, headers=ANTHROPIC_KEY)
        assert response.headers["x-gateway-cache"] == attempt
        stopped = response.json()
        assert stopped["content"][0]["text"] == text[: text.find(sequence)]
        assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", sequence)
        assert stopped["usage"]["output_tokens"] < full["usage"]["output_tokens"]
    streamed = await client.post(
        ANTHROPIC, json={**stopped_body, "stream": True}, headers=ANTHROPIC_KEY
    )
    deltas = [
        json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: ")
    ]
    end = next(event for event in deltas if event["type"] == "message_delta")
    assert end["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": sequence}
    assert (full["stop_reason"], full["stop_sequence"]) in (
        ("end_turn", None),
        ("max_tokens", None),
    )
    openai_body = {"model": "gpt-4o-mini", "messages": question, "max_tokens": 300}
    answer = (await client.post(OPENAI, json=openai_body, headers=KEY)).json()
    words = answer["choices"][0]["message"]["content"].split()
    cut = await client.post(OPENAI, json={**openai_body, "stop": " " + words[3]}, headers=KEY)
    choice = cut.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and " " + words[3] not in choice["message"]["content"]


async def test_models_in_both_shapes(client):
    openai_list = (await client.get("/v1/models", headers=KEY)).json()
    assert openai_list["object"] == "list" and openai_list["data"][0]["object"] == "model"
    page = (
        await client.get("/v1/models", headers={**KEY, "anthropic-version": "2023-06-01"})
    ).json()
    assert page["has_more"] is False and page["data"][0]["type"] == "model"
    denied = await client.get("/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert_anthropic_error(denied, 401, "authentication_error")


async def test_models_are_dated_by_their_snapshot_names_in_both_shapes(client):
    """The lists dated every model 1970; a dated snapshot name (gpt-5-2025-08-07,
    claude-haiku-4-5-20251001) is the release the providers' lists report."""
    openai_list = (await client.get("/v1/models", headers=KEY)).json()["data"]
    created = {model["id"]: model["created"] for model in openai_list}
    assert created["gpt-5"] == int(dt.datetime(2025, 8, 7, tzinfo=dt.UTC).timestamp())
    assert created["gpt-4"] == 0  # gpt-4-0613 names no year
    anthropic = {**KEY, "anthropic-version": "2023-06-01"}
    page = (await client.get("/v1/models", params={"limit": 100}, headers=anthropic)).json()
    created_at = {model["id"]: model["created_at"] for model in page["data"]}
    assert created_at["claude-haiku-4-5"] == "2025-10-01T00:00:00Z"
    assert created_at["claude-sonnet-4-6"] == "1970-01-01T00:00:00Z"  # no dated name


async def test_rate_limit_429_in_both_api_shapes(app_client):
    client = await app_client("optimized", **budget_settings(requests_per_minute=2))
    body = {"model": "gpt-4o-mini", "messages": HI}
    for _ in range(2):
        assert (await client.post(OPENAI, json=body, headers=KEY)).status_code == 200
    limited = await client.post(OPENAI, json=body, headers=KEY)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    anthropic = await client.post(ANTHROPIC, json={**body, "max_tokens": 10}, headers=ANTHROPIC_KEY)
    assert anthropic.status_code == 429
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    other_team = await client.post(
        OPENAI, json=body, headers={"authorization": "Bearer sk-demo-team-b"}
    )
    assert other_team.status_code == 200


async def test_rate_limit_headers_in_each_api_shape(app_client, clock):
    """Each answer, and a 429, carries the team's per-minute standing in its API's own headers:
    OpenAI's wait as a Go duration, Anthropic's reset as an RFC 3339 time. A team without a
    per-minute limit gets none."""
    clock.now = 1_800_000_010.25  # 2027-01-15T08:00:10.25Z: 49.75 s before the minute's end
    client = await app_client(
        "optimized", **budget_settings(requests_per_minute=3, tokens_per_minute=100_000)
    )
    body = {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 50}
    first = (await client.post(OPENAI, json=body, headers=KEY)).headers
    assert (first["x-ratelimit-limit-requests"], first["x-ratelimit-remaining-requests"]) == (
        "3",
        "2",
    )
    worst_case = 100_000 - int(first["x-ratelimit-remaining-tokens"])
    assert first["x-ratelimit-limit-tokens"] == "100000" and 50 < worst_case < 100
    assert first["x-ratelimit-reset-requests"] == first["x-ratelimit-reset-tokens"] == "49.75s"
    anthropic = await client.post(ANTHROPIC, json=body, headers=ANTHROPIC_KEY)
    assert anthropic.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert anthropic.headers["anthropic-ratelimit-tokens-limit"] == "100000"
    assert 0 < int(anthropic.headers["anthropic-ratelimit-tokens-remaining"]) < 100_000 - worst_case
    assert anthropic.headers["anthropic-ratelimit-requests-reset"] == "2027-01-15T08:01:00Z"
    assert not any(name.startswith("x-ratelimit") for name in anthropic.headers)
    await client.post(OPENAI, json=body, headers=KEY)
    limited = await client.post(OPENAI, json=body, headers=KEY)
    assert limited.status_code == 429 and limited.headers["x-ratelimit-remaining-requests"] == "0"
    unlimited = await client.post(
        OPENAI, json=body, headers={"authorization": "Bearer sk-demo-team-b"}
    )
    assert unlimited.status_code == 200
    assert not any(name.startswith("x-ratelimit") for name in unlimited.headers)


@pytest.mark.parametrize(
    ("seconds", "duration"),
    [(0.0, "0s"), (-2.0, "0s"), (0.0121, "13ms"), (0.9996, "1s"), (1.0, "1s"), (34.5, "34.5s"),
     (34.5001, "34.501s"), (59.9996, "1m0s"), (60, "1m0s")],
)  # fmt: skip
def test_openai_reset_headers_are_go_durations(seconds, duration):
    """Whole milliseconds, rounded up: a client that waits that long finds the counter reset."""
    assert go_duration(seconds) == duration


async def test_the_minute_limit_resets_when_the_clock_moves(app_client, clock):
    client = await app_client("optimized", **budget_settings(requests_per_minute=1))
    body = {"model": "gpt-4o-mini", "messages": HI}
    assert (await client.post(OPENAI, json=body, headers=KEY)).status_code == 200
    assert (await client.post(OPENAI, json=body, headers=KEY)).status_code == 429
    clock.advance(61)
    assert (await client.post(OPENAI, json=body, headers=KEY)).status_code == 200


async def test_budgets_endpoint_shows_a_team_its_own_and_an_admin_everything(app_client):
    client = await app_client("optimized", **budget_settings(usd=1.0, period="month"))
    own = (await client.get("/v1/budgets", headers=KEY)).json()["data"]
    assert [row["team"] for row in own] == ["team-a"]
    assert own[0]["budget_usd"] == 1.0 and own[0]["period"] == "month"
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    everyone = (await client.get("/v1/budgets", headers=admin)).json()["data"]
    assert {row["team"] for row in everyone} == {"team-a", "team-b"}
    assert next(r for r in everyone if r["team"] == "team-b")["budget_usd"] is None
    denied = await client.get("/v1/budgets", headers={"authorization": "Bearer nope-nope"})
    assert_openai_error(denied, 401)


async def test_a_team_without_limits_shows_no_spend_rather_than_zero(app_client):
    """It keeps no ledger: a zero would read as "spent nothing" after it spent."""
    client = await app_client("unoptimized")
    body = {"model": "gpt-4o-mini", "messages": HI}
    assert (await client.post(OPENAI, json=body, headers=KEY)).status_code == 200
    (row,) = (await client.get("/v1/budgets", headers=KEY)).json()["data"]
    assert (row["budget_usd"], row["spent_usd"], row["reserved_usd"]) == (None, None, None)
    limited = await app_client("optimized", **budget_settings(tokens_per_minute=10**6))
    assert (await limited.post(OPENAI, json=body, headers=KEY)).status_code == 200
    (row,) = (await limited.get("/v1/budgets", headers=KEY)).json()["data"]
    assert row["spent_usd"] > 0 and row["reserved_usd"] == 0


async def test_a_budget_report_the_store_cannot_give_is_a_503_and_a_counted_failure(
    make_gateway,
):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    gateway = make_gateway("optimized", store, **budget_settings(requests_per_minute=5))
    transport = httpx.ASGITransport(app=create_app(gateway))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            report = await client.get("/v1/budgets", headers=KEY)
        assert_openai_error(report, 503)
        failures = {"op": "budget_report"}
        metrics = gateway.meter.metrics.registry
        assert metrics.get_sample_value("ai_store_errors_total", failures) == 1
    finally:
        await gateway.close()
        await store.close()


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok", "store": "up"}
    assert (await client.get("/readyz")).json() == {"status": "ready", "store": "up"}


# What each asset of the docs page must be: its content type, and a mark of the real file.
DOCS_ASSETS = {
    "swagger-ui-bundle.js": ({"text/javascript", "application/javascript"}, b"SwaggerUIBundle"),
    "swagger-ui.css": ({"text/css"}, b".swagger-ui"),
    "favicon.png": ({"image/png"}, b"\x89PNG"),
}


async def test_docs_render_offline_from_the_gateways_own_assets(client):
    """/docs names no other host: Swagger UI comes from the gateway, to anyone, keyless."""
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text and "'/openapi.json'" in page.text
    assert '"validatorUrl": null' in page.text  # no badge fetched from swagger.io
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {url.rsplit("/", 1)[-1] for url in urls} == set(DOCS_ASSETS)
    for url in urls:
        assert url.startswith("/") and not url.startswith("//")
        asset = await client.get(url)
        content_types, mark = DOCS_ASSETS[url.rsplit("/", 1)[-1]]
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] in content_types
        assert len(asset.content) > 1000 and mark in asset.content[:200_000]
    paths = (await client.get("/openapi.json")).json()["paths"]
    static = {url.rsplit("/", 1)[0] for url in urls}
    assert not [path for path in paths if any(path.startswith(s) for s in static)]
    missing = await client.get(next(iter(static)) + "/no-such-file.js")
    assert_openai_error(missing, 404)


async def test_a_semantic_hit_on_a_streamed_request_is_streamed(app_client):
    client = await app_client("optimized")
    summarize = [{"role": "user", "content": "Summarize this article about remote work."}]
    original = await client.post(
        OPENAI, json={"model": "gpt-4", "messages": summarize}, headers=KEY
    )
    paraphrase = [{"role": "user", "content": "Please summarise this article about remote work"}]
    response = await client.post(
        OPENAI, json={"model": "gpt-4", "stream": True, "messages": paraphrase}, headers=KEY
    )
    assert response.headers["x-gateway-cache"] == "semantic"
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    text = "".join(
        (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for line in lines[:-1]
    )
    assert text == original.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("freeze_heap", [False, True])
async def test_only_the_server_freezes_its_start_up_heap(make_gateway, freeze_heap):
    """The server process (cli) hides what it allocated to start from the garbage collector;
    an app built by a caller (these tests, a benchmark) leaves the collector alone."""
    from ai_gateway.app import create_app

    gc.unfreeze()
    app = create_app(make_gateway("unoptimized"), freeze_heap=freeze_heap)
    try:
        async with app.router.lifespan_context(app):
            assert (gc.get_freeze_count() > 0) is freeze_heap
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    "body",
    [
        # A surrogate encoded as UTF-8 bytes (not a JSON escape): json.loads on bytes accepts it.
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi \xed\xa0\x80"}]}',
        json.dumps({"model": "gpt-4o-mini", "messages": HI}).encode("utf-16"),
    ],
    ids=["utf8-encoded-surrogate", "utf-16"],
)
async def test_a_body_that_is_not_utf8_gets_a_400_in_each_shape(client, body):
    assert_openai_error(await post(client, OPENAI, body), 400)
    response = await post(client, ANTHROPIC, body, headers=ANTHROPIC_KEY)
    assert_anthropic_error(response, 400, "invalid_request_error")


async def test_a_prompt_of_a_million_spaces_is_counted_and_served(app_client):
    client = await app_client("unoptimized")
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": " " * 999_999}]}
    )
    response = await post(client, OPENAI, body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] > 7000


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "user"}, "messages[0].content"),
        ({"role": "user", "content": None}, "messages[0].content"),
        ({"role": "system", "content": []}, "messages[0].content"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]},
            "messages[0].content[0].type",
        ),
    ],
)
async def test_openai_message_content_is_required_and_named(client, message, param):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [message]})
    assert_openai_error(await post(client, OPENAI, body), 400, param)


async def test_openai_assistant_message_may_leave_out_content(client):
    messages = [{"role": "assistant", "tool_calls": []}, *HI]
    body = json.dumps({"model": "gpt-4o-mini", "messages": messages})
    assert (await post(client, OPENAI, body)).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("presence_penalty", -2.5),
        ("frequency_penalty", 9),
        ("top_logprobs", 21),
        ("stop", ["a", 5]),
    ],
)
async def test_openai_values_out_of_the_apis_range_are_refused_by_name(client, field, value):
    body = json.dumps({"model": "gpt-4o-mini", "messages": HI, field: value})
    expected = "stop[1]" if field == "stop" else field
    assert_openai_error(await post(client, OPENAI, body), 400, expected)


@pytest.mark.parametrize(
    ("messages", "status"),
    [
        ([{"role": "user", "content": ""}], 400),
        ([{"role": "user", "content": []}], 400),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}], 200),
    ],
)
async def test_anthropic_only_a_final_assistant_message_may_be_empty(client, messages, status):
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": messages})
    response = await post(client, ANTHROPIC, body, headers=ANTHROPIC_KEY)
    if status == 400:
        assert_anthropic_error(response, 400, "invalid_request_error")
        assert "messages.0" in response.json()["error"]["message"]
    else:
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "messages: text content blocks must be non-empty",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": " \n"}]}]},
            "text content blocks must contain non-whitespace text",
        ),
        (
            {"messages": [{"role": "user", "content": "   "}]},
            "messages: text content blocks must contain non-whitespace text",
        ),
        (
            {"system": [{"type": "text", "text": " "}], "messages": HI},
            "system: text content blocks must contain non-whitespace text",
        ),
        (
            {"messages": [*HI, {"role": "assistant", "content": "Sure, "}]},
            "final assistant content cannot end with trailing whitespace",
        ),
        # The field as sent, not the union member pydantic tried ('messages.0.content.str').
        (
            {"messages": [{"role": "user", "content": None}]},
            "messages.0.content: Input should be a valid string",
        ),
        ({"messages": HI, "max_tokens": None}, "max_tokens: Input should be a valid integer"),
    ],
)
async def test_anthropic_text_must_be_text(client, body, expected):
    """Anthropic's API refuses empty and whitespace-only text, and a prefill ending in
    whitespace, with a 400 that names the field as sent, in Anthropic's words (the field's
    dotted place, then what is wrong), where the OpenAI shape's were used."""
    full = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5, **body})
    response = await post(client, ANTHROPIC, full, headers=ANTHROPIC_KEY)
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert expected in response.json()["error"]["message"]


@pytest.mark.parametrize("limit", ["0", "1001", "x", "²", "-1"])
async def test_an_invalid_models_page_is_a_400_in_anthropics_shape(client, limit):
    headers = {**KEY, "anthropic-version": "2023-06-01"}
    response = await client.get("/v1/models", params={"limit": limit}, headers=headers)
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert "limit" in response.json()["error"]["message"]


async def test_a_bug_is_a_500_in_the_apis_shape_naming_the_request(make_gateway, monkeypatch):
    """What no handler expected still answers in the called API's error shape, with the
    request id every response carries (the exception is re-raised for the server to log)."""
    from ai_gateway.adapters.anthropic import AnthropicAdapter
    from ai_gateway.app import create_app

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(AnthropicAdapter, "list_models", broken)
    app = create_app(make_gateway("unoptimized"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        headers = {**KEY, "anthropic-version": "2023-06-01"}
        response = await http.get("/v1/models", headers=headers)
    assert_anthropic_error(response, 500, "api_error")
    assert response.headers["request-id"].startswith("req_")
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_only_the_chat_routes_are_counted_in_ai_requests(client):
    """A models or budgets refusal is not a chat answer (it was counted, their 200s were not)."""
    assert (
        await client.get("/v1/models", headers={"authorization": "Bearer nope"})
    ).status_code == 401
    assert (
        await client.get("/v1/budgets", headers={"authorization": "Bearer nope"})
    ).status_code == 401
    assert counted_answers(client) == {}
    await post(client, OPENAI, "{not json")
    assert counted_answers(client) == {("openai", "400"): 1.0}
