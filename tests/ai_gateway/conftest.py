"""Gateway fixtures: settings files and gateway processes with simulated latency turned off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from ai_gateway.process import GatewayProcess


def write_config(path: Path, **settings: object) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateway processes (no simulated latency unless asked); all are stopped afterwards."""
    started: list[GatewayProcess] = []

    def start(
        profile: str = "optimized", redis_url: str | None = None, **settings: object
    ) -> GatewayProcess:
        settings.setdefault("latency_scale", 0)
        config = write_config(tmp_path / f"gateway{len(started)}.yaml", **settings)
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
