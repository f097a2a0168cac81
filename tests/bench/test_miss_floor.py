"""bench/miss_floor.py: its stages run the gateway's own calls, and its verdict follows the
figures. No timing is asserted (the benchmark's job)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import miss_floor

needs_model = pytest.mark.skipif(
    not os.environ.get("GATEWAY_EMBEDDING_MODEL"),
    reason="the optimized profile embeds with model2vec: needs ../shared/models or "
    "`make embedding-model` and GATEWAY_EMBEDDING_MODEL",
)


def served(plain_us: float, miss_us: float) -> dict[str, object]:
    return {
        "plain": plain_us,
        "miss": miss_us,
        "plain req/s": 1e6 / plain_us,
        "miss req/s": 1e6 / miss_us,
        "pinning": "not pinned: test",
    }


def floors(**stages: float) -> dict[str, list[float]]:
    every = dict.fromkeys(miss_floor.STAGES, 10.0) | {"guard checks per miss": 0.0}
    every |= {"rephrasings found": 0.96}
    return {stage: [value] for stage, value in (every | stages).items()}


@pytest.mark.parametrize(
    ("stages", "calls", "expected"),
    [
        ({}, 60.0, "the calls fit; what the miss path does around them (840 µs) must shrink to "
         "140 µs"),
        ({"guard": 250.0}, 300.0, "the calls alone exceed the budget by 50%: the target needs "
         "them"),
    ],
)  # fmt: skip
def test_the_verdict_compares_each_floor_with_what_60_percent_leaves(
    stages: dict[str, float], calls: float, expected: str
) -> None:
    # A plain request of 300 µs leaves a miss 200 µs more at 60% of its rate; every stage at
    # 10 µs sums to 60 µs.
    text = miss_floor.report(served(300.0, 1200.0), floors(**stages))
    assert "leaves a miss 200 µs beyond a plain request" in text
    assert f"verdict: {expected}" in text
    assert "25% of the plain rate" in text
    assert "found among the candidates: 96.0%" in text
    assert f"| the calls | {calls:.1f} |" in text


@needs_model
def test_a_round_times_every_stage_on_the_benchmarks_misses() -> None:
    figures = miss_floor.stage_floors(entries=300, probes=20)
    assert set(figures) == {*miss_floor.STAGES, "guard checks per miss", "rephrasings found"}
    # A light rephrasing keeps its entry's terms, so it looks in that entry's block.
    assert figures["rephrasings found"] == 1.0
    assert all(figures[stage] > 0 for stage in miss_floor.STAGES)
    # The workload's prompts differ only in their numbers, so a new one shares no entry's
    # agreement key: no candidate reaches the guard.
    assert figures["guard checks per miss"] == 0


def test_a_bad_count_is_refused_naming_the_flag(capsys) -> None:
    with pytest.raises(SystemExit):
        miss_floor.main(["--probes", "0"])
    assert (
        "argument --probes: '0' is invalid: allowed values are 1 or more" in capsys.readouterr().err
    )


@needs_model
def test_a_short_run_measures_the_served_cpu_and_prints_a_verdict(capsys) -> None:
    affinity = os.sched_getaffinity(0)
    args = ["--entries", "200", "--probes", "10", "--rounds", "1", "--duration", "2"]
    assert miss_floor.main(args) == 0
    out = capsys.readouterr().out
    served_cpu = re.search(r"plain (\d+) µs .* optimized miss (\d+) µs", out)
    assert served_cpu is not None, out
    plain_us, miss_us = (int(figure) for figure in served_cpu.groups())
    assert plain_us > 0 and miss_us > 0  # measured, not compared: timing is the script's to print
    assert out.count("verdict: ") == 1
    assert os.sched_getaffinity(0) == affinity  # the bare loops' core was theirs only
