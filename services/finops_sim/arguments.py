"""Argument types of `finops-sim`'s commands: a bad value is a usage error that names it, before
anything runs, never a traceback."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

# Pulumi's stack names: letters, digits, '-', '_' and '.'.
_STACK = re.compile(r"^[A-Za-z0-9_.-]+$")
# A Kubernetes object name (RFC 1123 subdomain), as namespaces, apps and containers are named.
KUBERNETES_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def folder(text: str) -> Path:
    """An output folder: it may not exist yet, but it may not be a file, nor lie under one or
    under a folder this user cannot write to (it is created when the command writes)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name: give a folder, such as out/demo")
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):  # a read-only mount, another user's folder
            raise argparse.ArgumentTypeError(f"{text} is not writable")
        return path
    existing = next(parent for parent in path.absolute().parents if parent.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be created: {existing} is not writable")
    return path


def input_file(text: str) -> Path:
    """A file the command reads (a scenario, a gateway config): named and not a folder; whether
    it exists and what it holds the command checks, naming the file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name: give a file, such as my-scenario.yaml")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return path


def http_url(text: str) -> str:
    """A server's base URL: http or https, with a host."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a URL of a server: use http:// or https:// and a host, e.g. "
            "http://localhost:9090"
        )
    return text


def _named(pattern: re.Pattern[str], what: str, rule: str) -> Callable[[str], str]:
    """An argument type for a name that must match ``pattern``."""

    def check(text: str) -> str:
        if not pattern.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}: {rule}")
        return text

    return check


stack_name = _named(
    _STACK,
    "a stack name",
    "letters, digits, '-', '_' and '.' (the stack's config is stacks/Pulumi.<stack>.yaml)",
)
kubernetes_name = _named(
    KUBERNETES_NAME,
    "a Kubernetes name",
    "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
)
