"""Request bodies that stall mid-way: a client that stops sending holds its connection, and a
place in ``ai_active_requests``, for as long as it stays, so each body read has a deadline.

One sweep a second cancels every read past its deadline, and the read raises ``TimeoutError``.
A timer per request (``asyncio.timeout``) cost about 4 µs of CPU on every request in a bare loop
(README "Benchmarks"); a watched read costs about 1 µs, and the deadline is kept to within a
sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any


class BodyDeadlines:
    """``with deadlines:`` around a body read, in the task that reads it. The sweeper runs
    between ``start()`` and ``close()`` (the app's lifespan); without it nothing expires."""

    def __init__(self, timeout_s: float, sweep_every_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self.sweep_every_s = sweep_every_s
        # Each read's task: its deadline (loop time), and how many cancellations it carried
        # when the read began.
        self._reading: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._expired: dict[asyncio.Task[Any], int] = {}  # cancelled by the sweep
        self._sweeper: asyncio.Task[None] | None = None

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            deadline = task.get_loop().time() + self.timeout_s
            self._reading[task] = (deadline, task.cancelling())

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task = asyncio.current_task()
        if task is None:
            return
        self._reading.pop(task, None)
        before = self._expired.pop(task, None)
        # Cancelled by the sweep (the task is suspended inside the read when it is, so the
        # cancellation arrives here): a timeout, unless another cancellation came as well (a
        # shutdown), which stays a cancellation, as asyncio.timeout leaves it.
        if before is not None and task.uncancel() <= before and kind is asyncio.CancelledError:
            raise TimeoutError from None

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.sweep_every_s)
            self.expire(loop.time())

    def expire(self, now: float) -> None:
        """Cancel every read whose deadline is ``now`` or earlier."""
        late = [task for task, (deadline, _) in self._reading.items() if deadline <= now]
        for task in late:
            _, before = self._reading.pop(task)
            self._expired[task] = before
            task.cancel()
