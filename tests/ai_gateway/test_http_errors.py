"""Bad input over raw HTTP: always a 4xx in the called API's error shape, never a 500."""

from __future__ import annotations

import httpx
import pytest

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
KEY = {"authorization": "Bearer sk-demo-team-a"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from finops_common.process import GatewayProcess
    from tests.conftest import write_config

    config = write_config(
        tmp_path_factory.mktemp("gw") / "gateway.yaml", latency_scale=0, max_body_bytes=4096
    )
    with GatewayProcess(profile="unoptimized", config=config) as process:
        yield process


def post(gateway, path: str, content: bytes | str, headers: dict[str, str] | None = None):
    return httpx.post(
        gateway.url + path,
        content=content,
        headers={"content-type": "application/json", **(headers or KEY)},
        timeout=10,
    )


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
def test_openai_bad_bodies(gateway, body, param):
    assert_openai_error(post(gateway, OPENAI, body), 400, param)


def test_openai_missing_key(gateway):
    response = post(gateway, OPENAI, '{"model": "gpt-4"}', headers={"x-other": "1"})
    assert_openai_error(response, 401)
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_key_accepted_as_x_api_key_on_openai_route(gateway):
    body = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}'
    response = post(gateway, OPENAI, body, headers={"x-api-key": "sk-demo-team-b"})
    assert response.status_code == 200
    assert response.headers["x-gateway-team"] == "team-b"


def test_openai_oversized_body_is_413(gateway):
    big = '{"model": "gpt-4", "messages": [{"role": "user", "content": "' + "x" * 5000 + '"}]}'
    assert_openai_error(post(gateway, OPENAI, big), 413)


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
def test_anthropic_bad_bodies(gateway, body):
    response = post(gateway, ANTHROPIC, body, headers={"x-api-key": "sk-demo-team-a"})
    assert_anthropic_error(response, 400, "invalid_request_error")


def test_anthropic_missing_key(gateway):
    response = post(gateway, ANTHROPIC, "{}", headers={"anthropic-version": "2023-06-01"})
    assert_anthropic_error(response, 401, "authentication_error")


def test_anthropic_oversized_body(gateway):
    big = (
        '{"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "'
        + "y" * 5000
        + '"}]}'
    )
    response = post(gateway, ANTHROPIC, big, headers={"x-api-key": "sk-demo-team-a"})
    assert_anthropic_error(response, 413, "request_too_large")


def test_unknown_route_is_404_json(gateway):
    response = httpx.get(gateway.url + "/v1/nothing", timeout=5)
    assert_openai_error(response, 404)


def test_wrong_method_is_405_json(gateway):
    response = httpx.get(gateway.url + OPENAI, timeout=5)
    assert_openai_error(response, 405)


def test_no_request_produced_a_500(gateway):
    metrics = httpx.get(gateway.url + "/metrics", timeout=5).text
    assert 'status="500"' not in metrics
    assert 'ai_requests_total{api="openai",status="400"}' in metrics
