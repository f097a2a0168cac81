"""The child-process harness: output goes to the log, and the process is gone afterwards."""

from __future__ import annotations

import socket
import sys

from finops_common.process import child_process, free_port


def test_a_child_process_is_stopped_when_the_block_ends(tmp_path):
    log = tmp_path / "child.log"
    script = "import sys, time; print('started', flush=True); time.sleep(60)"
    with child_process([sys.executable, "-c", script], log) as process:
        while b"started" not in log.read_bytes():
            assert process.poll() is None
    assert process.returncode is not None  # stopped, not left sleeping for 60 s
    assert log.read_text() == "started\n"


def test_a_child_process_is_stopped_when_the_block_fails(tmp_path):
    try:
        with child_process([sys.executable, "-c", "import time; time.sleep(60)"],
                           tmp_path / "child.log") as process:  # fmt: skip
            raise KeyError("boom")
    except KeyError:
        pass
    assert process.returncode is not None


def test_a_free_port_can_be_bound():
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
