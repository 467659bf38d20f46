"""A live session: source -> VAD -> streaming ASR [-> translation] -> subtitles, every emission timed.

Used by ``livesub live`` (terminal view, JSONL events, saved transcript) and ``livesub bench``
(latency and quality). Each emitted event is recorded with two clocks: ``wall``, seconds since
the source started on the event loop's clock (compute counted), and ``stream``, the source's
position in the audio at that moment.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.backends.whisper import WhisperDecoder
from pipeline.config import Config
from pipeline.events import Subtitle, Transcript, Translation
from pipeline.inputs.sources import Source
from pipeline.runner import Stage, run_pipeline
from pipeline.stages.streaming import StreamingAsrStage
from pipeline.stages.subtitles import SubtitleStage
from pipeline.stages.translate import TranslationStage, choose_backend, text_translator
from pipeline.stages.vad import LiveVadStage


@dataclass(frozen=True)
class Emission:
    """One event as it left the pipeline."""

    event: Transcript | Translation | Subtitle
    wall: float
    stream: float


@dataclass
class SessionResult:
    emissions: list[Emission] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # compute seconds per stage
    backlog_max_s: float = 0.0
    overflows: int = 0
    lost: str | None = None
    rejected_utterances: int = 0
    interrupted: bool = False

    @property
    def finals(self) -> list[Transcript]:
        return [e.event for e in self.emissions if isinstance(e.event, Transcript) and e.event.final]

    @property
    def translations(self) -> list[Translation]:
        return [e.event for e in self.emissions if isinstance(e.event, Translation) and e.event.final]


async def run_session(
    config: Config,
    decoder: WhisperDecoder,
    source: Source,
    on_emission: Callable[[Emission], None] | None = None,
    *,
    handle_interrupt: bool = False,
) -> SessionResult:
    """Runs until the source ends (or is stopped); finals for every utterance are emitted first.

    With ``handle_interrupt`` the first Ctrl-C stops the source, so the open utterance is
    finalised and everything is delivered; a second one interrupts at once.
    """
    decoder.check_language(config.asr.language)
    backend = choose_backend(config, multilingual=len(decoder.languages) > 1)
    vad = LiveVadStage(config.vad)
    asr = StreamingAsrStage(decoder, config.asr, config.streaming, translate=backend == "whisper")
    stages: list[Stage[Any, Any]] = [vad, asr]
    translation = None
    if backend in ("apertium", "ctranslate2"):
        translation = TranslationStage(text_translator(config, backend))
        stages.append(translation)
    stages.append(SubtitleStage(config.display, translating=bool(backend)))
    result = SessionResult()
    loop = asyncio.get_running_loop()

    def sink(event: Transcript | Translation | Subtitle) -> None:
        started = source.started if source.started is not None else loop.time()
        emission = Emission(event, round(loop.time() - started, 4), round(source.position, 4))
        result.emissions.append(emission)
        if on_emission is not None:
            on_emission(emission)

    def interrupt() -> None:
        result.interrupted = True
        source.stop()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts at once

    if handle_interrupt:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    started = time.perf_counter()
    try:
        await run_pipeline(source.chunks(), stages, sink)
    finally:
        if handle_interrupt:
            loop.remove_signal_handler(signal.SIGINT)
        result.wall_s = time.perf_counter() - started
        result.audio_s = source.position
        result.stages = {"vad": vad.compute_seconds, "asr": asr.compute_seconds}
        if translation is not None:
            result.stages["translate"] = translation.compute_seconds
            translation.close()
        result.overflows = source.overflows
        result.lost = source.lost
        result.rejected_utterances = vad.rejected
        result.backlog_max_s = asr.backlog_max_s
    return result
