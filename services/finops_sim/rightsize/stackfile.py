"""Write recommended requests into a stack file, keeping every other byte of it.

The file is parsed only to find where each value is (PyYAML's node marks give its exact span);
the new values replace those spans and nothing else, so comments, flow style, order and quoting
stay. One comment line above the workload's key says where the numbers come from (it replaces
the previous such line). The result is validated by the stack config's own loader and priced by
the cost model before it is kept; if either refuses it, the file is restored.

Next to the stack file, ``stacks/rightsize.<stack>.json`` keeps the recommendations that were
written, with their usage figures; the policy pack's rightsizing ceiling reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import yaml
from pydantic.alias_generators import to_camel

from finops_common.config import ConfigError
from finops_platform import config as platform_config
from finops_platform.config import PROJECT, StackConfig
from finops_platform.cost import CostModelError, stack_cost

WORKLOADS_KEY = f"{PROJECT}:workloads"


@dataclass(frozen=True)
class RequestChange:
    """New requests for the container resources at ``key`` (under ``finops-sim:workloads``)."""

    workload: str  # as the stack names it, e.g. "gateway"; starts the note
    key: tuple[str, ...]  # attribute path, e.g. ("gateway", "resources")
    cpu: str  # request, e.g. "130m"
    memory: str  # request and limit, e.g. "352Mi"
    note: str  # where the numbers come from, one line

    @property
    def comment(self) -> str:
        return f"# {self.note_prefix}{self.note}"

    @property
    def note_prefix(self) -> str:
        return f"{self.workload} requests: "


class RecordedRequests(TypedDict):
    cpu: str  # e.g. "130m"
    memory: str  # request and limit, e.g. "352Mi"


class RecordedWorkload(TypedDict):
    """A written recommendation in ``rightsize.<stack>.json``: the keys every writer gives it (a
    ``--prometheus`` run's entries have more, a ``--from-run`` one the ``source`` it was sized
    from)."""

    apps: list[str]
    container: str
    recommendation: RecordedRequests
    source: NotRequired[str]


def recommendations_file(stack: str) -> Path:
    return platform_config.STACKS_DIR / f"rightsize.{stack}.json"


def read_recommendations(stack: str) -> list[RecordedWorkload]:
    """The recommendations last written into the stack, or [] when none were."""
    path = recommendations_file(stack)
    if not path.exists():
        return []
    try:
        workloads = json.loads(path.read_text())["workloads"]
        return [w for w in workloads if w.get("recommendation")]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path}: not the recommendations `finops-sim rightsize --write` writes ({exc!r}): "
            "write it again, or delete it to price the stack as its file stands"
        ) from exc


def _child(node: yaml.Node, key: str, where: str) -> tuple[yaml.Node, yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return key_node, value_node
    raise ConfigError(f"{where}: no key `{key}` to write the recommendation to")


def _scalar_text(node: yaml.Node, value: str) -> str:
    quote = node.style if node.style in ("'", '"') else ""
    return f"{quote}{value}{quote}"


def _reached(node: yaml.Node, path: tuple[str, ...] = ()) -> Iterator[tuple[str, yaml.Node]]:
    """Every node under ``node`` with its dotted path; an alias's node is reached once per
    path that names it."""
    yield ".".join(path), node
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield from _reached(value_node, (*path, str(key_node.value)))
    elif isinstance(node, yaml.SequenceNode):
        for at, item in enumerate(node.value):
            yield from _reached(item, (*path, str(at)))


def _refuse_shared(workloads: yaml.Node, written: list[yaml.Node], source: str) -> None:
    """A YAML alias (``*name``, or a ``<<`` merge) makes one value several workloads': writing it
    would change a workload that got no recommendation, or give two the last one's."""
    paths: dict[int, list[str]] = {}
    for path, node in _reached(workloads):
        paths.setdefault(id(node), []).append(path)
    for node in written:
        named = paths[id(node)]
        if len(named) > 1:
            raise ConfigError(
                f"{source}: {WORKLOADS_KEY}.{named[0]} is a YAML alias shared with "
                + ", ".join(f"{WORKLOADS_KEY}.{other}" for other in named[1:])
                + ": writing it would change them all; give each workload its own resources"
            )


def apply_changes(text: str, changes: list[RequestChange], source: str) -> str:
    """The stack file's text with the changes' values and notes; nothing else moves."""
    root = yaml.compose(text)
    _, workloads = _child(_child(root, "config", source)[1], WORKLOADS_KEY, source)
    written: list[yaml.Node] = []
    spans: list[tuple[int, int, str]] = []
    notes: dict[int, list[RequestChange]] = {}
    for change in changes:
        where = f"{source}: {WORKLOADS_KEY}.{'.'.join(to_camel(p) for p in change.key)}"
        key_node, node = _child(workloads, to_camel(change.key[0]), where)
        for part in change.key[1:]:
            key_node, node = _child(node, to_camel(part), where)
        for path, value in (
            (("requests", "cpu"), change.cpu),
            (("requests", "memory"), change.memory),
            (("limits", "memory"), change.memory),
        ):
            scalar = _child(_child(node, path[0], where)[1], path[1], where)[1]
            written.append(scalar)
            spans.append(
                (scalar.start_mark.index, scalar.end_mark.index, _scalar_text(scalar, value))
            )
        notes.setdefault(key_node.start_mark.line, []).append(change)
    _refuse_shared(workloads, written, source)
    for start, end, value in sorted(spans, reverse=True):
        text = text[:start] + value + text[end:]
    return _with_notes(text, notes)


def _with_notes(text: str, notes: dict[int, list[RequestChange]]) -> str:
    """A note line above each changed key's line, replacing the same workload's older note."""
    lines = text.splitlines(keepends=True)
    for line_no in sorted(notes, reverse=True):
        line = lines[line_no]
        indent = line[: len(line) - len(line.lstrip())]
        prefixes = tuple(f"# {c.note_prefix}" for c in notes[line_no])
        start = line_no
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        kept = [c for c in lines[start:line_no] if not c.lstrip().startswith(prefixes)]
        added = [f"{indent}{c.comment}\n" for c in notes[line_no]]
        lines[start:line_no] = kept + added
    return "".join(lines)


def write_requests(stack: str, changes: list[RequestChange]) -> StackConfig:
    """Write the changes into the stack file; the program must still accept and price it."""
    from finops_platform.config import load_stack

    path = platform_config.stack_file(stack)
    original = path.read_text(encoding="utf-8")
    path.write_text(apply_changes(original, changes, path.name), encoding="utf-8")
    try:
        config = load_stack(stack)
        if config.platform.mode == "aws":
            stack_cost(config)
    except (ConfigError, CostModelError) as exc:
        path.write_text(original, encoding="utf-8")
        raise ConfigError(f"{path.name} left unchanged: the new values are refused: {exc}") from exc
    return config


def _container(entry: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    return tuple(entry["apps"]), entry["container"]


def write_recommendations(stack: str, document: dict[str, Any]) -> tuple[Path, list[str]]:
    """Record what was written, and the containers whose earlier recommendation stays: one this
    run has none for (too little data, or none at all, as a Prometheus run for the gateway that
    ``--from-run`` sized) is still the request in the stack file, so the policy pack must keep
    reading it."""
    path = recommendations_file(stack)
    earlier = {
        _container(w): w
        for w in (json.loads(path.read_text())["workloads"] if path.exists() else [])
        if w.get("recommendation")
    }
    workloads, kept = [], []
    for entry in document["workloads"]:
        previous = earlier.pop(_container(entry), None)
        if not entry.get("recommendation") and previous is not None:
            entry = previous
            kept.append(entry["container"])
        workloads.append(entry)
    kept += [entry["container"] for entry in earlier.values()]
    workloads += earlier.values()
    path.write_text(json.dumps({**document, "workloads": workloads}, indent=2) + "\n", "utf-8")
    return path, kept
