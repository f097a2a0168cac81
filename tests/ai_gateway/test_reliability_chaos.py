"""Issue 14, defects 2, 3 and 9: Valkey killed under steady load, then restarted on the same port.

One outage is run per ``budgets.on_store_error`` mode and observed from outside; each test checks
one part of what was observed. Valkey keeps an append-only file in a temporary directory, as the
cluster's Valkey must on its persistent volume.
"""

from __future__ import annotations

import pytest

from .reliability_support import Outage, run_outage


@pytest.fixture(scope="module")
def closed_outage(tmp_path_factory) -> Outage:
    return run_outage(tmp_path_factory.mktemp("chaos-closed"), "closed")


@pytest.fixture(scope="module")
def open_outage(tmp_path_factory) -> Outage:
    return run_outage(tmp_path_factory.mktemp("chaos-open"), "open")


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_an_outage_gives_only_200_429_or_503_and_no_hung_request(mode, request):
    seen: Outage = request.getfixturevalue(f"{mode}_outage")
    assert set(seen.statuses_all) <= {200, 429, 503}, seen.statuses_all
    assert seen.statuses_during, "no request was sent during the outage"


def test_fail_closed_refuses_with_503_during_the_outage(closed_outage):
    assert closed_outage.probe_during.status_code == 503
    during = closed_outage.statuses_during
    assert during.get(503, 0) > during.get(200, 0), during


def test_fail_open_serves_during_the_outage(open_outage):
    assert open_outage.probe_during.status_code == 200
    assert set(open_outage.statuses_during) == {200}, open_outage.statuses_during


def test_fail_closed_503_says_retry_after_and_is_counted(closed_outage):
    probe = closed_outage.probe_during
    assert probe.status_code == 503
    assert int(probe.headers.get("retry-after", "0")) >= 1
    assert closed_outage.store_errors_after > closed_outage.store_errors_before


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_readiness_stays_200_during_the_outage(mode, request):
    seen: Outage = request.getfixturevalue(f"{mode}_outage")
    assert seen.readyz_during == {200}


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_store_up_metric_is_0_during_the_outage(mode, request):
    seen: Outage = request.getfixturevalue(f"{mode}_outage")
    assert seen.store_up_during and all(up == 0 for up in seen.store_up_during)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_answers_again_after_the_restart(mode, request):
    """Within the probe's 10 s: a bound on a hang, not a timing target (how fast it recovers is
    bench/reliability_probe.py's to measure)."""
    seen: Outage = request.getfixturevalue(f"{mode}_outage")
    assert seen.recovery_s is not None, "no 200 within 10 s of Valkey's restart"


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_the_ledger_keeps_its_spend_across_the_restart(mode, request):
    seen: Outage = request.getfixturevalue(f"{mode}_outage")
    assert seen.spent_before_kill > 0
    assert seen.spent_after_restart >= seen.spent_before_kill
