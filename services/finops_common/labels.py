"""The cost-allocation labels every workload carries, so spend can be split by them.

The program sets them, kube-state-metrics exports them and the policy pack requires them.
"""

from __future__ import annotations

COST_LABELS: tuple[str, ...] = ("app", "team", "cost-center", "phase")
