"""The recording chunker, with a scripted detector standing in for Silero."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.algos.speech_chunks import Chunk, SpeechChunker
from pipeline.events import Samples

RATE = 100  # a small "sample rate" keeps the arrays tiny; only positions matter here


def _speech_detector(truth: list[tuple[int, int]], offsets: list[int]) -> object:
    """Finds the true speech stretches inside whatever window it is given, clipped to it.

    The window's stream position is recovered from the sample values (each sample holds its own
    stream index), so the fake behaves like a real detector that only sees audio.
    """

    def detect(window: Samples) -> list[tuple[int, int]]:
        if len(window) == 0:
            return []
        first = int(window[0])
        offsets.append(first)
        last = first + len(window)
        return [(max(s, first) - first, min(e, last) - first) for s, e in truth if s < last and e > first]

    return detect


def _run(truth: list[tuple[int, int]], total: int, pieces: list[int], **kw: int) -> list[Chunk]:
    chunker = SpeechChunker(_speech_detector(truth, []), **kw)  # type: ignore[arg-type]
    audio = np.arange(total, dtype=np.float32)
    chunks: list[Chunk] = []
    position = 0
    for size in pieces:
        chunks += chunker.push(audio[position : position + size])
        position += size
    chunks += chunker.push(audio[position:])
    chunks += chunker.finish()
    return chunks


def test_speech_across_a_window_boundary_is_not_cut() -> None:
    truth = [(50 * RATE, 70 * RATE)]  # 20 s of speech across the first 60 s window's end
    chunks = _run(
        truth, 100 * RATE, [RATE] * 100, window=60 * RATE, margin=5 * RATE, max_chunk=28 * RATE, max_gap=2 * RATE
    )
    assert [(c.start, c.end) for c in chunks] == truth


def test_close_stretches_merge_and_far_ones_do_not() -> None:
    truth = [(1 * RATE, 5 * RATE), (6 * RATE, 9 * RATE), (20 * RATE, 25 * RATE)]
    chunks = _run(truth, 40 * RATE, [], window=60 * RATE, margin=5 * RATE, max_chunk=28 * RATE, max_gap=2 * RATE)
    assert [(c.start, c.end) for c in chunks] == [(1 * RATE, 9 * RATE), (20 * RATE, 25 * RATE)]
    assert np.array_equal(chunks[0].audio, np.arange(1 * RATE, 9 * RATE, dtype=np.float32))


def test_silence_gives_no_chunks() -> None:
    assert (
        _run([], 300 * RATE, [7 * RATE] * 40, window=60 * RATE, margin=5 * RATE, max_chunk=28 * RATE, max_gap=2 * RATE)
        == []
    )


@st.composite
def _scenarios(draw: st.DrawFn) -> tuple[list[tuple[int, int]], int, list[int]]:
    stretches = []
    t = draw(st.integers(0, 500))
    for _ in range(draw(st.integers(0, 12))):
        length = draw(st.integers(10, 2000))  # up to 20 s: a detector splits longer speech
        stretches.append((t, t + length))
        t += length + draw(st.integers(1, 1500))
    total = t + draw(st.integers(0, 500))
    pieces = draw(st.lists(st.integers(1, 3000), max_size=30))
    return stretches, total, pieces


@settings(max_examples=200, deadline=None)
@given(_scenarios())
def test_chunks_cover_all_speech_in_order_within_limits(scenario: tuple[list[tuple[int, int]], int, list[int]]) -> None:
    truth, total, pieces = scenario
    max_chunk, max_gap = 28 * RATE, 2 * RATE
    chunks = _run(truth, total, pieces, window=60 * RATE, margin=5 * RATE, max_chunk=max_chunk, max_gap=max_gap)
    # In order, never overlapping, each holding exactly its own audio.
    assert all(a.end <= b.start for a, b in pairwise(chunks))
    for chunk in chunks:
        assert np.array_equal(chunk.audio, np.arange(chunk.start, chunk.end, dtype=np.float32))
        assert chunk.end - chunk.start <= max_chunk
    # Every sample of speech is in some chunk, and chunks start and end on speech.
    covered = np.zeros(total, dtype=bool)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = True
    speech = np.zeros(total, dtype=bool)
    for s, e in truth:
        speech[s:e] = True
    assert not (speech & ~covered).any()
    for chunk in chunks:
        assert speech[chunk.start] and speech[chunk.end - 1]
