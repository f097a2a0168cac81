"""Per-container usage from Prometheus alone: cAdvisor's series joined to kube-state-metrics'.

A workload's pods are found by their ``app`` label, which kube-state-metrics exports as
``kube_pod_labels{label_app=...}`` (the observability builder allows it), so no Kubernetes API
access is needed. Each query is a range query at the strategy's resolution (5 minutes):

- CPU: ``rate(container_cpu_usage_seconds_total[5m])``: rate() handles counter resets;
- memory: ``max_over_time(container_memory_working_set_bytes[5m])``, so no sample's peak falls
  between two steps;
- OOM kills: kube-state-metrics' ``kube_pod_container_status_last_terminated_reason`` with
  ``reason="OOMKilled"`` times the container's ``kube_pod_container_resource_limits`` for memory:
  the limit each killed container instance had. The reason stays until the container ends for
  another one, so a kill earlier in a pod's life that the pod still shows counts too.

Every series is kept apart (one per container instance), so a restarted pod's old and new
series both count.
"""

from __future__ import annotations

import contextlib
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..arguments import KUBERNETES_NAME
from .strategy import ContainerUsage, OomKill, Series

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 10_000


# Series by label set, each with its (timestamp, value) points.
Found = dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[tuple[float, float]]]]


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query; the message says which."""


class Prometheus:
    """The two HTTP API calls this tool needs, with the server's own error messages."""

    def __init__(self, url: str, timeout_s: float = 60) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, path: str, params: dict[str, str]) -> Any:
        body = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                detail = json.loads(detail).get("error", detail)
            raise PrometheusError(
                f"Prometheus at {self.url} answered {exc.code}: {detail}"
            ) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {reason}") from exc
        if payload.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url}: {payload.get('error', payload)}")
        return payload["data"]

    def query_range(self, query: str, start: float, end: float, step_s: int) -> Found:
        """Series by label set, each with its (timestamp, value) points, fetched in chunks."""
        series: Found = {}
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + (MAX_POINTS - 1) * step_s)
            data = self._call(
                "/api/v1/query_range",
                {
                    "query": query,
                    "start": f"{chunk_start}",
                    "end": f"{chunk_end}",
                    "step": f"{step_s}",
                },
            )
            for result in data["result"]:
                labels = result["metric"]
                key = tuple(sorted(labels.items()))
                points = series.setdefault(key, (labels, []))[1]
                points.extend((float(t), float(v)) for t, v in result["values"])
            chunk_start = chunk_end + step_s
        return series


def _by_app(selector: str, namespace: str, apps: tuple[str, ...]) -> str:
    """``selector`` restricted to the pods whose ``app`` label is one of ``apps``."""
    return (
        f"{selector} * on (namespace, pod) group_left (label_app) "
        f"max by (namespace, pod, label_app) "
        f'(kube_pod_labels{{namespace="{namespace}", label_app=~"{"|".join(apps)}"}})'
    )


def usage_queries(
    namespace: str, apps: tuple[str, ...], container: str, resolution_s: int
) -> dict[str, str]:
    """The PromQL for a container's CPU (cores) and memory (bytes) samples, and the memory limit
    (bytes) of its instances whose last termination was an OOM kill."""
    for name in (namespace, container, *apps):
        if not KUBERNETES_NAME.match(name):
            raise ValueError(f"{name!r} is not a Kubernetes name")
    labels = f'namespace="{namespace}", container="{container}"'
    window = f"{resolution_s}s"
    return {
        "cpu": _by_app(
            f"rate(container_cpu_usage_seconds_total{{{labels}}}[{window}])", namespace, apps
        ),
        "memory": _by_app(
            f"max_over_time(container_memory_working_set_bytes{{{labels}}}[{window}])",
            namespace,
            apps,
        ),
        "oom_limit": _by_app(
            "(max by (namespace, pod, container) (kube_pod_container_status_last_terminated_reason"
            f'{{{labels}, reason="OOMKilled"}}) * on (namespace, pod, container) '
            "max by (namespace, pod, container) (kube_pod_container_resource_limits"
            f'{{{labels}, resource="memory"}}))',
            namespace,
            apps,
        ),
    }


def _series(found: Found) -> tuple[Series, ...]:
    kept = []
    for labels, points in found.values():
        finite = sorted((t, v) for t, v in points if math.isfinite(v))
        if finite:
            times, values = zip(*finite, strict=True)
            kept.append(Series(labels.get("pod", "?"), times, values))
    return tuple(sorted(kept, key=lambda s: (s.pod, s.timestamps[0])))


def _oom_kills(found: Found) -> tuple[OomKill, ...]:
    kills = []
    for labels, points in found.values():
        limits = sorted((t, v) for t, v in points if math.isfinite(v) and v > 0)
        if limits:
            limit = max(v for _, v in limits)
            kills.append(OomKill(labels.get("pod", "?"), limits[0][0], limit))
    return tuple(sorted(kills, key=lambda kill: (kill.pod, kill.seen_at)))


def fetch_usage(
    prometheus: Prometheus,
    namespace: str,
    apps: tuple[str, ...],
    container: str,
    end: float,
    window_s: float,
    resolution_s: int,
) -> ContainerUsage:
    """Samples at ``end - window + resolution``, ..., ``end``: they tile the window exactly."""
    queries = usage_queries(namespace, apps, container, resolution_s)
    start = end - window_s + resolution_s

    def found(query: str) -> Found:
        return prometheus.query_range(queries[query], start, end, resolution_s)

    return ContainerUsage(
        cpu=_series(found("cpu")),
        memory=_series(found("memory")),
        resolution_s=resolution_s,
        oom_kills=_oom_kills(found("oom_limit")),
    )
