"""Recordings decoded chunk by chunk with Whisper: the batch path of ``livesub transcribe``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from pipeline.algos.open_utterance import join_words
from pipeline.algos.speech_cover import on_speech, repeats, too_fast, uncovered
from pipeline.algos.vocab import prompt as prompt_terms
from pipeline.backends.whisper import PROMPT_CHARS, ChunkDecoder, Decoded, audible
from pipeline.config import AsrConfig
from pipeline.events import SAMPLE_RATE, Samples, SpeechSegment, Transcript, Word

log = logging.getLogger(__name__)

#: Audio kept either side of a stretch of speech decoded again on its own, in seconds.
REDECODE_PAD_S = 1.0


class RecordingAsrStage:
    """SpeechSegment -> Transcript: each chunk of a recording decoded whole; every result final.

    With ``language = "auto"`` the language is detected on the first chunk and kept for the rest
    of the recording; with ``asr.languages`` (a conversation in several) each chunk's is detected
    among them. ``on_progress`` hears the stream position (seconds) decoded so far.

    Each chunk's segments are checked against the stretches of speech VAD found in it
    (``algos.speech_cover``): speech Whisper skipped (a stretch, or a long gap inside one) is
    decoded again alone, with a second of audio either side but only the words over it kept,
    without the text before it (and without the vocabulary, when with it nothing was heard)
    (``recovered``; ``unrecognised`` when that hears nothing either), a segment over no speech
    is dropped (``dropped``), as is one whose words take less time than anyone says them in, and so
    is one that only repeats the segment before it (``repeated``).
    """

    name = "asr"
    publishes = True

    def __init__(
        self, decoder: ChunkDecoder, config: AsrConfig, on_progress: Callable[[float], None] | None = None
    ) -> None:
        self._decoder = decoder
        self._config = config
        self._on_progress = on_progress
        self._glossary = prompt_terms(config.terms, translated=config.task == "translate")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self.language: str | None = None if config.language == "auto" else config.language
        self.language_probability: float | None = None
        self._chunk_language = self.language or ""  # the language of the chunk being decoded
        self.heard: dict[str, int] = {}  # with asr.languages: chunks heard in each language
        self.compute_seconds = 0.0
        self._segment_id = 0
        self.recovered = 0  # stretches of speech Whisper skipped in a chunk, then heard alone
        self.dropped = 0  # segments decoded where VAD found no speech, or said too fast to be heard
        self.repeated = 0  # segments that only repeated the one before (Whisper looping)
        self.unrecognised: list[tuple[float, float]] = []  # speech heard neither way, in stream seconds

    def stats(self) -> dict[str, float | int | None]:
        return {
            "compute_s": round(self.compute_seconds, 3),
            "recovered": self.recovered,
            "dropped": self.dropped,
            "repeated": self.repeated,
            "unrecognised": len(self.unrecognised),
        }

    def _decode(self, audio: Samples, prompt: str, glossary: bool = True) -> tuple[list[Decoded], str, float]:
        started = time.perf_counter()
        result = self._decoder.decode(
            audible(audio),
            language=self.language,
            task=self._config.task,
            beam_size=self._config.beam_size,
            prompt=((self._glossary if glossary else "") + " " + prompt).strip(),
            languages=self._config.languages,
        )
        self.compute_seconds += time.perf_counter() - started
        return result

    def _transcripts(self, decoded: list[Decoded], start_s: float, end_s: float) -> list[Transcript]:
        """Whisper's segments of audio that starts at ``start_s`` on the stream, in stream times."""
        found = []
        language = self.language or self._chunk_language
        for d in decoded:
            if not d.text:
                continue
            words = tuple(
                Word(w.text, round(w.start + start_s, 3), round(w.end + start_s, 3), w.probability) for w in d.words
            )
            first, last = round(d.start + start_s, 3), round(min(d.end + start_s, end_s), 3)
            words = words or (Word(d.text, first, last),)
            found.append(Transcript(-1, d.text, "", first, last, language, final=True, words=words))
        return found

    async def _checked(self, segment: SpeechSegment, prompt: str) -> list[Transcript]:
        """The chunk decoded, then checked against its stretches of speech: a segment over none of
        them is dropped, and a stretch no word covers is decoded again on its own."""
        loop = asyncio.get_running_loop()
        decoded, language, probability = await loop.run_in_executor(self._executor, self._decode, segment.audio, prompt)
        self._chunk_language = language
        if self.language is None and not self._config.languages:
            self.language, self.language_probability = language, probability
            log.info("detected language %s (p=%.2f)", language, probability)
        elif self.language is None:
            self.heard[language] = self.heard.get(language, 0) + 1
        found = self._transcripts(decoded, segment.start_s, segment.end_s)
        if not segment.speech:
            return found
        speech = [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in segment.speech]
        kept = [t for t in found if on_speech(t.words, speech) and not too_fast(t.words)]
        self.dropped += len(found) - len(kept)
        for start, end in uncovered(speech, [w for t in kept for w in t.words]):
            first = max(segment.start, round((start - REDECODE_PAD_S) * SAMPLE_RATE))
            last = min(segment.end, round((end + REDECODE_PAD_S) * SAMPLE_RATE))
            audio = segment.audio[first - segment.start : last - segment.start]
            words: list[Word] = []
            # The vocabulary's terms can make Whisper stop early too: heard nothing, try without.
            for glossary in (True, False) if self._glossary else (False,):
                again, _, _ = await loop.run_in_executor(self._executor, self._decode, audio, "", glossary)
                # Only the words heard over the gap: the audio around it was heard already.
                words = [
                    w
                    for t in self._transcripts(again, first / SAMPLE_RATE, last / SAMPLE_RATE)
                    for w in t.words
                    if on_speech([w], [(start, end)])
                ]
                if words:
                    break
            if words:
                self.recovered += 1
                text = join_words(words, self._chunk_language)
                kept.append(
                    Transcript(-1, text, "", words[0].start, words[-1].end, self._chunk_language, True, tuple(words))
                )
            else:
                self.unrecognised.append((round(start, 3), round(end, 3)))
        return sorted(kept, key=lambda t: t.start)

    async def run(self, inputs: AsyncIterator[SpeechSegment]) -> AsyncGenerator[Transcript, None]:
        prompt = previous = ""
        try:
            async for segment in inputs:
                texts = []
                for transcript in await self._checked(segment, prompt):
                    if repeats(previous, transcript.committed):
                        self.repeated += 1
                        continue
                    previous = transcript.committed
                    yield replace(transcript, utterance=self._segment_id)
                    self._segment_id += 1
                    texts.append(transcript.committed)
                if self._config.condition_on_previous_text:
                    prompt = (prompt + " " + " ".join(texts)).strip()[-PROMPT_CHARS:]
                if self._on_progress:
                    self._on_progress(segment.end_s)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
