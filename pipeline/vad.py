"""Voice activity detection stages.

Recordings use Silero VAD v6, the ONNX model shipped inside faster-whisper (no torch). Silero
normalises internally and finds speech near -65 dBFS as readily as at -20 dBFS, while steady noise
(dishes, an exercise bike) yields nothing: measured on ../shared/audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from pipeline.algos.speech_chunks import Chunk, SpeechChunker
from pipeline.config import AsrConfig, VadConfig
from pipeline.events import SAMPLE_RATE, AudioChunk, Samples, SpeechSegment

log = logging.getLogger(__name__)


class SileroDetector:
    """Speech stretches in mono 16 kHz audio, from faster-whisper's bundled Silero model."""

    def __init__(self, config: VadConfig) -> None:
        from faster_whisper.vad import VadOptions

        self._options = VadOptions(
            threshold=config.threshold,
            min_silence_duration_ms=config.min_silence_ms,
            speech_pad_ms=config.speech_pad_ms,
            max_speech_duration_s=config.max_utterance_s,
        )

    def __call__(self, audio: Samples) -> list[tuple[int, int]]:
        from faster_whisper.vad import get_speech_timestamps

        if len(audio) < 512:  # shorter than one Silero window
            return []
        return [(int(t["start"]), int(t["end"])) for t in get_speech_timestamps(audio, self._options)]


class RecordingSpeechStage:
    """AudioChunk -> SpeechSegment: whole chunks of speech from a recording, ready for Whisper.

    Each segment is final (a recording needs no partial utterances) and spans at most
    ``asr.max_chunk_s``. Detection runs on its own thread so reading continues meanwhile.
    """

    name = "vad"

    def __init__(self, vad: VadConfig, asr: AsrConfig, window_s: float = 60.0) -> None:
        self._chunker = SpeechChunker(
            SileroDetector(vad),
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
