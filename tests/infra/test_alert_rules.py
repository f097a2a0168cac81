"""The FinOps alert rules, evaluated by Prometheus' own rule tester (`promtool test rules`) on
series shaped like those of two gateway replicas."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from finops_platform.builders.observability import TEAM_BUDGET_REMAINING, alert_rules, dashboards
from finops_platform.config import ObservabilityConfig, load_stack
from tests.infra.support import IN_CI

PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool evaluates the rules (Debian: apt-get install prometheus; .ci/run does)"
# Skipped without promtool, except in CI (CI=true), where promtool_test fails instead: the
# budget alerts' checks must not silently not run there.
needs_promtool = pytest.mark.skipif(PROMTOOL is None and not IN_CI, reason=NO_PROMTOOL)


def promtool_test(tmp_path: Path, series: list[dict[str, str]], alerts: list[dict]) -> str:
    """Run one rule test; returns promtool's output, and fails the test with it if it failed."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(alert_rules(ObservabilityConfig(), None)))
    spec = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    }
    spec_file = tmp_path / "test.yaml"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    if PROMTOOL is None:
        pytest.fail(f"promtool is absent, and in CI (CI=true) this check must run: {NO_PROMTOOL}")
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(spec_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def alert(name: str, at: str, *fired: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": list(fired)}


def gauge(name: str, pod: str, team: str, values: str) -> dict[str, str]:
    return {"series": f'{name}{{team="{team}",pod="{pod}"}}', "values": values}


EXHAUSTED = "Team team-a's AI budget is spent: its requests are refused until the period resets"


@needs_promtool
def test_a_team_refused_for_its_budget_gets_one_critical_alert(tmp_path):
    """Admission refuses a request whose worst case no longer fits, so the remaining budget
    stays above 0 (here 3 cents) while every request is refused."""
    refusals = 'ai_budget_rejections_total{{team="{team}",reason="{reason}",pod="{pod}"}}'
    series = [
        {"series": refusals.format(team="team-a", reason="budget", pod="gw-1"), "values": "0+1x20"},
        {"series": refusals.format(team="team-a", reason="budget", pod="gw-2"), "values": "0+2x20"},
        {
            "series": refusals.format(team="team-b", reason="requests_per_minute", pod="gw-1"),
            "values": "0+5x20",
        },
        gauge("ai_budget_remaining_usd", "gw-1", "team-a", "0.03x20"),
        gauge("ai_budget_limit_usd", "gw-1", "team-a", "25x20"),
    ]
    fired = {"exp_labels": {"team": "team-a", "severity": "critical"},
             "exp_annotations": {"summary": EXHAUSTED}}  # fmt: skip
    promtool_test(
        tmp_path,
        series,
        [alert("AITeamBudgetExhausted", "10m", fired), alert("AITeamBudgetExhausted", "30m")],
    )


@needs_promtool
def test_server_errors_above_the_share_fire_one_warning_across_replicas(tmp_path):
    """5% of answers by default; the 429s of budgets and rate limits are not server errors."""
    answers = 'ai_requests_total{{api="openai",status="{status}",pod="{pod}"}}'
    series = [
        {"series": answers.format(status="200", pod="gw-1"), "values": "0+90x30"},
        {"series": answers.format(status="200", pod="gw-2"), "values": "0+90x30"},
        {"series": answers.format(status="429", pod="gw-1"), "values": "0+50x30"},
        # gw-2's store fails from minute 10: 20 503s a minute, 8% of the answers.
        {"series": answers.format(status="503", pod="gw-2"), "values": "0x10 0+20x20"},
    ]
    summary = "More than 5% of the AI gateway's answers are server errors"
    fired = {"exp_labels": {"severity": "warning"}, "exp_annotations": {"summary": summary}}
    promtool_test(
        tmp_path,
        series,
        [alert("AIGatewayServerErrors", "9m"), alert("AIGatewayServerErrors", "20m", fired)],
    )


@needs_promtool
def test_the_80_percent_alert_reads_the_least_remaining_of_the_replicas_once_per_team(tmp_path):
    """A replica that restarted publishes the whole limit until it serves the team; the other
    replica's figure is the current one, and two replicas must not mean two alerts."""
    series = [
        gauge("ai_budget_remaining_usd", "gw-1", "team-a", "4x20"),
        gauge("ai_budget_remaining_usd", "gw-2", "team-a", "25x20"),
        gauge("ai_budget_limit_usd", "gw-1", "team-a", "25x20"),
        gauge("ai_budget_limit_usd", "gw-2", "team-a", "25x20"),
        gauge("ai_budget_remaining_usd", "gw-1", "team-b", "5x20"),
        gauge("ai_budget_limit_usd", "gw-1", "team-b", "10x20"),
    ]
    summary = "Team team-a has used 80% of its AI budget"
    fired = {"exp_labels": {"team": "team-a", "severity": "warning"},
             "exp_annotations": {"summary": summary}}  # fmt: skip
    promtool_test(tmp_path, series, [alert("AITeamBudget80PercentUsed", "10m", fired)])


def test_the_budget_panel_reads_what_the_alert_reads():
    panels = dashboards()["ai-gateway"]["panels"]
    budget = [
        t["expr"] for p in panels for t in p.get("targets", []) if "budget_remaining" in t["expr"]
    ]
    assert budget == [TEAM_BUDGET_REMAINING]


def test_no_finops_alert_is_info_which_kube_prometheus_stack_mutes():
    platform = load_stack("optimized").platform
    rules = alert_rules(platform.observability, platform.karpenter)["groups"][0]["rules"]
    assert "KarpenterOnDemandWhereSpotAllowed" in {rule["alert"] for rule in rules}
    assert {rule["labels"]["severity"] for rule in rules} <= {"warning", "critical"}
