"""The `finops-sim` command's entry point. Loading the program takes about 0.6 s of imports
(matplotlib, pydantic models, the platform's config); a Ctrl-C then ends it with a line, not a
traceback from inside an import."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    # Before the imports: a run started with SIGINT ignored (a background job of a script) got
    # Ctrl-C during them lost, and went on to the end.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from .cli import main as run_command
    except KeyboardInterrupt:
        print("finops-sim: interrupted while starting; nothing was started", file=sys.stderr)
        return 130
    try:
        return run_command()
    except KeyboardInterrupt:  # outside a run, which says what it stopped: nothing to stop
        print("finops-sim: interrupted", file=sys.stderr)
        return 130
