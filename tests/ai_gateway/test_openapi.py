"""The OpenAPI document at /openapi.json, and schemathesis driving every operation it describes.

schemathesis generates requests from the document and sends them to the live app (in this
process); every response must be no server error and must match the document: status code,
content type, headers and body schema.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from ai_gateway.app import create_app
from ai_gateway.settings import resolve_settings
from ai_gateway.wiring import build_gateway

KEY = {"authorization": "Bearer sk-demo-team-a"}
ADMIN_KEY = "sk-admin-key-for-openapi"
DOCUMENT_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


async def test_the_document_describes_both_apis_streaming_and_errors(app_client):
    client = await app_client("optimized")
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert {"/v1/chat/completions", "/v1/messages", "/v1/models", "/v1/models/{model_id}",
            "/v1/budgets", "/healthz", "/readyz"} <= set(paths)  # fmt: skip
    assert "/metrics" not in paths  # on the metrics port, apart from the API
    for path, error in (("/v1/chat/completions", "OpenAI"), ("/v1/messages", "Anthropic")):
        operation = paths[path]["post"]
        assert operation["requestBody"]["required"] is True
        ok = operation["responses"]["200"]["content"]
        assert {"application/json", "text/event-stream"} <= set(ok)
        for status in ("400", "401", "404", "413", "429", "503"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema["$ref"] == f"#/components/schemas/{error}ErrorResponse"
    openai_headers = paths["/v1/chat/completions"]["post"]["responses"]["200"]["headers"]
    anthropic_headers = paths["/v1/messages"]["post"]["responses"]["200"]["headers"]
    assert {"x-gateway-cost-usd", "x-ratelimit-remaining-tokens"} <= set(openai_headers)
    assert {"x-gateway-cost-usd", "anthropic-ratelimit-requests-reset"} <= set(anthropic_headers)
    assert not any(name.startswith("anthropic-") for name in openai_headers)
    body = document["components"]["schemas"]["ChatCompletionBody"]["properties"]
    assert "Part of the cache key" in body["tools"]["description"]
    assert "forces a call" in body["tools"]["description"]
    assert "part of the cache key" in body["logit_bias"]["description"]
    assert "Accepted and ignored" in body["user"]["description"]
    assert "refused" in body["n"]["description"]
    assert "bearer" in document["components"]["securitySchemes"]


async def test_docs_serve_the_document(app_client):
    client = await app_client("optimized")
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


# Loaded when the module is collected, as schemathesis' parametrize needs the operations then; the
# app's state (caches, counters) only grows, and no check depends on it.
SETTINGS = {"latency_scale": 0, "cache": {"semantic": {"embedder": "lexical"}},
            "admin_keys": [ADMIN_KEY]}  # fmt: skip
APP = create_app(build_gateway(resolve_settings("optimized", SETTINGS, "test settings")))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_to_the_document(case):
    key = {"authorization": f"Bearer {ADMIN_KEY}"} if case.path == "/v1/budgets" else KEY
    case.call_and_validate(headers=key, checks=DOCUMENT_CHECKS)
