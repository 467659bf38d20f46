"""When each spoken clause is heard: clauses queued on the session's timeline, and shed when
speech piles up.

A clause joins the queue once it is synthesised (``ready``), starts when the clause before it has
ended, and is heard whole. When what waits to be heard (the rest of the clause playing and the
queue, the new clause included) exceeds ``limit_s``, the oldest clauses not yet started are
skipped, so speech never drifts behind the conversation and a newer utterance waits at most about
``limit_s`` for older ones. Times are seconds on one timeline (the stream clock in a replay, the
wall clock live), so the same arrivals always give the same schedule.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Clause(Generic[T]):
    """A synthesised clause: ``duration`` seconds of ``audio``, ready at ``ready``; ``start`` is
    set when it starts playing."""

    utterance: int
    text: str
    audio: T
    duration: float
    ready: float
    start: float | None = None

    @property
    def end(self) -> float:
        assert self.start is not None
        return self.start + self.duration


class Playout(Generic[T]):
    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.playing_until = 0.0  # when the clause started last ends
        self.queue: deque[Clause[T]] = deque()
        self.skipped: list[tuple[int, str]] = []  # (utterance, text) of each clause skipped; its audio let go

    def backlog(self, now: float) -> float:
        """Seconds of speech still to be heard at ``now``, after what is due has started."""
        return max(0.0, self.playing_until - now) + sum(c.duration for c in self.queue)

    def add(self, clause: Clause[T], now: float) -> list[Clause[T]]:
        """Queues a clause ready at ``now``; returns the clauses started by then (in order,
        ``start`` set). Sheds the oldest waiting clauses while the backlog is over the limit; the
        new clause itself is always kept (it is the most current)."""
        started = self.advance(now)
        clause.ready = now
        while self.queue and self.backlog(now) + clause.duration > self.limit_s:
            skipped = self.queue.popleft()
            self.skipped.append((skipped.utterance, skipped.text))
        self.queue.append(clause)
        return started + self.advance(now)

    def advance(self, now: float) -> list[Clause[T]]:
        """Starts every queued clause due by ``now``; returns them with their start times."""
        started = []
        while self.queue and max(self.playing_until, self.queue[0].ready) <= now:
            clause = self.queue.popleft()
            clause.start = max(self.playing_until, clause.ready)
            self.playing_until = clause.end
            started.append(clause)
        return started

    def flush(self) -> list[Clause[T]]:
        """Starts everything still queued (the session is over: nothing newer can come)."""
        return self.advance(float("inf"))
