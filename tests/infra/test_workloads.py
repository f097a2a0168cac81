"""The workloads on the cluster: labels, requests and limits, secrets, and placement that can
actually schedule on the stack's NodePools."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from ai_gateway.settings import load_settings
from finops_common.config import ConfigError
from finops_platform.builders import workloads as build
from finops_platform.builders.karpenter import CAPACITY_TYPE_LABEL, POOL_LABEL
from finops_platform.builders.placement import choose_pool, pod_placement
from finops_platform.config import (
    GATEWAY_METRICS_PORT,
    WorkloadsConfig,
    load_stack,
    memory_mib,
    parse_stack_config,
    read_stack_file,
)
from finops_platform.render import kubernetes_objects
from loadgen.scenario import load_scenario, with_team_keys
from tests.infra.support import recorded
from tests.paths import REPO

COST_LABELS = {"app", "team", "cost-center", "phase"}


def objects(stack: str, *kinds: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in kubernetes_objects(recorded(stack).mocks)
            if o["kind"] in kinds and o["metadata"].get("namespace") == "finops"}  # fmt: skip


def pods(stack: str) -> dict[str, dict]:
    """Every pod template's owner: Deployments, and Valkey's StatefulSet."""
    return objects(stack, "Deployment", "StatefulSet")


def test_every_workload_carries_cost_labels_requests_and_a_memory_limit(any_recording):
    stack = any_recording.stack
    deployments = pods(stack)
    assert {"ai-gateway", "redis", "locust-master", "locust-worker"} <= set(deployments)
    assert sum(name.startswith("demo-service-") for name in deployments) == (
        3 if stack == "local" else 6
    )
    for name, deployment in deployments.items():
        assert set(deployment["metadata"]["labels"]) >= COST_LABELS, name
        assert deployment["metadata"]["labels"]["phase"] == stack
        template = deployment["spec"]["template"]
        assert set(template["metadata"]["labels"]) >= COST_LABELS, name
        for container in template["spec"]["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name


def test_every_object_carries_the_team_of_the_workload_it_serves(any_recording):
    """Services said `ai-platform` for the Locust master and the demo services, whose pods say
    `load-testing` and `storefront`: Kubecost put those Services' costs on the wrong team."""
    stack = any_recording.stack
    teams = {name: d["spec"]["template"]["metadata"]["labels"]["team"]
             for name, d in pods(stack).items()}  # fmt: skip
    assert {teams["locust-master"], teams["demo-service-0"]} == {"load-testing", "storefront"}
    services = objects(stack, "Service")
    assert set(services) == set(teams) - {"locust-worker"}
    for name, service in services.items():
        selected = service["spec"]["selector"]["app"]
        assert service["metadata"]["labels"]["team"] == teams[selected], name
    claims = pods(stack)["redis"]["spec"]["volumeClaimTemplates"]
    assert {claim["metadata"]["labels"]["team"] for claim in claims} == {teams["redis"]}
    for secret in objects(stack, "Secret").values():
        labels = secret["metadata"]["labels"]
        assert labels["team"] == teams.get(labels["app"], "ai-platform"), labels


def test_requests_and_gateway_profile_differ_between_stacks():
    def gateway(stack):
        return objects(stack, "Deployment")["ai-gateway"]["spec"]["template"]["spec"]

    assert gateway("unoptimized")["containers"][0]["resources"]["requests"]["cpu"] == "1000m"
    optimized = load_stack("optimized").workloads.gateway.resources.requests
    assert gateway("optimized")["containers"][0]["resources"]["requests"]["cpu"] == optimized.cpu
    assert optimized.cpu != "1000m"
    for stack in ("unoptimized", "optimized"):
        settings = objects(stack, "ConfigMap")["ai-gateway-settings"]["data"]["settings.yaml"]
        assert yaml.safe_load(settings)["profile"] == stack


def test_gateway_config_and_key_secret_make_valid_settings(tmp_path):
    mocks = recorded("optimized").mocks
    config_map = next(r for r in mocks.of_type("kubernetes:core/v1:ConfigMap")
                      if r.inputs["metadata"]["name"] == "ai-gateway-settings")  # fmt: skip
    secret = next(r for r in mocks.of_type("kubernetes:core/v1:Secret")
                  if r.inputs["metadata"]["name"] == "ai-gateway-keys")  # fmt: skip
    (tmp_path / "settings.yaml").write_text(config_map.inputs["data"]["settings.yaml"])
    (tmp_path / "teams.yaml").write_text(secret.inputs["stringData"]["teams.yaml"])
    settings = load_settings(None, tmp_path / "settings.yaml", tmp_path / "teams.yaml")
    assert settings.profile == "optimized"
    assert set(settings.teams) == {"team-a", "team-b"}
    profile = load_settings("optimized").teams
    for name, team in settings.teams.items():
        # The keys Secret must not cost the optimized teams their routing and budgets.
        assert (team.routing, team.limits) == (profile[name].routing, profile[name].limits)
        assert team.routing == "all" and team.limits.usd is not None


def secret_data(recording, name: str) -> dict[str, str]:
    return next(r.inputs["stringData"] for r in recording.mocks.of_type("kubernetes:core/v1:Secret")
                if r.inputs["metadata"]["name"] == name)  # fmt: skip


@pytest.mark.parametrize("stack", ["optimized", "local"])
def test_each_team_gets_a_random_key_the_locust_pods_send(stack, tmp_path):
    """No deployed gateway accepts the scenario's public demo keys, and the load still has one
    key per team: the gateway's."""
    recording = recorded(stack)
    passwords = {r.name: r.inputs for r in
                 recording.mocks.of_type("random:index/randomPassword:RandomPassword")}  # fmt: skip
    scenario = load_scenario()
    for team in scenario.teams:
        assert passwords[f"workloads-key-{team.name}"]["length"] >= 32
    gateway = yaml.safe_load(secret_data(recording, "ai-gateway-keys")["teams.yaml"])["teams"]
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(secret_data(recording, "locust-master-keys")["keys.yaml"])
    sent = {team.name: team.key for team in with_team_keys(scenario, keys_file).teams}
    assert sent == {name: team["keys"][0] for name, team in gateway.items()}
    assert sent == {
        team.name: f"sk-mock-password-workloads-key-{team.name}" for team in scenario.teams
    }
    assert not {team.key for team in scenario.teams} & set(sent.values())
    assert recording.outputs["team_keys"] == sent


def test_the_locust_pods_read_the_keys_secret_at_the_path_they_pass():
    deployments = pods("optimized")
    for name in ("locust-master", "locust-worker"):
        spec = deployments[name]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        args = container["args"]
        path = args[args.index("--team-keys") + 1]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        (volume,) = (n for n, mount in mounts.items() if path.startswith(mount + "/"))
        assert volumes[volume]["secret"]["secretName"] == "locust-master-keys", name
        assert path.rsplit("/", 1)[1] == build.LOCUST_KEYS_FILE


def test_keys_set_in_the_stack_win_and_the_other_teams_keep_generated_ones():
    configured = {"team-a": "sk-mine-0123", "team-c": "sk-c-0123"}
    keys = build.team_keys({"team-a": "random-a", "team-b": "random-b"}, configured)
    assert keys == {"team-a": "sk-mine-0123", "team-b": "sk-random-b", "team-c": "sk-c-0123"}
    assert build.team_keys({"team-a": "random-a"}, None) == {"team-a": "sk-random-a"}


@pytest.mark.parametrize(
    ("configured", "problem"),
    [
        (["sk-a"], "finops-sim:teamKeys: must be a mapping of team names to keys"),
        ({"team-a": 7}, "finops-sim:teamKeys.team-a: must be a key of at least 8 characters"),
        ({"team-a": "sk-a"}, "finops-sim:teamKeys.team-a: must be a key of at least 8 characters"),
        ({"team-a": "sha256:" + "0" * 64}, "finops-sim:teamKeys.team-a: set the key itself"),
    ],
)
def test_bad_team_keys_name_the_config_key(configured, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        build.team_keys({"team-a": "random-a"}, configured)


def with_team_settings(teams: object) -> WorkloadsConfig:
    return with_gateway_settings({"teams": teams})


def with_gateway_settings(settings: dict, stack: str = "optimized") -> WorkloadsConfig:
    """The stack's workloads with these gateway settings, parsed as the program parses a stack
    file: the gateway's own schema is checked there."""
    values = copy.deepcopy(read_stack_file(stack))
    values["finops-sim:workloads"]["gateway"]["settings"] = settings
    return parse_stack_config(stack, values).workloads


def test_team_settings_in_the_stack_travel_with_the_keys(tmp_path):
    workloads = with_team_settings({"team-a": {"limits": {"usd": 3.0}}})
    (tmp_path / "settings.yaml").write_text(build.gateway_settings_yaml(workloads))
    keys = {"team-a": "sk-cluster-team-a", "team-b": "sk-cluster-team-b"}
    (tmp_path / "teams.yaml").write_text(build.team_keys_yaml(keys, workloads))
    teams = load_settings(None, tmp_path / "settings.yaml", tmp_path / "teams.yaml").teams
    profile = load_settings("optimized").teams
    assert teams["team-a"].keys == ("sk-cluster-team-a",)
    assert teams["team-a"].limits.usd == 3.0
    assert teams["team-a"].limits.tokens_per_minute == profile["team-a"].limits.tokens_per_minute
    assert teams["team-b"].limits == profile["team-b"].limits


def test_team_keys_in_the_stack_settings_are_refused_with_the_secret_command():
    with pytest.raises(ConfigError) as info:
        with_team_settings({"team-a": {"keys": ["sk-plain-text-key"]}})
    assert "finops-sim:workloads.gateway.settings.teams.team-a.keys" in str(info.value)
    assert "pulumi config set --secret --path 'finops-sim:teamKeys.team-a'" in str(info.value)


def test_a_team_with_settings_but_no_key_is_a_config_error():
    workloads = with_team_settings({"ops": {"routing": "all"}})
    with pytest.raises(ConfigError, match="ops has no key in finops-sim:teamKeys"):
        build.team_keys_yaml({"team-a": "sk-cluster-team-a"}, workloads)


def test_bad_team_settings_in_the_stack_name_the_key():
    with pytest.raises(ConfigError) as info:
        with_team_settings({"team-a": {"limits": {"usd": -1}}})
    assert "teams.team-a.limits.usd" in str(info.value)


def test_every_reader_of_a_stack_file_gets_its_gateway_settings_checked():
    """They were checked only where the program built the gateway's ConfigMap: finops-sim and
    the policy pack took a stack whose gateway would not start."""
    with pytest.raises(ConfigError, match=re.escape("unknown key `cache.exakt`")):
        with_gateway_settings({"cache": {"exakt": {}}})


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"teams": {"team-a": None}},  # a team whose keys are all commented out
         "settings.teams.team-a: must be a mapping of the team's settings"),
        ({"profile": "optimized"}, "settings.profile: the stack's profile is "
         "finops-sim:workloads.gatewayProfile"),
        ({"teams": {"team-a": {"limit": 3}}},
         "unknown key `teams.team-a.limit`; allowed keys here: keys, limits, routing"),
        ({"teams": []}, "settings.teams: must be a mapping of team names"),  # was ignored
    ],
)  # fmt: skip
def test_a_bad_gateway_setting_names_the_stack_file_and_the_key(settings, says):
    """A null team was a TypeError's traceback; a profile here overrode gatewayProfile, which
    the cost model and the policy pack read; neither kind of error named the stack file."""
    with pytest.raises(ConfigError) as info:
        with_gateway_settings(settings, "unoptimized")
    assert str(info.value).startswith("stacks/Pulumi.unoptimized.yaml")
    assert says in str(info.value)


def test_the_gateway_settings_are_checked_over_the_stacks_own_profile():
    """Checked over the optimized profile, whose tiers fill in the rest, one tier passed for the
    unoptimized stack, whose gateway then failed to start."""
    one_tier = {"routing": {"enabled": True, "tiers": {"simple": "gpt-5.4-nano"}}}
    with_gateway_settings(one_tier, "optimized")
    with pytest.raises(ConfigError, match="every tier needs a model"):
        with_gateway_settings(one_tier, "unoptimized")


def test_placement_follows_the_stack():
    def selector(stack, name):
        return pods(stack)[name]["spec"]["template"]["spec"]["nodeSelector"]

    assert {selector("unoptimized", n)[POOL_LABEL] for n in ("ai-gateway", "redis")} == {
        "on-demand"
    }
    assert selector("optimized", "ai-gateway")[POOL_LABEL] == "spot"
    assert selector("optimized", "locust-worker")[POOL_LABEL] == "spot"
    assert selector("optimized", "redis")[POOL_LABEL] == "on-demand"
    assert selector("optimized", "locust-master")[POOL_LABEL] == "on-demand"


def schedulable(pod: dict, pool: dict) -> bool:
    """The pool's nodes carry the labels the pod selects (its template's, or a value its
    requirements allow: Karpenter labels a node with what it bought, e.g. the capacity type),
    and the pod tolerates their taints."""
    template = pool["spec"]["template"]
    allowed = {
        r["key"]: set(r["values"])
        for r in template["spec"]["requirements"]
        if r["operator"] == "In"
    }
    node_labels = template["metadata"]["labels"]
    taints = {
        (t["key"], t.get("value", ""), t["effect"]) for t in template["spec"].get("taints", [])
    }
    tolerated = {(t["key"], t.get("value", ""), t["effect"]) for t in pod.get("tolerations", [])}
    selected = all(
        node_labels.get(k) == v or v in allowed.get(k, ()) for k, v in pod["nodeSelector"].items()
    )
    return selected and taints <= tolerated


def test_every_pod_can_schedule_on_some_nodepool_of_its_stack(any_recording):
    """On the local stack there are no NodePools: pods must run on the cluster's own nodes (its
    system node group), so they may not select or require anything."""
    pools = [r.inputs for r in any_recording.mocks.of_type("kubernetes:karpenter.sh/v1:NodePool")]
    stack = any_recording.stack
    for name, deployment in pods(stack).items():
        pod = deployment["spec"]["template"]["spec"]
        if not pools:
            assert "nodeSelector" not in pod and "tolerations" not in pod, name
            continue
        assert any(schedulable(pod, pool) for pool in pools), f"{stack}: {name} fits no NodePool"


def test_a_pod_without_the_spot_toleration_cannot_use_the_spot_pool():
    pools = [
        r.inputs for r in recorded("optimized").mocks.of_type("kubernetes:karpenter.sh/v1:NodePool")
    ]
    pod = dict(objects("optimized", "Deployment")["ai-gateway"]["spec"]["template"]["spec"])
    pod.pop("tolerations")
    assert not any(schedulable(pod, pool) for pool in pools)


def test_redis_is_reachable_only_from_the_gateway():
    policy = objects("optimized", "NetworkPolicy")["redis"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app": "redis"}
    assert policy["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app": "ai-gateway"}}}],
                                  "ports": [{"protocol": "TCP", "port": 6379}]}]  # fmt: skip


def test_locust_runs_the_stack_configured_load():
    master = objects("optimized", "Deployment")["locust-master"]["spec"]["template"]["spec"]
    args = master["containers"][0]["args"]
    assert args[args.index("-u") + 1] == "20" and args[args.index("--run-time") + 1] == "15m"
    assert args[args.index("--host") + 1] == "http://ai-gateway.finops.svc"
    workers = objects("optimized", "Deployment")["locust-worker"]
    assert workers["spec"]["replicas"] == int(args[args.index("--sequence-workers") + 1])


def test_images_build_into_ecr_when_asked():
    from finops_platform.config import parse_stack_config, read_stack_file
    from finops_platform.render import record

    values = read_stack_file("optimized")
    values["finops-sim:workloads"]["images"] = {"build": True, "tag": "0.2.0"}
    recording = record(parse_stack_config("optimized", values))
    repos = {r.inputs["name"] for r in recording.mocks.of_type("aws:ecr/repository:Repository")}
    assert repos == {"finops-optimized/gateway", "finops-optimized/loadgen"}
    builds = recording.mocks.of_type("docker-build:index:Image")
    assert {b.inputs["target"] for b in builds} == {"gateway", "loadgen"}
    assert {b.inputs["dockerfile"]["location"] for b in builds} == {str(REPO / "Dockerfile")}
    assert all(b.inputs["push"] is True for b in builds)
    gateway = next(
        r
        for r in recording.mocks.of_type("kubernetes:apps/v1:Deployment")
        if r.inputs["metadata"]["name"] == "ai-gateway"
    )
    image = gateway.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/finops-optimized/gateway:0.2.0@"
    )


def test_prebuilt_images_need_their_references():
    import pytest

    from finops_common.config import ConfigError
    from finops_platform.config import parse_stack_config, read_stack_file

    values = read_stack_file("optimized")
    values["finops-sim:workloads"]["images"] = {"gateway": "example.com/gw:1.0"}
    with pytest.raises(ConfigError, match="give the prebuilt gateway and loadgen images"):
        parse_stack_config("optimized", values)


def test_locust_master_keeps_its_web_ui():
    master = objects("optimized", "Deployment")["locust-master"]["spec"]["template"]["spec"]
    args = master["containers"][0]["args"]
    assert "--autostart" in args and "--headless" not in args
    ports = {
        p["name"]: p["port"]
        for p in objects("optimized", "Service")["locust-master"]["spec"]["ports"]
    }
    assert ports == {"workers": 5557, "web": 8089}


# ---- issue 14: the ledger survives a Valkey restart; metrics on their own port ---------------


def test_valkey_keeps_an_append_only_file_on_a_volume(any_recording):
    """Defect 2: a StatefulSet whose claim (on the default class: gp3 on AWS) holds the AOF,
    fsynced every second."""
    valkey = objects(any_recording.stack, "StatefulSet")["redis"]
    assert "redis" not in objects(any_recording.stack, "Deployment")
    spec = valkey["spec"]
    args = spec["template"]["spec"]["containers"][0]["args"]
    option = lambda name: args[args.index(name) + 1]  # noqa: E731
    assert (option("--appendonly"), option("--appendfsync"), option("--dir")) == (
        "yes", "everysec", "/data"
    )  # fmt: skip
    # At 3/4 of the container's memory limit it evicts the caches' keys (they have a TTL),
    # never the budget ledger's.
    limit = memory_mib(spec["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])
    assert option("--maxmemory") == f"{int(limit * 0.75)}mb"
    assert option("--maxmemory-policy") == "volatile-lru"
    assert spec["template"]["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"}
    ]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert "storageClassName" not in claim["spec"]  # the cluster's default class
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert spec["template"]["spec"]["securityContext"]["fsGroup"] == 10001


def test_metrics_are_served_on_their_own_port_and_scraped_there(any_recording):
    """Defect 7: /metrics shows every team's spend; the Service applications use keeps the API,
    the monitor scrapes the named port `metrics`."""
    stack = any_recording.stack
    gateway = pods(stack)["ai-gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in gateway["ports"]} == {
        "http": 8080, "metrics": 9464
    }  # fmt: skip
    service = {p["name"]: p for p in objects(stack, "Service")["ai-gateway"]["spec"]["ports"]}
    assert service["metrics"]["targetPort"] == "metrics"
    monitor = objects(stack, "ServiceMonitor")["ai-gateway"]["spec"]
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics"]


def test_only_prometheus_reaches_the_metrics_port(any_recording):
    policy = objects(any_recording.stack, "NetworkPolicy")["ai-gateway"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app": "ai-gateway"}}
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    assert set(by_port) == {8080, 9464}
    assert "from" not in by_port[8080]  # any application may call the API
    assert by_port[9464]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


def test_a_metrics_port_prometheus_would_not_scrape_is_refused():
    with pytest.raises(ConfigError) as info:
        with_gateway_settings({"metrics_port": 9100})
    assert "finops-sim:workloads.gateway.settings.metrics_port" in str(info.value)
    assert "9100" in str(info.value) and str(GATEWAY_METRICS_PORT) in str(info.value)


def test_a_pod_selects_its_capacity_type_where_its_pool_may_buy_both():
    """A pool allowing spot and on-demand let Karpenter put Valkey on spot nodes, while the
    cost model priced it on-demand; a stateless pod prefers spot but may fall back to on-demand
    (a required spot selector left it Pending when spot was short)."""
    config = load_stack("optimized")
    both = tuple(
        pool.model_copy(update={"capacity_types": ("spot", "on-demand")})
        for pool in config.platform.node_pools
    )
    stateful_pool, capacity = choose_pool(False, config.workloads, both)
    assert capacity == "on-demand"
    assert pod_placement(stateful_pool, capacity)["nodeSelector"] == {
        POOL_LABEL: stateful_pool.name,
        CAPACITY_TYPE_LABEL: "on-demand",
    }
    spot_pool, capacity = choose_pool(True, config.workloads, both)
    assert capacity == "spot"
    stateless = pod_placement(spot_pool, capacity)
    assert stateless["nodeSelector"] == {POOL_LABEL: spot_pool.name}  # on-demand stays possible
    (preferred,) = stateless["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["preference"]["matchExpressions"] == [
        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": ["spot"]}
    ]
    only_on_demand = next(
        p for p in config.platform.node_pools if p.capacity_types == ("on-demand",)
    )
    assert pod_placement(only_on_demand, "on-demand")["nodeSelector"] == {
        POOL_LABEL: only_on_demand.name  # its one capacity type needs no selector
    }
