"""Who spoke: voice embeddings of a recording's speech as it passes, speaker turns at the end.

The stage sits between VAD and recognition and hands every chunk on unchanged. On its own thread
it cuts the chunk's stretches of speech into windows of about a second (``algos.diarize``) and
embeds each (``backends.speakers``: about 10 ms a window here), so a recording is read once.
Clustering needs every window, so the speakers are known when the recording is done:
:meth:`SpeakerStage.turns`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.algos.diarize import Span, Turn, diarize, turns, windows
from pipeline.backends.speakers import SpeakerEncoder
from pipeline.events import SAMPLE_RATE, SpeechSegment, Transcript

#: Windows shorter than this say little about the voice and are left out, in seconds.
MIN_WINDOW_S = 0.3
#: Silence between two windows of one speaker that still leaves them one turn, in seconds.
TURN_GAP_S = 1.0


class SpeakerStage:
    """SpeechSegment -> the same SpeechSegment, its speech's voice embeddings kept."""

    name = "speakers"

    def __init__(self, speakers: int | None = None, encoder: SpeakerEncoder | None = None) -> None:
        self._speakers = speakers
        self._encoder = encoder or SpeakerEncoder()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speakers")
        self._windows: list[Span] = []
        self._embeddings: list[np.ndarray] = []
        self.compute_seconds = 0.0

    def stats(self) -> dict[str, float | int | None]:
        return {"compute_s": round(self.compute_seconds, 3), "windows": len(self._windows)}

    def _embed(self, segment: SpeechSegment) -> None:
        started = time.perf_counter()
        stretches = segment.speech or ((segment.start, segment.end),)
        spans = [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in stretches]
        for start, end in windows(spans):
            if end - start < MIN_WINDOW_S:
                continue
            first = round(start * SAMPLE_RATE) - segment.start
            last = round(end * SAMPLE_RATE) - segment.start
            audio = segment.audio[max(0, first) : last]
            if not np.any(audio):
                continue  # digital silence has no voice
            self._windows.append((start, end))
            self._embeddings.append(self._encoder.embed(audio))
        self.compute_seconds += time.perf_counter() - started

    async def run(self, inputs: AsyncIterator[SpeechSegment]) -> AsyncGenerator[SpeechSegment, None]:
        loop = asyncio.get_running_loop()
        try:
            async for segment in inputs:
                await loop.run_in_executor(self._executor, self._embed, segment)
                yield segment
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def turns(self) -> tuple[list[Turn], dict[str, float]]:
        """The speakers' turns over everything embedded so far, in time order, and the seconds
        of speech each was heard for (in order of first appearance)."""
        if not self._windows:
            return [], {}
        labels = diarize(self._windows, np.stack(self._embeddings), self._speakers)
        talk: dict[str, float] = {}
        for (start, end), label in sorted(zip(self._windows, labels, strict=True)):
            talk[label] = round(talk.get(label, 0.0) + end - start, 3)
        return turns(self._windows, labels, max_gap_s=TURN_GAP_S), talk


def speaker_of(segment: Transcript, spoken: list[Turn]) -> str | None:
    """The speaker of the turn a segment overlaps most (by its words' times, else its span)."""
    spans = [(w.start, w.end) for w in segment.words] or [(segment.start, segment.end)]
    overlap: dict[str, float] = {}
    for turn in spoken:
        for start, end in spans:
            shared = min(end, turn.end) - max(start, turn.start)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if not overlap:  # between turns: the nearest one
        middle = (segment.start + segment.end) / 2
        nearest = min(spoken, key=lambda t: max(t.start - middle, middle - t.end), default=None)
        return nearest.speaker if nearest else None
    return max(overlap, key=overlap.__getitem__)
