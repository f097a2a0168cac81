"""Issue 14, defects 4 and 5: no request body or header gets a 5xx or hangs.

Property-based over both APIs, at a bounded example count, against a real gateway process with the
exact and semantic caches on (the semantic cache tokenizes and embeds the prompt). The strategies
add deep nesting, lone surrogates (sent as raw JSON escapes), huge numbers and odd content types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from .reliability_support import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    gateways,
    key_of,
    team,
)
from .reliability_support import settings as gateway_settings

TEAM = "fuzz"
EXAMPLES_PER_API = 200
CLIENT_TIMEOUT_S = 15.0
DEEP = 1000


@dataclass(frozen=True)
class Raw:
    """A fragment written into the body as it is: a number JSON libraries may choke on."""

    text: str


def encode(value: Any) -> str:
    """JSON text of ``value``, with :class:`Raw` fragments as written and ASCII escapes only, so a
    lone surrogate goes over the wire as ``\\ud800``."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def nested(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


odd_text = st.text(alphabet=st.sampled_from(["\ud800", "\udfff", "\u200b", "\U0001f642", "a", " "]))
texts = st.text(max_size=40) | odd_text
huge_numbers = st.sampled_from(
    ["1e999", "-1e999", "1" + "0" * 400, "1.5e-400", "NaN", "Infinity", "-0", "1E+308"]
).map(Raw)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | huge_numbers
    | st.integers(min_value=DEEP - 100, max_value=DEEP + 200).map(nested)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
content_blocks = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image", "tool_result", "x"]), "text": texts}
    ),
    max_size=3,
)
chat_messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "tool", "developer", ""])
            | json_values,
            "content": texts | content_blocks | json_values,
        },
        optional={"name": texts, "tool_call_id": texts},
    ),
    max_size=4,
)
numbers = st.integers(min_value=-10, max_value=10**6) | huge_numbers | json_values
request_bodies = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["gpt-4o-mini", "gpt-4", "claude-3-haiku", "auto", "nope"])
        | json_values,
        "messages": chat_messages | json_values,
    },
    optional={
        "max_tokens": numbers,
        "temperature": numbers,
        "top_p": numbers,
        "top_k": numbers,
        "n": numbers,
        "stream": st.booleans() | json_values,
        "stream_options": json_values,
        "stop": texts | json_values,
        "system": texts | content_blocks | json_values,
        "tools": json_values,
        "response_format": json_values,
        "metadata": json_values,
        "user": texts,
    },
)
payloads = (
    request_bodies.map(encode).map(str.encode)
    | json_values.map(encode).map(str.encode)
    | st.binary(max_size=64)
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "",
        ]
    )
    | header_text
)
extra_headers = st.fixed_dictionaries(
    {"content-type": content_types},
    optional={
        "anthropic-version": header_text,
        "anthropic-beta": header_text,
        "x-sim-question": header_text,
        "content-encoding": st.sampled_from(["gzip", "br", "identity"]),
        "accept": header_text,
    },
)

DEEP_BODY = encode({"model": "gpt-4o-mini", "max_tokens": 5, "messages": nested(DEEP)}).encode()
SURROGATE_BODY = encode(
    {
        "model": "gpt-4o-mini",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi \ud800"}],
    }
).encode()
JSON = {"content-type": "application/json"}
APIS = {
    "openai": (OPENAI_PATH, {"authorization": f"Bearer {key_of(TEAM)}"}),
    # With its version header, as the SDK sends it: without, every body gets the header's 400.
    "anthropic": (ANTHROPIC_PATH, {"x-api-key": key_of(TEAM), "anthropic-version": "2023-06-01"}),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = gateway_settings(team(TEAM), exact=True, semantic=True, embedder="model2vec")
    with (
        gateways(tmp_path_factory.mktemp("fuzz"), config) as (gateway,),
        httpx.Client(base_url=gateway.url, timeout=CLIENT_TIMEOUT_S) as http,
    ):
        yield http


def send(client: httpx.Client, api: str, payload: bytes, headers: dict[str, str]) -> httpx.Response:
    """One request; a 5xx, a hang (client timeout) or a 4xx outside the API's shape fails."""
    path, auth = APIS[api]
    response = client.post(path, content=payload, headers={**headers, **auth})
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()
        if api == "anthropic":
            assert error["type"] == "error" and error["error"]["type"], error
        else:
            assert error["error"]["message"], error
    return response


fuzz_settings = settings(
    max_examples=EXAMPLES_PER_API,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("api", list(APIS))
@fuzz_settings
@given(payload=payloads, headers=extra_headers)
@example(payload=DEEP_BODY, headers=JSON)
@example(payload=SURROGATE_BODY, headers=JSON)
def test_no_body_or_header_gets_a_5xx_or_hangs(client, api, payload, headers):
    send(client, api, payload, headers)


@pytest.mark.parametrize("api", list(APIS))
def test_json_nested_1000_levels_deep_gets_a_400_in_the_api_shape(client, api):
    assert send(client, api, DEEP_BODY, JSON).status_code == 400


@pytest.mark.parametrize("api", list(APIS))
def test_a_lone_surrogate_in_the_last_message_gets_a_400_or_is_served(client, api):
    assert send(client, api, SURROGATE_BODY, JSON).status_code in (200, 400)
