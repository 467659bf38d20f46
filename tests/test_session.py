"""Whole live sessions on fakes: the scripted recogniser of the stage tests, scripted voice detectors, an in-memory
source and the replay clock, through the real session graph (VAD, streaming ASR, subtitles,
branches)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import numpy as np

from pipeline.config import Config, load_config
from pipeline.events import SAMPLE_RATE, AudioChunk
from pipeline.outputs.view import event_record
from pipeline.runner import Emission, Policy
from pipeline.session import Detectors, run_live

from .test_streaming import ScriptedDecoder

# Two sentences, then a third after a pause: (word, start s, end s) on the stream clock.
SPEECH = [
    ("The", 1.2, 1.4),
    ("quick", 1.5, 1.8),
    ("brown", 1.9, 2.2),
    ("fox", 2.3, 2.6),
    ("jumps.", 2.7, 3.1),
    ("Over", 3.3, 3.6),
    ("the", 3.7, 3.8),
    ("lazy", 3.9, 4.2),
    ("dog.", 4.3, 4.7),
    ("Then", 7.0, 7.3),
    ("it", 7.4, 7.5),
    ("slept.", 7.6, 8.1),
]
SPOKEN = [(1.1, 4.8), (6.9, 8.2)]  # where a voice is heard
DURATION_S = 10.0


def _voiced(t: np.ndarray) -> np.ndarray:
    voiced: np.ndarray = np.logical_or.reduce([(t >= a) & (t < b) for a, b in SPOKEN])
    return voiced


class ScriptedDetectors:
    """WebRTC VAD's and Silero's stand-ins: a frame is voiced where the script has a voice."""

    def __init__(self, frame_ms: int) -> None:
        self.frame_s = frame_ms / 1000
        self.frames = 0

    def is_speech(self, pcm: bytes) -> bool:
        t = self.frames * self.frame_s  # frames come in order, one call each
        self.frames += 1
        return bool(_voiced(np.array([t + self.frame_s / 2]))[0])

    def speech_spans(self, audio: np.ndarray) -> list[tuple[int, int]]:
        voiced = _voiced(audio.astype(np.float64))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
        return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


class TimedSource:
    """DURATION_S seconds of audio whose every sample is its own stream time, in 100 ms blocks."""

    def __init__(self) -> None:
        self._stopped = False

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        block = SAMPLE_RATE // 10
        for start in range(0, int(DURATION_S * SAMPLE_RATE), block):
            if self._stopped:
                return
            samples = (np.arange(start, start + block) / SAMPLE_RATE).astype(np.float32)
            yield AudioChunk(start, samples.reshape(-1, 1))

    def stop(self) -> None:
        self._stopped = True

    def stats(self) -> dict[str, Any]:
        return {"overflows": 0, "lost": None}


class Collect:
    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.policy: Policy = "all"
        self.delay = delay
        self.records: list[dict[str, Any]] = []
        self.finished_at = 0.0

    def open(self) -> None: ...

    async def write(self, emission: Emission) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        record = event_record(emission)
        del record["emitted"]  # the wall clock: the only field that may differ between runs
        self.records.append(record)
        self.finished_at = time.perf_counter()

    def close(self) -> None: ...


def _config() -> Config:
    streaming = {"first_decode_s": 0.5, "commit_margin_s": 0.3, "agree_gap_s": 0.5, "replay_step_s": 0.5}
    return load_config([], {"asr": {"language": "en"}, "streaming": streaming})


class Gain:
    """A front-end: every block times ``gain`` (a stand-in for a beamformer)."""

    name = "frontend"

    def __init__(self, gain: float) -> None:
        self.gain = np.float32(gain)
        self.blocks = 0

    async def run(self, inputs: AsyncIterator[AudioChunk]) -> AsyncGenerator[AudioChunk, None]:
        async for chunk in inputs:
            self.blocks += 1
            yield AudioChunk(chunk.start, chunk.samples * self.gain)

    def stats(self) -> dict[str, Any]:
        return {"blocks": self.blocks}


def _session(*branches: Collect, frontend: Gain | None = None) -> None:
    """Runs the whole input through the graph, replayed."""
    config = _config()
    detectors = ScriptedDetectors(config.vad.frame_ms)

    async def run() -> None:
        await run_live(
            config,
            ScriptedDecoder(script=SPEECH),  # stream times in the samples: every utterance in one script
            TimedSource(),
            list(branches),
            replay=True,
            detectors=Detectors(detectors.is_speech, detectors.speech_spans),
            frontend=frontend,
        )

    asyncio.run(run())


def test_a_whole_session_on_fakes_gives_every_sentence_once_with_partials_before() -> None:
    sink = Collect("events")
    _session(sink)
    transcripts = [r for r in sink.records if r["type"] == "transcript"]
    finals = [r["committed"] for r in transcripts if r["final"]]
    assert finals == ["The quick brown fox jumps.", "Over the lazy dog.", "Then it slept."]
    assert any(not r["final"] for r in transcripts)  # partials too
    committed: dict[int, str] = {}
    closed: set[int] = set()
    for r in transcripts:  # committed text only grows, and nothing follows an utterance's final
        assert r["utterance"] not in closed
        assert r["committed"].startswith(committed.get(r["utterance"], ""))
        committed[r["utterance"]] = r["committed"]
        if r["final"]:
            closed.add(r["utterance"])
    subtitles = [r for r in sink.records if r["type"] == "subtitle"]
    assert subtitles and all(len(r["lines"]) <= 2 for r in subtitles)
    assert all(r["stream"] <= DURATION_S for r in sink.records)


def test_a_slow_branch_changes_nothing_the_fast_one_receives() -> None:
    alone = Collect("fast")
    _session(alone)
    fast, slow = Collect("fast"), Collect("slow", delay=0.05)
    _session(fast, slow)
    assert fast.records == alone.records  # the same events, with the same stream times
    assert slow.records == fast.records  # the slow one missed nothing
    # ...and it was slower than the whole session's input took the trunk: the fast branch had
    # everything while the slow one was still writing.
    assert slow.finished_at - fast.finished_at > 0.05 * len(slow.records) / 2


def test_replays_are_identical() -> None:
    runs = []
    for _ in range(3):
        sink = Collect("events")
        _session(sink)
        runs.append(sink.records)
    assert runs[0] == runs[1] == runs[2]
    assert {r["type"] for r in runs[0]} == {"transcript", "subtitle"}


def test_the_front_end_slot_sees_every_block_and_hands_its_audio_on() -> None:
    alone, through = Collect("events"), Collect("events")
    _session(alone)
    unity = Gain(1.0)
    _session(through, frontend=unity)
    assert unity.blocks == DURATION_S * 10 and through.records == alone.records
    muted = Collect("events")
    _session(muted, frontend=Gain(0.0))  # digital silence: VAD hears no one
    assert muted.records == []
