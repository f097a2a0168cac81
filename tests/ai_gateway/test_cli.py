"""`finops-gateway` start-up failures: a clear message, a non-zero exit, no traceback."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import yaml

from ai_gateway.embeddings import Model2VecEmbedder
from ai_gateway.router import BUILT_MODEL_FOLDER, default_router
from finops_common.process import free_port
from tests.paths import EMBEDDING_MODEL, REPO


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_bad_config_exits_2_with_the_key_and_no_traceback(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("max_body_bytes: 10\n")
    result = run_cli("--config", str(config), "--port", "1")
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr
    assert "`max_body_bytes`" in result.stderr and "10" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_redis_url_exits_2_naming_it():
    result = run_cli("--port", "1", env={"REDIS_URL": "http://cache:6379/0"})
    assert result.returncode == 2
    assert "REDIS_URL 'http://cache:6379/0'" in result.stderr and "redis or rediss" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_profile_is_rejected_by_the_parser():
    result = run_cli("--profile", "cheapest")
    assert result.returncode == 2
    assert "invalid choice: 'cheapest'" in result.stderr


def test_missing_tokenizer_files_give_a_clear_error(tmp_path):
    result = run_cli(
        "--port",
        "1",
        env={"TIKTOKEN_CACHE_DIR": str(tmp_path), "HTTPS_PROXY": "http://127.0.0.1:9"},
    )
    assert result.returncode == 2
    assert "TIKTOKEN_CACHE_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_unloadable_model_stops_start_up_with_a_clear_message(tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text(f"cache:\n  semantic:\n    model: {tmp_path / 'missing'}\n")
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_EMBEDDING_MODEL"}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "ai_gateway.cli", "--config", str(config), "--port", "1"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot load the model2vec embedding model" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_server_it_starts_freezes_its_start_up_heap(monkeypatch):
    """What the CLI hands to uvicorn is an app that calls gc.freeze once started (test_app)."""
    from ai_gateway import cli

    built: list[dict[str, object]] = []
    real_create_app = cli.create_app

    def create_app(gateway, **options):
        built.append(options)
        return real_create_app(gateway, **options)

    served: list[object] = []
    monkeypatch.setattr(cli, "create_app", create_app)
    monkeypatch.setattr(cli, "serve", lambda app, *_: served.append(app))
    monkeypatch.delenv("REDIS_URL", raising=False)
    port = str(free_port())
    assert cli.main(["--profile", "unoptimized", "--port", port, "--metrics-port", "0"]) == 0
    assert built == [{"freeze_heap": True}] and len(served) == 1


@pytest.mark.parametrize(
    ("host", "reason"), [("127.0.0.1", "Address already in use"), ("999.1.1.1", "not known")]
)
def test_a_busy_port_or_a_foreign_host_exits_2_naming_both_flags(host, reason):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--profile", "unoptimized", "--host", host, "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on {host}:{port} (" in result.stderr and reason in result.stderr
    assert "set --host to an address of this machine and --port to a free port" in result.stderr
    assert "Traceback" not in result.stderr and "Application startup" not in result.stderr


def test_an_idle_keep_alive_connection_outlives_the_clients_idle_timeout(start_gateway):
    """httpx drops an idle connection after 5 s and a load balancer after 60 s; the server must
    not drop it first, or a request sent on it as it closes fails."""
    gateway = start_gateway("unoptimized")
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        first = connection.getresponse()
        assert first.status == 200 and first.read()
        socket_before = connection.sock
        time.sleep(6)  # past httpx's 5 s and uvicorn's default
        connection.request("GET", "/readyz")  # on the same socket: the client never reconnects
        assert connection.sock is socket_before
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_print_settings_shows_what_is_in_force_without_a_usable_key(tmp_path):
    """The profile with each config over it, the semantic threshold resolved, and every key
    as the digest the gateway compares."""
    config = tmp_path / "teams.yaml"
    config.write_text(
        "latency_scale: 0\nteams:\n  checkout:\n    keys: [sk-checkout-team-key]\n"
        "    limits: {usd: 5.0, period: day}\n"
        "routing:\n  threshold: 0.2\n"  # a null one would load the embedder (tested below)
    )
    result = run_cli(
        "--profile", "optimized", "--config", str(config), "--metrics-port", "0", "--print-settings"
    )
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    digest = hashlib.sha256(b"sk-checkout-team-key").hexdigest()
    assert shown["teams"] == {
        "checkout": {
            "keys": [f"sha256:{digest}"],
            "routing": "auto_only",
            "limits": {"usd": 5.0, "period": "day", "tokens_per_minute": None,
                       "requests_per_minute": None},
        }
    }  # fmt: skip
    assert "sk-checkout-team-key" not in result.stdout
    assert shown["latency_scale"] == 0 and shown["routing"]["enabled"] is True
    assert shown["metrics_port"] == 0  # the command line's, over the settings
    assert shown["cache"]["semantic"]["threshold"] == 0.85
    assert shown["routing"]["threshold"] == 0.2


def test_print_settings_resolves_the_routing_threshold_by_the_head_in_force(tmp_path):
    """The lexical embedder leaves the router on its features-only head, whose trained default
    differs from the embedding head's; a configured threshold is shown as configured."""
    router = default_router()
    assert router.features_head.default_threshold != router.embedding_head.default_threshold
    lexical = _lexical_config(tmp_path)
    result = run_cli("--profile", "optimized", "--config", str(lexical), "--print-settings")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)["routing"]["threshold"]
    assert shown == router.features_head.default_threshold
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("routing:\n  threshold: 0.3\n")
    result = run_cli("--config", str(lexical), "--config", str(fixed), "--print-settings")
    assert yaml.safe_load(result.stdout)["routing"]["threshold"] == 0.3


def test_print_settings_shows_the_embedding_heads_threshold_with_the_routers_model():
    if not EMBEDDING_MODEL.exists():
        pytest.skip(f"the router's model2vec model is not at {EMBEDDING_MODEL}")
    assert default_router().accepts(Model2VecEmbedder(str(EMBEDDING_MODEL)))
    env = {**os.environ, "GATEWAY_EMBEDDING_MODEL": str(EMBEDDING_MODEL)}
    result = run_cli("--profile", "optimized", "--print-settings", env=env)
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)["routing"]["threshold"]
    assert shown == default_router().embedding_head.default_threshold


def _lexical_config(tmp_path):
    config = tmp_path / "lexical.yaml"
    config.write_text("cache:\n  semantic:\n    embedder: lexical\n")
    return config


def test_check_embedder_accepts_the_model_the_router_was_trained_on():
    built = REPO / BUILT_MODEL_FOLDER
    models = [m for m in (EMBEDDING_MODEL, built) if (m / "model.safetensors").is_file()]
    if not models:
        pytest.skip(f"needs {EMBEDDING_MODEL} or {built} (`make embedding-model`)")
    result = run_cli("--check-embedder", env={"GATEWAY_EMBEDDING_MODEL": str(models[0])})
    assert result.returncode == 0, result.stderr
    assert f"uses its embedding head with model2vec:{models[0]}" in result.stdout


@pytest.mark.parametrize(
    ("semantic", "offered"),
    [
        ("{embedder: lexical}", "the gateway embeds with lexical:char-3-5-grams"),
        # routing alone opens a model2vec embedder only: here the gateway opens none
        ("{enabled: false, embedder: lexical}", "the gateway opens no embedder"),
    ],
)
def test_check_embedder_refuses_another_embedder_and_says_how_to_get_the_right_one(
    tmp_path, semantic, offered
):
    config = tmp_path / "other.yaml"
    config.write_text(f"cache:\n  semantic: {semantic}\n")
    result = run_cli("--config", str(config), "--check-embedder")
    assert result.returncode == 2
    assert "trained on minilm-l6-m2v-256 vectors" in result.stderr
    assert offered in result.stderr
    assert "features-only head" in result.stderr
    assert "Set cache.semantic.embedder: model2vec" in result.stderr
    assert "make embedding-model" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_embedder_names_another_model2vec_model(tmp_path):
    """A model2vec model the router was not trained on: the same vocabulary, other vectors."""
    if not EMBEDDING_MODEL.is_dir():
        pytest.skip(f"copies {EMBEDDING_MODEL}, which is missing")
    from safetensors.numpy import load_file, save_file

    other = tmp_path / "other-model"
    shutil.copytree(EMBEDDING_MODEL, other)
    weights = load_file(str(other / "model.safetensors"))
    weights["embeddings"] = weights["embeddings"][::-1].copy()
    save_file(weights, str(other / "model.safetensors"))
    result = run_cli("--check-embedder", env={"GATEWAY_EMBEDDING_MODEL": str(other)})
    assert result.returncode == 2
    assert f"model2vec:{other} is another model" in result.stderr
    assert "point GATEWAY_EMBEDDING_MODEL at it" in result.stderr


def test_start_up_warns_when_routing_cannot_use_its_embedding_head(tmp_path, monkeypatch, caplog):
    from ai_gateway import cli

    monkeypatch.setattr(cli, "serve", lambda *_: None)
    monkeypatch.delenv("REDIS_URL", raising=False)
    config = str(_lexical_config(tmp_path))
    port = ["--port", str(free_port()), "--metrics-port", "0"]
    assert cli.main(["--profile", "optimized", "--config", config, *port]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("features-only head" in message for message in warnings), warnings

    caplog.clear()
    assert cli.main(["--profile", "unoptimized", *port]) == 0  # no routing
    assert not [r for r in caplog.records if "features-only" in r.getMessage()]


def test_the_metrics_port_cannot_take_the_api_port():
    """The API socket listens before the metrics server starts: on one port, metrics (every
    team's spend) were served on the API port."""
    port = str(free_port())
    result = run_cli("--profile", "unoptimized", "--port", port, "--metrics-port", port)
    assert result.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port} (Address already in use)" in result.stderr


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--port", "0"], "--port: '0' is invalid: allowed values are 1 to 65535"),
        (["--metrics-port", "99999", "--print-settings"],
         "--metrics-port: '99999' is invalid: allowed values are 0 to 65535"),
    ],
)  # fmt: skip
def test_a_port_out_of_range_is_a_usage_error_even_when_only_printing(flags, says):
    """--print-settings printed metrics_port: 99999, which a start then refused."""
    result = run_cli("--profile", "unoptimized", *flags)
    assert result.returncode == 2 and says in result.stderr
    assert "Traceback" not in result.stderr
