"""The machine line reports and benchmarks print."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from finops_common.machine import cpu_model, describe


def test_the_line_names_the_cpu_its_cores_and_python():
    line = describe()
    assert line.startswith(cpu_model() + ", ")
    assert f"{os.cpu_count()} cores" in line
    assert f"Python {platform.python_version()}" in line


def test_the_cpu_model_comes_from_cpuinfo_where_there_is_one():
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    assert cpu_model() == (names[0] if names else "unknown")
