"""What the gateway process used during a phase: CPU seconds and resident memory.

The figures are prometheus-client's process metrics for Linux (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, read from ``/proc/PID``). They come from the gateway's own
metrics endpoint when it exposes them; otherwise the same collector reads the gateway's PID from
here, so the numbers mean the same either way. CPU is the counter's difference between the
phase's start and end; memory is the largest of the samples taken at least every
``SAMPLE_EVERY_S`` during the phase.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from .results import GatewayUsage

CPU_SECONDS = "process_cpu_seconds_total"
RESIDENT_BYTES = "process_resident_memory_bytes"
SAMPLE_EVERY_S = 1.0


class MeasurementError(RuntimeError):
    """The gateway's process metrics could not be read."""


@dataclass(frozen=True)
class ProcessSample:
    cpu_seconds: float
    rss_bytes: float
    at: float  # time.monotonic() when read


def parse_process_metrics(text: str, at: float) -> ProcessSample:
    """The two process metrics of a Prometheus text exposition."""
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in (CPU_SECONDS, RESIDENT_BYTES)
    }
    missing = sorted({CPU_SECONDS, RESIDENT_BYTES} - set(values))
    if missing:
        raise MeasurementError(f"no {', '.join(missing)} in the metrics (not Linux?)")
    return ProcessSample(values[CPU_SECONDS], values[RESIDENT_BYTES], at)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


class ProcessMeter:
    """Samples one process's metrics: from ``metrics_url`` if it has them, else from its PID."""

    def __init__(self, metrics_url: str, pid: int) -> None:
        self._url = metrics_url
        self._local = CollectorRegistry()
        ProcessCollector(pid=lambda: pid, registry=self._local)
        self._from_endpoint = CPU_SECONDS in scrape(metrics_url)
        self.source = metrics_url if self._from_endpoint else f"/proc/{pid} (prometheus-client)"

    def sample(self) -> ProcessSample:
        at = time.monotonic()
        text = scrape(self._url) if self._from_endpoint else generate_latest(self._local).decode()
        return parse_process_metrics(text, at)


class PhaseUsage:
    """``start()`` as the phase starts, ``tick()`` while it runs, ``finish(requests)`` after."""

    def __init__(self, meter: ProcessMeter) -> None:
        self._meter = meter
        self._first: ProcessSample | None = None
        self._last: ProcessSample | None = None
        self._peak_rss = 0.0
        self._samples = 0

    def _take(self) -> ProcessSample:
        sample = self._meter.sample()
        self._peak_rss = max(self._peak_rss, sample.rss_bytes)
        self._samples += 1
        self._last = sample
        return sample

    def start(self) -> None:
        self._first = self._take()

    def tick(self) -> None:
        """A memory sample, if the last one is ``SAMPLE_EVERY_S`` old."""
        if self._last is None or time.monotonic() - self._last.at >= SAMPLE_EVERY_S:
            self._take()

    def finish(self, requests: int) -> GatewayUsage:
        if self._first is None:
            raise MeasurementError("the phase's usage was never started")
        first, last = self._first, self._take()
        return GatewayUsage(
            source=self._meter.source,
            wall_seconds=last.at - first.at,
            cpu_seconds=last.cpu_seconds - first.cpu_seconds,
            peak_rss_bytes=int(self._peak_rss),
            rss_samples=self._samples,
            requests=requests,
        )
