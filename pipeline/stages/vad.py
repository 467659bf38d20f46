"""Voice activity detection stages.

Live audio: WebRTC VAD decides each 10-30 ms frame on a level-normalised copy of the audio, a
hysteresis gate turns the decisions into utterances, and Silero VAD v6 (the ONNX model shipped
inside faster-whisper, no torch) confirms each utterance before it reaches ASR and hears where
its speech ends. The decisions are ``algos.live_segmenter``'s; the stage runs them on a thread.

Recordings use Silero directly. Silero finds whole sentences near -65 dBFS as readily as at
-20 dBFS, while steady noise (dishes, an exercise bike) yields nothing: measured on
../shared/audio. (Two short words between pauses at -57 dBFS it did not hear: live, it hears the
audio raised, see ``algos.live_segmenter.raised``.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from pipeline.algos.live_segmenter import FrameDetector, LiveSegmenter, SpanDetector
from pipeline.algos.speech_chunks import Chunk, SpeechChunker
from pipeline.backends.silero import SileroDetector
from pipeline.config import AsrConfig, VadConfig
from pipeline.events import SAMPLE_RATE, AudioChunk, Samples, SpeechSegment
from pipeline.runner import Clock


class RecordingSpeechStage:
    """AudioChunk -> SpeechSegment: whole chunks of speech from a recording, ready for Whisper.

    Each segment is final (a recording needs no partial utterances), spans at most
    ``asr.max_chunk_s`` and states its stretches of speech (Silero again, on the chunk, without
    padding) so recognition can check that it heard them all. Detection runs on its own thread so
    reading continues meanwhile.
    """

    name = "vad"

    def __init__(self, vad: VadConfig, asr: AsrConfig, window_s: float = 60.0) -> None:
        self._chunker = SpeechChunker(
            SileroDetector(
                vad, asr.max_chunk_s, vad.recording_min_silence_ms, vad.recording_speech_pad_ms, rescan=True
            ),
            window=int(window_s * SAMPLE_RATE),
            margin=int(5 * SAMPLE_RATE),
            max_chunk=int(asr.max_chunk_s * SAMPLE_RATE),
            # In a conversation of several languages every stretch is decoded alone, in its own.
            max_gap=-1 if asr.languages else int(asr.max_gap_s * SAMPLE_RATE),
        )
        self._stretches = SileroDetector(
            vad, asr.max_chunk_s, vad.recording_min_silence_ms, speech_pad_ms=0, rescan=True
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self._utterance = 0

    def _push(self, audio: Samples) -> list[SpeechSegment]:
        return self._segments(self._chunker.push(audio))

    def _finish(self) -> list[SpeechSegment]:
        return self._segments(self._chunker.finish())

    def _segments(self, chunks: list[Chunk]) -> list[SpeechSegment]:
        segments = []
        for chunk in chunks:
            speech = tuple((chunk.start + s, chunk.start + e) for s, e in self._stretches(chunk.audio))
            segments.append(SpeechSegment(self._utterance, chunk.start, chunk.end, chunk.audio, speech=speech))
            self._utterance += 1
        return segments

    async def run(self, inputs: AsyncIterator[AudioChunk]) -> AsyncGenerator[SpeechSegment, None]:
        loop = asyncio.get_running_loop()
        try:
            async for audio in inputs:
                for segment in await loop.run_in_executor(self._executor, self._push, audio.mono()):
                    yield segment
            for segment in await loop.run_in_executor(self._executor, self._finish):
                yield segment
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)


class LiveVadStage:
    """AudioChunk -> SpeechSegment: utterances as they are spoken, in pieces.

    The decisions are :class:`~pipeline.algos.live_segmenter.LiveSegmenter`'s (see there for
    the pieces it sends); this stage runs it, Silero included, on its own thread through the
    session clock, so the event loop keeps taking audio and a replay stays deterministic.
    ``is_speech`` and ``speech_spans`` replace WebRTC VAD and Silero (tests pass fakes); by
    default the real ones are built, Silero only when ``config.confirm``.

    Where the front-end gives own-voice evidence (``AudioChunk.own_voice``) and ``own_voice_db``
    is set, every piece says who spoke: "wearer" when the mouth beam's power over the look beam's,
    over the utterance's latest ``LABEL_WINDOW_S`` (from where VAD first heard voice at most),
    reaches ``own_voice_db``, else "partner". Where the label changes inside an utterance (the
    wearer answers without a pause VAD hears, or a side talker began it), ``speaker_since`` says
    where the new voice began: the point that best parts the blocks whose own evidence says the
    earlier speaker from those that say the new one, so recognition can split the utterance there.
    """

    #: Seconds of an utterance's latest audio its label is decided on: long enough for a few
    #: words, short enough that the next speaker's sentence, where VAD heard no pause before it,
    #: is labelled on its own once recognition splits it off.
    LABEL_WINDOW_S = 1.5

    name = "vad"

    def __init__(
        self,
        config: VadConfig,
        clock: Clock | None = None,
        *,
        is_speech: FrameDetector | None = None,
        speech_spans: SpanDetector | None = None,
        own_voice_db: float | None = None,
    ) -> None:
        self._own_voice_db = own_voice_db
        self._pre_roll = config.pre_roll_ms * SAMPLE_RATE // 1000
        self._evidence: deque[tuple[int, int, float, float]] = deque()  # (start, end, mouth, look)
        self._starts: dict[int, int] = {}  # utterance -> stream position of its first piece
        self._turns: dict[int, tuple[str, int]] = {}  # utterance -> its latest label and where it began
        if is_speech is None:
            import webrtcvad

            is_speech = functools.partial(webrtcvad.Vad(config.aggressiveness).is_speech, sample_rate=SAMPLE_RATE)
        if speech_spans is None and config.confirm:
            speech_spans = SileroDetector(config, max_speech_s=30.0, min_silence_ms=100, speech_pad_ms=0)
        self._segmenter = LiveSegmenter(config, is_speech, speech_spans)
        self._clock = clock or Clock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self.compute_seconds = 0.0  # segmenting, Silero included, as the event loop waited for it

    @property
    def rejected(self) -> int:
        """Utterances Silero did not confirm."""
        return self._segmenter.rejected

    def stats(self) -> dict[str, float | int | None]:
        return {"compute_s": round(self.compute_seconds, 3), "rejected": self.rejected}

    def _label(self, piece: SpeechSegment) -> SpeechSegment:
        """The piece, saying who spoke where the front-end's evidence tells, and since when."""
        if self._own_voice_db is None or not self._evidence:
            return piece
        start = self._starts.setdefault(piece.utterance, piece.start)
        earlier = self._turns.get(piece.utterance)
        if piece.final:
            del self._starts[piece.utterance]
            self._turns.pop(piece.utterance, None)
        # From where VAD heard voice (after the pre-roll, which may hold the last speaker's tail).
        voiced = min(start + self._pre_roll, piece.end - 1)
        begin = max(voiced, piece.end - int(self.LABEL_WINDOW_S * SAMPLE_RATE))
        mouth = look = 0.0
        for a, b, m, lk in self._evidence:
            if b > begin and a < piece.end:
                mouth, look = mouth + m, look + lk
        while self._evidence and self._evidence[0][1] < piece.end - 60 * SAMPLE_RATE:
            self._evidence.popleft()  # utterances last 25 s at most
        if look <= 0.0 or mouth <= 0.0:  # nothing tells: as before
            if earlier is None:
                return piece
            return dataclasses.replace(piece, speaker=earlier[0], speaker_since=earlier[1])
        label = "wearer" if 10.0 * math.log10(mouth / look) >= self._own_voice_db else "partner"
        if earlier is None:
            since = start
        elif earlier[0] == label:
            since = earlier[1]
        else:  # the voice changed: where, between the earlier turn's start and now
            since = self._turn(max(voiced, earlier[1]), piece.end, label)
        if not piece.final:
            self._turns[piece.utterance] = (label, since)
        return dataclasses.replace(piece, speaker=label, speaker_since=since)

    def _turn(self, begin: int, end: int, label: str) -> int:
        """Where ``label``'s voice began between stream positions ``begin`` and ``end``: each block
        with evidence votes by its own ratio, and the turn goes where the most votes for the earlier
        speaker lie before it and for ``label`` after it (``begin`` when none do)."""
        assert self._own_voice_db is not None
        sign = 1 if label == "wearer" else -1
        best, score, turn = 0, 0, begin
        for a, b, m, lk in self._evidence:
            if a < begin or b > end or m <= 0.0 or lk <= 0.0:
                continue
            # A vote for the earlier speaker before the turn counts for it; one for label against.
            score -= sign if 10.0 * math.log10(m / lk) >= self._own_voice_db else -sign
            if score > best:
                best, turn = score, b
        return turn

    async def run(self, inputs: AsyncIterator[AudioChunk]) -> AsyncGenerator[SpeechSegment, None]:
        try:
            async for chunk in inputs:
                if chunk.own_voice is not None:
                    self._evidence.append((chunk.start, chunk.start + chunk.frames, *chunk.own_voice))
                started = time.perf_counter()
                segments = await self._clock.compute(self._executor, self._segmenter.push, chunk.mono())
                self.compute_seconds += time.perf_counter() - started
                for segment in segments:
                    yield self._label(segment)
            started = time.perf_counter()
            segments = await self._clock.compute(self._executor, self._segmenter.flush)
            self.compute_seconds += time.perf_counter() - started
            for segment in segments:
                yield self._label(segment)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
