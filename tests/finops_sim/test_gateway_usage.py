"""Reading the gateway process's CPU and memory from prometheus-client's process metrics."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time

import pytest

from finops_sim.gateway_usage import (
    MeasurementError,
    PhaseUsage,
    ProcessMeter,
    parse_process_metrics,
)

EXPOSITION = """\
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.145728e+08
# HELP ai_cost_total Provider spend in USD.
# TYPE ai_cost_total counter
ai_cost_total{model="gpt-5.4",team="team-a"} 0.5
"""


def test_the_two_process_metrics_are_read_from_an_exposition():
    sample = parse_process_metrics(EXPOSITION, at=5.0)
    assert (sample.cpu_seconds, sample.rss_bytes, sample.at) == (12.34, 314572800.0, 5.0)


def test_an_exposition_without_them_names_what_is_missing():
    text = EXPOSITION.split("# HELP process_resident")[0]
    with pytest.raises(MeasurementError, match="process_resident_memory_bytes"):
        parse_process_metrics(text, at=0.0)


@pytest.fixture
def busy_child(tmp_path):
    """A process that burns CPU and holds ~64 MiB, served by no metrics endpoint of its own."""
    script = "b = bytearray(64 * 2**20)\nwhile True:\n    sum(range(10_000))\n"
    process = subprocess.Popen([sys.executable, "-c", script])
    yield process
    process.kill()
    process.wait(timeout=5)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="process metrics need Linux /proc")
def test_a_phase_of_a_busy_process_has_cpu_seconds_and_its_peak_memory(busy_child):
    class Empty(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"# no process metrics here\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Empty)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        meter = ProcessMeter(f"http://127.0.0.1:{server.server_port}/metrics", busy_child.pid)
        usage = PhaseUsage(meter)
        usage.start()
        for _ in range(6):
            time.sleep(0.25)
            usage.tick()
        result = usage.finish(requests=30)
    finally:
        server.shutdown()
    assert meter.source == f"/proc/{busy_child.pid} (prometheus-client)"
    assert result.wall_seconds >= 1.5
    # One busy thread: some CPU time, and no more than the wall time allows (how much of a core
    # it got depends on the machine's load, so that is not asserted).
    assert 0 < result.cpu_seconds <= result.wall_seconds * 1.1
    assert result.peak_rss_bytes >= 64 * 2**20
    assert result.rss_samples >= 3
    assert result.requests_per_second == pytest.approx(30 / result.wall_seconds)
    assert result.cpu_millicores == pytest.approx(1000 * result.cpu_seconds / result.wall_seconds)
