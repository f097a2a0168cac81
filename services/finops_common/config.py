"""Configuration errors that name file, key and value, and the strict base of every config model.

YAML syntax errors and pydantic validation failures become one ConfigError each, with one line per
problem, so every package reports a bad file the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(Exception):
    """A configuration file or value is invalid; the message is meant for the user as is."""


class StrictModel(BaseModel):
    """Immutable, and an unknown key is an error (a typo must not be silently ignored). No
    number may be infinite or NaN (YAML's `.inf` and `.nan`): none is a price, a limit or a size,
    and an infinite budget reached start-up as an OverflowError."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _dotted(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<root>"


def _field(model: Any, key: Any) -> Any:
    """The field ``key`` names: by its alias (what a config file writes), or by its name."""
    fields = getattr(model, "model_fields", None) or {}
    return fields.get(key) or next((f for f in fields.values() if f.alias == key), None)


def _at(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The model that holds the last part of ``loc``, walking nested models (list indices and a
    mapping's own keys, such as a team's name, skipped)."""
    current: Any = model
    parts = iter(loc[:-1])
    for item in parts:
        if isinstance(item, int):
            continue
        field = _field(current, item)
        if field is None:
            return None
        args = getattr(field.annotation, "__args__", ())
        nested = [
            a for a in (field.annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not nested:
            return None
        current = nested[-1]
        if any(get_origin(a) is dict for a in (field.annotation, *args)):
            next(parts, None)  # the mapping's key: a name, not a field
    return current


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed beside the last part of ``loc``, as a config file writes them."""
    fields = getattr(_at(model, loc), "model_fields", None)
    return sorted(field.alias or name for name, field in fields.items()) if fields else None


def _described(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """The field's description, which says what a value looks like better than its regex."""
    if model is None or not loc:
        return None
    field = _field(_at(model, loc), loc[-1])
    return getattr(field, "description", None)


# Where a problem is: a file's name, or a function naming the file that holds each key (settings
# merged from several files).
Source = str | Callable[[tuple[Any, ...]], str]


def source_of(source: Source, loc: tuple[Any, ...]) -> str:
    return source if isinstance(source, str) else source(loc)


def describe_validation_error(
    error: ValidationError, source: Source, model: type[BaseModel] | None = None
) -> str:
    """Render every problem as ``source: key `a.b`: value X: what is allowed``."""
    lines = []
    problems = error.errors()
    # A list whose bad item pydantic dropped is also too short: a second line about the same
    # mistake, and a misleading one.
    inside = {tuple(p.get("loc", ()))[:-1] for p in problems if p.get("type") != "too_short"}
    for problem in problems:
        loc = tuple(problem.get("loc", ()))
        if problem.get("type") == "too_short" and loc in inside:
            continue
        key = _dotted(loc)
        where = source_of(source, loc)
        if problem.get("type") == "extra_forbidden":
            allowed = _allowed_keys(model, loc) if model is not None else None
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"{where}: unknown key `{key}`{hint}")
            continue
        if problem.get("type") == "missing":
            # pydantic's input here is the mapping that lacks the key, not a value of it.
            lines.append(f"{where}: key `{key}` is missing, and it is required")
            continue
        value = problem.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message = problem.get("msg", "invalid")
        described = _described(model, loc)
        if problem.get("type") == "string_pattern_mismatch" and described:
            message = f"{message} ({described})"
        lines.append(f"{where}: key `{key}`: value {shown} is invalid: {message}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no types
    """YAML's safe loader, refusing a key given twice in one mapping: the last one won without a
    word, so a setting edited in one place was overridden by a forgotten copy below it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def read_yaml(path: Path) -> Any:
    """Read a YAML file or raise ConfigError naming the file and the line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.end]!r}); "
            "save it as UTF-8"
        ) from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from exc


def validate(model: type[ModelT], data: Any, source: Source) -> ModelT:
    """Validate ``data`` against ``model`` or raise ConfigError with every problem listed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, model)) from exc
