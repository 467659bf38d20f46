"""Runs a source, a chain of stages and a sink concurrently, joined by bounded queues.

Chaining async generators directly gives no overlap (the microphone would stall while ASR
decodes), so each stage runs in its own task inside one ``asyncio.TaskGroup`` and reads from a
bounded queue. The first failure cancels every other task and surfaces as one error naming the
stage. Each edge has a policy, chosen by the stage that reads it (``input_policy``):

- ``"block"`` (default): the writer waits when the queue is full (back-pressure, nothing lost);
- ``"latest"``: the oldest item is dropped to make room (a display wants only the newest state).

A stage that must coalesce when behind (ASR over audio) drains its queue itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from pipeline.errors import LivesubError

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)


class Stage(Protocol[In, Out]):
    """A stream transform. Implementations are ``async def run(...)`` generators."""

    name: str

    def run(self, inputs: AsyncIterator[In]) -> AsyncGenerator[Out, None]: ...


class StageError(LivesubError):
    """A stage failed with an unexpected error; the message names the stage."""


class _End:
    """Marks the end of a stream in a queue."""


_END = _End()

Sink = Callable[[Any], Awaitable[None] | None]


async def _drain(queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    while not isinstance(item := await queue.get(), _End):
        yield item


async def _put(queue: asyncio.Queue[Any], item: Any, policy: str) -> None:
    if policy == "latest" and queue.full():
        queue.get_nowait()
    await queue.put(item)


async def _pump(name: str, items: AsyncIterator[Any], queue: asyncio.Queue[Any], policy: str) -> None:
    try:
        async for item in items:
            await _put(queue, item, policy)
    except (LivesubError, asyncio.CancelledError):
        raise
    except Exception as e:
        raise StageError(f"stage '{name}' failed: {type(e).__name__}: {e}") from e
    await queue.put(_END)


async def _consume(queue: asyncio.Queue[Any], sink: Sink) -> None:
    try:
        async for item in _drain(queue):
            result = sink(item)
            if result is not None:
                await result
    except (LivesubError, asyncio.CancelledError):
        raise
    except Exception as e:
        raise StageError(f"output failed: {type(e).__name__}: {e}") from e


async def run_pipeline(
    source: AsyncIterator[Any], stages: Sequence[Stage[Any, Any]], sink: Sink, *, queue_size: int = 16
) -> None:
    """Runs until the source ends and every stage has flushed, or until something fails."""
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(maxsize=queue_size) for _ in range(len(stages) + 1)]
    policies = [getattr(stage, "input_policy", "block") for stage in stages] + ["block"]
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_pump("source", source, queues[0], policies[0]))
            for i, stage in enumerate(stages):
                outputs = stage.run(_drain(queues[i]))
                group.create_task(_pump(stage.name, outputs, queues[i + 1], policies[i + 1]))
            group.create_task(_consume(queues[-1], sink))
    except BaseExceptionGroup as group_error:
        # Report the first real failure; the others are usually its consequences.
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
