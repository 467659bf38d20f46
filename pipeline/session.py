"""The one place sessions are built: the live graph (``livesub live``, ``livesub bench``) and the
recording trunk (``livesub transcribe``), from the configuration and the backends given to it.

The live graph's trunk is source [-> front-end] -> VAD -> streaming ASR [-> text translation]
(the front-end slot takes AudioChunks and gives AudioChunks: a beamformer, noise suppression);
subtitle layout is a tap on its events; every output (terminal, JSONL, transcript files, speech,
a bench's recorder) is a branch. The translation backend is chosen once per start
(:func:`translation_backend`), before any model loads, and handed in; a text translator may be
injected (tests), else it is loaded here and closed when the session ends.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline import models
from pipeline.algos.live_segmenter import FrameDetector, SpanDetector
from pipeline.backends.translators import TextTranslator
from pipeline.backends.voice import Voice
from pipeline.backends.whisper import Decoder, WhisperDecoder
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.events import AudioChunk, Transcript, Translation
from pipeline.outputs.speech import SpeakerDevice, SpeechBranch, SpeechWav
from pipeline.runner import Clock, Emission, Policy, Sink, Stage, Stats, run_graph
from pipeline.stages.asr import RecordingAsrStage
from pipeline.stages.frontend import FrontendStage, own_voice_db
from pipeline.stages.streaming import StreamingAsrStage
from pipeline.stages.subtitles import SubtitleStage
from pipeline.stages.translate import TranslationStage, choose_backend, text_translator
from pipeline.stages.vad import LiveVadStage, RecordingSpeechStage


class Source(Protocol):
    """Audio blocks, live or from a file; ``stop()`` ends them cleanly (the open utterance is
    finalised); ``stats()`` reports what was lost (overflows, a vanished device)."""

    def chunks(self) -> AsyncIterator[AudioChunk]: ...

    def stop(self) -> None: ...

    def stats(self) -> Stats: ...


def translation_backend(config: Config) -> str:
    """The backend translating this configuration's direction ('' for none), chosen once: from the
    model's registry entry (or its files) before it loads, so an impossible pair fails at once."""
    return choose_backend(config, multilingual=models.whisper_multilingual(config.asr.model))


@dataclass
class SessionResult:
    """What a session produced. ``emissions`` holds every event only when the session recorded them."""

    emissions: list[Emission] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0
    stats: dict[str, Stats] = field(default_factory=dict)
    interrupted: bool = False
    #: The speech branch, when the session spoke (what was heard, and when).
    speech: SpeechBranch | None = None

    @property
    def finals(self) -> list[Transcript]:
        return [e.event for e in self.emissions if isinstance(e.event, Transcript) and e.event.final]

    @property
    def translations(self) -> list[Translation]:
        return [e.event for e in self.emissions if isinstance(e.event, Translation) and e.event.final]

    @property
    def compute(self) -> dict[str, float]:
        """Compute seconds per stage."""
        return {name: float(s["compute_s"] or 0.0) for name, s in self.stats.items() if "compute_s" in s}

    @property
    def overflows(self) -> int:
        return int(self.stats.get("source", {}).get("overflows") or 0)

    @property
    def lost(self) -> str | None:
        lost = self.stats.get("source", {}).get("lost")
        return str(lost) if lost else None


class Recorder:
    """A branch that keeps every emission (a bench measures them afterwards)."""

    name = "recorder"
    policy: Policy = "all"

    def __init__(self) -> None:
        self.emissions: list[Emission] = []

    def open(self) -> None: ...

    def write(self, emission: Emission) -> None:
        self.emissions.append(emission)

    def close(self) -> None: ...


@dataclass(frozen=True)
class Speech:
    """What a session speaks with: a loaded voice, and where the speech goes (a WAV on the
    session's timeline, a speaker device, or both)."""

    voice: Voice
    wav: SpeechWav | None = None
    device: SpeakerDevice | None = None


@dataclass(frozen=True)
class Detectors:
    """Voice detectors for the live VAD, in place of WebRTC VAD and Silero (tests inject fakes)."""

    is_speech: FrameDetector
    speech_spans: SpanDetector | None


def live_graph(
    config: Config,
    decoder: Decoder,
    backend: str,
    clock: Clock,
    translator: TextTranslator | None = None,
    detectors: Detectors | None = None,
    frontend: Stage[AudioChunk, AudioChunk] | None = None,
    speaker: str | None = None,
    save_frontend: Path | None = None,
) -> tuple[list[Stage[Any, Any]], list[Stage[Any, Any]]]:
    """The live trunk's stages and its taps. The front-end is the device profile's beamformer
    (``[frontend]``) when it names microphones, with noise suppression when ``denoise``, or a
    pass-through whenever its output is to be saved."""
    array = config.frontend
    if frontend is None and (array.microphones or array.denoise or save_frontend is not None):
        frontend = FrontendStage(array, clock, save_frontend)
    # With an array, the front-end's evidence labels each utterance "wearer" or "partner".
    threshold = own_voice_db(array)
    vad = LiveVadStage(
        config.vad,
        clock,
        is_speech=detectors.is_speech if detectors else None,
        speech_spans=detectors.speech_spans if detectors else None,
        own_voice_db=threshold,
    )
    # Per-speaker actions are for the array's labels; a session's own label (``speaker``: a second
    # stream of the wearer's voice) is translated as the session's settings say.
    actions = {"partner": array.partner, "wearer": array.wearer} if threshold is not None else {}

    stages: list[Stage[Any, Any]] = [
        vad,
        StreamingAsrStage(
            decoder,
            config.asr,
            config.streaming,
            translate=backend == "whisper",
            clock=clock,
            speaker=speaker,
            actions=actions,
            wearer_language=array.wearer_language,
        ),
    ]
    if translator is not None:
        untranslated = [who for who, action in actions.items() if action != "translate"]
        stages.append(TranslationStage(translator, clock, config.asr.terms, untranslated))
    if frontend is not None:
        stages.insert(0, frontend)
    captioned = [who for who, action in actions.items() if action == "caption"]
    return stages, [SubtitleStage(config.display, translating=bool(backend), captioned=captioned)]


async def run_live(
    config: Config,
    decoder: Decoder,
    source: Source,
    sinks: Sequence[Sink] = (),
    *,
    backend: str = "",
    replay: bool = False,
    record: bool = False,
    translator: TextTranslator | None = None,
    detectors: Detectors | None = None,
    frontend: Stage[AudioChunk, AudioChunk] | None = None,
    speech: Speech | None = None,
    speaker: str | None = None,
    save_frontend: Path | None = None,
    handle_interrupt: bool = False,
) -> SessionResult:
    """Runs a live session until the source ends (or is stopped); every utterance's final is
    emitted before it returns. ``replay`` paces it by the stream clock (deterministic);
    ``record`` keeps every emission in the result. ``translator`` and ``detectors`` replace the
    configured text translator and voice detectors (tests inject fakes); ``frontend`` fills the
    slot between the source and VAD; ``speech`` adds the speech branch (the translation spoken
    when translating, else the transcript); ``speaker`` labels every utterance (who speaks into
    this audio: "wearer" for a second stream of the wearer's own voice, "partner");
    ``save_frontend`` writes the audio the front-end hands to recognition to that WAV file.

    With ``handle_interrupt`` the first Ctrl-C stops the source, so the open utterance is
    finalised and everything is delivered; a second one interrupts at once.
    """
    array = config.frontend
    text_backend = backend in ("apertium", "ctranslate2")
    if text_backend and array.microphones and array.wearer == "translate" and array.wearer_language:
        raise ConfigError(
            "frontend.wearer = translate with wearer_language needs the whisper backend (into English): "
            "a text translator translates from the partner's language only"
        )
    own_translator = translator is None and backend in ("apertium", "ctranslate2")
    if own_translator:
        translator = text_translator(config, backend)
    clock = Clock(replay=replay)
    stages, taps = live_graph(config, decoder, backend, clock, translator, detectors, frontend, speaker, save_frontend)
    recorder = Recorder() if record else None
    branches = [*sinks, recorder] if recorder is not None else list(sinks)
    result = SessionResult()
    if speech is not None:
        result.speech = SpeechBranch(
            config.tts, speech.voice, clock, translating=bool(backend), wav=speech.wav, device=speech.device
        )
        branches.append(result.speech)
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        result.interrupted = True
        source.stop()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts at once

    if handle_interrupt:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    started = time.perf_counter()
    try:
        stats = await run_graph(
            source.chunks(), stages, branches, taps=taps, clock=clock, max_lag_s=config.output.max_lag_s
        )
    finally:
        if handle_interrupt:
            loop.remove_signal_handler(signal.SIGINT)
        if own_translator and translator is not None:
            translator.close()
    result.stats = {"source": source.stats(), **stats}
    result.wall_s = time.perf_counter() - started
    result.audio_s = clock.stream
    if recorder is not None:
        result.emissions = recorder.emissions
    return result


def recording_stages(
    config: Config,
    decoder: WhisperDecoder,
    translator: TextTranslator | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[RecordingSpeechStage, RecordingAsrStage, TranslationStage | None]:
    """A recording's trunk: Silero VAD -> Whisper on whole chunks [-> text translation]."""
    translation = TranslationStage(translator, terms=config.asr.terms) if translator is not None else None
    return (
        RecordingSpeechStage(config.vad, config.asr),
        RecordingAsrStage(decoder, config.asr, on_progress=on_progress),
        translation,
    )
