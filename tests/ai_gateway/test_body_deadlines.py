"""Body reads past their deadline are cancelled by the sweep and raise TimeoutError; reads in
time, and cancellations that are not the sweep's, are left as they are."""

from __future__ import annotations

import asyncio

import pytest

from ai_gateway.body_deadlines import BodyDeadlines


async def _read(deadlines: BodyDeadlines, arrives: asyncio.Event) -> str:
    with deadlines:
        await arrives.wait()
    await asyncio.sleep(0.03)  # past the read: no late cancellation may land here
    return "read"


@pytest.fixture
async def deadlines():
    swept = BodyDeadlines(timeout_s=0.05, sweep_every_s=0.01)
    swept.start()
    yield swept
    await swept.close()


async def test_a_read_past_its_deadline_raises_timeout_error(deadlines):
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await _read(deadlines, asyncio.Event())
    assert 0.05 <= asyncio.get_running_loop().time() - started < 1
    assert not deadlines._reading and not deadlines._expired


async def test_a_read_in_time_is_left_alone_and_its_task_carries_no_cancellation(deadlines):
    arrives = asyncio.Event()
    task = asyncio.create_task(_read(deadlines, arrives))
    await asyncio.sleep(0.02)
    arrives.set()
    assert await task == "read"
    assert task.cancelling() == 0 and not deadlines._reading


async def test_a_cancellation_that_is_not_the_sweeps_stays_a_cancellation(deadlines):
    task = asyncio.create_task(_read(deadlines, asyncio.Event()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadlines._reading and not deadlines._expired


async def test_a_shutdowns_cancellation_with_the_sweeps_stays_a_cancellation():
    """Both land before the reader runs again: a 408 would hide the shutdown's cancellation
    (asyncio.timeout leaves it a cancellation too)."""
    deadlines = BodyDeadlines(timeout_s=0.0)
    task = asyncio.create_task(_read(deadlines, asyncio.Event()))
    await asyncio.sleep(0)  # the reader is inside its read
    deadlines.expire(asyncio.get_running_loop().time())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadlines._reading and not deadlines._expired


async def test_without_the_sweeper_nothing_expires():
    unswept = BodyDeadlines(timeout_s=0.01)
    arrives = asyncio.Event()
    task = asyncio.create_task(_read(unswept, arrives))
    await asyncio.sleep(0.05)
    arrives.set()
    assert await task == "read"
