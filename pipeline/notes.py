"""``livesub notes``: meeting notes from a recording or from the JSON transcript ``transcribe`` wrote.

The notes (``<stem>.notes.md``) hold a header (date, duration, language, speakers and their talk
time), a summary of the most central sentences, the topics with their time ranges, and the
decisions and action items, every line with the time it came from. By default they are built
without a language model, deterministically (``pipeline.algos.notes``); with ``--notes-model DIR``
an instruction-tuned model the user converted to CTranslate2 writes the summary, decisions and
action items, each claim kept with the times of the sentences it cites. ``--to LANG`` translates
the notes with a text translator (Apertium, or the user's CTranslate2 model).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.algos.notes import Item, Sentence, Topic, items, sentences, summary, topics
from pipeline.errors import AudioError

if TYPE_CHECKING:
    from pipeline.backends.notes_model import NotesModel
    from pipeline.backends.whisper import WhisperDecoder
    from pipeline.config import Config

#: Sentences in the summary.
SUMMARY_SENTENCES = 5


@dataclass
class Notes:
    """What the notes say, before they are written."""

    title: str
    date: str
    date_source: str
    duration_s: float
    language: str
    speakers: dict[str, float]
    summary: list[Sentence] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    media: str = ""  # the recording, as a link from where the notes are written (for its times)


def load_transcript(path: Path) -> dict[str, Any]:
    """A transcript JSON written by ``livesub transcribe``; AudioError for anything else."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise AudioError(f"{path}: not a livesub transcript ({type(e).__name__})") from None
    if not isinstance(document, dict) or not isinstance(document.get("segments"), list):
        raise AudioError(f"{path}: not a livesub transcript (no segments)")
    for index, segment in enumerate(document["segments"]):
        if (problem := _segment_problem(segment)) is not None:
            raise AudioError(f"{path}: not a livesub transcript (segment {index}: {problem})")
    return document


def _segment_problem(segment: Any) -> str | None:
    """What is wrong with one segment of a transcript JSON, if anything."""

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    if not isinstance(segment, dict):
        return "not an object"
    if not (number(segment.get("start")) and number(segment.get("end")) and segment["start"] <= segment["end"]):
        return "'start' and 'end' must be seconds, start first"
    if not isinstance(segment.get("text"), str):
        return "'text' must be a string"
    for key in ("language", "speaker"):
        if segment.get(key) is not None and not isinstance(segment[key], str):
            return f"'{key}' must be a string"
    words = segment.get("words", [])
    if not isinstance(words, list) or not all(
        isinstance(w, dict) and isinstance(w.get("word"), str) and number(w.get("start")) and number(w.get("end"))
        for w in words
    ):
        return "'words' must be a list of {word, start, end}"
    return None


def recording_date(audio: Path | None, transcript: Path | None) -> tuple[str, str]:
    """When the meeting took place, and where that came from: the recording's own metadata
    (a ``creation_time`` or ``date`` tag), else the recording's (or transcript's) file time."""
    if audio is not None and audio.is_file():
        try:
            import av

            with av.open(str(audio)) as container:
                tags = {k.lower(): v for k, v in container.metadata.items()}
            for key in ("creation_time", "date", "icrd"):
                if tags.get(key):
                    return str(tags[key]), "the recording's metadata"
        except Exception:  # a recording without readable tags falls back to its file time
            pass
    source = audio if audio is not None and audio.is_file() else transcript
    if source is None:
        return "unknown", "nothing"
    stamp = datetime.datetime.fromtimestamp(source.stat().st_mtime).astimezone()
    return stamp.strftime("%Y-%m-%d %H:%M %Z").strip(), f"the file time of {source.name}"


def build(
    document: dict[str, Any], *, audio: Path | None, transcript: Path | None, model: NotesModel | None = None
) -> Notes:
    """The notes of a transcript document: deterministic, or the summary, decisions and action
    items by the user's ``model`` (topics stay deterministic)."""
    language = str(document.get("language") or _common_language(document) or "en")
    heard = sentences(document["segments"])
    date, date_source = recording_date(audio, transcript)
    if model is not None:
        claims = model.notes(heard, language)
        said = [Sentence(c.text, c.start, c.end, None, language) for c in claims if c.kind == "summary"]
        found = [
            Item("decision" if c.kind == "decision" else "action", c.text, c.start, c.end, c.owner, None, None)
            for c in claims
            if c.kind != "summary"
        ]
    else:
        said, found = summary(heard, language, SUMMARY_SENTENCES), items(heard, language)
    return Notes(
        title=str(document.get("file") or (audio or transcript or Path("recording")).name),
        date=date,
        date_source=date_source,
        duration_s=float(document.get("duration_s") or (heard[-1].end if heard else 0.0)),
        language=language,
        speakers={str(k): float(v) for k, v in (document.get("speakers") or {}).items()},
        summary=said,
        topics=topics(heard, language),
        items=found,
        media=audio.name if audio is not None else "",
    )


def _common_language(document: dict[str, Any]) -> str | None:
    counts: dict[str, int] = {}
    for segment in document["segments"]:
        if segment.get("language"):
            counts[segment["language"]] = counts.get(segment["language"], 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def clock(seconds: float) -> str:
    """00:12 or 1:02:03."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def markdown(notes: Notes, translate: Callable[[str], str] | None = None) -> str:
    """The notes as Markdown; each time links into the recording (``file.wav#t=12``, a media
    fragment a browser's player opens at). ``translate`` turns the notes' text into another language."""
    say = translate or (lambda text: text)

    def at(start: float) -> str:
        return f"[{clock(start)}]({notes.media}#t={int(start)})" if notes.media else f"[{clock(start)}]"

    lines = [f"# Notes: {notes.title}", ""]
    lines.append(f"- Date: {notes.date} (from {notes.date_source})")
    lines.append(f"- Duration: {clock(notes.duration_s)}")
    lines.append(f"- Language: {notes.language}")
    if notes.speakers:
        total = sum(notes.speakers.values()) or 1.0
        talk = ", ".join(f"{who} {clock(s)} ({100 * s / total:.0f}%)" for who, s in notes.speakers.items())
        lines.append(f"- Speakers: {talk}")
    lines += ["", "## Summary", ""]
    lines += [f"- {at(s.start)} {_who(s.speaker)}{say(s.text)}" for s in notes.summary] or ["(nothing said)"]
    lines += ["", "## Topics", ""]
    lines += [f"- {at(t.start)}–{clock(t.end)}: {', '.join(say(k) for k in t.keywords)}" for t in notes.topics] or [
        "(none found)"
    ]
    for kind, heading in (("decision", "Decisions"), ("action", "Action items")):
        lines += ["", f"## {heading}", ""]
        found = [i for i in notes.items if i.kind == kind]
        lines += [_item(i, at(i.start), say) for i in found] or ["(none found)"]
    return "\n".join(lines) + "\n"


def _who(speaker: str | None) -> str:
    return f"**{speaker}**: " if speaker else ""


def _item(item: Item, time: str, say: Callable[[str], str]) -> str:
    details = [f"owner: {item.owner}" if item.owner else "", f"due: {say(item.due)}" if item.due else ""]
    extra = "; ".join(d for d in details if d)
    return f"- {time} {_who(item.speaker)}{say(item.text)}" + (f" ({extra})" if extra else "")


def write(notes: Notes, path: Path, translate: Callable[[str], str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(markdown(notes, translate), encoding="utf-8")
    temporary.replace(path)
    return path


def outputs_for(inputs: Sequence[Path], out_dir: Path | None) -> dict[Path, Path]:
    """Each input's notes file, ``<stem>.notes.md`` (a transcript ``talk.json`` gives ``talk``)."""
    return {p: (out_dir if out_dir is not None else p.parent) / f"{p.stem}.notes.md" for p in inputs}


# Many recordings at once (``pipeline.parallel``): what each worker does, as module-level functions.


@dataclass
class Worker:
    """One worker's models: Whisper for recordings (None when every input is a transcript) and
    the user's notes model (None: the deterministic notes)."""

    decoder: WhisperDecoder | None
    model: NotesModel | None


@dataclass(frozen=True)
class Done:
    """What one input's notes hold, for the summary line."""

    output: Path
    summary: int
    topics: int
    decisions: int
    actions: int


def load_worker(config: Config, whisper: bool, model: Path | None, threads: int) -> Worker:
    decoder = None
    if whisper:
        from pipeline.transcribe import load_decoder

        decoder = load_decoder(config, threads)
    notes_model = None
    if model is not None:
        from pipeline.backends.notes_model import NotesModel

        notes_model = NotesModel(model, threads)
    return Worker(decoder, notes_model)


def notes_one(
    config: Config, out_dir: Path | None, target: str | None, progress: bool, worker: Worker, path: Path
) -> Done:
    """One input's notes: a recording is transcribed first (its transcript files written too)."""
    from pipeline.stages.translate import note_translator
    from pipeline.transcribe import transcribe_file

    if path.suffix.lower() == ".json":
        transcript, audio = path, None
    else:
        assert worker.decoder is not None
        transcribe_file(path, config, worker.decoder, out_dir, progress=progress)
        transcript, audio = (out_dir or path.parent) / f"{path.stem}.json", path
    built = build(load_transcript(transcript), audio=audio, transcript=transcript, model=worker.model)
    output = outputs_for([path], out_dir)[path]
    if audio is not None:  # linked from where the notes are, spaces and all
        built.media = urllib.parse.quote(os.path.relpath(audio.resolve(), output.parent.resolve()))
    translate = note_translator(config, built.language, target) if target else None
    try:
        write(built, output, translate)
    finally:
        if translate is not None:
            translate.close()
    decisions = sum(i.kind == "decision" for i in built.items)
    return Done(output, len(built.summary), len(built.topics), decisions, len(built.items) - decisions)


def is_done(out_dir: Path | None, path: Path) -> bool:
    """Whether an earlier run wrote this input's notes."""
    return outputs_for([path], out_dir)[path].is_file()
