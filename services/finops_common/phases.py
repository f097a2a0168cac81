"""The two phases of the lab: the same workload before and after the FinOps changes.

A phase names a gateway profile, a stack and a half of the simulation's report.
"""

from __future__ import annotations

from typing import Literal, get_args

Phase = Literal["unoptimized", "optimized"]
PHASES: tuple[Phase, ...] = get_args(Phase)
