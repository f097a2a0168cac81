"""Each API's own rules on sampling parameters for the model a client names (data/models.yaml's
`sampling`), refused as the provider refuses them: the same status, shape, field and message."""

from __future__ import annotations

import json

import pytest

from ai_gateway.domain import ChatRequest, GatewayError
from ai_gateway.pricing import default_price_table
from ai_gateway.tokens import PromptMessage

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
OPENAI_KEY = {"authorization": "Bearer sk-demo-team-a", "content-type": "application/json"}
ANTHROPIC_KEY = {
    "x-api-key": "sk-demo-team-a",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
HI = [{"role": "user", "content": "hi"}]
TABLE = default_price_table()


@pytest.fixture
async def client(app_client):
    return await app_client("unoptimized")


async def ask(client, path: str, headers: dict[str, str], **body):
    return await client.post(path, content=json.dumps({"messages": HI, **body}), headers=headers)


def test_the_reasoning_and_sampling_rules_are_on_the_models_the_providers_apply_them_to():
    reasoning = {name for name, card in TABLE.models.items() if card.sampling == "reasoning"}
    assert {"gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5", "o3"} <= reasoning
    assert not reasoning & {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4"}
    claude_4_5_on = {"claude-opus-4-7", "claude-opus-4-5", "claude-sonnet-4-6", "claude-haiku-4-5"}
    assert all(TABLE.models[n].sampling == "temperature_or_top_p" for n in claude_4_5_on)
    assert all(TABLE.models[n].provider == "openai" for n in reasoning)


async def test_a_reasoning_model_refuses_max_tokens_and_takes_max_completion_tokens(client):
    refused = await ask(client, OPENAI, OPENAI_KEY, model="gpt-5.4", max_tokens=20)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["param"], error["code"]) == ("max_tokens", "unsupported_parameter")
    assert "Use 'max_completion_tokens' instead" in error["message"]
    taken = await ask(client, OPENAI, OPENAI_KEY, model="gpt-5.4", max_completion_tokens=20)
    assert taken.status_code == 200, taken.text
    older = await ask(client, OPENAI, OPENAI_KEY, model="gpt-4o", max_tokens=20)
    assert older.status_code == 200, older.text


async def test_a_reasoning_model_refuses_a_top_p_but_the_default(client):
    refused = await ask(client, OPENAI, OPENAI_KEY, model="gpt-5.4", top_p=0.5)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["param"], error["code"]) == ("top_p", "unsupported_parameter")
    assert (await ask(client, OPENAI, OPENAI_KEY, model="gpt-5.4", top_p=1)).status_code == 200


@pytest.mark.parametrize(("temperature", "status"), [(0.2, 400), (1, 200), (None, 200)])
async def test_a_reasoning_model_takes_the_default_temperature_only(client, temperature, status):
    sampled = {} if temperature is None else {"temperature": temperature}
    response = await ask(client, OPENAI, OPENAI_KEY, model="gpt-5.4-mini", **sampled)
    assert response.status_code == status, response.text
    if status == 400:
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("temperature", "unsupported_value")
        assert "does not support 0.2 with this model" in error["message"]


async def test_a_reasoning_model_asked_through_the_anthropic_api_takes_max_tokens(client):
    """Anthropic's API has only max_tokens: the gateway, between the APIs, passes it on."""
    response = await ask(client, ANTHROPIC, ANTHROPIC_KEY, model="gpt-5.4", max_tokens=20)
    assert response.status_code == 200, response.text


async def test_claude_4_5_and_later_refuse_temperature_and_top_p_together(client):
    both = await ask(client, ANTHROPIC, ANTHROPIC_KEY, model="claude-sonnet-4-6", max_tokens=20,
                     temperature=0.5, top_p=0.9)  # fmt: skip
    assert both.status_code == 400
    body = both.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert "cannot both be specified" in body["error"]["message"]
    one = await ask(client, ANTHROPIC, ANTHROPIC_KEY, model="claude-sonnet-4-6", max_tokens=20,
                    temperature=0.5)  # fmt: skip
    assert one.status_code == 200, one.text
    top_p_alone = await ask(client, ANTHROPIC, ANTHROPIC_KEY, model="claude-sonnet-4-6",
                            max_tokens=20, top_p=0.9)  # fmt: skip
    assert top_p_alone.status_code == 200, top_p_alone.text
    unruled = await ask(client, ANTHROPIC, ANTHROPIC_KEY, model="gemini-2.5-flash", max_tokens=20,
                        temperature=0.5, top_p=0.9)  # fmt: skip
    assert TABLE.models["gemini-2.5-flash"].sampling == "any"
    assert unruled.status_code == 200, unruled.text


async def test_the_sampling_values_are_refused_through_either_api_and_in_process(
    client, make_gateway
):
    """The provider behind refuses the values, whichever API shape carried them."""
    through_openai = await ask(client, OPENAI, OPENAI_KEY, model="claude-sonnet-4-6",
                               temperature=0.5, top_p=0.9)  # fmt: skip
    assert through_openai.status_code == 400
    assert "cannot both be specified" in through_openai.json()["error"]["message"]
    through_anthropic = await ask(client, ANTHROPIC, ANTHROPIC_KEY, model="gpt-5.4",
                                  max_tokens=20, temperature=0.2)  # fmt: skip
    assert through_anthropic.status_code == 400
    assert through_anthropic.json()["error"]["type"] == "invalid_request_error"
    gateway = make_gateway("unoptimized")
    request = ChatRequest("gpt-5.4", (PromptMessage("user", "hi"),), temperature=0.2)
    with pytest.raises(GatewayError, match="Only the default \\(1\\) value is supported"):
        await gateway.complete(request, "team-a")


async def test_a_reasoning_model_refuses_max_tokens_sent_beside_max_completion_tokens(client):
    both = await ask(client, OPENAI, OPENAI_KEY, model="gpt-5.4", max_tokens=20,
                     max_completion_tokens=20)  # fmt: skip
    assert both.status_code == 400 and both.json()["error"]["param"] == "max_tokens"


@pytest.mark.parametrize(
    ("field", "value"),
    [("frequency_penalty", 0.5), ("presence_penalty", 0.5), ("logit_bias", {"50256": -100}),
     ("logprobs", True), ("top_logprobs", 2)],
)  # fmt: skip
async def test_a_reasoning_model_refuses_penalties_logit_bias_and_logprobs(client, field, value):
    """As OpenAI's o-series and gpt-5 models do: client code tested here must fail here too."""
    refused = await ask(client, OPENAI, OPENAI_KEY, model="o3", max_completion_tokens=20,
                        **{field: value})  # fmt: skip
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["param"], error["code"]) == (field, "unsupported_parameter")
    assert error["message"] == f"Unsupported parameter: '{field}' is not supported with this model."
    other = await ask(client, OPENAI, OPENAI_KEY, model="gpt-4o", max_tokens=20, **{field: value})
    assert other.status_code == 200, other.text
    defaults = {"logprobs": False, "frequency_penalty": 0, "presence_penalty": 0.0,
                "logit_bias": {}, "top_logprobs": 0}  # fmt: skip
    as_default = await ask(client, OPENAI, OPENAI_KEY, model="o3", max_completion_tokens=20,
                           **{field: defaults[field]})  # fmt: skip
    assert as_default.status_code == 200, as_default.text


async def test_a_cap_too_large_is_named_by_the_field_the_client_sent(client):
    response = await ask(client, OPENAI, OPENAI_KEY, model="gpt-4o", max_completion_tokens=10**6)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "max_completion_tokens"
    assert response.json()["error"]["message"].startswith("max_completion_tokens is too large")


def test_the_stop_rule_is_on_the_models_reported_to_refuse_stop():
    refusing = {name for name, card in TABLE.models.items() if not card.stop_sequences}
    assert refusing == {"gpt-5", "gpt-5-mini", "gpt-5-nano", "o3"}
    assert all(TABLE.models[name].sampling == "reasoning" for name in refusing)


@pytest.mark.parametrize("stop", ["END", ["END", "STOP"]])
async def test_an_earlier_reasoning_model_refuses_stop_in_openais_words(client, stop):
    """gpt-5's 400 to a stop sequence: client code tested here must fail here too."""
    refused = await ask(client, OPENAI, OPENAI_KEY, model="gpt-5-mini", stop=stop)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["param"], error["code"]) == ("stop", "unsupported_parameter")
    assert error["message"] == "Unsupported parameter: 'stop' is not supported with this model."
    for model in ("gpt-5.4-mini", "gpt-4o"):
        taken = await ask(client, OPENAI, OPENAI_KEY, model=model, stop=stop)
        assert taken.status_code == 200, taken.text
    for unset in (None, []):
        taken = await ask(client, OPENAI, OPENAI_KEY, model="gpt-5-mini", stop=unset)
        assert taken.status_code == 200, taken.text


async def test_stop_sequences_are_refused_through_the_anthropic_api_by_their_own_name(client):
    refused = await ask(client, ANTHROPIC, ANTHROPIC_KEY, model="o3", max_tokens=20,
                        stop_sequences=["END"])  # fmt: skip
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "'stop_sequences' is not supported with this model" in error["message"]
