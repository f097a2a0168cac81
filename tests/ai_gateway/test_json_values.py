"""Values drawn from a client's JSON schema (a forced tool call's arguments, a structured
answer): valid for the schema, and drawn in bounded work whatever the schema says."""

from __future__ import annotations

import json
import random
import time

import pydantic
import pytest

from ai_gateway.json_values import MAX_VALUES, draw


def test_a_huge_or_malformed_schema_is_drawn_in_bounded_work():
    """A client's minItems of 3,000,000 held a replica's event loop for 11 s; a minimum of "x"
    or an enum of 5 was a 500."""
    huge = {"type": "object", "required": ["a"],
            "properties": {"a": {"type": "array", "minItems": 3_000_000,
                                 "items": {"type": "array", "minItems": 1000}}}}  # fmt: skip
    started = time.process_time()
    value = draw(huge, random.Random(1))
    assert time.process_time() - started < 1.0  # bounded by MAX_VALUES, not by the schema
    assert sum(1 + len(row) for row in value["a"]) <= MAX_VALUES
    assert len(value["a"][0]) > 900  # the first row drew what the bound left
    assert draw({"type": "array", "maxItems": 0}, random.Random(1)) == []
    odd = {"type": "object", "required": ["n", "e"],
           "properties": {"n": {"type": "integer", "minimum": "x"}, "e": {"enum": 5}}}  # fmt: skip
    drawn = draw(odd, random.Random(2))
    assert isinstance(drawn["n"], int) and isinstance(drawn["e"], str)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"anyOf": [{"$ref": "#"}]},
        {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": [["a"], {}]},
    ],
)
def test_a_schema_referring_to_itself_or_with_odd_required_names_is_drawn(schema):
    """Each was a 500 (RecursionError, unhashable type): a reference now counts as a level."""
    for seed in range(5):
        json.dumps(draw(schema, random.Random(seed)))


def test_numbers_stay_finite_and_within_exclusive_bounds_and_multiples():
    widest = {"type": "number", "minimum": -1.7e308, "maximum": 1.7e308}
    for seed in range(20):
        json.dumps(draw(widest, random.Random(seed)), allow_nan=False)  # no Infinity

    class Bounded(pydantic.BaseModel):
        order_id: int = pydantic.Field(gt=0, lt=10)
        small: float = pydantic.Field(gt=0, lt=0.001)
        negative: int = pydantic.Field(lt=-5)
        step: int = pydantic.Field(ge=1, le=100, multiple_of=7)
        ratio: float = pydantic.Field(ge=0.1, le=0.107)
        code: str = pydantic.Field(min_length=30, max_length=40)
        short: str = pydantic.Field(max_length=3)

    schema = Bounded.model_json_schema()
    for seed in range(200):
        Bounded.model_validate(draw(schema, random.Random(seed)))


class Address(pydantic.BaseModel):
    city: str
    zip_code: int = pydantic.Field(ge=1000, le=9999)


class Supplier(pydantic.BaseModel):
    name: str
    address: Address


class Product(pydantic.BaseModel):
    sku: str
    supplier: Supplier


class Line(pydantic.BaseModel):
    product: Product
    quantity: pydantic.NegativeInt | pydantic.PositiveInt
    discount: float = pydantic.Field(lt=0)


class Order(pydantic.BaseModel):
    lines: list[Line]
    refund: pydantic.NegativeFloat
    credit: pydantic.NonPositiveInt


class Node(pydantic.BaseModel):
    name: str
    children: list[Node]
    parent: Node | None = None


def test_nested_and_recursive_models_and_upper_bounds_at_or_below_zero_are_drawn_valid():
    """Five nested models (a reference and a list each) ran past the depth limit and drew a
    required name as null; a recursive model drew {"name": null}; lt=0 without a minimum drew 0."""
    for model in (Order, Node):
        schema = model.model_json_schema()
        for seed in range(30):
            model.model_validate(draw(schema, random.Random(seed)))


def test_draft_4_exclusive_flags_and_unreadable_bounds():
    draft4 = {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 2,
              "exclusiveMaximum": True}  # fmt: skip
    assert {draw(draft4, random.Random(seed)) for seed in range(20)} == {1}
    infinite = {"type": "integer", "minimum": float("inf"), "maximum": "x"}
    assert 0 <= draw(infinite, random.Random(1)) <= 100  # the defaults, as for no bound


@pytest.mark.parametrize(
    "key", ["minimum", "maximum", "exclusiveMinimum", "multipleOf", "minLength", "maxLength",
            "minItems", "maxItems"],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["number", "integer", "string", "array"])
def test_an_integer_past_the_largest_float_is_read_as_no_bound(key, kind):
    """10**309 as a bound overflowed the float it went into: a 500 on every API shape."""
    huge = 10**309
    value = draw({"type": kind, key: huge, "items": {"type": "integer"}}, random.Random(3))
    json.dumps(value, allow_nan=False)
    assert draw({"type": kind, key: -huge}, random.Random(3)) is not None


def test_local_refs_are_followed_as_pydantic_writes_nested_models():
    class Step(pydantic.BaseModel):
        explanation: str
        output: int

    class Math(pydantic.BaseModel):
        steps: list[Step]
        answer: str

    schema = Math.model_json_schema()
    assert "$defs" in schema  # the nested model is a $ref
    for seed in range(30):
        Math.model_validate(draw(schema, random.Random(seed)))
