"""Dependency questions on a mock recording: direct and transitive, by (type, name)."""

from __future__ import annotations

from finops_platform.render import Recording

Key = tuple[str, str]


def one(recording: Recording, typ: str, name: str | None = None):
    matches = [r for r in recording.mocks.of_type(typ) if name is None or r.name == name]
    assert len(matches) == 1, f"{typ} {name}: {[r.name for r in matches]}"
    return matches[0]


def depends_on(recording: Recording, resource: Key, dependency: Key) -> bool:
    """Whether ``resource`` waits for ``dependency``, directly or through others: on destroy,
    ``dependency`` then outlives ``resource``."""
    seen: set[Key] = set()
    todo = [resource]
    while todo:
        current = todo.pop()
        for dep in recording.monitor.dependencies(*current):
            if dep == dependency:
                return True
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False
