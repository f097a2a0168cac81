"""The comparison's load: Locust FastHttpUsers posting chat completions back to back.

Configured by compare.py through environment variables (Locust owns the command line):
BENCH_HOSTS (base URLs; users take them in turn, so two replicas get half the users each),
BENCH_API_KEY, BENCH_PROMPTS (``unique`` or ``repeat``), BENCH_RUN (run number of unique prompts),
BENCH_EXPECT_CACHE (the ``x-gateway-cache`` value every answer must carry, or empty) and
BENCH_RESULT (where the latencies and counts are written when Locust quits).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter

from compare_workload import PATH, REPEATED_PROMPT, chat_body, miss_prompt
from locust import FastHttpUser, constant, events, task

HOSTS = os.environ["BENCH_HOSTS"].split(",")
HEADERS = {
    "authorization": f"Bearer {os.environ['BENCH_API_KEY']}",
    "content-type": "application/json",
}
UNIQUE = os.environ.get("BENCH_PROMPTS", "unique") == "unique"
RUN = int(os.environ.get("BENCH_RUN", "0"))
EXPECT_CACHE = os.environ.get("BENCH_EXPECT_CACHE", "")

_host_turn = itertools.cycle(HOSTS)
_request_number = itertools.count()
_latencies_ms: list[float] = []
_outcomes: Counter[str] = Counter()
_window: dict[str, float] = {}


class ChatUser(FastHttpUser):
    wait_time = constant(0)

    def __init__(self, environment) -> None:
        self.host = next(_host_turn)
        super().__init__(environment)

    @task
    def chat(self) -> None:
        prompt = miss_prompt(RUN, next(_request_number)) if UNIQUE else REPEATED_PROMPT
        with self.client.post(
            PATH, data=chat_body(prompt), headers=HEADERS, catch_response=True
        ) as response:
            cache = response.headers.get("x-gateway-cache", "") if response.headers else ""
            if response.status_code != 200:
                _outcomes[f"status {response.status_code}"] += 1
                response.failure(f"status {response.status_code}")
            elif EXPECT_CACHE and cache != EXPECT_CACHE:
                _outcomes[f"cache {cache or 'none'}"] += 1
                response.failure(f"x-gateway-cache {cache!r}, expected {EXPECT_CACHE!r}")
            else:
                _outcomes["ok"] += 1


@events.request.add_listener
def _record(response_time: float, exception: BaseException | None, **_: object) -> None:
    _window.setdefault("first", time.monotonic() - response_time / 1000)
    _window["last"] = time.monotonic()
    if exception is None:
        _latencies_ms.append(response_time)


@events.quitting.add_listener
def _write(**_: object) -> None:
    result = {
        "elapsed_s": _window.get("last", 0.0) - _window.get("first", 0.0),
        "outcomes": dict(_outcomes),
        "latencies_ms": _latencies_ms,
    }
    with open(os.environ["BENCH_RESULT"], "w") as handle:
        json.dump(result, handle)
