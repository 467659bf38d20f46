"""Recordings decoded chunk by chunk with Whisper: the batch path of ``livesub transcribe``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from pipeline.backends.whisper import PROMPT_CHARS, Decoded, WhisperDecoder
from pipeline.config import AsrConfig
from pipeline.events import SpeechSegment, Transcript, Word

log = logging.getLogger(__name__)


class RecordingAsrStage:
    """SpeechSegment -> Transcript: each chunk of a recording decoded whole; every result final.

    With ``language = "auto"`` the language is detected on the first chunk and kept for the rest
    of the recording. ``on_progress`` hears the stream position (seconds) decoded so far.
    """

    name = "asr"
    publishes = True

    def __init__(
        self, decoder: WhisperDecoder, config: AsrConfig, on_progress: Callable[[float], None] | None = None
    ) -> None:
        self._decoder = decoder
        self._config = config
        self._on_progress = on_progress
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self.language: str | None = None if config.language == "auto" else config.language
        self.language_probability: float | None = None
        self.compute_seconds = 0.0
        self._segment_id = 0

    def stats(self) -> dict[str, float | int | None]:
        return {"compute_s": round(self.compute_seconds, 3)}

    def _decode(self, segment: SpeechSegment, prompt: str) -> tuple[list[Decoded], str, float]:
        started = time.perf_counter()
        result = self._decoder.decode(
            segment.audio,
            language=self.language,
            task=self._config.task,
            beam_size=self._config.beam_size,
            prompt=prompt,
        )
        self.compute_seconds += time.perf_counter() - started
        return result

    async def run(self, inputs: AsyncIterator[SpeechSegment]) -> AsyncGenerator[Transcript, None]:
        loop = asyncio.get_running_loop()
        prompt = ""
        try:
            async for segment in inputs:
                decoded, language, probability = await loop.run_in_executor(
                    self._executor, self._decode, segment, prompt
                )
                if self.language is None:
                    self.language, self.language_probability = language, probability
                    log.info("detected language %s (p=%.2f)", language, probability)
                offset = segment.start_s
                texts = []
                for d in decoded:
                    if not d.text:
                        continue
                    words = tuple(
                        Word(w.text, round(w.start + offset, 3), round(w.end + offset, 3), w.probability)
                        for w in d.words
                    )
                    yield Transcript(
                        utterance=self._segment_id,
                        committed=d.text,
                        tentative="",
                        start=round(d.start + offset, 3),
                        end=round(min(d.end + offset, segment.end_s), 3),
                        language=self.language,
                        final=True,
                        words=words,
                    )
                    self._segment_id += 1
                    texts.append(d.text)
                if self._config.condition_on_previous_text:
                    prompt = (prompt + " " + " ".join(texts)).strip()[-PROMPT_CHARS:]
                if self._on_progress:
                    self._on_progress(segment.end_s)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
