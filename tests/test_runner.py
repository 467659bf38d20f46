"""The session graph's runner: order, failures, branch policies, taps and paced replay, with
scripted stages and sinks."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.errors import AudioError
from pipeline.runner import BranchQueue, Clock, Emission, Policy, StageError, run_graph


@dataclass(frozen=True)
class Note:
    utterance: int
    text: str
    final: bool = False


async def _numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i
        await asyncio.sleep(0)


class Double:
    name = "double"
    publishes = True

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


class Collect:
    """A branch keeping what it receives; ``delay`` seconds per event (a slow output)."""

    def __init__(self, name: str = "collect", policy: Policy = "all", delay: float = 0.0, fail_at: int = -1) -> None:
        self.name = name
        self.policy = policy
        self.delay = delay
        self.fail_at = fail_at
        self.got: list[Any] = []
        self.opened = self.closed = False

    def open(self) -> None:
        self.opened = True

    async def write(self, emission: Emission) -> None:
        if len(self.got) == self.fail_at:
            raise OSError("disk full")
        if self.delay:
            await asyncio.sleep(self.delay)
        self.got.append(emission.event)

    def close(self) -> None:
        self.closed = True
        if self.fail_at >= 0:  # a file that failed fails again as it is closed (a full disk)
            raise OSError("disk full")


def test_items_flow_in_order_through_every_stage_to_every_branch() -> None:
    a, b = Collect("a"), Collect("b")
    stats = asyncio.run(run_graph(_numbers(100), [Double(), Double()], [a, b], queue_size=2))
    # Both stages publish: each number twice doubled, after once doubled.
    assert [x for x in a.got if x % 4 == 0 and x // 4 < 100][-1] == 396
    assert a.got == b.got and len(a.got) == 200
    assert a.opened and a.closed
    assert stats["a"]["max_queue"] >= 1


def test_a_failing_stage_cancels_the_rest_and_is_named() -> None:
    explode = Explode(5, ZeroDivisionError("boom"))
    sink = Collect()
    with pytest.raises(StageError, match="stage 'explode' failed: ZeroDivisionError: boom"):
        asyncio.run(run_graph(_numbers(1000), [explode, Double()], [sink]))
    assert explode.released
    assert sink.closed  # outputs are closed (their files kept) even when the session fails


def test_user_errors_pass_through_unchanged() -> None:
    with pytest.raises(AudioError, match="bad audio"):
        asyncio.run(run_graph(_numbers(10), [Explode(3, AudioError("bad audio"))]))


def test_a_failing_branch_ends_the_session_with_its_name_and_every_other_output_is_closed() -> None:
    kept, disk = Collect("transcript"), Collect("disk", fail_at=2)
    with pytest.raises(StageError, match="output 'disk' failed: OSError: disk full"):
        asyncio.run(run_graph(_numbers(10), [Double()], [kept, disk]))
    assert kept.closed  # the transcript is saved, though the failed output's close failed too


def test_an_output_failing_as_it_closes_is_the_sessions_error() -> None:
    kept, disk = Collect("transcript"), Collect("disk", fail_at=100)  # fails only as it closes
    with pytest.raises(StageError, match="output 'disk' failed: OSError: disk full"):
        asyncio.run(run_graph(_numbers(3), [Double()], [kept, disk]))
    assert kept.closed and disk.closed


def test_a_branch_too_far_behind_ends_the_session_with_its_name() -> None:
    stuck = Collect("jsonl", delay=60.0)
    with pytest.raises(StageError, match=r"output 'jsonl' fell more than 0\.2 s behind"):
        asyncio.run(run_graph(_numbers(5), [Double()], [stuck], max_lag_s=0.2))


def test_latest_replaces_an_untaken_partial_of_the_same_utterance_and_keeps_finals() -> None:
    async def scenario() -> tuple[list[Note], dict[str, Any]]:
        queue = BranchQueue("display", "latest", 30.0)
        notes = [Note(0, "a"), Note(0, "a b"), Note(1, "x"), Note(0, "a b c", final=True), Note(1, "x y")]
        for note in notes:
            queue.put(Emission(note, 0.0, 0.0))
        got = []
        for _ in range(3):
            item = await queue.get()
            assert isinstance(item, Emission)
            got.append(item.event)
        return got, queue.stats()

    got, stats = asyncio.run(scenario())
    # "a" and "a b" went unseen, replaced by newer partials; the final is kept; utterance 1's
    # partial was replaced by its newer one.
    assert got == [Note(0, "a b"), Note(0, "a b c", final=True), Note(1, "x y")]
    assert stats == {"max_queue": 3, "replaced": 2}


def test_all_never_drops_and_reports_its_deepest() -> None:
    slow = Collect("writer", delay=0.002)
    asyncio.run(run_graph(_numbers(50), [Double()], [slow]))
    assert slow.got == [2 * i for i in range(50)]


def test_a_slow_branch_delays_neither_the_trunk_nor_another_branch() -> None:
    fast, slow = Collect("fast"), Collect("slow", delay=0.02)
    arrivals: list[float] = []

    class Timed:
        name = "fast-timed"
        policy: Policy = "all"

        def open(self) -> None: ...

        def write(self, emission: Emission) -> None:
            arrivals.append(time.perf_counter())

        def close(self) -> None: ...

    started = time.perf_counter()
    asyncio.run(run_graph(_numbers(50), [Double()], [fast, slow, Timed()]))
    # The fast outputs had everything long before the slow one (50 x 20 ms) was done.
    assert fast.got == slow.got
    assert max(arrivals) - started < 0.5 * (50 * 0.02)


class Upper:
    """A tap: reads the bus, publishes its own events."""

    name = "upper"

    async def run(self, inputs: AsyncIterator[Any]) -> AsyncGenerator[str, None]:
        async for item in inputs:
            yield f"tap:{item}"


def test_a_tap_reads_every_published_event_and_publishes_its_own() -> None:
    sink = Collect()
    asyncio.run(run_graph(_numbers(3), [Double()], [sink], taps=[Upper()]))
    assert sorted(map(str, sink.got)) == sorted(["0", "2", "4", "tap:0", "tap:2", "tap:4"])


class Coalescing:
    """Like streaming ASR: live, it takes pieces as they come while it "decodes" (for a random
    time, on a thread), and each decode covers everything that arrived meanwhile; in a replay it
    takes the next piece only when it has nothing left to do, as the runner asks."""

    name = "coalescing"
    publishes = True

    def __init__(self, clock: Clock, seed: int) -> None:
        self._clock = clock
        self._random = random.Random(seed)
        self._executor = ThreadPoolExecutor(1)

    def _decode(self, pieces: list[int]) -> tuple[int, ...]:
        time.sleep(self._random.uniform(0.0, 0.004))
        return tuple(pieces)

    async def run(self, inputs: AsyncIterator[int]) -> AsyncGenerator[tuple[int, ...], None]:
        if self._clock.replay:
            async for piece in inputs:
                yield await self._clock.compute(self._executor, self._decode, [piece])
            return
        waiting: list[int] = []
        done = asyncio.Event()

        async def read() -> None:
            async for piece in inputs:
                waiting.append(piece)
                await asyncio.sleep(0)
            done.set()

        reader = asyncio.create_task(read())
        while not (done.is_set() and not waiting):
            if waiting:
                taken = waiting[:]
                waiting.clear()
                yield await self._clock.compute(self._executor, self._decode, taken)
            else:
                await asyncio.sleep(0.001)
        await reader


def _decodes(replay: bool, seed: int) -> list[tuple[int, ...]]:
    sink = Collect()

    async def session() -> None:
        clock = Clock(replay=replay)
        await run_graph(_numbers(40), [Coalescing(clock, seed)], [sink], clock=clock)

    asyncio.run(session())
    return sink.got


def test_a_replay_gives_the_same_events_whatever_the_compute_times() -> None:
    live = [_decodes(replay=False, seed=seed) for seed in range(3)]
    assert all(sum(len(d) for d in decodes) == 40 for decodes in live)
    assert any(len(decodes) < 40 for decodes in live)  # live, pieces coalesced behind slow decodes
    replays = {tuple(_decodes(replay=True, seed=seed)) for seed in range(3)}
    assert replays == {tuple((i,) for i in range(40))}  # paced: each piece decoded once it arrived
