"""Writing requests into a stack file: only the values and one note line change."""

from __future__ import annotations

import json
import shutil

import pytest

from finops_common.config import ConfigError
from finops_platform import config as platform_config
from finops_platform.config import load_stack
from finops_sim.rightsize.stackfile import (
    RequestChange,
    apply_changes,
    read_recommendations,
    recommendations_file,
    write_recommendations,
    write_requests,
)

TEXT = """\
# a header comment
config:
  finops-sim:workloads:
    gateway:
      replicas: 2   # two for the PDB
      resources: {requests: {cpu: 400m, memory: "400Mi"}, limits: {memory: 768Mi}}
    locust:
      master:
        requests: {cpu: '200m', memory: 256Mi}  # trailing comment
        limits:
          memory: 256Mi
"""


def change(workload: str, key: tuple[str, ...], cpu: str, memory: str) -> RequestChange:
    return RequestChange(workload, key, cpu, memory, "measured on a test")


def test_only_the_values_change_and_quotes_stay():
    changes = [
        change("gateway", ("gateway", "resources"), "130m", "352Mi"),
        change("locust.master", ("locust", "master"), "55m", "128Mi"),
    ]
    assert apply_changes(TEXT, changes, "test.yaml") == (
        "# a header comment\n"
        "config:\n"
        "  finops-sim:workloads:\n"
        "    gateway:\n"
        "      replicas: 2   # two for the PDB\n"
        "      # gateway requests: measured on a test\n"
        '      resources: {requests: {cpu: 130m, memory: "352Mi"}, limits: {memory: 352Mi}}\n'
        "    locust:\n"
        "      # locust.master requests: measured on a test\n"
        "      master:\n"
        "        requests: {cpu: '55m', memory: 128Mi}  # trailing comment\n"
        "        limits:\n"
        "          memory: 128Mi\n"
    )


def test_a_new_note_replaces_the_workloads_old_one_and_keeps_others():
    once = apply_changes(TEXT, [change("gateway", ("gateway", "resources"), "1m", "64Mi")], "t")
    once = once.replace(
        "      # gateway requests", "      # kept by hand\n      # gateway requests"
    )
    twice = apply_changes(once, [change("gateway", ("gateway", "resources"), "2m", "72Mi")], "t")
    assert twice.count("# gateway requests:") == 1
    assert "# kept by hand" in twice
    assert "cpu: 2m" in twice


def test_a_missing_key_names_the_file_and_key():
    with pytest.raises(ConfigError, match=r"test.yaml: finops-sim:workloads.redis: no key `redis`"):
        apply_changes(TEXT, [change("redis", ("redis",), "1m", "64Mi")], "test.yaml")


def test_values_the_program_refuses_leave_the_file_unchanged(tmp_path, monkeypatch):
    shutil.copytree(platform_config.STACKS_DIR, tmp_path / "stacks")
    monkeypatch.setattr(platform_config, "STACKS_DIR", tmp_path / "stacks")
    path = tmp_path / "stacks" / "Pulumi.optimized.yaml"
    original = path.read_text()
    # 900 vCPUs fit no instance type the NodePools allow: the cost model refuses the stack.
    huge = change("gateway", ("gateway", "resources"), "900000m", "256Mi")
    with pytest.raises(ConfigError, match="left unchanged"):
        write_requests("optimized", [huge])
    assert path.read_text() == original
    written = write_requests("optimized", [change("redis", ("redis",), "45m", "248Mi")])
    assert written.workloads.redis.requests.cpu == "45m"
    assert load_stack("optimized").workloads.redis.limits.memory == "248Mi"


ALIASED = """\
config:
  finops-sim:workloads:
    redis: &small {requests: {cpu: 100m, memory: 256Mi}, limits: {memory: 256Mi}}
    locust:
      master: *small
"""


def test_a_value_an_alias_shares_with_another_workload_is_refused():
    """Writing redis's requests through its anchor would change the Locust master too."""
    with pytest.raises(ConfigError) as info:
        apply_changes(ALIASED, [change("redis", ("redis",), "45m", "248Mi")], "t.yaml")
    assert str(info.value).startswith(
        "t.yaml: finops-sim:workloads.redis.requests.cpu is a YAML alias shared with "
        "finops-sim:workloads.locust.master.requests.cpu"
    )


def test_a_workload_without_a_new_recommendation_keeps_its_recorded_one(tmp_path, monkeypatch):
    """A Prometheus run with no data for the gateway keeps the figures ``--from-run`` wrote:
    the stack still requests them, and the policy pack reads its ceiling there."""
    monkeypatch.setattr(platform_config, "STACKS_DIR", tmp_path)
    gateway = {
        "apps": ["ai-gateway"],
        "container": "gateway",
        "recommendation": {"cpu": "45m", "memory": "584Mi"},
        "source": "from a run",
    }
    redis = {"apps": ["redis"], "container": "valkey", "recommendation": None}
    recommendations_file("optimized").write_text(json.dumps({"workloads": [gateway]}))
    no_gateway_data = {**gateway, "recommendation": None}
    new_redis = {**redis, "recommendation": {"cpu": "45m", "memory": "248Mi"}}
    _, kept = write_recommendations("optimized", {"workloads": [no_gateway_data, new_redis]})
    assert kept == ["gateway"]
    assert read_recommendations("optimized") == [gateway, new_redis]
    # A container the new document does not list at all is kept too.
    _, kept = write_recommendations("optimized", {"workloads": [redis]})
    assert kept == ["valkey", "gateway"]
    assert read_recommendations("optimized") == [new_redis, gateway]
