"""The stack config: both stack files parse; bad values name the file, the key and the rule."""

from __future__ import annotations

import pytest

from finops_common.config import ConfigError
from finops_platform.config import (
    parse_stack_config,
    read_stack_file,
    require_user_values,
    stack_file,
)


def test_both_stacks_parse_and_differ_where_they_should():
    unoptimized = parse_stack_config("unoptimized", read_stack_file("unoptimized"))
    optimized = parse_stack_config("optimized", read_stack_file("optimized"))
    assert unoptimized.cluster_name == "finops-unoptimized"
    assert [p.capacity_types for p in unoptimized.platform.karpenter.node_pools] == [("on-demand",)]
    assert not unoptimized.platform.karpenter.node_pools[0].consolidation_enabled
    spot = optimized.platform.karpenter.node_pools[0]
    assert "spot" in spot.capacity_types and spot.consolidation_enabled
    assert optimized.tags == {
        "project": "finops-sim",
        "stack": "optimized",
        "cost-center": "finops-lab",
        "managed-by": "pulumi",
    }


def values_with(change) -> dict:
    values = read_stack_file("optimized")
    change(values["finops-sim:platform"])
    return values


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p["karpenter"]["nodePools"][0].update(capacityTypes=["spott"]),
            "`finops-sim:platform.karpenter.nodePools[0].capacityTypes[0]`: value 'spott'",
        ),
        (lambda p: p["network"].update(natGateways="many"), "'single' or 'one_per_az'"),
        (
            lambda p: p["karpenter"]["nodePools"][0].update(architectures=["amd64", "arm64"]),
            "`finops-sim:platform.karpenter.nodePools[0].architectures[1]`: value 'arm64'",
        ),
        (lambda p: p["cluster"].update(publicAccessCidrs=[]), "explicit allow-list"),
        (
            lambda p: p["karpenter"].update(amiAlias="al2023@latest"),
            "`finops-sim:platform.karpenter.amiAlias`",
        ),
        (lambda p: p["karpenter"]["nodePools"][0].pop("cpuLimit"), "cpuLimit"),
        (
            lambda p: p["karpenter"]["nodePools"][0].update(weight=0),  # the CRD's minimum is 1
            "`finops-sim:platform.karpenter.nodePools[0].weight`: value 0",
        ),
        (
            lambda p: p["karpenter"].update(amiAlias="al2@v20251120"),
            "karpenter.amiAlias 'al2@v20251120': AWS publishes no Amazon Linux 2 EKS AMI for "
            "Kubernetes 1.35 (the last is 1.32)",
        ),
        (lambda p: p.update(clusterNmae="x"), "unknown key `finops-sim:platform.clusterNmae`"),
        (lambda p: p["cluster"]["systemNodeGroup"].update(minSize=5), "minSize <= desiredSize"),
        (
            lambda p: p.setdefault("observability", {}).update(alerts={"slackChannel": "Fin Ops"}),
            "`finops-sim:platform.observability.alerts.slackChannel`: value 'Fin Ops'",
        ),
        (
            lambda p: p.setdefault("observability", {}).update(alerts={"receiver": "email"}),
            "`finops-sim:platform.observability.alerts.receiver`: value 'email'",
        ),
        # A /24 VPC cannot hold two AZs' public and private subnets; AWS refuses a VPC
        # wider than /16; a /18 has room for two zones' blocks, not three.
        (
            lambda p: p["network"].update(cidr="10.0.0.0/24"),
            "`finops-sim:platform.network.cidr`: value '10.0.0.0/24' is invalid: Value error, "
            "10.0.0.0/24: allowed: an IPv4 range from /16 to /18",
        ),
        (
            lambda p: p["network"].update(cidr="10.0.0.0/12"),
            "10.0.0.0/12: allowed: an IPv4 range from /16 to /18 (a VPC is /16 at most",
        ),
        (
            lambda p: p["network"].update(cidr="10.0.0.0/18", availabilityZones=3),
            "`finops-sim:platform.network`: value {...} is invalid: Value error, cidr "
            "10.0.0.0/18 cannot hold 3 availability zones' subnets; allowed: /17 or wider",
        ),
        # A cost center is a label value on every pod: Kubernetes refuses spaces and slashes.
        (
            lambda p: p.update(costCenter="Fin Ops"),
            "`finops-sim:platform.costCenter`: value 'Fin Ops' is invalid: Value error, 'Fin Ops': "
            "allowed: up to 63 letters, digits",
        ),
        (lambda p: p.update(costCenter="c" * 64), "allowed: up to 63 letters"),
        # A YAML block scalar keeps its newline; `$` alone would have let it through.
        (lambda p: p.update(costCenter="finops-lab\n"), "allowed: up to 63 letters"),
        # A VPC id without the subnets to put nodes in: `vpcId` alone is not enough.
        (
            lambda p: p["network"].update(mode="existing", vpcId="vpc-0abc"),
            "`finops-sim:platform.network`: value {...} is invalid: Value error, "
            "mode 'existing' needs vpcId and privateSubnetIds",
        ),
        # Subnet ids the program would ignore while it creates its own VPC.
        (
            lambda p: p["network"].update(privateSubnetIds=["subnet-0abc"]),
            "`finops-sim:platform.network`: value {...} is invalid: Value error, "
            "vpcId and subnet ids are only for mode 'existing'",
        ),
        # A family ("m5") where Karpenter's instance-category requirement wants one letter.
        (
            lambda p: p["karpenter"]["nodePools"][0].update(instanceCategories=["c", "m5"]),
            "`finops-sim:platform.karpenter.nodePools[0].instanceCategories`: value ['c', 'm5'] "
            "is invalid: Value error, 'm5' is not an instance category such as c, m or r",
        ),
        # Two NodePools of one name would be one Kubernetes object, the second overwriting.
        (
            lambda p: p["karpenter"]["nodePools"][1].update(name="spot"),
            ("key `finops-sim:platform.karpenter.nodePools`: value [", "names must be unique"),
        ),
        (
            lambda p: p["cluster"].update(publicAccessCidrs=["198.18.7.1/32", "10.0.0.300/32"]),
            "`finops-sim:platform.cluster.publicAccessCidrs[1]`: value '10.0.0.300/32' is "
            "invalid: Value error, allowed: an IPv4 CIDR range",
        ),
        # EKS refuses IPv6 ranges in an IPv4 cluster's public access list.
        (
            lambda p: p["cluster"].update(publicAccessCidrs=["2001:db8::/32"]),
            "`finops-sim:platform.cluster.publicAccessCidrs[0]`: value '2001:db8::/32' is "
            "invalid: Value error, 2001:db8::/32: allowed: an IPv4 CIDR range",
        ),
    ],
)
def test_bad_values_are_reported_with_file_and_key(change, expected):
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values_with(change))
    assert "stacks/Pulumi.optimized.yaml" in str(info.value)
    # A tuple: parts of a message whose value, a long list, is cut short between them.
    for part in (expected,) if isinstance(expected, str) else expected:
        assert part in str(info.value)


def test_al2_stays_allowed_where_aws_still_publishes_it():
    def older(p):
        p["karpenter"].update(amiAlias="al2@v20251120")
        p["cluster"].update(kubernetesVersion="1.32")

    config = parse_stack_config("optimized", values_with(older))
    assert config.platform.karpenter.ami_alias == "al2@v20251120"


def test_an_aws_stack_name_too_long_for_its_iam_role_names_is_refused():
    name = "x" * 34  # KarpenterControllerRole-finops-<34 characters> is 65 characters
    with pytest.raises(ConfigError) as info:
        parse_stack_config(name, read_stack_file("optimized"))
    assert f"stack {name!r}: an AWS stack's name has at most 33 characters (it has 34)" in str(
        info.value
    )
    assert parse_stack_config("x" * 33, read_stack_file("optimized")).stack == "x" * 33


@pytest.mark.parametrize(("resource", "limit"), [("memory", "64Mi"), ("cpu", "10m")])
def test_a_limit_below_its_request_is_refused_by_key(resource, limit):
    """Kubernetes would refuse the container at apply time; the config refuses it first."""
    values = read_stack_file("optimized")
    redis = values["finops-sim:workloads"]["redis"]
    request = redis["requests"][resource]  # 64Mi and 10m are below any request a stack sets
    redis["limits"][resource] = limit
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values)
    message = str(info.value)
    assert "stacks/Pulumi.optimized.yaml" in message
    assert "key `finops-sim:workloads.redis`" in message
    assert f"limits.{resource} {limit} is below requests.{resource} {request}" in message


def test_missing_platform_object_is_named():
    with pytest.raises(ConfigError, match="`finops-sim:platform`"):
        parse_stack_config("optimized", {"aws:region": "us-east-1"})


def test_local_stack_parses_and_its_mode_is_checked():
    local = parse_stack_config("local", read_stack_file("local"))
    assert local.platform.mode == "local" and local.platform.node_pools == ()
    values = read_stack_file("local")
    values["finops-sim:platform"]["kubecost"] = {"enabled": True}
    with pytest.raises(ConfigError, match="mode 'local' deploys no cluster, Karpenter or Kubecost"):
        parse_stack_config("local", values)
    aws = read_stack_file("optimized")
    aws["finops-sim:platform"].pop("karpenter")
    with pytest.raises(ConfigError, match="mode 'aws' needs the cluster and karpenter sections"):
        parse_stack_config("optimized", aws)


def test_quantities_in_every_kubernetes_spelling():
    from finops_platform.config import cpu_millicores, memory_mib

    assert [cpu_millicores(q) for q in ("400m", "0.5", "2", 1)] == [400, 500, 2000, 1000]
    assert [memory_mib(q) for q in ("400Mi", "1Gi", "512Ki", str(2**21))] == [400, 1024, 1, 2]


# ---- issue 10, defect 4: what a user must set, and images that exist -------------------------


def test_shipped_aws_stacks_build_their_images():
    """No stack names an image that cannot be pulled: AWS stacks build theirs into ECR."""
    for stack in ("unoptimized", "optimized"):
        images = parse_stack_config(stack, read_stack_file(stack)).workloads.images
        assert images.build is True, stack
        assert "123456789012" not in stack_file(stack).read_text(), stack


def test_an_image_in_the_documentation_account_is_refused():
    values = read_stack_file("optimized")
    values["finops-sim:workloads"]["images"] = {
        "gateway": "123456789012.dkr.ecr.us-east-1.amazonaws.com/finops-gateway:0.1.0",
        "loadgen": "ghcr.io/example/loadgen:0.1.0",
    }
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values)
    message = str(info.value)
    assert "stacks/Pulumi.optimized.yaml" in message
    assert "`finops-sim:workloads.images.gateway`" in message
    assert "AWS's documentation account" in message and "build: true" in message


@pytest.mark.parametrize("stack", ["unoptimized", "optimized"])
def test_the_placeholder_allow_list_is_refused_with_the_command_to_set_it(stack):
    """`pulumi up` reads the config through load_config, which refuses the placeholder before
    the program registers a resource."""
    config = parse_stack_config(stack, read_stack_file(stack))
    with pytest.raises(ConfigError) as info:
        require_user_values(config)
    message = str(info.value)
    assert f"stacks/Pulumi.{stack}.yaml" in message
    assert "`finops-sim:platform.cluster.publicAccessCidrs[0]`: 203.0.113.10/32" in message
    assert (
        f"pulumi config set --stack {stack} --path "
        "'finops-sim:platform.cluster.publicAccessCidrs[0]'" in message
    )


@pytest.mark.parametrize("cidr", ["198.51.100.0/24", "192.0.2.7/32"])
def test_every_documentation_range_is_a_placeholder(cidr):
    values = values_with(lambda p: p["cluster"].update(publicAccessCidrs=["8.8.8.8/32", cidr]))
    with pytest.raises(ConfigError, match=r"publicAccessCidrs\[1\]`"):
        require_user_values(parse_stack_config("optimized", values))


def test_a_real_address_or_a_private_endpoint_passes():
    real = values_with(lambda p: p["cluster"].update(publicAccessCidrs=["198.18.7.1/32"]))
    require_user_values(parse_stack_config("optimized", real))
    private = values_with(lambda p: p["cluster"].update(endpointPublicAccess=False))
    require_user_values(parse_stack_config("optimized", private))
    assert parse_stack_config("optimized", private).platform.cluster.api_allow_list is None
    require_user_values(parse_stack_config("local", read_stack_file("local")))


def test_load_config_refuses_before_any_resource(monkeypatch):
    """The Pulumi entry point: the same values through pulumi.Config, refused in load_config."""
    import pulumi

    from finops_platform import program

    values = read_stack_file("optimized")
    monkeypatch.setattr(pulumi, "get_stack", lambda: "optimized")
    monkeypatch.setattr(
        pulumi.Config,
        "get_object",
        lambda self, key: values[f"{self.name}:{key}"],
    )
    monkeypatch.setattr(pulumi.Config, "get", lambda self, key: values.get(f"{self.name}:{key}"))
    with pytest.raises(ConfigError, match="publicAccessCidrs"):
        program.load_config()


def test_the_managed_store_needs_an_aws_stack():
    values = read_stack_file("local")
    values["finops-sim:workloads"]["store"] = {"mode": "elasticache_serverless"}
    with pytest.raises(ConfigError, match=r"store\.mode must be 'in_cluster'"):
        parse_stack_config("local", values)


def test_an_unknown_project_key_is_refused_naming_it_and_the_allowed_ones(monkeypatch):
    """A misspelled secret was ignored, and its default (a random password, the public demo
    keys) deployed in its place."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    from finops_platform import program
    from finops_platform.config import STACK_KEYS, refuse_unknown_keys

    with pytest.raises(ConfigError) as info:
        refuse_unknown_keys(["aws:region", "finops-sim:grafanaAdminPasword"], "stacks/x.yaml")
    message = str(info.value)
    assert message.startswith("stacks/x.yaml: unknown key `finops-sim:grafanaAdminPasword`")
    assert all(f"finops-sim:{key}" in message for key in STACK_KEYS)
    refuse_unknown_keys(["aws:region", *(f"finops-sim:{key}" for key in STACK_KEYS)], "x")

    monkeypatch.setattr(pulumi, "get_stack", lambda: "optimized")
    token = runtime_config.CONFIG.set({"finops-sim:teamKey": "sk-x"})
    try:
        with pytest.raises(ConfigError, match="'optimized': unknown key `finops-sim:teamKey`"):
            program.load_config()
    finally:
        runtime_config.CONFIG.reset(token)


def refusal_of_workloads_value(where: tuple[str, ...], value: str) -> str:
    """The error of the optimized stack with ``value`` at ``finops-sim:workloads.<where>``."""
    values = read_stack_file("optimized")
    node = values["finops-sim:workloads"]
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values)
    return str(info.value)


@pytest.mark.parametrize(
    ("where", "value", "says"),
    [
        (("store", "volumeSize"), "0Gi", "(e.g. 1Gi)"),
        (("gateway", "resources", "requests", "cpu"), "0", "(e.g. 400m or 1)"),
        (("gateway", "resources", "requests", "cpu"), "0m", "(e.g. 400m or 1)"),
        (("gateway", "resources", "requests", "memory"), "0Mi", "(e.g. 400Mi or 1Gi)"),
    ],
)
def test_a_zero_size_is_refused_with_an_example_of_a_good_one(where, value, says):
    message = refusal_of_workloads_value(where, value)
    key = "finops-sim:workloads." + ".".join(where)
    assert f"key `{key}`: value '{value}' is invalid: String should match pattern" in message
    assert says in message


@pytest.mark.parametrize(
    ("where", "value", "says"),
    [
        (("gateway", "resources", "requests", "cpu"), "9" * 400, "at most 448 cores"),
        (("gateway", "resources", "limits", "cpu"), "449", "at most 448 cores"),
        (("gateway", "resources", "requests", "memory"), "9" * 400 + "Gi", "at most 32Ti"),
        (("gateway", "resources", "limits", "memory"), "40000Gi", "at most 32Ti"),
        (("store", "volumeSize"), "99999999999Gi", "at most 16Ti"),
    ],
)
def test_a_size_past_what_aws_sells_is_refused_by_key(where, value, says):
    """400 digits were an OverflowError's traceback, or a cost of infinity."""
    message = refusal_of_workloads_value(where, value)
    assert f"key `finops-sim:workloads.{'.'.join(where)}`" in message
    assert says in message


def test_a_prometheus_volume_past_the_largest_gp3_is_refused():
    values = read_stack_file("optimized")
    values["finops-sim:platform"].setdefault("observability", {})["storageSize"] = "17000Gi"
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values)
    assert "observability.storageSize`: value '17000Gi'" in str(info.value)
    assert "at most 16Ti" in str(info.value)


def test_an_unknown_key_lists_the_keys_as_the_stack_file_writes_them():
    values = read_stack_file("optimized")
    values["finops-sim:platform"]["kubcost"] = {"enabled": True}
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values)
    assert "unknown key `finops-sim:platform.kubcost`; allowed keys here:" in str(info.value)
    assert "costCenter" in str(info.value) and "kubecost" in str(info.value)


def test_a_stack_with_no_on_demand_pool_is_refused_before_any_resource():
    """The stateful pods' placement failed inside the program, with a traceback, once the
    network and cluster were already registered."""
    values = read_stack_file("optimized")
    for pool in values["finops-sim:platform"]["karpenter"]["nodePools"]:
        pool["capacityTypes"] = ["spot"]
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values)
    assert "key `finops-sim:platform.karpenter.nodePools`" in str(info.value)
    assert "at least one node pool must allow on-demand capacity" in str(info.value)


def test_load_config_refuses_bad_gateway_settings_before_any_resource(monkeypatch):
    """They were checked while the workloads were built, after the network and the cluster."""
    import pulumi

    from finops_platform import program

    values = read_stack_file("optimized")
    cluster = values["finops-sim:platform"]["cluster"]
    cluster["publicAccessCidrs"] = ["198.18.7.1/32"]
    values["finops-sim:workloads"]["gateway"]["settings"] = {"metrics_port": 9999}
    monkeypatch.setattr(pulumi, "get_stack", lambda: "optimized")
    monkeypatch.setattr(pulumi.Config, "get_object", lambda self, key: values[f"{self.name}:{key}"])
    monkeypatch.setattr(pulumi.Config, "get", lambda self, key: values.get(f"{self.name}:{key}"))
    monkeypatch.setattr(pulumi.Config, "get_secret", lambda self, key: None)
    with pytest.raises(ConfigError, match=r"metrics_port: value 9999 is invalid"):
        program.load_config()


def test_an_autoscaler_maximum_below_the_replicas_is_refused():
    """It was raised to the replicas without a word."""
    values = read_stack_file("optimized")
    gateway = values["finops-sim:workloads"]["gateway"]
    gateway["replicas"], gateway["maxReplicas"] = 2, 1
    with pytest.raises(ConfigError, match=r"maxReplicas \(1\) is below replicas \(2\)"):
        parse_stack_config("optimized", values)


def test_an_unknown_stack_lists_the_stacks_there_are():
    with pytest.raises(ConfigError) as info:
        read_stack_file("nosuch")
    assert "Pulumi.nosuch.yaml: file not found; the stacks are local, optimized, unoptimized" in (
        str(info.value)
    )


def test_an_aws_key_the_provider_would_not_read_is_refused():
    """The program's own AWS provider reads its arguments, not the stack's aws: keys: an
    aws:assumeRole would have been ignored, every resource made in the environment's account."""
    from finops_platform.config import refuse_unknown_keys

    refuse_unknown_keys(["aws:region", "aws:profile"], "stacks/x.yaml")
    with pytest.raises(ConfigError) as info:
        refuse_unknown_keys(["aws:region", "aws:assumeRole"], "stacks/x.yaml")
    message = str(info.value)
    assert message.startswith("stacks/x.yaml: `aws:assumeRole` is not read")
    assert "aws:region, aws:profile" in message and "AWS_* environment variables" in message
    values = {**read_stack_file("optimized"), "aws:profile": ""}
    with pytest.raises(ConfigError, match="aws:profile"):
        parse_stack_config("optimized", values)
    values["aws:profile"] = "finops-lab"
    assert parse_stack_config("optimized", values).aws_profile == "finops-lab"


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        ({"labels": {"bad key!": "x"}}, "labels", "'bad key!': 'x' is not a Kubernetes label"),
        ({"labels": {"team": "finops lab"}}, "labels", "is not a Kubernetes label"),
        ({"taints": [{"key": "bad key!"}]}, "taints[0]", "is not a Kubernetes label"),
        ({"instanceFamilies": ["???"]}, "instanceFamilies", "'???' is not an instance family"),
        ({"instanceCategories": []}, "instanceCategories", "at least 1 item"),
    ],
)
def test_a_node_pool_value_kubernetes_would_refuse_is_refused_by_key(change, key, says):
    """Each passed the stack's checks and failed at `pulumi up`, when the API server refused
    the NodePool."""
    values = read_stack_file("optimized")
    values["finops-sim:platform"]["karpenter"]["nodePools"][0].update(change)
    with pytest.raises(ConfigError) as info:
        parse_stack_config("optimized", values)
    assert f"key `finops-sim:platform.karpenter.nodePools[0].{key}`" in str(info.value)
    assert says in str(info.value)


def test_a_prefixed_label_and_a_hyphenated_family_are_kubernetes_and_karpenter_values():
    values = read_stack_file("optimized")
    pool = values["finops-sim:platform"]["karpenter"]["nodePools"][0]
    pool.update({"labels": {"example.com/tier": "batch"}, "instanceFamilies": ["m7i", "u-6tb1"]})
    parsed = parse_stack_config("optimized", values).platform.karpenter
    assert parsed is not None and parsed.node_pools[0].labels == {"example.com/tier": "batch"}
