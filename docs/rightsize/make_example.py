"""Regenerate the README's rightsizing example from the tests' history.

It writes the tests' synthetic history (tests/finops_sim/rightsize_history.py), serves it from a
real Prometheus on 127.0.0.1, runs `finops-sim rightsize --format html` against it, copies the
gateway's chart here and prints the table the README shows. Needs Debian's `prometheus` package.

    .venv/bin/python docs/rightsize/make_example.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from finops_sim import cli  # noqa: E402
from tests.finops_sim.rightsize_history import END, binaries, generate, serve  # noqa: E402

CHART = "gateway-gateway.png"


def main() -> int:
    if binaries() is None:
        print("needs prometheus and promtool: apt-get install prometheus", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as work, serve(generate(), Path(work) / "prom") as url:
        out = Path(work) / "out"
        argv = ["rightsize", "--prometheus", url, "--window", "2d", "--end", str(END)]
        if cli.main([*argv, "--format", "html", "--out", str(out)]) != 0:
            return 1
        shutil.copyfile(out / "charts" / CHART, HERE / CHART)
        print(f"\nwrote {HERE / CHART}; the table:\n")
        return cli.main([*argv, "--out", str(out)])


if __name__ == "__main__":
    sys.exit(main())
