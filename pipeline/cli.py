"""The ``livesub`` command. It parses arguments, builds a configuration and calls the job; the
logic lives in the modules it calls. Errors a user can act on are one line on stderr and a
non-zero exit: 1 when some input failed (or a live session ended early), 2 for a usage,
configuration or model problem, 130 on Ctrl-C (except ``live``'s first, which ends the session
normally), 70 for a bug (``-v`` shows its traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import __version__, models
from pipeline.algos.vocab import read_vocabulary
from pipeline.config import OUTPUT_FORMATS, Config, load_config
from pipeline.errors import AudioError, ConfigError, LivesubError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BUG = 70  # EX_SOFTWARE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in OUTPUT_FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or '(none)'}; use some of {','.join(OUTPUT_FORMATS)}"
        )
    return formats


def _translation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="language", help="spoken language (the same as --language)")
    parser.add_argument("--to", dest="target", type=str.lower, help="translate into this language (ISO 639-1, e.g. en)")
    parser.add_argument(
        "--translator",
        choices=("auto", "whisper", "apertium", "ctranslate2"),
        help="translation backend (default auto: ctranslate2 with --translation-model, whisper into English, "
        "else an Apertium pair)",
    )
    parser.add_argument(
        "--translation-model", metavar="DIR", help="a CTranslate2 translation model (OPUS-MT, NLLB, M2M100)"
    )


def _speech_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speech output (the translation when translating, else the transcript)")
    group.add_argument(
        "--speak", action="store_true", default=None, help="speak to the wearer on the speaker device (tts.enabled)"
    )
    group.add_argument(
        "--speak-to", type=Path, metavar="FILE", help="write the speech as a WAV on the session's timeline"
    )
    group.add_argument(
        "--speaker-device", metavar="NAME|INDEX", help="the speaker: index or part of its name (default: the system's)"
    )
    group.add_argument(
        "--voice", metavar="DIR", help="a piper voice directory (VOICE.onnx + .onnx.json) or registry id"
    )


def _languages(text: str) -> list[str]:
    languages = [code.strip().lower() for code in text.split(",") if code.strip()]
    if len(languages) < 2 or len(set(languages)) != len(languages):
        raise argparse.ArgumentTypeError(f"expected two or more different languages, e.g. en,es; got '{text}'")
    return languages


def _speaker_label(text: str) -> str:
    from pipeline.events import SPEAKER_LABEL

    if not SPEAKER_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected 1 to 32 letters, digits, '-' or '_' (e.g. wearer), not '{text}'")
    return text


def _recognition_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vocab",
        type=Path,
        metavar="FILE",
        help="names and terms to spell as given, one a line, optionally 'term = translation'",
    )
    parser.add_argument(
        "--languages",
        type=_languages,
        metavar="LIST",
        help="the conversation's languages, e.g. en,es: each utterance is recognised in the one it is in",
    )


def _array_options(parser: argparse.ArgumentParser) -> None:
    """Options for a session heard through the glasses' array (a ``[frontend]`` device profile)."""
    group = parser.add_argument_group(
        "the glasses' microphones (with --config configs/glasses-4mic.toml or another profile)"
    )
    group.add_argument(
        "--wearer-language",
        type=str.lower,
        metavar="CODE",
        help="the language the wearer speaks, when not the partner's (ISO 639-1); the array tells who speaks",
    )
    group.add_argument(
        "--wearer",
        choices=("caption", "translate", "drop"),
        help="what happens to the wearer's own words (default frontend.wearer: caption)",
    )


def _array_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[frontend]`` settings given on the command line (commands without the options give none)."""
    return _given(wearer_language=getattr(args, "wearer_language", None), wearer=getattr(args, "wearer", None))


def _batch_options(parser: argparse.ArgumentParser, done: str) -> None:
    parser.add_argument("--workers", type=int, metavar="N", help="files at once, each worker with its own model")
    parser.add_argument(
        "--ray",
        metavar="ADDRESS|auto",
        help="spread the files over a Ray cluster: auto joins a running one or starts a local one",
    )
    parser.add_argument("--force", action="store_true", help=f"redo files {done} by an earlier run")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="livesub", description="Offline streaming speech translation and transcription.")
    parser.add_argument("--version", action="version", version=f"livesub {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (never the transcript text)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    transcribe = commands.add_parser("transcribe", help="turn recordings into SRT, WebVTT, JSON and text transcripts")
    transcribe.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="recordings (WAV, FLAC, Ogg/Opus, MP3, ...)"
    )
    transcribe.add_argument("--language", help="spoken language (ISO 639-1, e.g. en) or auto (default)")
    transcribe.add_argument("--task", choices=("transcribe", "translate"), help="translate: any language into English")
    transcribe.add_argument("--model", help="model id (see `livesub models list`) or a CTranslate2 model directory")
    transcribe.add_argument("--out", type=Path, help="directory for the transcripts (default: beside each input)")
    transcribe.add_argument(
        "--formats", type=_formats, help=f"comma-separated, from {','.join(OUTPUT_FORMATS)} (default: all)"
    )
    transcribe.add_argument(
        "--config", type=Path, action="append", default=[], help="TOML configuration file (repeatable)"
    )
    transcribe.add_argument(
        "--speakers",
        metavar="auto|N|none",
        help="who spoke: find how many (auto, the default), give the number, or none",
    )
    _translation_options(transcribe)
    _recognition_options(transcribe)
    _batch_options(transcribe, "transcribed")

    live = commands.add_parser("live", help="live subtitles from a microphone or a recording played as if live")
    where = live.add_mutually_exclusive_group()
    where.add_argument("--input", type=Path, metavar="FILE", help="play a recording instead of using a microphone")
    where.add_argument("--device", help="microphone: index or part of its name (default: the system's)")
    where.add_argument("--list-devices", action="store_true", help="list the input and output devices and exit")
    pace = live.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime", dest="realtime", action="store_true", default=True, help="play --input at its own speed (default)"
    )
    pace.add_argument(
        "--instant", dest="realtime", action="store_false", help="play --input as fast as the pipeline takes it"
    )
    live.add_argument("--channels", type=int, help="microphone channels to capture (default: all, at most 8)")
    live.add_argument("--language", help="spoken language (ISO 639-1) or auto (default)")
    live.add_argument("--model", help="model id or CTranslate2 model directory")
    live.add_argument("--config", type=Path, action="append", default=[], help="TOML configuration file (repeatable)")
    live.add_argument(
        "--events", metavar="FILE|-", help="write every event as a JSON line to FILE, or to stdout with -"
    )
    live.add_argument(
        "--out",
        type=Path,
        help="save the session's transcript in this directory (default: output.live_dir, else not saved)",
    )
    _translation_options(live)
    _recognition_options(live)
    live.add_argument(
        "--speaker-label",
        type=_speaker_label,
        metavar="LABEL",
        help="who speaks into this audio, carried by every event and transcript line (e.g. wearer, partner)",
    )
    live.add_argument(
        "--show-source", action="store_true", default=None, help="when translating, show the source on the top line"
    )
    _array_options(live)
    live.add_argument(
        "--save-frontend",
        type=Path,
        metavar="FILE",
        help="write the audio the front-end hands to recognition to FILE (16 kHz mono WAV)",
    )
    _speech_options(live)

    notes = commands.add_parser(
        "notes", help="meeting notes (summary, topics, decisions, action items) from recordings or transcripts"
    )
    notes.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="recordings, or transcripts (JSON) from transcribe"
    )
    notes.add_argument("--language", help="spoken language of recordings (ISO 639-1) or auto (default)")
    notes.add_argument("--model", help="Whisper model id or CTranslate2 model directory (for recordings)")
    notes.add_argument("--out", type=Path, help="directory for the notes (and transcripts); default: beside each input")
    notes.add_argument("--config", type=Path, action="append", default=[], help="TOML configuration file (repeatable)")
    notes.add_argument("--speakers", metavar="auto|N|none", help="who spoke (recordings): auto (default), N, or none")
    notes.add_argument(
        "--notes-model", type=Path, metavar="DIR", help="an instruction-tuned model converted to CTranslate2"
    )
    _translation_options(notes)
    _recognition_options(notes)
    _batch_options(notes, "with notes")

    bench = commands.add_parser(
        "bench", help="measure latency and quality by replaying recordings through the live path"
    )
    bench.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    bench.add_argument(
        "--ref", type=Path, action="append", default=[], help="reference JSON or .stm, one per input in order"
    )
    bench.add_argument(
        "--mode", choices=("realtime", "instant"), default="realtime", help="realtime counts compute (default)"
    )
    bench.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help="a configuration to measure (repeat to compare several)",
    )
    bench.add_argument("--language", help="spoken language for every input (default: the reference's, else auto)")
    _translation_options(bench)
    bench.add_argument(
        "--speak", action="store_true", default=None, help="speak as live does, and measure it (tts.enabled)"
    )
    bench.add_argument(
        "--speak-to", type=Path, metavar="DIR", help="speak, and write each input's speech to DIR/<stem>.speech.wav"
    )
    bench.add_argument("--voice", metavar="DIR", help="a piper voice directory or registry id")
    _recognition_options(bench)
    bench.add_argument("--json", type=Path, help="write the report as JSON")
    bench.add_argument("--plot", type=Path, help="write a PNG: per-utterance timeline and latency distribution")
    bench.add_argument("--repeat", type=int, default=1, help="play every input N times (default 1)")
    _array_options(bench)
    bench.add_argument(
        "--save-frontend",
        type=Path,
        metavar="DIR",
        help="write what the front-end hands to recognition to DIR/<input>.<config>.frontend.wav",
    )

    serve = commands.add_parser(
        "serve", help="live sessions over WebSocket: audio from a phone or glasses in, events and subtitles out"
    )
    serve.add_argument(
        "--host", help="address to listen on (default server.host, 127.0.0.1; any other needs --token-file)"
    )
    serve.add_argument("--port", type=int, help="TCP port (default server.port, 8765; 0 picks a free one)")
    serve.add_argument(
        "--max-sessions",
        type=int,
        metavar="N",
        help="live sessions at once (default server.max_sessions, 1; 2 for a conversation's two sides)",
    )
    serve.add_argument(
        "--token-file", type=Path, metavar="FILE", help="a file whose first line is the token every client must send"
    )
    serve.add_argument("--tls-cert", type=Path, metavar="FILE", help="TLS certificate chain (PEM): serve wss://")
    serve.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's private key (PEM)")
    serve.add_argument("--model", help="model id or CTranslate2 model directory (loaded once, shared by sessions)")
    serve.add_argument("--config", type=Path, action="append", default=[], help="TOML configuration file (repeatable)")
    serve.add_argument(
        "--out", type=Path, help="save each session's transcript in this directory (default: output.live_dir)"
    )

    model_cmd = commands.add_parser("models", help="list or verify the models")
    model_sub = model_cmd.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    model_sub.add_parser("list", help="each model, its size and whether it is ready")
    model_sub.add_parser("verify", help="check every model file's checksum; exit 1 on a problem")
    return parser


def _given(**settings: Any) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if v is not None}


def _asr_overrides(args: argparse.Namespace) -> dict[str, Any]:
    vocabulary = read_vocabulary(args.vocab) if args.vocab is not None else None
    return _given(
        language=args.language,
        task=getattr(args, "task", None),
        model=getattr(args, "model", None),
        vocabulary=list(vocabulary) if vocabulary else None,
        languages=args.languages,
    )


def _config(args: argparse.Namespace) -> Config:
    formats = getattr(args, "formats", None)
    overrides = {
        "asr": _asr_overrides(args),
        "translation": _given(target=args.target, backend=args.translator, model=args.translation_model),
        "frontend": _array_overrides(args),
        "display": _given(show_source=getattr(args, "show_source", None)),
        "tts": _given(
            enabled=True if any(getattr(args, a, None) for a in ("speak", "speak_to", "speaker_device")) else None,
            voice=getattr(args, "voice", None),
        ),
        "output": _given(formats=list(formats) if formats else None, speakers=getattr(args, "speakers", None)),
    }
    return load_config(args.config, overrides)


def _say(text: str) -> None:
    """A report line on stdout. A reader that went away (`| head`) does not stop the work: the
    rest of the lines go nowhere."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _input_file(path: Path) -> None:
    """Fails before any work when an input is not a file, saying what it is instead."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")


def _writable(path: Path, *, directory: bool = False) -> None:
    """Fails before any work when an output could not be written there (the work would be lost):
    its directory is made now, and a file is created in it and removed. Trying is the only sure
    test: permission bits say nothing to root, nor about /proc or a read-only mount."""
    if not directory and path.is_dir():
        raise ConfigError(f"cannot write {path}: it is a directory")
    if not directory and path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"cannot write {path}: the file is read-only")
    folder = path if directory else path.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"cannot write {path}: {folder} is not a writable directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None


def _writable_wav(path: Path, option: str) -> None:
    """As :func:`_writable`, for an option that writes a WAV file: its name must say so."""
    if path.suffix.lower() != ".wav":
        raise ConfigError(f"{option} writes a WAV file: give a name ending in .wav, not {path.name}")
    _writable(path)


def _transcribe(args: argparse.Namespace) -> int:
    from functools import partial

    from pipeline.parallel import run_files
    from pipeline.session import translation_backend
    from pipeline.transcribe import is_complete, load_decoder, transcribe_one

    config = _config(args)
    backend = translation_backend(config)  # chosen once; an impossible pair fails before the model loads
    writes: dict[Path, Path] = {}  # output stem -> the input writing it
    for path in args.inputs:
        stem = (args.out if args.out is not None else path.parent) / path.stem
        if stem in writes:
            raise ConfigError(f"{writes[stem]} and {path} would both write {stem}.*: rename one")
        writes[stem] = path
        _writable(stem.parent, directory=True)
    # Many at once: one bar for all files; one at a time: each file's own bar.
    batch = args.ray is not None or (args.workers or 1) > 1
    failed = 0
    for path, outcome in run_files(
        args.inputs,
        partial(load_decoder, config),
        partial(transcribe_one, config, args.out, backend, not batch),
        workers=args.workers,
        threads=config.asr.threads or None,
        ray_address=args.ray,
        skip=None if args.force else partial(is_complete, config, args.out, backend),
        progress=batch,
    ):
        if outcome is None:
            _say(f"{path}: transcribed before, skipped (--force transcribes it again)")
            continue
        if isinstance(outcome, LivesubError):
            print(f"livesub: {outcome}", file=sys.stderr)
            failed += 1
            continue
        result = outcome
        rtf = result.wall_s / result.audio_s if result.audio_s else 0.0
        outputs = ", ".join(str(p) for p in result.outputs)
        speed = f"{result.audio_s:.1f} s of audio in {result.wall_s:.1f} s (RTF {rtf:.2f})"
        checked = [
            f"{n} {what}"
            for n, what in (
                (result.recovered, "skipped stretches of speech decoded again"),
                (result.unrecognised, "left unrecognised"),
                (result.dropped, "segments over no speech dropped"),
                (result.repeated, "repeated segments dropped"),
            )
            if n
        ]
        checks = f" ({', '.join(checked)})" if checked else ""
        who = f", {len(result.speakers)} speakers" if len(result.speakers) > 1 else ""
        _say(f"{path}: {result.segments} segments{checks}{who}, language {result.language}, {speed} -> {outputs}")
    return EXIT_FAILED if failed else 0


def _notes(args: argparse.Namespace) -> int:
    from functools import partial

    from pipeline import notes
    from pipeline.parallel import run_files

    target = args.target
    args.target = None  # --to translates the notes, not the transcript
    config = _config(args)
    for path, output in notes.outputs_for(args.inputs, args.out).items():
        _input_file(path)
        _writable(output)
    whisper = any(p.suffix.lower() != ".json" for p in args.inputs)
    batch = args.ray is not None or (args.workers or 1) > 1
    failed = 0
    for path, outcome in run_files(
        args.inputs,
        partial(notes.load_worker, config, whisper, args.notes_model),
        partial(notes.notes_one, config, args.out, target, not batch),
        workers=args.workers,
        threads=config.asr.threads or None,
        ray_address=args.ray,
        skip=None if args.force else partial(notes.is_done, args.out),
        progress=batch,
    ):
        if outcome is None:
            _say(f"{path}: notes written before, skipped (--force writes them again)")
        elif isinstance(outcome, LivesubError):
            print(f"livesub: {outcome}", file=sys.stderr)
            failed += 1
        else:
            found = f"{outcome.summary} summary sentences, {outcome.topics} topics"
            items = f"{outcome.decisions} decisions, {outcome.actions} action items"
            _say(f"{path}: {found}, {items} -> {outcome.output}")
    return EXIT_FAILED if failed else 0


def _speech(args: argparse.Namespace, config: Config, backend: str, *, realtime: bool) -> Any:
    """The voice and outputs of a session that speaks (``session.Speech``), or None; every check
    (the voice's language, a writable WAV, the device) comes before the voice loads."""
    if not config.tts.enabled:
        return None
    from pipeline import session
    from pipeline.backends.voice import PiperVoice, session_voice
    from pipeline.outputs.speech import SpeakerDevice, SpeechWav

    onnx = session_voice(config.tts.voice, config.translation.target if backend else "", config.asr.language)
    wav = None
    if args.speak_to is not None:
        _writable_wav(args.speak_to, "--speak-to")
        wav = SpeechWav(args.speak_to)
    device = None
    if args.speak or args.speaker_device is not None or wav is None:
        if not realtime:
            raise ConfigError("an --instant replay is not played on a speaker: give --speak-to FILE instead")
        name = args.speaker_device
        try:
            device = SpeakerDevice(
                int(name) if name is not None and name.isdigit() else name, config.tts.output.sample_rate
            )
        except LivesubError as e:
            if name is not None or wav is None:
                raise
            print(f"livesub: {e}; the speech goes to {wav.path} only", file=sys.stderr)
    return session.Speech(PiperVoice(onnx), wav, device)


def _live(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from pipeline import session
    from pipeline.backends.whisper import WhisperDecoder, check_languages
    from pipeline.inputs.sources import FileSource, MicrophoneSource, list_input_devices
    from pipeline.outputs.transcripts import TranscriptSink
    from pipeline.outputs.view import JsonlSink, TerminalView
    from pipeline.runner import Sink
    from pipeline.stages.frontend import check_channels

    if args.list_devices:
        from pipeline.outputs.speech import list_output_devices

        print("input devices:\n  " + ("\n  ".join(list_input_devices()) or "none"))
        print("output devices:\n  " + ("\n  ".join(list_output_devices()) or "none"))
        return 0
    config = _config(args)
    backend = session.translation_backend(config)  # chosen once; an impossible pair fails before the model loads
    out = args.out if args.out is not None else (Path(config.output.live_dir) if config.output.live_dir else None)
    if out is not None:
        _writable(out, directory=True)
    if args.events and args.events != "-":
        _writable(Path(args.events))
    if args.save_frontend is not None:
        _writable_wav(args.save_frontend, "--save-frontend")
    source: session.Source  # opened before the model loads: a bad file or device fails at once
    if args.input is not None:
        source = FileSource(args.input, realtime=args.realtime, block_ms=config.audio.block_ms)
        stem, name, channels = f"{args.input.stem}.live", str(args.input), source.channels
    else:
        device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
        microphone = MicrophoneSource(device, channels=args.channels, block_ms=config.audio.block_ms)
        source, stem, name = microphone, time.strftime("session-%Y%m%d-%H%M%S"), microphone.device_name
        channels = microphone.channels
    check_channels(config.frontend, channels)
    replay = args.input is not None and not args.realtime
    speech = _speech(args, config, backend, realtime=not replay)
    decoder = WhisperDecoder(config.asr, live=not replay)  # a replay keeps every core
    check_languages(decoder, config.spoken_languages)
    if isinstance(source, MicrophoneSource):
        print(
            f"livesub: listening on '{source.device_name}' ({source.rate} Hz, {source.channels} ch); Ctrl-C ends",
            file=sys.stderr,
        )

    events_file = open(args.events, "w", encoding="utf-8") if args.events not in (None, "-") else None  # noqa: SIM115
    events_stream = sys.stdout if args.events == "-" else events_file
    events = JsonlSink(events_stream) if events_stream is not None else None
    view = TerminalView(sys.stderr if args.events == "-" else sys.stdout, translating=bool(backend))
    sinks: list[Sink] = [view] + ([events] if events is not None else [])
    transcript = None
    if out is not None:  # the partner's words reach the disk only when asked
        target = config.translation.target if backend else ""
        translation = {"backend": backend, "source": config.asr.language, "target": target} if backend else None
        about = {"source": name, "model": decoder.model_id}
        transcript = TranscriptSink(out, stem, config.output, about=about, target=target, translation=translation)
        sinks.append(transcript)

    failure: LivesubError | None = None
    result = None
    try:
        result = asyncio.run(
            session.run_live(
                config,
                decoder,
                source,
                sinks,
                backend=backend,
                replay=replay,
                speech=speech,
                speaker=args.speaker_label,
                save_frontend=args.save_frontend,
                handle_interrupt=True,
            )
        )
    except LivesubError as e:  # a failure during the session (a translator died, ...): keep what was done
        failure = e
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, and still keep what was done
        pass
    try:
        if result is not None:
            # How deep each output's queue got depends on the machine's speed: logged, not in the
            # events (which a replay keeps identical from run to run but for wall-clock fields).
            for name in (sink.name for sink in sinks):
                logging.getLogger("livesub").info("output %s: %s", name, result.stats.get(name))
        if events is not None and result is not None:
            summary = {"audio_s": round(result.audio_s, 3), "wall_s": round(result.wall_s, 3)}
            counts = {"overflows": result.overflows, "lost": result.lost, "utterances": view.finals}
            events.write_record({"type": "session", **summary, **counts})
    except OSError as e:  # the events file failed at the end: what else was saved still counts
        failure = failure or LivesubError(f"output 'events' failed: {type(e).__name__}: {e}")
    finally:
        if events_file:
            with contextlib.suppress(OSError):  # its failure is the one already reported
                events_file.close()
    if transcript is None:
        saved = "nothing (give --out DIR to keep the transcript)"
    else:
        saved = ", ".join(str(p) for p in transcript.written) or "nothing (no speech)"
    if result is None and failure is None:
        print(f"livesub: interrupted; saved {saved}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result is None:
        assert failure is not None
        if not view.finals and (transcript is None or not transcript.written):
            raise failure  # nothing happened yet: a set-up problem (a model that will not load) or bad input
        print(f"livesub: error: {failure}", file=sys.stderr)
        print(f"livesub: the session stopped early; saved {saved}", file=sys.stderr)
        return EXIT_FAILED
    print(f"livesub: {view.finals} utterances in {result.audio_s:.1f} s; saved {saved}", file=sys.stderr)
    if failure is not None:  # the session ran to its end, but an output failed at the last
        print(f"livesub: error: {failure}", file=sys.stderr)
        return EXIT_FAILED
    if result.speech is not None:
        spoken = result.speech.stats()
        where = [str(speech.wav.path)] if speech.wav is not None else []
        if speech.device is not None:
            where.append(f"'{speech.device.name}' ({spoken['underruns']} underruns)")
        print(
            f"livesub: spoke {spoken['clauses']} clauses ({spoken['speech_s']:.1f} s) to {' and '.join(where)}; "
            f"{spoken['skipped_clauses']} skipped to keep up",
            file=sys.stderr,
        )
    if result.overflows:
        print(f"livesub: {result.overflows} audio blocks were lost (input overflow)", file=sys.stderr)
    if result.lost:
        print(f"livesub: {result.lost}; the session ended there", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from pipeline import bench
    from pipeline.session import translation_backend

    if args.repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    overrides = {
        "asr": _asr_overrides(args),
        "translation": _given(target=args.target, backend=args.translator, model=args.translation_model),
        "frontend": _array_overrides(args),
        "tts": _given(enabled=True if args.speak or args.speak_to else None, voice=args.voice),
    }
    if args.speak_to is not None:
        _writable(args.speak_to, directory=True)
        args.speak_to.mkdir(parents=True, exist_ok=True)
    if args.save_frontend is not None:
        _writable(args.save_frontend, directory=True)
    configs = [(path.stem, load_config([path], overrides)) for path in args.config] or [
        ("default", load_config([], overrides))
    ]
    for _, config in configs:
        if config.asr.language != "auto":
            translation_backend(config)  # an impossible pair fails before any run
        if config.translation.target:
            try:
                import sacrebleu  # noqa: F401 (scored after the runs: fail before them)
            except ImportError:
                raise ConfigError("translation quality needs sacrebleu: pip install 'livesub[bench]'") from None
    for path in args.inputs:
        _input_file(path)
    for output in (args.json, args.plot):
        if output is not None:
            _writable(output)
    if args.plot:
        try:
            import matplotlib  # noqa: F401 (plotted after the runs: fail before them)
        except ImportError:
            raise ConfigError("--plot needs matplotlib: pip install 'livesub[bench]'") from None

    def progress(message: str) -> None:
        print(f"livesub: {message}", file=sys.stderr)

    reports, runs, complete = bench.run_bench(
        args.inputs,
        args.ref,
        configs,
        realtime=args.mode == "realtime",
        repeat=args.repeat,
        progress=progress,
        speak_to=args.speak_to,
        save_frontend=args.save_frontend,
    )
    if not reports:
        print("livesub: interrupted before any run finished; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    _say(bench.table(reports))
    if args.json:
        first = reports[0][1]
        document = {**first, "config": reports[0][0], "complete": complete}
        if len(reports) > 1:
            document["compare"] = [{"config": name, **r} for name, r in reports]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        bench.plot(runs[0], args.mode == "realtime", args.plot)
    if not complete:
        finished = sum(len(r) for r in runs)
        print(f"livesub: interrupted; the report covers the {finished} runs that finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from pipeline import server

    overrides = {
        "asr": _given(model=args.model),
        "server": _given(host=args.host, port=args.port, max_sessions=args.max_sessions),
        "output": _given(live_dir=str(args.out) if args.out is not None else None),
    }
    config = load_config(args.config, overrides)
    token = server.read_token(args.token_file) if args.token_file is not None else None
    server.check_exposure(config.server.host, token)  # before the model loads
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("give both --tls-cert and --tls-key, or neither")
    tls = server.tls_context(args.tls_cert, args.tls_key) if args.tls_cert is not None else None
    if config.output.live_dir:
        _writable(Path(config.output.live_dir), directory=True)
    if tls is None and not server.is_loopback(config.server.host):
        print(
            "livesub: warning: without --tls-cert/--tls-key the token and audio cross the network in clear",
            file=sys.stderr,
        )
    instance = server.Server(config, token=token, ssl_context=tls)

    def announce(url: str) -> None:
        page = url.replace("ws", "http", 1)
        print(
            f"livesub: serving {url}/session; the HUD at {page}/, the partner's view at {page}/partner; Ctrl-C stops",
            file=sys.stderr,
        )

    asyncio.run(instance.serve(announce))
    print(f"livesub: stopped after {instance.counts['sessions']} sessions", file=sys.stderr)
    return 0


def _human_size(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size else "-"


def _models(args: argparse.Namespace) -> int:
    specs = models.load_registry()
    if args.models_command == "list":
        print(f"{'id':<17} {'kind':<14} {'size':>7}  {'status':<8} description")
        for spec in specs.values():
            state = models.status(spec)
            ready = "ready" if state.ready else "missing"
            print(f"{spec.id:<17} {spec.kind:<14} {_human_size(spec.size):>7}  {ready:<8} {spec.description}")
            if state.detail != "ready":
                print(f"{'':<17} {state.detail}")
        print(f"cache: {models.cache_dir()}")
        return 0
    problems = 0
    for spec in specs.values():
        found = models.verify(spec)
        for problem in found:
            print(f"livesub: {problem}", file=sys.stderr)
        print(f"{spec.id}: {'ok' if not found else 'FAILED'}")
        problems += len(found)
    return EXIT_FAILED if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except LivesubError as e:
        print(f"livesub: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        if args.command == "transcribe":
            return _transcribe(args)
        if args.command == "live":
            return _live(args)
        if args.command == "notes":
            return _notes(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "serve":
            return _serve(args)
        return _models(args)
    except LivesubError as e:
        print(f"livesub: error: {e}", file=sys.stderr)
        return EXIT_FAILED if isinstance(e, AudioError) else EXIT_USAGE
    except KeyboardInterrupt:
        print("livesub: interrupted; what was finished has been written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug: still one line, with a way to see more
        print(f"livesub: internal error: {type(e).__name__}: {e} (run with -v for details)", file=sys.stderr)
        if args.verbose:
            raise
        return EXIT_BUG
