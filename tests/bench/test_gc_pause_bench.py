"""bench/gc_pause_bench.py: a short fill, counted. No timing is asserted (the benchmark's job)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import gc_pause_bench

needs_model = pytest.mark.skipif(
    not os.environ.get("GATEWAY_EMBEDDING_MODEL"),
    reason="the optimized profile embeds with model2vec: needs ../shared/models or "
    "`make embedding-model` and GATEWAY_EMBEDDING_MODEL",
)


@needs_model
def test_every_miss_becomes_a_semantic_entry_and_the_collections_are_counted() -> None:
    result = asyncio.run(gc_pause_bench.fill(60, progress_every=0))
    assert result["entries"] == result["semantic_entries"] == 60
    assert set(result["collections"]) <= {"gen0", "gen1", "gen2"}
    for figures in result["collections"].values():
        assert figures["count"] >= 1 and figures["longest_ms"] >= figures["median_ms"] > 0
    assert result["tracked_objects"] > 0 and result["full_collection_ms"] > 0


def test_a_bad_entry_count_is_refused_naming_the_flag(capsys) -> None:
    with pytest.raises(SystemExit):
        gc_pause_bench.main(["--entries", "0"])
    assert (
        "argument --entries: '0' is invalid: allowed values are 1 or more"
        in capsys.readouterr().err
    )
