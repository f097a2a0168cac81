"""A value a JSON schema accepts, drawn by a seeded random generator: a forced tool call's
arguments and a structured answer's content.

Every required property, each optional one by a coin, an enum's members, numbers within their
bounds, nested objects and arrays of their least length; a string is two words, whatever its
format or pattern asks.
"""

from __future__ import annotations

import random
from typing import Any

MAX_DEPTH = 6  # a recursive schema ($ref cycles aside) stops here with an empty value
_WORDS = "alpha beta delta north south report plan order cluster region spend team".split()


def draw(schema: Any, rng: random.Random) -> Any:
    return _value(schema, rng, 0)


def _value(schema: Any, rng: random.Random, depth: int) -> Any:
    """A value the schema accepts, drawn by ``rng``."""
    if not isinstance(schema, dict):
        return rng.choice(_WORDS)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _value(schema[key][0], rng, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if depth >= MAX_DEPTH:
        return {} if kind == "object" else [] if kind == "array" else None
    if kind == "object":
        required = set(schema.get("required") or ())
        properties = schema.get("properties") or {}
        return {
            key: _value(spec, rng, depth + 1)
            for key, spec in properties.items()
            if key in required or rng.random() < 0.5
        }
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        return [_value(schema.get("items", {}), rng, depth + 1) for _ in range(count)]
    return _scalar(kind, schema, rng)


def _scalar(kind: str, schema: dict[str, Any], rng: random.Random) -> Any:
    low, high = schema.get("minimum", 0), schema.get("maximum", 100)
    if kind == "integer":
        return rng.randint(int(low), max(int(low), int(high)))
    if kind == "number":
        return round(rng.uniform(float(low), max(float(low), float(high))), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choices(_WORDS, k=2))
