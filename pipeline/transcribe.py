"""``livesub transcribe``: recordings into transcripts (SRT, WebVTT, JSON, text).

Each recording streams through source -> VAD (Silero) -> Whisper, and segments are written as
they are finished. One recording's failure is reported and the next one goes on.

Translated, the transcript's translation is written beside it as ``<stem>.<target>.<format>``:
a text backend (Apertium, CTranslate2) translates each finished segment in the same pass;
Whisper translates in a second pass over the recording (``task="translate"``), in the language
the first pass found.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.algos.diarize import Turn
from pipeline.backends.whisper import WhisperDecoder, check_languages
from pipeline.config import Config
from pipeline.errors import AudioError
from pipeline.events import AudioChunk, Translation
from pipeline.inputs.audio import AudioReader
from pipeline.outputs.formats import transcript_writer
from pipeline.outputs.progress import Progress
from pipeline.runner import Emission, Policy, Stage, run_graph
from pipeline.session import recording_stages
from pipeline.stages.speakers import SpeakerStage, speaker_of
from pipeline.stages.translate import text_translator

#: How often, in seconds of wall time, the JSON document is rewritten during a run.
JSON_INTERVAL_S = 5.0


@dataclass
class FileResult:
    path: Path
    outputs: list[Path] = field(default_factory=list)
    segments: int = 0
    #: The speech check's counts (see RecordingAsrStage): stretches heard again, segments over no
    #: speech dropped, segments repeating the one before dropped, stretches left unrecognised.
    recovered: int = 0
    dropped: int = 0
    repeated: int = 0
    unrecognised: int = 0
    #: Who spoke when (diarization), and each speaker's seconds of speech.
    turns: list[Turn] = field(default_factory=list)
    speakers: dict[str, float] = field(default_factory=dict)
    audio_s: float = 0.0
    wall_s: float = 0.0
    language: str | None = None


async def _source(chunks: Iterator[AudioChunk]) -> AsyncIterator[AudioChunk]:
    # Decoding a block is quick but blocking: keep it off the event loop.
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


class _Writer:
    """The branch writing a recording's files (nothing is dropped; a recording never waits on it for long)."""

    name = "transcript"
    policy: Policy = "all"

    def __init__(self, write: Callable[[Emission], None]) -> None:
        self.write = write

    def open(self) -> None: ...

    def close(self) -> None: ...


def transcribe_file(
    path: Path,
    config: Config,
    decoder: WhisperDecoder,
    out_dir: Path | None,
    backend: str = "",
    *,
    progress: bool = True,
) -> FileResult:
    """Transcribes one recording, writing ``<stem>.<format>`` files into ``out_dir`` (default: beside
    it), and with a translation ``backend`` its translation as ``<stem>.<target>.<format>``.
    ``progress``: draw a progress bar on a terminal (not when many files run at once)."""
    started = time.perf_counter()
    result = _pass(path, config, decoder, out_dir, path.stem, backend, progress=progress)
    if backend == "whisper":
        # A conversation in several languages is detected chunk by chunk again.
        language = config.asr.language if config.asr.languages else result.language or config.asr.language
        whisper = replace(config, asr=replace(config.asr, task="translate", language=language))
        stem = f"{path.stem}.{config.translation.target}"
        translated = _pass(path, whisper, decoder, out_dir, stem, "", progress=progress, spoken=result.turns)
        result.outputs += translated.outputs
    result.wall_s = time.perf_counter() - started
    return result


def _pass(
    path: Path,
    config: Config,
    decoder: WhisperDecoder,
    out_dir: Path | None,
    stem: str,
    backend: str,
    *,
    progress: bool,
    spoken: list[Turn] | None = None,
) -> FileResult:
    """One pass over the recording: Whisper's segments (and their translations by a text backend)
    written, with their speakers: found in this pass, or the ``spoken`` turns an earlier one found."""
    started = time.perf_counter()
    result = FileResult(path)
    speakers = None
    if spoken is None and config.output.speakers != "none":
        speakers = SpeakerStage(None if config.output.speakers == "auto" else int(config.output.speakers))
    target = out_dir if out_dir is not None else path.parent
    with AudioReader(path, block_ms=1000) as reader:
        text_backend = backend in ("apertium", "ctranslate2")
        # Before the progress bar: a translator that cannot start leaves no bar drawn behind it.
        translator = text_translator(config, backend) if text_backend else None
        label = path.name if config.asr.task == "transcribe" else f"{path.name} (translating)"
        bar = Progress(label, reader.duration, enabled=progress)
        vad, asr, translation = recording_stages(config, decoder, translator, on_progress=bar.update)

        writer = transcript_writer(target, stem, config.output)
        translated = (
            transcript_writer(target, f"{stem}.{config.translation.target}", config.output) if text_backend else None
        )
        audio_end = 0.0
        last_json = time.monotonic()

        def document(complete: bool) -> dict[str, Any]:
            wall = time.perf_counter() - started
            return {
                "file": path.name,
                **({"speakers": talk} if talk else {}),
                "language": asr.language,
                "language_probability": asr.language_probability,
                **({"languages": asr.heard} if config.asr.languages else {}),
                "task": config.asr.task,
                "complete": complete,
                "duration_s": round(audio_end, 3),
                "model": {
                    "id": decoder.model_id,
                    "path": str(decoder.path),
                    "compute_type": decoder.compute_type,
                    "beam_size": config.asr.beam_size,
                },
                "speech_check": {
                    "recovered": asr.recovered,
                    "dropped": asr.dropped,
                    "repeated": asr.repeated,
                    "unrecognised": [{"start": start, "end": end} for start, end in asr.unrecognised],
                },
                "timings": {
                    "model_load_s": round(decoder.load_seconds, 3),
                    "asr_s": round(asr.compute_seconds, 3),
                    "wall_s": round(wall, 3),
                    "rtf": round(wall / audio_end, 4) if audio_end else None,
                },
            }

        def write(emission: Emission) -> None:
            nonlocal last_json
            segment = emission.event
            if isinstance(segment, Translation):
                if translated is not None and segment.committed:
                    translated.add(segment.as_transcript())
                return
            writer.add(segment)
            if time.monotonic() - last_json > JSON_INTERVAL_S:
                writer.write_json(document(complete=False))
                last_json = time.monotonic()

        def counted(chunks: Iterator[AudioChunk]) -> Iterator[AudioChunk]:
            nonlocal audio_end
            for chunk in chunks:
                audio_end = chunk.end_s
                yield chunk

        complete = False
        talk: dict[str, float] = {}
        try:
            stages: list[Stage[Any, Any]] = [vad, asr] if translation is None else [vad, asr, translation]
            if speakers is not None:
                stages.insert(1, speakers)
            asyncio.run(run_graph(_source(counted(reader.chunks())), stages, [_Writer(write)], max_lag_s=math.inf))
            complete = reader.damage is None  # a damaged file is transcribed up to the damage
        finally:
            if translator is not None:
                translator.close()
            bar.close()
            if speakers is not None:
                spoken, talk = speakers.turns()
                result.turns, result.speakers = spoken, talk
            if spoken:
                writer.relabel([speaker_of(s, spoken) for s in writer.segments])
                if translated is not None:
                    translated.relabel([speaker_of(s, spoken) for s in translated.segments])
            writer.write_json(document(complete=complete))
            writer.close()
            result.outputs = writer.written
            if translated is not None:
                about = {"backend": backend, "source": asr.language, "target": config.translation.target}
                translated.write_json({**document(complete=complete), "translation": about})
                translated.close()
                result.outputs += translated.written
            result.segments = len(writer.segments)
            result.recovered, result.unrecognised = asr.recovered, len(asr.unrecognised)
            result.dropped, result.repeated = asr.dropped, asr.repeated
    result.audio_s = audio_end
    result.wall_s = time.perf_counter() - started
    result.language = asr.language or "/".join(asr.heard)
    if reader.damage:
        kept = f"the transcript of the {audio_end:.1f} s before it is saved"
        raise AudioError(f"{reader.damage}; {kept if writer.segments else 'no speech before it'}")
    if not writer.segments:
        raise AudioError(f"{path}: no speech found in {audio_end:.1f} s of audio")
    return result


# Many recordings at once (``pipeline.parallel``): what each worker does, as module-level functions.


def load_decoder(config: Config, threads: int) -> WhisperDecoder:
    """One worker's Whisper model, on ``threads`` CPU threads."""
    decoder = WhisperDecoder(replace(config.asr, threads=threads))
    check_languages(decoder, config.spoken_languages)
    return decoder


def transcribe_one(
    config: Config, out_dir: Path | None, backend: str, progress: bool, decoder: WhisperDecoder, path: Path
) -> FileResult:
    """A worker's task: one recording; ``progress``: its own bar (not when a bar counts the files)."""
    return transcribe_file(path, config, decoder, out_dir, backend, progress=progress)


def is_complete(config: Config, out_dir: Path | None, backend: str, path: Path) -> bool:
    """Whether an earlier run transcribed (and translated) this recording to the end: its JSON
    transcript says ``"complete": true``. Without JSON among the formats, nothing counts as done."""
    stems = [path.stem] + ([f"{path.stem}.{config.translation.target}"] if backend else [])
    for stem in stems:
        try:
            document = json.loads(((out_dir or path.parent) / f"{stem}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(document, dict) or document.get("complete") is not True:
            return False
    return True
