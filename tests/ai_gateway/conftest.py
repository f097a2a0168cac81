"""Gateway fixtures: settings files and gateway processes with simulated latency turned off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from ai_gateway.process import GatewayProcess
from ai_gateway.settings import deep_merge


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
