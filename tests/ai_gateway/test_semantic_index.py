"""The semantic cache's two layouts, without a store: blocks by agreement key, graphs by scope."""

from __future__ import annotations

import numpy as np
import pytest

from ai_gateway.semantic import _frame, _unframe
from ai_gateway.semantic_index import BlockIndex, GraphIndex

DIMENSIONS = 16


def vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)


def row(label: int, prompt: str) -> tuple[str, str, float]:
    return (f"ref-{label}", prompt, 1000.0 + label)


def roundtrip(index: BlockIndex | GraphIndex) -> BlockIndex | GraphIndex:
    """Through the snapshot's own framing, as a replica restores it."""
    fields, parts = index.snapshot()
    return type(index).restore(DIMENSIONS, fields, _unframe(b"".join(_frame(*parts))))


def test_a_prompt_is_compared_only_with_its_own_block() -> None:
    index = BlockIndex(DIMENSIONS)
    cancel, track = index.key("s", "How do I cancel my order?"), index.key("s", "Track my order")
    assert cancel != track
    assert cancel == index.key("s", "how do i cancel my order")  # the same terms
    assert cancel != index.key("other scope", "How do I cancel my order?")
    index.insert(cancel, 1, vector(1), row(1, "How do I cancel my order?"))
    assert index.nearest(track, vector(1), 8) == []
    ((found, similarity),) = index.nearest(cancel, vector(1), 8)
    assert found == row(1, "How do I cancel my order?")
    assert similarity == pytest.approx(1.0, abs=1e-3)  # f16 storage


def test_a_block_returns_its_entries_closest_first_up_to_the_count() -> None:
    index = BlockIndex(DIMENSIONS)
    axes = np.eye(DIMENSIONS, dtype=np.float32)
    for label, cosine in enumerate([0.2, 0.9, 0.5]):
        at_cosine = cosine * axes[0] + np.sqrt(1 - cosine**2) * axes[label + 1]
        index.insert("k", label, 3.0 * at_cosine, row(label, f"p{label}"))  # any length
    found = index.nearest("k", axes[0], 2)
    assert [entry[1] for entry, _ in found] == ["p1", "p2"]
    assert [similarity for _, similarity in found] == pytest.approx([0.9, 0.5], abs=1e-3)


def test_rows_freed_by_removal_are_reused_and_the_matrix_grows_past_its_first_rows() -> None:
    index = BlockIndex(DIMENSIONS)
    count = BlockIndex._FIRST_ROWS + 10
    for label in range(count):
        index.insert(f"k{label % 7}", label, vector(label), row(label, f"p{label}"))
    assert len(index) == count
    for label in range(0, count, 2):
        index.remove(f"k{label % 7}", label)
    assert len(index) == count // 2
    freed = {index._row_of[label] for label in range(1, count, 2)} ^ set(range(count))
    rows_held = len(index._vectors)
    for label in range(count, count + 100):  # into the freed rows
        index.insert("new", label, vector(label), row(label, f"p{label}"))
    assert {index._row_of[label] for label in range(count, count + 100)} <= freed
    assert len(index._vectors) == rows_held > count  # grown once, then reused
    for label in (1, count - 1, count + 99):
        key = "new" if label >= count else f"k{label % 7}"
        best, similarity = index.nearest(key, vector(label), 1)[0]
        assert best == row(label, f"p{label}") and similarity == pytest.approx(1.0, abs=1e-3)
    assert [entry for _, label, entry in index.rows() if label % 2 == 0 and label < count] == []


def test_a_removed_blocks_last_entry_removes_the_block() -> None:
    index = BlockIndex(DIMENSIONS)
    index.insert("k", 1, vector(1), row(1, "p"))
    index.remove("k", 1)
    assert len(index) == 0 and index.nearest("k", vector(1), 8) == [] and list(index.rows()) == []


@pytest.mark.parametrize("layout", [BlockIndex, GraphIndex])
def test_a_snapshot_restores_every_entry_and_the_same_answers(layout) -> None:
    index = layout(DIMENSIONS)
    for label in range(40):
        index.insert(f"k{label % 3}", label, vector(label), row(label, f"p{label}"))
    index.remove("k0", 0)
    restored = roundtrip(index)
    assert sorted(restored.rows()) == sorted(index.rows())
    for label in range(1, 40):
        key = f"k{label % 3}"
        assert [e for e, _ in restored.nearest(key, vector(label), 3)] == [
            e for e, _ in index.nearest(key, vector(label), 3)
        ]
    restored.insert("k9", 99, vector(99), row(99, "p99"))  # and it goes on taking entries
    assert restored.nearest("k9", vector(99), 1)[0][0] == row(99, "p99")


@pytest.mark.parametrize("layout", [BlockIndex, GraphIndex])
def test_an_empty_index_snapshots_and_restores_empty(layout) -> None:
    """Every entry expired, or all were another embedder's: the log moved on, the index is
    empty, and its snapshot must still be written and read."""
    index = layout(DIMENSIONS)
    index.insert("k", 1, vector(1), row(1, "p"))
    index.remove("k", 1)
    restored = roundtrip(index)
    assert len(restored) == 0 and list(restored.rows()) == []


def test_a_prompt_scores_exactly_one_with_itself_at_any_length() -> None:
    """Stored at f16, a vector must still be identical to itself: a threshold of 1.0 serves
    duplicates, and no similarity reads above 1."""
    index = BlockIndex(DIMENSIONS)
    for label in range(500):
        scaled = vector(label) * (0.01 + label)
        index.insert(f"k{label}", label, scaled, row(label, "p"))
        ((_, similarity),) = index.nearest(f"k{label}", scaled, 1)
        assert similarity == 1.0


def test_blocks_filed_by_other_guard_rules_are_not_restored(monkeypatch) -> None:
    """Another release's lexicon or stemming gives other keys: its blocks would never be found,
    so the snapshot is refused (the cache then replays the log)."""
    index = BlockIndex(DIMENSIONS)
    index.insert("k", 1, vector(1), row(1, "p"))
    fields, parts = index.snapshot()
    views = _unframe(b"".join(_frame(*parts)))
    assert len(BlockIndex.restore(DIMENSIONS, fields, views)) == 1
    monkeypatch.setattr("ai_gateway.semantic_index.AGREEMENT_RULES", "another release")
    with pytest.raises(ValueError, match="other guard rules"):
        BlockIndex.restore(DIMENSIONS, fields, views)


def test_a_snapshot_with_repeated_labels_is_refused() -> None:
    index = BlockIndex(DIMENSIONS)
    index.insert("k", 1, vector(1), row(1, "p"))
    index.insert("k", 2, vector(2), row(2, "q"))
    fields, parts = index.snapshot()
    parts[1] = np.array([1, 1], dtype=np.int64).tobytes()
    with pytest.raises(ValueError, match="repeated"):
        BlockIndex.restore(DIMENSIONS, fields, [memoryview(bytes(part)) for part in parts])


def test_a_snapshot_with_columns_of_different_lengths_is_refused() -> None:
    index = BlockIndex(DIMENSIONS)
    index.insert("k", 1, vector(1), row(1, "p"))
    fields, parts = index.snapshot()
    parts[1] = np.array([1, 2], dtype=np.int64).tobytes()  # two labels for one entry
    with pytest.raises(ValueError, match="different lengths"):
        BlockIndex.restore(DIMENSIONS, fields, [memoryview(bytes(part)) for part in parts])


def test_without_the_guard_a_scope_is_one_graph_whatever_the_prompt() -> None:
    index = GraphIndex(DIMENSIONS)
    assert index.key("s", "cancel my order") == index.key("s", "track my order") == "s"
