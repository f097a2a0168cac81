"""The gateway's CLI under cProfile, switched on and off from outside so start-up is left out.

SIGUSR1 starts profiling; SIGUSR2 stops it and writes the stats to the file given first.
Used by ``bench/compare.py --cprofile``:

    .venv/bin/python bench/gateway_profiled.py OUT.prof --profile optimized --port 9000
"""

from __future__ import annotations

import cProfile
import signal
import sys

from ai_gateway.cli import main


def run(out_path: str, cli_args: list[str]) -> int:
    profiler = cProfile.Profile()

    def start(*_: object) -> None:
        profiler.enable()

    def stop_and_write(*_: object) -> None:
        profiler.disable()
        profiler.dump_stats(out_path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop_and_write)
    return main(cli_args)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
