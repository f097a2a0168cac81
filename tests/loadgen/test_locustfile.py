"""The locustfile in its three modes: headless, master with workers, and the web UI."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import loadgen
from finops_common.process import free_port
from finops_sim.results import read_log

LOCUSTFILE = Path(loadgen.__file__).with_name("locustfile.py")


@pytest.fixture
def gateway(start_gateway, tmp_path):
    log = tmp_path / "requests.jsonl"
    process = start_gateway(profile="unoptimized", request_log=str(log))
    process.request_log = log
    return process


DEPLOYED_TEAMS = ("team-a", "team-b")


@pytest.fixture
def deployed_gateway(start_gateway, tmp_path):
    """A gateway holding its own keys, not the scenario's demo ones, as a deployed one does; its
    ``keys_file`` is what the stack mounts into the Locust pods."""
    log = tmp_path / "deployed-requests.jsonl"
    teams = {name: {"keys": [f"sk-deployed-{name}-key"]} for name in DEPLOYED_TEAMS}
    process = start_gateway(profile="unoptimized", request_log=str(log), teams=teams)
    process.request_log = log
    process.keys_file = tmp_path / "keys.yaml"
    process.keys_file.write_text("".join(f"{n}: sk-deployed-{n}-key\n" for n in DEPLOYED_TEAMS))
    return process


def locust(*args: str, **kwargs) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def indices(log: Path) -> list[int]:
    return sorted(int(r.sim["index"]) for r in read_log(log))


def test_headless_sends_exactly_max_requests_with_ground_truth(gateway):
    run = locust("--headless", "-u", "2", "-r", "2", "--host", gateway.url,
                 "--max-requests", "60", "--only-summary")  # fmt: skip
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr.decode()[-2000:]
    assert indices(gateway.request_log) == list(range(60))
    record = read_log(gateway.request_log)[0]
    assert {"intent", "question", "difficulty", "kind", "index"} <= set(record.sim)


def test_master_and_workers_share_one_sequence_and_the_masters_team_keys(deployed_gateway):
    gateway = deployed_gateway
    port = free_port()
    master = locust("--master", "--headless", "--expect-workers", "2", "-u", "2", "-r", "2",
                    "--host", gateway.url, "--master-bind-port", str(port),
                    "--max-requests", "40", "--sequence-workers", "2", "--run-time", "12s",
                    "--team-keys", str(gateway.keys_file), "--only-summary")  # fmt: skip
    workers = [
        locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
        for _ in range(2)
    ]
    try:
        _, stderr = master.communicate(timeout=120)
        assert master.returncode == 0, stderr.decode()[-2000:]
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
    assert indices(gateway.request_log) == list(range(40))


@contextmanager
def web_ui(gateway) -> Iterator[tuple[str, subprocess.Popen[bytes], list[str]]]:
    """Locust's web UI, its first page served; yields its URL, its process and its stderr lines,
    read as they come (a thread drains the pipe)."""
    port = free_port()
    ui = locust("--host", gateway.url, "--web-host", "127.0.0.1", "--web-port", str(port))
    url, lines = f"http://127.0.0.1:{port}", []
    assert ui.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(map(bytes.decode, ui.stderr)))
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, ui, lines
    finally:
        ui.terminate()
        ui.wait(timeout=30)
        reader.join(timeout=30)


def wait_for_line(lines: list[str], text: str, timeout_s: float = 30) -> str:
    """The first line holding ``text``, polled until it comes or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = next((line for line in list(lines) if text in line), None)
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} within {timeout_s:.0f} s:\n{''.join(lines)[-2000:]}")


def test_web_ui_serves_the_scenario_options(gateway):
    with web_ui(gateway) as (url, _, _):
        page = httpx.get(url + "/", timeout=5)
        assert page.status_code == 200
        assert "scenario" in page.text


def test_the_web_uis_form_cannot_start_zero_sequence_workers(gateway):
    """The form takes values without the command line's parsers: the test start refuses them."""
    with web_ui(gateway) as (url, _, lines):
        form = {"user_count": "1", "spawn_rate": "1", "host": gateway.url, "sequence_workers": "0"}
        httpx.post(url + "/swarm", data=form, timeout=10)
        wait_for_line(lines, "invalid options, stopping: --sequence-workers 0 (at least 1)")
    assert "Traceback" not in "".join(lines)
    assert not gateway.request_log.exists() or not gateway.request_log.read_text().strip()


@pytest.mark.parametrize(
    ("flag", "text", "reason"),
    [
        ("--scenario", "version: 1\nname: broken\n", "invalid scenario"),
        ("--team-keys", "team-a: sk-deployed-team-a-key\n", "no key for team-b"),
        # Not UTF-8: it raised past the listener, and Locust waited forever for a plan.
        ("--scenario", b"\xff\xfe\x00bad", "not UTF-8 text"),
    ],
)
def test_an_invalid_scenario_or_keys_file_stops_locust_naming_it(
    gateway, tmp_path, flag, text, reason
):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    run = locust("--headless", "-u", "1", "-r", "1", "--host", gateway.url,
                 flag, str(bad), "--only-summary")  # fmt: skip
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2
    assert reason in stderr.decode() and str(bad) in stderr.decode()
    assert not gateway.request_log.exists() or not gateway.request_log.read_text().strip()


@pytest.mark.parametrize(("flag", "value"), [("--sequence-workers", "0"), ("--max-requests", "-1")])
def test_an_out_of_range_count_is_refused_naming_the_flag(flag, value):
    """--sequence-workers 0 was taken as 1 without a word."""
    run = locust("--headless", "-u", "1", "-r", "1", "--host", "http://127.0.0.1:9", flag, value)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 2
    assert f"argument {flag}: '{value}' is invalid: allowed values are" in err.decode()


def test_team_keys_let_the_load_through_a_gateway_without_the_demo_keys(deployed_gateway):
    gateway = deployed_gateway
    run = locust("--headless", "-u", "2", "-r", "2", "--host", gateway.url, "--max-requests", "30",
                 "--only-summary", "--team-keys", str(gateway.keys_file))  # fmt: skip
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr.decode()[-2000:]
    assert indices(gateway.request_log) == list(range(30))
    assert {record.team for record in read_log(gateway.request_log)} == set(DEPLOYED_TEAMS)
