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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def recommendations_file(stack: str) -> Path:
    return platform_config.STACKS_DIR / f"rightsize.{stack}.json"


def read_recommendations(stack: str) -> list[dict[str, Any]]:
    """The recommendations last written into the stack, or [] when none were."""
    path = recommendations_file(stack)
    if not path.exists():
        return []
    return [w for w in json.loads(path.read_text())["workloads"] if w.get("recommendation")]


def _child(node: yaml.Node, key: str, where: str) -> tuple[yaml.Node, yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return key_node, value_node
    raise ConfigError(f"{where}: no key `{key}` to write the recommendation to")


def _scalar_text(node: yaml.Node, value: str) -> str:
    quote = node.style if node.style in ("'", '"') else ""
    return f"{quote}{value}{quote}"


def apply_changes(text: str, changes: list[RequestChange], source: str) -> str:
    """The stack file's text with the changes' values and notes; nothing else moves."""
    root = yaml.compose(text)
    _, workloads = _child(_child(root, "config", source)[1], WORKLOADS_KEY, source)
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
            spans.append(
                (scalar.start_mark.index, scalar.end_mark.index, _scalar_text(scalar, value))
            )
        notes.setdefault(key_node.start_mark.line, []).append(change)
    for start, end, value in sorted(set(spans), reverse=True):  # an alias is one node
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
    from finops_platform.render import load_stack

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


def write_recommendations(stack: str, document: dict[str, Any]) -> Path:
    path = recommendations_file(stack)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
