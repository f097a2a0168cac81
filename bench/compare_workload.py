"""The requests every server of the comparison gets: one chat completion shape, two prompt kinds.

Misses: every prompt is new (a template with a run number and a counter). They share all words
but the numbers, so each is the others' nearest neighbour, yet none shares a new prompt's numbers:
the semantic cache, which looks only among prompts the guard could accept (semantic_index), finds
no candidate, and an HNSW search over them (the guard off) would find 8 close ones. Hits: one
prompt, repeated. Shared by the Locust user and the asyncio client of compare.py.
"""

from __future__ import annotations

import json

API_KEY = "sk-demo-team-a"  # the gateway's public demo key; LiteLLM and the ceiling get their own
MODEL = "gpt-4o-mini"
MAX_TOKENS = 64
PATH = "/v1/chat/completions"
REPEATED_PROMPT = "Please summarize the quarterly cloud cost report for the platform team."

VERBS = ("summarize", "explain", "review", "compare", "update", "export", "find", "check")
TOPICS = ("invoice", "refund", "cluster", "shipment", "budget", "report", "alert", "contract")


def _parts(run: int, i: int) -> tuple[str, str, str]:
    verb, topic = VERBS[i % len(VERBS)], TOPICS[(i // len(VERBS)) % len(TOPICS)]
    return verb, topic, f"with reference {run}-{i} for account {i * 7919 % 100_003}"


def miss_prompt(run: int, i: int) -> str:
    verb, topic, rest = _parts(run, i)
    return f"Please {verb} the {topic} {rest}."


def rephrased_prompt(run: int, i: int) -> str:
    """A light rephrasing of ``miss_prompt(run, i)`` that the semantic cache (guard on) serves."""
    verb, topic, rest = _parts(run, i)
    return f"{verb.capitalize()} the {topic} {rest}, please."


def chat_body(prompt: str) -> bytes:
    return json.dumps(
        {
            "model": MODEL,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": prompt}],
        }
    ).encode()
