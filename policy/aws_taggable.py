"""Which AWS resource types take tags, as the pinned pulumi-aws provider's schema says.

The schema itself is embedded in the provider's plugin binary, which `pulumi` downloads at run
time and which the tests do not have. The Python SDK of the same pinned version (``pulumi_aws``,
requirements.txt) is generated from that schema, so it carries the same facts offline:
- its registry (the ``resource_modules`` list in ``pulumi_aws/__init__.py``) maps every type
  token of the schema to its generated class;
- a class has a ``tags`` input exactly when the schema's resource has a ``tags`` input property,
  and a string map there is what the provider's ``defaultTags`` merge into (its ``tagsAll``
  output). The one list-typed ``tags`` (autoscaling groups) takes no default tags and is not
  judged here.
A type token the SDK does not know (a newer provider than the one pinned) is not taggable here;
the tests check that the program registers none.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
from functools import cache
from pathlib import Path


@cache
def resource_classes() -> dict[str, tuple[str, str]]:
    """Type token -> (Python module, class name), read from the SDK's own registry."""
    spec = importlib.util.find_spec("pulumi_aws")
    if spec is None or spec.origin is None:
        raise RuntimeError("pulumi_aws is not installed (requirements.txt pins it)")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "resource_modules":
            assert isinstance(node.value, ast.Constant)
            return {
                token: (module["fqn"], name)
                for module in json.loads(node.value.value)
                for token, name in module["classes"].items()
            }
    raise RuntimeError(f"{spec.origin} has no resource_modules registry")


@cache
def is_taggable(resource_type: str) -> bool:
    """True when the resource type has a ``tags`` input that is a map of strings."""
    found = resource_classes().get(resource_type)
    if found is None:
        return False
    module, name = found
    resource_class = getattr(importlib.import_module(module), name)
    tags = inspect.signature(resource_class._internal_init).parameters.get("tags")
    return tags is not None and "Mapping[str" in str(tags.annotation)
