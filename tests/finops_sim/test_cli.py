"""`finops-sim`: argument checks, exit codes, clear errors, and nothing left running."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finops_common.config import ConfigError
from finops_sim.cli import _discounts, _duration, main


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("45s", 45), ("2m", 120),
                                               ("1.5h", 5400), ("1.2s", 2)])  # fmt: skip
def test_durations_take_seconds_minutes_or_hours(text, seconds):
    assert _duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "0", "0.5s", "nan", "inf"])
def test_a_bad_duration_says_how_to_write_one(text):
    with pytest.raises(argparse.ArgumentTypeError, match="invalid"):
        _duration(text)


def test_usage_errors_say_what_is_wrong_in_the_users_words(tmp_path, capsys):
    """Not a traceback, nor the name of a parsing function."""
    a_file = tmp_path / "afile"
    a_file.write_text("")
    for argv, expected in (
        (["run", "--requests", "abc"], "argument --requests: 'abc' is not a whole number"),
        (
            ["run", "--requests", "0"],
            "argument --requests: '0' is invalid: allowed values are 1 or more",
        ),
        (["run", "--out", str(a_file)], f"argument --out: {a_file} is a file, not a folder"),
        (["cost", "--stack", ""], "argument --stack: '' is not a stack name"),
        (["render", "--stack", "a/b"], "argument --stack: 'a/b' is not a stack name"),
        (
            ["rightsize", "--prometheus", "http://127.0.0.1:9", "--namespace", "Bad_NS"],
            "argument --namespace: 'Bad_NS' is not a Kubernetes name",
        ),
        (
            ["rightsize", "--prometheus", "http://127.0.0.1:9", "--out", str(a_file)],
            f"argument --out: {a_file} is a file, not a folder",
        ),
        (
            ["run", "--out", str(a_file / "sub")],
            f"argument --out: {a_file / 'sub'} cannot be created: {a_file} is a file",
        ),
        (
            ["render", "--stack", "optimized", "--out", str(a_file / "x" / "y")],
            f"argument --out: {a_file / 'x' / 'y'} cannot be created: {a_file} is a file",
        ),
        (
            ["rightsize", "--prometheus", "notaurl"],
            "argument --prometheus: 'notaurl' is not a URL of a server: use http:// or https://",
        ),
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        stderr = capsys.readouterr().err
        assert expected in stderr and "Traceback" not in stderr


def test_spot_discounts_are_one_letter_categories_and_fractions():
    assert _discounts(["m=0.55", "c=0"]) == {"m": 0.55, "c": 0.0}
    for bad in ("m=1", "mx=0.5", "m=half", "m"):
        with pytest.raises(ConfigError, match="use CATEGORY=FRACTION"):
            _discounts([bad])
    # A category the NodePools never buy would change nothing: it is refused, not ignored.
    with pytest.raises(ConfigError, match="no 'x' instances; allowed categories: c, m, r"):
        _discounts(["x=0.3"])


def test_from_run_sizes_only_a_stack_running_the_optimized_profile(tmp_path, capsys):
    """The run's optimized phase measured the optimized profile: the "before" stack runs the
    unoptimized one, so its gateway is not what was measured."""
    code = main(
        ["rightsize", "--from-run", str(tmp_path / "results.json"), "--stack", "unoptimized"]
    )
    assert code == 2
    assert "stack unoptimized runs the gateway's unoptimized profile" in capsys.readouterr().err


def test_from_run_names_a_file_that_is_not_a_runs_results(tmp_path, capsys):
    report = tmp_path / "report.md"
    report.write_text("# finops-sim savings report\n")
    assert main(["rightsize", "--from-run", str(report)]) == 2
    err = capsys.readouterr().err
    assert f"{report}: not JSON; --from-run takes the results.json" in err
    assert "pydantic" not in err
    other = tmp_path / "other.json"
    other.write_text('{"run": {}}')
    assert main(["rightsize", "--from-run", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"{other}: key `phases` is missing, and it is required" in err
    utf16 = tmp_path / "utf16.json"
    utf16.write_text('{"run": {}}', encoding="utf-16")
    assert main(["rightsize", "--from-run", str(utf16)]) == 2
    assert f"{utf16}: not UTF-8 text; --from-run takes the results.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--format", "json"], "--format applies"),
        (["--window", "1d", "--namespace", "foo"], "--window, --namespace apply"),
        (["--end", "2026-11-30T00:00:00Z"], "--end applies"),
        (["--min-history", "1h", "--oom-bump", "0.5", "--out", "x"],
         "--min-history, --oom-bump, --out apply"),
    ],
)  # fmt: skip
def test_from_run_refuses_the_prometheus_only_options(tmp_path, capsys, extra, says):
    """--window and --namespace were silently ignored (exit 0, the same sizing)."""
    code = main(["rightsize", "--from-run", str(tmp_path / "results.json"), *extra])
    assert code == 2
    assert f"{says} to --prometheus" in capsys.readouterr().err


def test_cost_compare_prints_both_stacks_and_the_split(capsys):
    assert main(["cost", "--compare", "unoptimized", "optimized"]) == 0
    out = capsys.readouterr().out
    assert "compute per month" in out and "rightsizing $" in out and "spot $" in out


def test_cost_of_a_stack_says_when_its_rounded_lines_miss_the_total(capsys):
    """Each line and the total are rounded on their own; the optimized stack's lines add up to a
    cent below its total, which read as an arithmetic error."""
    assert main(["cost", "--stack", "optimized"]) == 0
    lines = capsys.readouterr().out.splitlines()
    total = float(lines[0].split("$")[1].split()[0].replace(",", ""))
    parts = [float(line.rsplit("$", 1)[1].split("/")[0].replace(",", "")) for line in lines
             if line.endswith("/month")]  # fmt: skip
    noted = lines[-1] == "  (each line is rounded on its own: they add up to a cent off the total)"
    assert noted == (round(sum(parts), 2) != total)


def test_an_unknown_stack_is_a_clear_error_that_lists_the_stacks(capsys):
    assert main(["render", "--stack", "nosuch"]) == 2
    assert "Pulumi.nosuch.yaml: file not found; the stacks are local, optimized, unoptimized" in (
        capsys.readouterr().err
    )


def test_a_helm_charts_folder_that_is_not_there_is_named_as_such(capsys, tmp_path):
    """It said "<DIR>/karpenter-crd: no Chart.yaml", as if one chart were missing."""
    missing = tmp_path / "charts"
    assert main(["render", "--stack", "local", "--helm-charts", str(missing)]) == 2
    assert f"--helm-charts {missing} is not a folder" in capsys.readouterr().err


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _start_run(
    fast_scenario: Path, out: Path, background: bool = False, nohup: bool = False
) -> tuple[subprocess.Popen, set[int]]:
    """A long run, once its first phase is under way, and the processes it started.
    ``background`` starts it as a script's background job does: in a process group of its own,
    with SIGINT ignored; ``nohup`` as `nohup` does, with SIGHUP ignored."""
    ignored = [signal.SIGINT] * background + [signal.SIGHUP] * nohup

    def ignore() -> None:
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)

    process = subprocess.Popen(
        [sys.executable, "-m", "finops_sim.cli", "run", "--requests", "100000",
         "--scenario", str(fast_scenario), "--out", str(out), "--embedder", "lexical"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=background,
        preexec_fn=ignore if ignored else None,
    )  # fmt: skip
    log = out / "requests-unoptimized.jsonl"
    deadline = time.monotonic() + 60
    while (not log.exists() or log.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.2)
    started = _children(process.pid)
    assert len(started) >= 3, "Valkey, the gateway and Locust should be running"
    return process, started


def _still_running(started: set[int]) -> set[int]:
    time.sleep(0.5)
    alive = {pid for pid in started if Path(f"/proc/{pid}").exists()}
    return {pid for pid in alive if (Path(f"/proc/{pid}") / "stat").read_text().split()[2] != "Z"}


@pytest.mark.parametrize(
    ("stop_signal", "to_group"),
    [
        (signal.SIGINT, False),
        (signal.SIGTERM, False),
        (signal.SIGINT, True),
        (signal.SIGHUP, True),
    ],
    ids=["ctrl-c", "sigterm", "ctrl-c-to-a-background-group", "terminal-closed-sighup-to-group"],
)
def test_ctrl_c_or_sigterm_leaves_nothing_running_and_no_stale_report(
    fast_scenario, tmp_path, stop_signal, to_group
):
    """To the run alone, or (as a terminal sends Ctrl-C, or SIGHUP when it is closed) to its
    whole process group, whose processes then stop with it: the run says it was interrupted, not
    that they died. The last run's report is gone, since the logs beside it are this run's. A
    closed terminal once left Valkey running."""
    out = tmp_path / "interrupted"
    out.mkdir()
    for stale in ("report.md", "report.html", "results.json"):
        (out / stale).write_text("an earlier run")
    process, started = _start_run(fast_scenario, out, background=to_group)
    if to_group:
        os.killpg(process.pid, stop_signal)
    else:
        process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr and b"partial logs" in stderr
    alive = _still_running(started)
    assert not alive, f"still running after {stop_signal.name}: {alive}"
    assert not {p.name for p in out.iterdir()} & {"report.md", "report.html", "results.json"}


def test_under_nohup_a_hangup_does_not_stop_the_run(fast_scenario, tmp_path):
    """`nohup finops-sim run ... &` must outlive the terminal: the run's own SIGHUP handler once
    replaced the ignore that nohup set."""
    process, started = _start_run(fast_scenario, tmp_path / "nohup", nohup=True)
    log = tmp_path / "nohup" / "requests-unoptimized.jsonl"
    try:
        process.send_signal(signal.SIGHUP)
        before = log.stat().st_size
        deadline = time.monotonic() + 30
        while log.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1]
        assert log.stat().st_size > before  # still serving requests after the hangup
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 130
    assert not _still_running(started)


def _gateway_pid(started: set[int]) -> int:
    for pid in started:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ai_gateway.cli" in command:
            return pid
    raise AssertionError("no gateway process among the run's children")


def test_a_gateway_that_dies_mid_phase_is_a_clear_error_and_nothing_is_left(
    fast_scenario, tmp_path
):
    process, started = _start_run(fast_scenario, tmp_path / "crashed")
    os.kill(_gateway_pid(started), signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert b"the unoptimized gateway stopped answering" in stderr
    assert b"gateway-unoptimized.log" in stderr and b"Traceback" not in stderr
    alive = _still_running(started)
    assert not alive, f"still running after the gateway died: {alive}"


def test_an_output_the_run_cannot_write_is_a_clear_error(fast_scenario, tmp_path):
    """report.md a folder: clearing the last run's report raised IsADirectoryError, a
    traceback."""
    out = tmp_path / "o"
    (out / "report.md").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "run", "--scenario", str(fast_scenario),
         "--out", str(out), "--embedder", "lexical"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"finops-sim: {out / 'report.md'} is a folder, where this run writes" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "logs").exists()  # refused before any phase ran


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "finops_sim.cli", "run", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_file_where_the_run_writes_a_folder_is_refused_before_any_phase(fast_scenario, tmp_path):
    """charts/ as a file failed only once both phases had run."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "charts").write_text("not a folder")
    result = run_cli("--scenario", str(fast_scenario), "--out", str(out), "--embedder", "lexical")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{out / 'charts'} is a file, where this run writes its charts folder" in result.stderr
    assert not (out / "logs").exists()  # refused before anything was written


def test_an_input_the_run_would_replace_is_refused_and_kept(fast_scenario, tmp_path):
    """An earlier run's logs/gateway-optimized.yaml as --gateway-config was deleted by the
    clean-up, then reported as not found, and the earlier report was gone too."""
    out = tmp_path / "o"
    (out / "logs").mkdir(parents=True)
    earlier = out / "logs" / "gateway-optimized.yaml"
    earlier.write_text("routing:\n  threshold: 0.5\n")
    (out / "report.md").write_text("# an earlier report\n")
    result = run_cli("--scenario", str(fast_scenario), "--out", str(out), "--embedder", "lexical",
                     "--gateway-config", str(earlier))  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--gateway-config {earlier} is a file this run replaces in {out}" in result.stderr
    assert earlier.read_text() == "routing:\n  threshold: 0.5\n"
    assert (out / "report.md").exists()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--scenario", ""], "argument --scenario: an empty name: give a file"),
        (["--gateway-config", "."], "argument --gateway-config: . is a folder, not a file"),
    ],
)
def test_an_input_file_flag_given_a_folder_or_nothing_names_the_flag(capsys, flags, says):
    """--scenario '' read the current folder: ".: cannot read: Is a directory", no flag named."""
    with pytest.raises(SystemExit):
        main(["run", *flags])
    assert says in capsys.readouterr().err


def test_an_empty_output_folder_name_is_refused(capsys):
    """--out '' meant the current folder, whose report and charts a run clears."""
    with pytest.raises(SystemExit):
        main(["run", "--out", ""])
    assert "argument --out: an empty name: give a folder" in capsys.readouterr().err


def test_an_output_folder_that_is_not_writable_is_refused(tmp_path, monkeypatch, capsys):
    """An existing folder was accepted unchecked, and a read-only mount failed mid-run. (The
    tests run as root, for whom permissions do not refuse: the check is os.access's.)"""
    import finops_sim.arguments as arguments

    existing = tmp_path / "readonly"
    existing.mkdir()
    monkeypatch.setattr(arguments.os, "access", lambda path, mode: Path(path) != existing)
    with pytest.raises(SystemExit):
        main(["run", "--out", str(existing)])
    assert f"argument --out: {existing} is not writable" in capsys.readouterr().err


def test_an_embedding_model_that_cannot_load_fails_before_the_first_phase(fast_scenario, tmp_path):
    """It failed only when the optimized gateway started, after the whole first phase; then
    before the first phase, but after the earlier run's report was cleared."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    env = {
        **os.environ,
        "GATEWAY_EMBEDDING_MODEL": str(tmp_path / "no-model"),
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "run", "--scenario", str(fast_scenario),
         "--out", str(out)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "the optimized phase cannot open its embedder" in result.stderr
    assert (out / "report.md").read_text() == "an earlier report"  # refused before clearing
    assert str(tmp_path / "no-model") in result.stderr and "--embedder lexical" in result.stderr
    assert not (out / "requests-unoptimized.jsonl").exists()


def test_bad_scenario_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\n")
    result = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "run", "--scenario", str(bad), "--out",
         str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr and "`teams`" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_gateway_config_fails_before_running(fast_scenario, tmp_path):
    bad = tmp_path / "gw.yaml"
    bad.write_text("cache:\n  exakt: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "finops_sim.cli", "run", "--scenario", str(fast_scenario),
         "--out", str(tmp_path / "o"), "--gateway-config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "gw.yaml: unknown key `cache.exakt`" in result.stderr
    assert not (tmp_path / "o" / "requests-unoptimized.jsonl").exists()


@pytest.mark.parametrize(
    ("config_text", "key"),
    [
        ("latency_scale: 1.0\n", "latency_scale"),
        ("profile: unoptimized\n", "profile"),
        ("metrics_port: 9100\n", "metrics_port"),
        ("request_log: /tmp/mine.jsonl\n", "request_log"),
        ("cache:\n  semantic:\n    embedder: lexical\n", "cache.semantic.embedder"),
    ],
)
def test_a_gateway_config_may_not_set_what_the_run_sets(fast_scenario, tmp_path, config_text, key):
    """They were replaced by the run's own values without a word."""
    config = tmp_path / "gw.yaml"
    config.write_text(config_text)
    result = run_cli("--scenario", str(fast_scenario), "--out", str(tmp_path / "o"),
                     "--embedder", "lexical", "--gateway-config", str(config))  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"gw.yaml: `{key}` is set by the simulation" in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_run_where_too_many_requests_failed_exits_1_after_its_report(
    monkeypatch, tmp_path, capsys
):
    """It exited 0 with a 93% headline when a killed store failed most optimized requests."""
    import finops_sim.cli as cli
    from tests.finops_sim.test_report import _results, _with_failures

    monkeypatch.setattr(cli, "run", lambda options: _with_failures(_results(), failed=3))
    assert main(["run", "--out", str(tmp_path), "--embedder", "lexical"]) == 1
    captured = capsys.readouterr()
    assert "AI Token Costs: not measured (3 of 4 optimized requests failed" in captured.out
    assert "finops-sim: 3 of 4 optimized requests failed: the reduction is not a measurement" in (
        captured.err
    )


def test_ctrl_c_while_it_starts_is_not_lost_when_sigint_was_ignored(fast_scenario, tmp_path):
    """A background job of a script starts with SIGINT ignored; the run took Ctrl-C only once
    its imports were done (0.6 s), so one sent earlier was lost and the run went to its end."""

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from finops_sim.entry import main; sys.exit(main())",
         "run", "--scenario", str(fast_scenario), "--out", str(tmp_path / "o"),
         "--embedder", "lexical"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, preexec_fn=ignore_sigint,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGINT)  # until one lands: the first may precede main()
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert b"interrupted while starting; nothing was started" in stderr
    assert not (tmp_path / "o").exists()


def test_from_run_refuses_a_run_that_is_not_a_measurement(tmp_path, capsys):
    """Its CPU per request is divided over failed requests too: the run said so and exited 1,
    and its report still offered the --write command."""
    from tests.finops_sim.test_report import _results, _with_failures

    failed = tmp_path / "results.json"
    failed.write_text(_with_failures(_results(), failed=3).model_dump_json())
    assert main(["rightsize", "--from-run", str(failed), "--stack", "optimized"]) == 2
    err = capsys.readouterr().err
    assert f"{failed}: 3 of 4 optimized requests failed, so it is not a measurement" in err


def test_ctrl_c_while_the_inputs_are_checked_says_the_folder_is_as_it_was(
    fast_scenario, tmp_path, monkeypatch, capsys
):
    """The message said the folder held at most the partial logs (no results or report), while
    the earlier run's results and report were still there: nothing had been cleared yet."""
    from finops_sim import simulation

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")

    def interrupted(options):
        raise KeyboardInterrupt

    monkeypatch.setattr(simulation, "check_embedder", interrupted)
    code = main(["run", "--scenario", str(fast_scenario), "--out", str(out), "--requests", "10"])
    assert code == 130
    assert f"before the run started: {out} is as it was" in capsys.readouterr().err
    assert (out / "results.json").read_text() == "{}"
