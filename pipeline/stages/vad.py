"""Voice activity detection stages.

Live audio: WebRTC VAD decides each 10-30 ms frame on a level-normalised copy of the audio, a
hysteresis gate (``algos.vad_gate``) turns the decisions into utterances, and Silero VAD v6 (the
ONNX model shipped inside faster-whisper, no torch) confirms each utterance before it reaches
ASR, so steady noise that fools WebRTC VAD never costs a decode. Silero also ends a confirmed
utterance where it hears the speech end, which WebRTC VAD can miss by seconds (clicks and
non-stationary noise are voice to it).

Recordings use Silero directly. Silero finds speech near -65 dBFS as readily as at -20 dBFS, while
steady noise (dishes, an exercise bike) yields nothing: measured on ../shared/audio.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipeline.algos.speech_chunks import Chunk, SpeechChunker
from pipeline.algos.vad_gate import LevelNormaliser, SpeechGate
from pipeline.backends.silero import SileroDetector
from pipeline.config import AsrConfig, VadConfig
from pipeline.events import SAMPLE_RATE, AudioChunk, Samples, SpeechSegment

log = logging.getLogger(__name__)


class RecordingSpeechStage:
    """AudioChunk -> SpeechSegment: whole chunks of speech from a recording, ready for Whisper.

    Each segment is final (a recording needs no partial utterances) and spans at most
    ``asr.max_chunk_s``. Detection runs on its own thread so reading continues meanwhile.
    """

    name = "vad"

    def __init__(self, vad: VadConfig, asr: AsrConfig, window_s: float = 60.0) -> None:
        self._chunker = SpeechChunker(
            SileroDetector(vad, asr.max_chunk_s, vad.recording_min_silence_ms, vad.recording_speech_pad_ms),
            window=int(window_s * SAMPLE_RATE),
            margin=int(5 * SAMPLE_RATE),
            max_chunk=int(asr.max_chunk_s * SAMPLE_RATE),
            max_gap=int(asr.max_gap_s * SAMPLE_RATE),
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self._utterance = 0

    def _segments(self, chunks: list[Chunk]) -> list[SpeechSegment]:
        segments = []
        for chunk in chunks:
            segments.append(SpeechSegment(self._utterance, chunk.start, chunk.end, chunk.audio, final=True))
            self._utterance += 1
        return segments

    async def run(self, inputs: AsyncIterator[AudioChunk]) -> AsyncGenerator[SpeechSegment, None]:
        loop = asyncio.get_running_loop()
        try:
            async for audio in inputs:
                chunks = await loop.run_in_executor(self._executor, self._chunker.push, audio.mono())
                for segment in self._segments(chunks):
                    yield segment
            for segment in self._segments(await loop.run_in_executor(self._executor, self._chunker.finish)):
                yield segment
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)


#: Frames quieter than this (dBFS) are never speech, whatever the gain: digital silence. Speech
#: at -60 dBFS has soft frames below -80 dBFS; with -80 here a sentence came apart in the middle
#: (German FLEURS at -60 dBFS: four utterances for one, each decoded without the others).
SILENCE_FLOOR_DBFS = -95.0
#: Audio a pending utterance needs before Silero is asked to confirm it, and how often it is asked again.
CONFIRM_AFTER_S = 0.45
CONFIRM_EVERY_S = 0.3
#: Audio of a confirmed utterance Silero looks at, as often, for where its speech ended, in seconds.
TAIL_S = 3.0


class LiveVadStage:
    """AudioChunk -> SpeechSegment: utterances as they are spoken, in pieces.

    Each piece carries new audio of the open utterance; the last piece has ``final=True`` and
    ``end`` at the end of speech (audio sent after that point, during the closing silence, is
    not part of the utterance). Utterance ids count confirmed utterances from 0. ``rejected``
    counts the utterances Silero did not confirm.
    """

    name = "vad"

    def __init__(self, config: VadConfig) -> None:
        import webrtcvad

        self._config = config
        self._frame = SAMPLE_RATE * config.frame_ms // 1000
        self._webrtc = webrtcvad.Vad(config.aggressiveness)
        self._gate = SpeechGate(
            frame_ms=config.frame_ms,
            start_voiced_ms=config.start_voiced_ms,
            end_silence_ms=config.end_silence_ms,
            pre_roll_ms=config.pre_roll_ms,
            post_roll_ms=config.post_roll_ms,
            max_utterance_ms=int(config.max_utterance_s * 1000),
        )
        self._level = LevelNormaliser(frame_ms=config.frame_ms)
        self._silero = (
            SileroDetector(config, max_speech_s=30.0, min_silence_ms=100, speech_pad_ms=0) if config.confirm else None
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="silero")
        self._floor = 10 ** (SILENCE_FLOOR_DBFS / 20)
        # Audio from _history_start on; kept back to the open utterance's start (or the pre-roll).
        self._history = np.zeros(0, dtype=np.float32)
        self._history_start = 0
        self._pending = np.zeros(0, dtype=np.float32)  # less than one frame, not yet decided
        self._utterance = 0
        self._start: int | None = None  # open utterance's first sample
        self._sent = 0  # next sample of the open utterance to send
        self._confirmed = False
        self._next_check = 0
        self._next_tail = 0
        self.rejected = 0
        self.frames = 0
        self.compute_seconds = 0.0  # on the event loop, Silero included

    def _frame_decisions(self, audio: Samples) -> list[tuple[bool, float]]:
        decisions = []
        for i in range(0, len(audio) - self._frame + 1, self._frame):
            frame = audio[i : i + self._frame]
            rms = float(np.sqrt(np.mean(frame * frame)))
            gain = self._level.gain(rms)
            pcm = np.clip(frame * (gain * 32767.0), -32768, 32767).astype(np.int16).tobytes()
            voiced = rms > self._floor and self._webrtc.is_speech(pcm, SAMPLE_RATE)
            decisions.append((voiced, rms))
        return decisions

    def _slice(self, start: int, end: int) -> Samples:
        return self._history[start - self._history_start : end - self._history_start].copy()

    async def _silero_speech(self, start: int, end: int) -> list[tuple[int, int]]:
        """Silero's speech spans in the audio from stream sample ``start`` to ``end``, as offsets
        from ``start``; on its own thread, so the event loop keeps taking audio."""
        assert self._silero is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._silero, self._slice(start, end))

    async def _confirm(self, now: int) -> bool:
        if self._silero is None:
            return True
        assert self._start is not None
        return bool(await self._silero_speech(self._start, now))

    async def _advance(self, now: int) -> list[SpeechSegment]:
        """Sends the open utterance's new audio, once confirmed."""
        if self._start is None:
            return []
        if not self._confirmed:
            if now - self._start < CONFIRM_AFTER_S * SAMPLE_RATE or now < self._next_check:
                return []
            self._confirmed = await self._confirm(now)
            self._next_check = now + int(CONFIRM_EVERY_S * SAMPLE_RATE)
            if not self._confirmed:
                return []
        if now <= self._sent:
            return []
        voiced_until = self._gate.voiced_until * self._frame
        pauses = tuple((s * self._frame, e * self._frame) for s, e in self._gate.pauses)
        self._gate.pauses.clear()
        piece = SpeechSegment(
            self._utterance, self._sent, now, self._slice(self._sent, now), False, voiced_until, pauses
        )
        self._sent = now
        return [piece]

    async def _tail(self, now: int) -> list[SpeechSegment]:
        """Ends the open utterance where Silero heard its speech end, once that is
        ``end_silence_ms`` ago. WebRTC VAD takes clicks and non-stationary noise for voice: a
        click after the last word held an utterance open 1.5 s longer, noise 2 s; Silero heard
        no speech in either, and its speech ends were within 0.1 s of the references'."""
        if self._silero is None or self._start is None or not self._confirmed or now < self._next_tail:
            return []
        self._next_tail = now + int(CONFIRM_EVERY_S * SAMPLE_RATE)
        begin = max(self._start, now - int(TAIL_S * SAMPLE_RATE))
        spans = await self._silero_speech(begin, now)
        speech_end = begin + spans[-1][1] if spans else begin
        if now - speech_end < self._config.end_silence_ms * SAMPLE_RATE // 1000:
            return []
        end = min(now, speech_end + self._config.post_roll_ms * SAMPLE_RATE // 1000)
        self._gate.end_at(-(-end // self._frame))
        return await self._close(end)  # the audio up to now has been sent: _process advanced first

    async def _close(self, end: int) -> list[SpeechSegment]:
        assert self._start is not None
        if not self._confirmed and end - self._start >= 0.25 * SAMPLE_RATE:
            self._confirmed = await self._confirm(end)
        pieces = []
        if self._confirmed:
            begin = min(self._sent, end)
            pieces.append(SpeechSegment(self._utterance, begin, end, self._slice(begin, end), True, end))
            self._utterance += 1
        else:
            self.rejected += 1
            span = f"{self._start / SAMPLE_RATE:.2f}-{end / SAMPLE_RATE:.2f} s"
            log.info("VAD: %s rejected: Silero heard no speech in it", span)
        self._start = None
        self._confirmed = False
        self._gate.pauses.clear()
        return pieces

    async def _process(self, audio: Samples) -> list[SpeechSegment]:
        self._history = np.concatenate([self._history, audio])
        audio = np.concatenate([self._pending, audio])
        first_frame = self.frames
        decisions = self._frame_decisions(audio)
        self._pending = audio[len(decisions) * self._frame :]
        segments: list[SpeechSegment] = []
        for i, (voiced, rms) in enumerate(decisions):
            for boundary in self._gate.push(voiced, rms):
                position = boundary.frame * self._frame
                if boundary.kind == "start":
                    self._start = self._sent = position
                    self._next_check = 0
                else:
                    segments += await self._advance((first_frame + i + 1) * self._frame)
                    segments += await self._close(position)
        self.frames += len(decisions)
        segments += await self._advance(self.frames * self._frame)
        segments += await self._tail(self.frames * self._frame)
        self._trim()
        return segments

    def _trim(self) -> None:
        now = self.frames * self._frame
        keep = now - int((self._config.pre_roll_ms / 1000 + 1.0) * SAMPLE_RATE)
        if self._start is not None:
            keep = min(keep, self._start)
        drop = keep - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start = keep

    async def run(self, inputs: AsyncIterator[AudioChunk]) -> AsyncGenerator[SpeechSegment, None]:
        try:
            async for chunk in inputs:
                started = time.perf_counter()
                segments = await self._process(chunk.mono())
                self.compute_seconds += time.perf_counter() - started
                for segment in segments:
                    yield segment
            for boundary in self._gate.flush():
                last = await self._advance(self.frames * self._frame)
                for segment in last + await self._close(boundary.frame * self._frame):
                    yield segment
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
