"""Argument types shared by the project's command lines (finops-sim, the load generator's Locust
flags, the bench/ scripts): a bad number is a usage error that names it, worded the same way
everywhere, before anything runs."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def at_least(minimum: int, most: int | None = None) -> Callable[[str], int]:
    """An integer flag's type that refuses what is not a whole number, or is below ``minimum``
    or above ``most``."""
    allowed = f"{minimum} or more" if most is None else f"{minimum} to {most}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (most is not None and value > most):
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed values are {allowed}")
        return value

    return parse


def counts_at_least(minimum: int) -> Callable[[str], list[int]]:
    """A comma-separated list of counts (``--sizes 1000,10000``), each ``minimum`` or more."""
    one = at_least(minimum)

    def parse(text: str) -> list[int]:
        counts = [one(part.strip()) for part in text.split(",") if part.strip()]
        if not counts:
            raise argparse.ArgumentTypeError(f"{text!r} names no count: use e.g. 1000,10000")
        return counts

    return parse


def positive_number(text: str) -> float:
    """A rate or a number of seconds: finite and above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed values are above 0")
    return value


def finite_number(text: str) -> float:
    """A fraction or a percentile: any finite number (the command checks its range)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed values are finite numbers")
    return value
