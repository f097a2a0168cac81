"""`make demo` until the load generator lands: start the gateway, send a few requests, stop it."""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from pathlib import Path

from .process import GatewayProcess

REQUESTS = [
    ("openai", "sk-demo-team-a", {"model": "gpt-4", "max_tokens": 120,
     "messages": [{"role": "user", "content": "How do I cancel my order #1042?"}]}),
    ("openai", "sk-demo-team-a", {"model": "gpt-4", "max_tokens": 120,
     "messages": [{"role": "user", "content": "How do I cancel my order #1042?"}]}),
    ("openai", "sk-demo-team-a", {"model": "gpt-4", "max_tokens": 120,
     "messages": [{"role": "user", "content": "Hi, how can I cancel my order #1042 please?"}]}),
    ("openai", "sk-demo-team-a", {"model": "gpt-4", "max_tokens": 400,
     "messages": [{"role": "user", "content": "Design a multi-region failover plan for our "
                   "payments API and compare the trade-offs step by step."}]}),
    ("openai", "sk-demo-team-b", {"model": "gpt-4o-mini", "max_tokens": 200,
     "messages": [{"role": "user", "content": "Summarise last week's incidents."}]}),
    ("anthropic", "sk-demo-team-b", {"model": "claude-3-haiku", "max_tokens": 150,
     "messages": [{"role": "user", "content": "What is our refund policy?"}]}),
]  # fmt: skip


def _post(url: str, api: str, key: str, body: dict) -> tuple[dict, dict]:
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(response.headers), json.loads(response.read())


def _metric_sum(url: str, name: str, label: str = "") -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    prefix = name + "{" + label
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "gateway.log"
        print("Starting finops-gateway (profile: optimized, in-process store) ...")
        with GatewayProcess(profile="optimized", log_path=log) as gateway:
            print(f"Gateway ready at {gateway.url}\n")
            header = f"{'api':<10}{'team':<8}{'model':<16}{'tokens in/out':>14}"
            print(f"{header}{'cost USD':>12}  cache")
            total = 0.0
            for api, key, body in REQUESTS:
                headers, reply = _post(gateway.url, api, key, body)
                usage = reply["usage"]
                used = (usage.get("prompt_tokens", usage.get("input_tokens")),
                        usage.get("completion_tokens", usage.get("output_tokens")))  # fmt: skip
                cost = float(headers["x-gateway-cost-usd"])
                total += cost
                print(
                    f"{api:<10}{headers['x-gateway-team']:<8}{headers['x-gateway-model']:<16}"
                    f"{f'{used[0]}/{used[1]}':>14}{cost:>12.6f}  {headers['x-gateway-cache']}"
                )
            metric_cost = _metric_sum(gateway.url, "ai_cost_total")
            by_cache = _metric_sum(gateway.url, "ai_cost_saved_total", 'reason="cache"')
            by_routing = _metric_sum(gateway.url, "ai_cost_saved_total", 'reason="routing"')
            print(f"\nSpend returned to clients: ${total:.6f}")
            print(f"ai_cost_total from /metrics: ${metric_cost:.6f}")
            print(f"Saved by the caches:         ${by_cache:.6f}")
            print(f"Saved by routing:            ${by_routing:.6f}")
        print("Gateway stopped.")
    return 0 if abs(total - metric_cost) < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
