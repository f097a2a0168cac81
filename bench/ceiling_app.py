"""The benchmark's ceiling: the gateway's web stack answering a fixed chat completion.

Same framework and server as the gateway (FastAPI with the gateway's direct routes, on uvicorn, one
process, access log off), no pipeline: it reads the body and returns precomputed bytes, so its
req/s is what the stack and the load generator allow on this machine, the most a gateway built on
them could reach.

    .venv/bin/python bench/ceiling_app.py --port 9100
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from ai_gateway.app import DirectRoute

# About the size of the gateway's answer to the benchmark's request (max_tokens 64).
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-ceiling",
        "object": "chat.completion",
        "created": 1_764_460_800,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(["word"] * 48)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 48, "total_tokens": 72},
    }
).encode()


async def chat_completions(request: Request) -> Response:
    await request.body()
    return Response(COMPLETION, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


app = FastAPI()
app.router.route_class = DirectRoute
app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
app.add_api_route("/readyz", ready, methods=["GET"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
