"""Runs a session graph: a trunk of stages fed by a source, and branches that each receive every
event the trunk publishes, through a queue of their own.

    source -> stage -> stage -> ...        the trunk: each stage reads what the one before emits
                 \\-------\\------> bus -> tap (a stage reading the bus: subtitle layout) -> bus
                                    \\---> branch queue -> sink   (one per branch)

Chaining async generators directly gives no overlap (the microphone would stall while ASR
decodes), so each trunk stage runs in its own task inside one ``asyncio.TaskGroup`` and reads
from a bounded queue (back-pressure: a writer waits when it is full). Events of stages that
``publishes`` go to the bus (and taps always publish) as :class:`Emission`, stamped with both clocks when they left the
trunk. Each branch has its own queue and policy:

- ``"all"`` (writers, JSONL, recorders): nothing is dropped; the deepest the queue got is
  reported, and a branch holding an event more than ``max_lag_s`` seconds (wall clock) ends the
  session with an error naming it;
- ``"latest"`` (a display): a newer partial replaces an older partial of the same utterance and
  kind not yet taken; finals are never dropped.

A branch never delays the trunk or another branch: the bus only appends to queues. A branch
that must shed work (speech output) does it inside itself. The first failure anywhere cancels
everything else and surfaces as one error naming the stage or branch.

**Replay** (``replay=True``): the stream clock paces everything. The source is asked for its
next block only once the trunk has settled (every stage waits for input and every queue is
empty), and while a stage computes on a model's thread nothing else in the trunk moves
(:meth:`Clock.compute`). So what each stage sees, and when on the stream clock, does not depend
on how fast the machine is: the same input and configuration give the same events. This asks
one thing of a stage: in a replay it takes its next input only once it has done all that is due
(a stage that reads ahead while it computes, as live ASR does, reads inline when
``clock.replay``), since a stage waiting for input counts as settled.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from pipeline.errors import LivesubError
from pipeline.events import AudioChunk

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)
T = TypeVar("T")

Policy = Literal["all", "latest"]
Stats = dict[str, Any]


class Stage(Protocol[In, Out]):
    """A stream transform. Implementations are ``async def run(...)`` generators; a stage whose
    events go to the branches sets ``publishes = True``; ``stats()`` (optional) reports its figures."""

    name: str

    def run(self, inputs: AsyncIterator[In]) -> AsyncGenerator[Out, None]: ...


class Sink(Protocol):
    """The end of a branch: ``open`` before the first event (inside the event loop), ``write``
    each (it may be a coroutine), ``close`` after the last, even when the session failed. A sink
    with work of its own (speech output) may have ``async def finish()``, awaited after the last
    event before the session ends."""

    name: str
    policy: Policy

    def open(self) -> None: ...

    def write(self, emission: Emission) -> Awaitable[None] | None: ...

    def close(self) -> None: ...


class StageError(LivesubError):
    """A stage or branch failed with an unexpected error, or fell behind; the message names it."""


@dataclass(frozen=True)
class Emission:
    """One event as it left the trunk: ``wall`` is seconds since the source started on the event
    loop's clock (compute counted), ``stream`` the stream clock then (the audio delivered so far)."""

    event: Any
    wall: float
    stream: float


class Clock:
    """The session's two clocks and, in replay, the pacing of the trunk.

    ``stream`` is the end of the last audio block the source delivered, in seconds; ``wall``
    the event loop's time since the source started. Stages run their model calls through
    :meth:`compute` so that a replay can hold everything else still meanwhile.
    """

    def __init__(self, *, replay: bool = False) -> None:
        self.replay = replay
        self.stream = 0.0
        self._started: float | None = None
        self._lock = asyncio.Lock() if replay else None

    def start(self) -> None:
        self._started = asyncio.get_running_loop().time()

    @property
    def wall(self) -> float:
        if self._started is None:
            return 0.0
        return asyncio.get_running_loop().time() - self._started

    async def compute(self, executor: Executor, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on ``executor``; in a replay, one at a time across the trunk."""
        loop = asyncio.get_running_loop()
        if self._lock is None:
            return await loop.run_in_executor(executor, function, *args)
        async with self._lock:
            return await loop.run_in_executor(executor, function, *args)


class _End:
    """Marks the end of a stream in a queue."""


_END = _End()


class BranchQueue:
    """A branch's queue with its policy. Unbounded: ``all`` never drops, and a branch too far
    behind ends the session instead (``max_lag_s``); ``latest`` keeps one partial per utterance."""

    def __init__(self, name: str, policy: Policy, max_lag_s: float) -> None:
        if policy not in ("all", "latest"):
            raise ValueError(f"branch '{name}': unknown queue policy {policy!r}")
        self.name = name
        self.policy = policy
        self.max_lag_s = max_lag_s
        self._items: deque[tuple[float, Emission | _End]] = deque()  # (loop time queued, item)
        self._ready = asyncio.Event()
        self.max_depth = 0
        self.replaced = 0

    def put(self, item: Emission | _End) -> None:
        if self.policy == "latest" and isinstance(item, Emission) and not getattr(item.event, "final", True):
            kind, utterance = type(item.event), getattr(item.event, "utterance", None)
            for i, (_, old) in enumerate(self._items):
                if (
                    isinstance(old, Emission)
                    and type(old.event) is kind
                    and getattr(old.event, "utterance", None) == utterance
                    and not getattr(old.event, "final", True)
                ):
                    del self._items[i]
                    self.replaced += 1
                    break
        self._items.append((asyncio.get_running_loop().time(), item))
        self.max_depth = max(self.max_depth, len(self._items))
        self._ready.set()

    def lag(self) -> float:
        """How long the oldest item has waited, in seconds."""
        return asyncio.get_running_loop().time() - self._items[0][0] if self._items else 0.0

    async def get(self) -> Emission | _End:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()[1]

    def stats(self) -> Stats:
        figures: Stats = {"max_queue": self.max_depth}
        if self.policy == "latest":
            figures["replaced"] = self.replaced
        return figures


@dataclass
class _Trunk:
    """Which trunk stages wait for input, to tell when a replay may deliver the next block."""

    queues: list[asyncio.Queue[Any]]
    waiting: list[bool] = field(init=False)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.waiting = [False] * len(self.queues)

    async def drain(self, index: int) -> AsyncIterator[Any]:
        queue = self.queues[index]
        while True:
            if queue.empty():
                self.waiting[index] = True
                self.changed.set()
            item = await queue.get()
            self.waiting[index] = False
            if isinstance(item, _End):
                return
            yield item

    def settled(self) -> bool:
        return all(self.waiting) and all(q.empty() for q in self.queues)

    async def settle(self) -> None:
        while not self.settled():
            self.changed.clear()
            await self.changed.wait()


def _failure(what: str, e: Exception) -> StageError:
    return StageError(f"{what} failed: {type(e).__name__}: {e}")


async def run_graph(
    source: AsyncIterator[Any],
    stages: Sequence[Stage[Any, Any]],
    sinks: Sequence[Sink] = (),
    *,
    taps: Sequence[Stage[Any, Any]] = (),
    clock: Clock | None = None,
    queue_size: int = 16,
    max_lag_s: float = 30.0,
) -> dict[str, Stats]:
    """Runs until the source ends, every stage has flushed and every branch has taken everything,
    or until something fails. Returns each stage's and branch's figures, by name. A tap reads
    every event the stages publish (not the taps'), and what it emits is published too."""
    clock = clock or Clock()
    # Taps' queues are unbounded: publishing never waits (their work is light: no models).
    trunk = _Trunk([asyncio.Queue(maxsize=queue_size) for _ in stages] + [asyncio.Queue() for _ in taps])
    branches = [BranchQueue(sink.name, sink.policy, max_lag_s) for sink in sinks]

    def publish(item: Any, *, to_taps: bool = True) -> None:
        emission = Emission(item, round(clock.wall, 4), round(clock.stream, 4))
        for branch in branches:
            branch.put(emission)
        if to_taps:
            for queue in trunk.queues[len(stages) :]:
                queue.put_nowait(item)

    async def feed() -> None:
        clock.start()
        first = trunk.queues[0] if stages else None
        try:
            while True:
                if clock.replay:
                    await trunk.settle()
                chunk = await anext(source, None)
                if chunk is None:
                    break
                if isinstance(chunk, AudioChunk):
                    clock.stream = chunk.end_s
                if first is not None:
                    await first.put(chunk)
        except (LivesubError, asyncio.CancelledError):
            raise
        except Exception as e:
            raise _failure("source", e) from e
        if first is not None:
            await first.put(_END)

    async def stage_task(index: int, stage: Stage[Any, Any]) -> None:
        tap = index >= len(stages)
        following = trunk.queues[index + 1] if index + 1 < len(stages) else None
        publishes = tap or getattr(stage, "publishes", False)
        try:
            async for item in stage.run(trunk.drain(index)):
                if publishes:
                    publish(item, to_taps=not tap)
                if following is not None:
                    await following.put(item)
        except (LivesubError, asyncio.CancelledError):
            raise
        except Exception as e:
            raise _failure(f"stage '{stage.name}'", e) from e
        if following is not None:
            await following.put(_END)

    async def branch_task(sink: Sink, queue: BranchQueue) -> None:
        try:
            while not isinstance(item := await queue.get(), _End):
                result = sink.write(item)
                if result is not None:
                    await result
            finish = getattr(sink, "finish", None)  # a branch with work of its own (speech) ends it
            if finish is not None:
                await finish()
        except (LivesubError, asyncio.CancelledError):
            raise
        except Exception as e:
            raise _failure(f"output '{sink.name}'", e) from e

    async def watch_lag() -> None:
        while True:
            await asyncio.sleep(min(1.0, max_lag_s / 4))
            for branch in branches:
                if branch.policy == "all" and branch.lag() > max_lag_s:
                    raise StageError(f"output '{branch.name}' fell more than {max_lag_s:g} s behind")

    opened: list[Sink] = []
    finished = False
    try:
        for sink in sinks:
            sink.open()
            opened.append(sink)
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(watch_lag())
            done = [group.create_task(feed())]
            done += [group.create_task(stage_task(i, stage)) for i, stage in enumerate(stages)]
            tapping = [group.create_task(stage_task(len(stages) + i, tap)) for i, tap in enumerate(taps)]
            outputs = [group.create_task(branch_task(s, q)) for s, q in zip(sinks, branches, strict=True)]
            await asyncio.gather(*done)
            for tap_queue in trunk.queues[len(stages) :]:
                tap_queue.put_nowait(_END)
            await asyncio.gather(*tapping)
            for branch in branches:
                branch.put(_END)
            await asyncio.gather(*outputs)
            watcher.cancel()
        finished = True
    except BaseExceptionGroup as group_error:
        # Report the first real failure; the others are usually its consequences.
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    finally:
        # Every output is closed, whatever another's close does: a failed events file must not
        # keep the transcript from being saved. A failure to close is the session's error only
        # when there is no other.
        closing: StageError | None = None
        for sink in reversed(opened):
            try:
                sink.close()
            except Exception as e:
                closing = closing or _failure(f"output '{sink.name}'", e)
        if closing is not None and finished:
            raise closing
    stats: dict[str, Stats] = {}
    for stage in [*stages, *taps]:
        if hasattr(stage, "stats"):
            stats[stage.name] = stage.stats()
    for sink, branch in zip(sinks, branches, strict=True):
        own = sink.stats() if hasattr(sink, "stats") else {}
        stats[sink.name] = {**branch.stats(), **own}
    return stats
