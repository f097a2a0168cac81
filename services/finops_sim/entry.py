"""The `finops-sim` command's entry point. Loading the program takes about 0.6 s of imports
(matplotlib, pydantic models, the platform's config); a Ctrl-C then ends it with a line, not a
traceback from inside an import."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as run_command
    except KeyboardInterrupt:
        print("finops-sim: interrupted while starting; nothing was started", file=sys.stderr)
        return 130
    return run_command()
