"""Cutting a long recording into chunks of speech for Whisper, incrementally.

A detector (Silero VAD in production, a fake in tests) finds stretches of speech in a window of
audio. Stretches that end well before the window's end are decided; one still open at the end is
scanned again with the next window, so no speech is cut at a window boundary. Decided stretches
are merged into chunks that span at most ``max_chunk`` samples with no silence inside longer than
``max_gap``: Whisper sees up to ~30 s of context, as in offline decoding, and long silences (where
Whisper invents text) are left out. Only the audio not yet emitted is kept in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.events import Samples

#: Finds speech in mono 16 kHz audio: (start, end) sample offsets into the given array.
Detector = Callable[[Samples], list[tuple[int, int]]]


@dataclass(frozen=True)
class Chunk:
    """A span of the recording to decode: ``start``/``end`` are stream samples."""

    start: int
    end: int
    audio: Samples


class SpeechChunker:
    """Feed audio with :meth:`push`, then call :meth:`finish`; both return finished chunks."""

    def __init__(self, detect: Detector, *, window: int, margin: int, max_chunk: int, max_gap: int) -> None:
        if margin * 2 >= window:
            raise ValueError("margin must be well inside the window")
        self._detect = detect
        self._window = window
        self._margin = margin
        self._max_chunk = max_chunk
        self._max_gap = max_gap
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream sample of _buffer[0]
        self._scanned = 0  # everything before this stream sample is decided
        self._open: tuple[int, int] | None = None  # the chunk being built

    @property
    def _buffer_end(self) -> int:
        return self._buffer_start + len(self._buffer)

    def push(self, audio: Samples) -> list[Chunk]:
        self._buffer = np.concatenate([self._buffer, audio.astype(np.float32, copy=False)])
        chunks: list[Chunk] = []
        while self._buffer_end - self._scanned >= self._window:
            chunks += self._scan(final=False)
        return chunks

    def finish(self) -> list[Chunk]:
        chunks = self._scan(final=True) if self._buffer_end > self._scanned else []
        if self._open is not None:
            chunks.append(self._emit())
        return chunks

    def _scan(self, final: bool) -> list[Chunk]:
        scan_end = self._buffer_end if final else self._scanned + self._window
        window = self._buffer[self._scanned - self._buffer_start : scan_end - self._buffer_start]
        regions = [(self._scanned + s, self._scanned + e) for s, e in self._detect(window)]
        # Decided: everything up to the margin, unless a stretch of speech runs into the margin.
        decided_until = scan_end if final else scan_end - self._margin
        chunks = []
        for start, end in regions:
            if not final and end > decided_until:
                decided_until = min(decided_until, start)
                break
            chunks += self._add(start, end)
        if decided_until <= self._scanned:
            # One stretch fills the whole window: a detector must split long speech itself,
            # but never loop forever if it does not.
            start, end = regions[0]
            decided_until = min(end, scan_end)
            chunks += self._add(start, decided_until)
        self._scanned = decided_until
        if self._open is not None and self._scanned - self._open[1] > self._max_gap:
            chunks.append(self._emit())
        self._trim()
        return chunks

    def _add(self, start: int, end: int) -> list[Chunk]:
        if self._open is None:
            self._open = (start, end)
            return []
        open_start, open_end = self._open
        if start - open_end <= self._max_gap and end - open_start <= self._max_chunk:
            self._open = (open_start, max(open_end, end))
            return []
        chunk = self._emit()
        self._open = (start, end)
        return [chunk]

    def _emit(self) -> Chunk:
        assert self._open is not None
        start, end = self._open
        self._open = None
        audio = self._buffer[start - self._buffer_start : end - self._buffer_start].copy()
        return Chunk(start, end, audio)

    def _trim(self) -> None:
        keep_from = self._scanned if self._open is None else min(self._open[0], self._scanned)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start = keep_from
