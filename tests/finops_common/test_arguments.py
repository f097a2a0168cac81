"""The shared argument types: a bad number names itself and the values allowed."""

from __future__ import annotations

import argparse

import pytest

from finops_common.arguments import at_least, counts_at_least, positive_number


@pytest.mark.parametrize(("minimum", "text", "value"), [(0, "0", 0), (1, "1", 1), (1, "600", 600)])
def test_a_count_at_or_above_the_minimum_is_taken(minimum: int, text: str, value: int) -> None:
    assert at_least(minimum)(text) == value


@pytest.mark.parametrize(
    ("minimum", "text", "message"),
    [
        (1, "0", "'0' is invalid: allowed values are 1 or more"),
        (0, "-1", "'-1' is invalid: allowed values are 0 or more"),
        (1, "abc", "'abc' is not a whole number"),
        (1, "2.5", "'2.5' is not a whole number"),
    ],
)
def test_a_bad_count_names_itself_and_what_is_allowed(
    minimum: int, text: str, message: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        at_least(minimum)(text)
    assert str(refused.value) == message


def test_a_positive_number_may_be_fractional() -> None:
    assert positive_number("0.5") == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "'0' is invalid: allowed values are above 0"),
        ("-3", "'-3' is invalid: allowed values are above 0"),
        ("nan", "'nan' is invalid: allowed values are above 0"),
        ("inf", "'inf' is invalid: allowed values are above 0"),
        ("soon", "'soon' is not a number"),
    ],
)
def test_a_bad_number_names_itself_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        positive_number(text)
    assert str(refused.value) == message


def test_argparse_reports_the_flag_with_the_reason(capsys) -> None:
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--users", type=at_least(1))
    with pytest.raises(SystemExit):
        parser.parse_args(["--users", "0"])
    assert "tool: error: argument --users: '0' is invalid: allowed values are 1 or more" in (
        capsys.readouterr().err
    )


def test_a_list_of_counts_takes_each_and_names_a_bad_one() -> None:
    assert counts_at_least(1)("1000, 10000,") == [1000, 10000]
    for text, message in (
        ("abc", "'abc' is not a whole number"),
        ("10,0", "'0' is invalid: allowed values are 1 or more"),
        (",", "',' names no count: use e.g. 1000,10000"),
    ):
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            counts_at_least(1)(text)
        assert str(refused.value) == message
