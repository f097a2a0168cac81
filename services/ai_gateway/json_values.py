"""A value a JSON schema accepts, drawn by a seeded random generator: a forced tool call's
arguments and a structured answer's content.

Every required property, each optional one by a coin, an enum's members, numbers within their
bounds, nested objects and arrays of their least length (at least one item, at most their
``maxItems``), local ``$ref``s (``#/$defs/...``, as Pydantic writes nested models); a string is
two words, whatever its format or pattern asks. The schema is the client's, so the work is
bounded: at most ``MAX_VALUES`` values and ``MAX_DEPTH`` levels (a 3,000,000-item ``minItems``
held a replica's event loop for 11 s), and a malformed part is drawn as a string, not an error.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 8  # a recursive schema stops here with an empty value
MAX_VALUES = 1_000  # values drawn in all: past it, arrays stop growing and objects take no more
_WORDS = "alpha beta delta north south report plan order cluster region spend team".split()


@dataclass
class _Draw:
    root: dict[str, Any]
    rng: random.Random
    left: int = MAX_VALUES


def draw(schema: Any, rng: random.Random) -> Any:
    root = schema if isinstance(schema, dict) else {}
    return _value(schema, _Draw(root, rng), 0)


def _value(schema: Any, state: _Draw, depth: int) -> Any:
    """A value the schema accepts, drawn by ``state.rng``."""
    state.left -= 1
    rng = state.rng
    if not isinstance(schema, dict):
        return rng.choice(_WORDS)
    if isinstance(schema.get("$ref"), str):
        return _value(_resolve(state.root, schema["$ref"]), state, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _value(schema[key][0], state, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if depth >= MAX_DEPTH or state.left <= 0:
        return {} if kind == "object" else [] if kind == "array" else None
    if kind == "object":
        return _object(schema, state, depth)
    if kind == "array":
        count = max(_number(schema.get("minItems"), 1), 1)
        count = min(count, max(_number(schema.get("maxItems"), count), 0), state.left)
        items = schema.get("items", {})
        return [_value(items, state, depth + 1) for _ in range(int(count)) if state.left > 0]
    return _scalar(str(kind), schema, rng)


def _object(schema: dict[str, Any], state: _Draw, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    required = schema.get("required")
    wanted = set(required) if isinstance(required, list) else set()
    if not isinstance(properties, dict):
        return {}
    return {
        key: _value(spec, state, depth + 1)
        for key, spec in properties.items()
        if (key in wanted or state.rng.random() < 0.5) and state.left > 0
    }


def _resolve(root: dict[str, Any], ref: str) -> Any:
    """A local reference (``#/$defs/Step``); another document's is drawn as a string."""
    if not ref.startswith("#"):
        return None
    target: Any = root
    for part in [p for p in ref.lstrip("#").split("/") if p]:
        key = part.replace("~1", "/").replace("~0", "~")
        target = target.get(key) if isinstance(target, dict) else None
    return target


def _number(value: Any, default: float) -> float:
    """A bound as the schema gives it, or the default for one that is not a number."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default


def _scalar(kind: str, schema: dict[str, Any], rng: random.Random) -> Any:
    low = _number(schema.get("minimum"), 0)
    high = max(_number(schema.get("maximum"), low + 100), low)
    if kind == "integer":
        least = math.ceil(low)
        return rng.randint(least, max(math.floor(high), least))
    if kind == "number":
        return round(rng.uniform(float(low), float(high)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choices(_WORDS, k=2))
