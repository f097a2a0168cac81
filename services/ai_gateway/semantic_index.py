"""Where the semantic cache finds a prompt's candidates: one interface, two layouts.

With the guard on, a candidate is served only if ``verify`` passes, and ``verify`` requires both
prompts' numbers, negation and content words (among other terms) to be equal: their
``verification.agreement_key``. No cached prompt with another key can ever be served, so
:class:`BlockIndex` files each entry under its scope and key, and compares a prompt with its own
block alone, exactly: a block holds one prompt's light rephrasings, and the variants only the
guard's other checks tell apart (an operator, a quote's case, a direction), and the guard runs
those checks on them. Blocks stay small because a rephrasing the guard passes is a hit, not a new
entry. A miss costs a dictionary look-up where an approximate
graph search cost 0.1-0.2 ms and found the right entry among crowded ones 99.2% of the time
(README "Benchmarks").

With the guard off any close neighbour may be served, so :class:`GraphIndex` keeps an HNSW graph
(usearch) per scope and searches it approximately.

Both keep each entry as a row (answer ref, prompt, time added) under an integer label given by
the cache, and write themselves into the cache's snapshot as columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import numpy as np
from usearch.index import Index

from .resp import Buffer
from .verification import AGREEMENT_RULES, agreement_key

EntryRow = tuple[str, str, float]
"""An entry as (answer ref, prompt, time added), a plain tuple of strings and a number: the garbage
collector stops tracking such a tuple, so 100k entries add nothing to its full collections (README,
"Benchmarks"), and a snapshot restore builds them quickly."""

# The graph's build-time search breadth (usearch's default is 128). 32 makes an insertion about 3x
# cheaper (0.31 -> 0.09 ms at 3k entries) with the same evaluation figures (bench/
# semantic_cache_eval.py, README "Benchmarks"); search breadth stays usearch's default.
EXPANSION_ADD = 32
# Links per node (usearch's default is 16). The benchmark's prompts, which differ only in their
# numbers, crowd one region of the graph; 12 links search it about 40% faster (8,000 entries:
# 0.20 -> 0.12 ms) at the same recall of the 8 nearest (0.98), and the evaluation figures do not
# move (README "Benchmarks").
CONNECTIVITY = 12
# One vector per call, on the event loop's thread: usearch's default (every core) starts a thread
# pool per call, which costs more than a small search.
INDEX_THREADS = 1


def _new_graph(dimensions: int) -> Index:
    """An empty scope's HNSW graph, built with this module's parameters."""
    return Index(
        ndim=dimensions,
        metric="cos",
        dtype="f16",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
    )


class CandidateIndex(Protocol):
    """The semantic cache's entries, filed so that a prompt's candidates are found quickly."""

    layout: ClassVar[str]

    def __len__(self) -> int: ...

    def key(self, scope: str, prompt: str) -> str:
        """Where a prompt of this scope is filed and looked up."""
        ...

    def insert(self, key: str, label: int, vector: np.ndarray, row: EntryRow) -> None: ...

    def remove(self, key: str, label: int) -> None: ...

    def nearest(self, key: str, vector: np.ndarray, count: int) -> list[tuple[EntryRow, float]]:
        """Up to ``count`` entries under ``key`` with their cosine similarity, the closest
        first."""
        ...

    def rows(self) -> Iterator[tuple[str, int, EntryRow]]:
        """Every entry as (key, label, row)."""
        ...

    def snapshot(self) -> tuple[dict[str, Any], list[Buffer]]:
        """What the snapshot's header adds, and the index's parts."""
        ...

    @classmethod
    def restore(
        cls, dimensions: int, header: dict[str, Any], parts: list[memoryview]
    ) -> CandidateIndex:
        """The index a snapshot holds; raises ValueError, KeyError, TypeError or RuntimeError on
        a bad one."""
        ...


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _bytes_of(array: np.ndarray) -> memoryview:
    """An array's bytes as a view: no second copy of them (of none, for an empty array)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


def _row_columns(rows: list[EntryRow]) -> list[Buffer]:
    """Rows as columns: times as an array, refs and prompts as JSON lists of strings (JSON rows
    of 100k entries took most of a second to encode)."""
    return [
        np.array([added_at for _, _, added_at in rows], dtype=np.float64).tobytes(),
        json.dumps([ref for ref, _, _ in rows]).encode(),
        json.dumps([prompt for _, prompt, _ in rows]).encode(),
    ]


def _rows(times: memoryview, refs: memoryview, prompts: memoryview) -> list[EntryRow]:
    added = np.frombuffer(times, dtype=np.float64).tolist()
    return list(zip(json.loads(bytes(refs)), json.loads(bytes(prompts)), added, strict=True))


class BlockIndex:
    """Entries by scope and the guard's agreement key, each block compared exactly.

    The vectors sit in one growing matrix (unit length, f16 as in the graph) with a free list of
    its rows, and blocks are tuples of labels: no object per entry or block for the garbage
    collector to scan."""

    layout: ClassVar[str] = "blocks"
    _FIRST_ROWS = 1024

    def __init__(self, dimensions: int) -> None:
        self._dimensions = dimensions
        self._vectors = np.zeros((self._FIRST_ROWS, dimensions), dtype=np.float16)
        self._free_rows: list[int] = list(range(self._FIRST_ROWS - 1, -1, -1))
        self._row_of: dict[int, int] = {}
        self._entries: dict[int, EntryRow] = {}
        self._blocks: dict[str, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, scope: str, prompt: str) -> str:
        return f"{scope}#{agreement_key(prompt)}"

    def _take_row(self) -> int:
        if not self._free_rows:
            self._grow()
        return self._free_rows.pop()

    def _grow(self) -> None:
        """By a quarter at a time, not twice over: at 100k entries a doubled matrix held 51 MB
        of empty rows."""
        size = len(self._vectors)
        grown = np.zeros((size + max(size // 4, self._FIRST_ROWS), self._dimensions), np.float16)
        grown[:size] = self._vectors
        self._vectors = grown
        self._free_rows = list(range(len(grown) - 1, size - 1, -1))

    def insert(self, key: str, label: int, vector: np.ndarray, row: EntryRow) -> None:
        at = self._take_row()
        self._vectors[at] = _unit(vector)
        self._row_of[label] = at
        self._entries[label] = row
        self._blocks[key] = (*self._blocks.get(key, ()), label)

    def remove(self, key: str, label: int) -> None:
        self._free_rows.append(self._row_of.pop(label))
        del self._entries[label]
        rest = tuple(other for other in self._blocks[key] if other != label)
        if rest:
            self._blocks[key] = rest
        else:
            del self._blocks[key]

    def nearest(self, key: str, vector: np.ndarray, count: int) -> list[tuple[EntryRow, float]]:
        labels = self._blocks.get(key)
        if not labels:
            return []
        candidates = self._vectors[[self._row_of[label] for label in labels]].astype(np.float32)
        # The prompt at the rows' own precision, and each at its own length (f16 rounding leaves
        # a unit vector 1 +- 1e-4 long), to 6 places: a prompt scores exactly 1.0 with itself.
        query = _unit(_unit(vector).astype(np.float16))
        cosines = candidates @ query / np.linalg.norm(candidates, axis=1)
        similarities = np.clip(np.round(cosines, 6), -1.0, 1.0)
        closest = np.argsort(-similarities, kind="stable")[:count]
        return [(self._entries[labels[i]], float(similarities[i])) for i in closest]

    def rows(self) -> Iterator[tuple[str, int, EntryRow]]:
        for key, labels in self._blocks.items():
            for label in labels:
                yield key, label, self._entries[label]

    def snapshot(self) -> tuple[dict[str, Any], list[Buffer]]:
        """Columns over all entries: each one's block (an index into the header's keys), label,
        vector, and its row's columns."""
        keys = list(self._blocks)
        entries = [(n, label) for n, key in enumerate(keys) for label in self._blocks[key]]
        labels = [label for _, label in entries]
        rows = [self._entries[label] for label in labels]
        parts: list[Buffer] = [
            np.array([n for n, _ in entries], dtype=np.int64).tobytes(),
            np.array(labels, dtype=np.int64).tobytes(),
            _bytes_of(self._vectors[[self._row_of[label] for label in labels]]),
            *_row_columns(rows),
        ]
        return {"keys": keys, "agreement_rules": AGREEMENT_RULES}, parts

    @classmethod
    def restore(
        cls, dimensions: int, header: dict[str, Any], parts: list[memoryview]
    ) -> BlockIndex:
        """The index a snapshot holds; raises ValueError, KeyError or TypeError on a bad one, or
        on one whose blocks were filed by another release's guard rules (their keys would never
        match this one's: the log is replayed instead)."""
        if header.get("agreement_rules") != AGREEMENT_RULES:
            raise ValueError("blocks filed by other guard rules")
        blocks_bytes, labels_bytes, vectors_bytes, *row_columns = parts
        keys = [str(key) for key in header["keys"]]
        blocks = np.frombuffer(blocks_bytes, dtype=np.int64).tolist()
        labels = np.frombuffer(labels_bytes, dtype=np.int64).tolist()
        vectors = np.frombuffer(vectors_bytes, dtype=np.float16).reshape(-1, dimensions)
        rows = _rows(*row_columns)
        if not len(blocks) == len(labels) == len(vectors) == len(rows):
            raise ValueError("snapshot columns of different lengths")
        if len(set(labels)) != len(labels) or not all(0 <= n < len(keys) for n in blocks):
            raise ValueError("snapshot labels repeated or blocks out of range")
        index = cls(dimensions)
        size = max(len(rows), cls._FIRST_ROWS)
        index._vectors = np.zeros((size, dimensions), dtype=np.float16)
        index._vectors[: len(rows)] = vectors
        index._free_rows = list(range(size - 1, len(rows) - 1, -1))
        index._row_of = {label: at for at, label in enumerate(labels)}
        index._entries = dict(zip(labels, rows, strict=True))
        grouped: dict[str, list[int]] = {}
        for block, label in zip(blocks, labels, strict=True):
            grouped.setdefault(keys[block], []).append(label)
        index._blocks = {key: tuple(members) for key, members in grouped.items()}
        return index


class _Graph:
    def __init__(self, dimensions: int, index: Index | None = None) -> None:
        self.index = index or _new_graph(dimensions)
        self.entries: dict[int, EntryRow] = {}


class GraphIndex:
    """One HNSW graph per scope, searched approximately: any neighbour may be served."""

    layout: ClassVar[str] = "graph"

    def __init__(self, dimensions: int) -> None:
        self._dimensions = dimensions
        self._graphs: dict[str, _Graph] = {}

    def __len__(self) -> int:
        return sum(len(graph.entries) for graph in self._graphs.values())

    def key(self, scope: str, prompt: str) -> str:
        return scope

    def insert(self, key: str, label: int, vector: np.ndarray, row: EntryRow) -> None:
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = _Graph(self._dimensions)
        graph.index.add(label, vector, threads=INDEX_THREADS)
        graph.entries[label] = row

    def remove(self, key: str, label: int) -> None:
        graph = self._graphs[key]
        graph.index.remove(label)
        del graph.entries[label]
        if not graph.entries:
            del self._graphs[key]

    def nearest(self, key: str, vector: np.ndarray, count: int) -> list[tuple[EntryRow, float]]:
        graph = self._graphs.get(key)
        if graph is None or not graph.entries:
            return []
        matches = graph.index.search(vector, min(count, len(graph.entries)), threads=INDEX_THREADS)
        found = []
        for label, distance in zip(matches.keys, matches.distances, strict=True):
            row = graph.entries.get(int(label))
            if row is not None:
                found.append((row, float(1.0 - distance)))
        return found

    def rows(self) -> Iterator[tuple[str, int, EntryRow]]:
        for key, graph in self._graphs.items():
            for label, row in graph.entries.items():
                yield key, label, row

    def graphs(self) -> list[Index]:
        return [graph.index for graph in self._graphs.values()]

    def snapshot(self) -> tuple[dict[str, Any], list[Buffer]]:
        """Per scope, its graph (usearch's own format), its labels and its rows by column."""
        scopes = list(self._graphs)
        parts: list[Buffer] = []
        for scope in scopes:
            graph = self._graphs[scope]
            rows = list(graph.entries.values())
            parts += [
                graph.index.save() or b"",
                np.fromiter(graph.entries, dtype=np.int64, count=len(rows)).tobytes(),
                *_row_columns(rows),
            ]
        return {"scopes": scopes}, parts

    @classmethod
    def restore(
        cls, dimensions: int, header: dict[str, Any], parts: list[memoryview]
    ) -> GraphIndex:
        """The index a snapshot holds; raises ValueError, KeyError, TypeError or RuntimeError on a
        bad one."""
        index = cls(dimensions)
        for n, scope in enumerate(header["scopes"]):
            graph_bytes, labels_bytes, *row_columns = parts[5 * n : 5 * n + 5]
            # The saved graph keeps its links but not the breadth new entries are added with:
            # left at usearch's default (128), a restored replica inserts twice as slowly.
            restored = Index.restore(graph_bytes, expansion_add=EXPANSION_ADD)
            if restored is None:
                raise ValueError(f"scope {n}'s graph is unreadable")
            labels = np.frombuffer(labels_bytes, dtype=np.int64).tolist()
            rows = _rows(*row_columns)
            graph = index._graphs[str(scope)] = _Graph(dimensions, restored)
            graph.entries = dict(zip(labels, rows, strict=True))
        return index
