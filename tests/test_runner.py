"""The runner: order, overlap, failure and queue policies, with scripted stages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from pipeline.errors import AudioError
from pipeline.runner import StageError, run_pipeline


async def _numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i
        await asyncio.sleep(0)


class Double:
    name = "double"

    async def run(self, inputs: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for x in inputs:
            yield 2 * x


class Explode:
    name = "explode"

    def __init__(self, at: int, error: Exception) -> None:
        self.at = at
        self.error = error
        self.released = False

    async def run(self, inputs: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        try:
            async for x in inputs:
                if x == self.at:
                    raise self.error
                yield x
        finally:
            self.released = True


class Slow:
    name = "slow"

    def __init__(self) -> None:
        self.cancelled = False

    async def run(self, inputs: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        try:
            async for x in inputs:
                await asyncio.sleep(0.01)
                yield x
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def test_items_flow_in_order_through_every_stage() -> None:
    got: list[int] = []
    asyncio.run(run_pipeline(_numbers(100), [Double(), Double()], got.append, queue_size=2))
    assert got == [4 * i for i in range(100)]


def test_a_failing_stage_cancels_the_rest_and_is_named() -> None:
    explode = Explode(5, ZeroDivisionError("boom"))
    slow = Slow()
    with pytest.raises(StageError, match="stage 'explode' failed: ZeroDivisionError: boom"):
        asyncio.run(run_pipeline(_numbers(1000), [explode, slow], lambda _: None))
    assert explode.released


def test_user_errors_pass_through_unchanged() -> None:
    with pytest.raises(AudioError, match="bad audio"):
        asyncio.run(run_pipeline(_numbers(10), [Explode(3, AudioError("bad audio"))], lambda _: None))


def test_sink_failure_is_reported() -> None:
    def sink(x: int) -> None:
        if x == 2:
            raise OSError("disk full")

    with pytest.raises(StageError, match="output failed: OSError: disk full"):
        asyncio.run(run_pipeline(_numbers(10), [Double()], sink))


class KeepLatest:
    name = "display"
    input_policy = "latest"

    async def run(self, inputs: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        async for x in inputs:
            await asyncio.sleep(0.005)
            yield x


def test_latest_policy_drops_old_items_instead_of_blocking() -> None:
    got: list[int] = []
    asyncio.run(run_pipeline(_numbers(200), [KeepLatest()], got.append, queue_size=1))
    assert got[-1] == 199  # the newest always arrives
    assert len(got) < 200  # older ones were dropped, the source never waited
    assert got == sorted(got)
