"""A value a JSON schema accepts, drawn by a seeded random generator: a forced tool call's
arguments and a structured answer's content.

Every required property, each optional one by a coin, an enum's members, numbers within their
bounds (inclusive or exclusive, and an integer's ``multipleOf``), nested objects and arrays of
their least length (at least one item, at most their ``maxItems``), local ``$ref``s
(``#/$defs/...``, as Pydantic writes nested models); a string is two words, lengthened or cut to
its ``minLength`` and ``maxLength``, whatever its format or pattern asks. The schema is the
client's, so the work is bounded: at most ``MAX_VALUES`` values, ``MAX_DEPTH`` levels of objects
and arrays (a recursive model ends there with its arrays' least length and its optional
alternatives' null) and as many references in a row, and ``MAX_STRING`` characters a string (a
3,000,000-item ``minItems`` held a replica's event loop for 11 s, and a schema referring to itself
was a 500), and a malformed part is drawn as a string, not an error.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

MAX_DEPTH = 8  # nested objects and arrays, and references in a row: a recursive schema ends here
MAX_VALUES = 1_000  # values drawn in all: past it, arrays stop growing and objects take no more
MAX_STRING = 500  # characters a string's minLength may ask for
_Default = TypeVar("_Default", float, None)
_WORDS = "alpha beta delta north south report plan order cluster region spend team".split()


@dataclass
class _Draw:
    root: dict[str, Any]
    rng: random.Random
    left: int = MAX_VALUES


def draw(schema: Any, rng: random.Random) -> Any:
    root = schema if isinstance(schema, dict) else {}
    return _value(schema, _Draw(root, rng), 0)


def _value(schema: Any, state: _Draw, depth: int, hops: int = 0) -> Any:
    """A value the schema accepts, drawn by ``state.rng``. ``depth`` counts the objects and
    arrays around it; ``hops`` the references and alternatives followed since the last of them
    (a schema may refer to itself, as ``{"$ref": "#"}`` does)."""
    state.left -= 1
    rng = state.rng
    if not isinstance(schema, dict):
        return rng.choice(_WORDS)
    if isinstance(schema.get("$ref"), str):
        target = _resolve(state.root, schema["$ref"])
        return _value(target, state, depth, hops + 1) if hops < MAX_DEPTH else None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            branch = _branch(schema[key], deep=depth >= MAX_DEPTH)
            return _value(branch, state, depth, hops + 1) if hops < MAX_DEPTH else None
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind in ("object", "array") and (depth >= MAX_DEPTH or state.left <= 0):
        return {} if kind == "object" else []
    if kind == "object":
        return _object(schema, state, depth)
    if kind == "array":
        least = _number(schema.get("minItems"), 0)
        # At least one item, unless its items would be cut at the depth limit: then its least.
        count = least if depth + 1 >= MAX_DEPTH else max(least, 1)
        count = min(count, max(_number(schema.get("maxItems"), count), 0), state.left)
        items = schema.get("items", {})
        return [_value(items, state, depth + 1) for _ in range(int(count)) if state.left > 0]
    return _scalar(str(kind), schema, rng)


def _branch(branches: list[Any], deep: bool) -> Any:
    """The alternative drawn: the first, or, as deep as objects are drawn, a null one if there
    is one (an optional nested model ends there, valid, rather than as an empty object)."""
    if deep:
        null = next((b for b in branches if isinstance(b, dict) and b.get("type") == "null"), None)
        if null is not None:
            return null
    return branches[0]


def _object(schema: dict[str, Any], state: _Draw, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    required = schema.get("required")
    wanted = (
        {name for name in required if isinstance(name, str)}
        if isinstance(required, list)
        else set()
    )
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


def _number(value: Any, default: _Default) -> float | _Default:
    """A bound as the schema gives it, or the default for one that is not a finite number, or
    is an integer past the largest float (it overflowed the float arithmetic it goes into)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, int):
        return value if abs(value) <= sys.float_info.max else default
    return value if math.isfinite(value) else default


@dataclass(frozen=True)
class _Range:
    """A number's bounds: ``minimum``/``maximum``, or their exclusive forms (a number, as
    Pydantic writes ``gt``/``lt``, or draft 4's flag on ``minimum``/``maximum``)."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False

    @classmethod
    def of(cls, schema: dict[str, Any]) -> _Range:
        low, open_low = _bound(schema, "minimum", "exclusiveMinimum", max)
        high, open_high = _bound(schema, "maximum", "exclusiveMaximum", min)
        if low is None:  # 0, unless the upper bound leaves no room above it
            low = 0 if high is None or high > 0 or (high == 0 and not open_high) else high - 100
        if high is None:
            high = low + 100
        return cls(low, max(high, low), open_low, open_high)

    def holds(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def integers(self) -> tuple[int, int]:
        least = math.floor(self.low) + 1 if self.open_low else math.ceil(self.low)
        most = math.ceil(self.high) - 1 if self.open_high else math.floor(self.high)
        return least, max(most, least)


def _bound(
    schema: dict[str, Any], inclusive: str, exclusive: str, tighter: Callable[..., float]
) -> tuple[float | None, bool]:
    """One side's bound and whether it is exclusive: the tighter of the two forms."""
    closed = _number(schema.get(inclusive), None)
    flag = schema.get(exclusive)
    if flag is True:  # draft 4: the inclusive bound is the exclusive one
        return closed, closed is not None
    open_ = _number(flag, None)
    if open_ is None or (closed is not None and tighter(closed, open_) != open_):
        return closed, False
    return open_, True


def _scalar(kind: str, schema: dict[str, Any], rng: random.Random) -> Any:
    if kind == "integer":
        return _integer(_Range.of(schema), _number(schema.get("multipleOf"), None), rng)
    if kind == "number":
        return _float(_Range.of(schema), rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng)


def _integer(bounds: _Range, multiple: float | None, rng: random.Random) -> int:
    least, most = bounds.integers()
    if isinstance(multiple, int) and multiple > 0:
        first, last = -(-least // multiple), most // multiple
        if first <= last:
            return multiple * rng.randint(first, last)
    return rng.randint(least, most)


def _float(bounds: _Range, rng: random.Random) -> float:
    """A number in range, with two decimals where they keep it in range."""
    value = rng.uniform(float(bounds.low), float(bounds.high))
    if not bounds.holds(value) or not math.isfinite(value):  # an edge, or a range past floats
        value = bounds.low / 2 + bounds.high / 2
    rounded = round(value, 2)
    return rounded if bounds.holds(rounded) else value


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    """Two words, then more up to ``minLength``, cut at ``maxLength``."""
    text = " ".join(rng.choices(_WORDS, k=2))
    least = min(int(_number(schema.get("minLength"), 0)), MAX_STRING)
    while len(text) < least:
        text += " " + rng.choice(_WORDS)
    most = _number(schema.get("maxLength"), None)
    return text if most is None else text[: max(int(most), least)]
