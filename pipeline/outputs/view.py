"""What ``livesub live`` shows and writes: a terminal view and JSONL event records."""

from __future__ import annotations

import json
from typing import Any, TextIO

from pipeline.events import Subtitle, Transcript, Translation
from pipeline.live import Emission


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


def event_record(emission: Emission) -> dict[str, Any]:
    """One JSONL line: the event's fields, its type, and when it was emitted (both clocks)."""
    event = emission.event
    common = {"utterance": event.utterance, "final": event.final, "start": event.start, "end": event.end}
    timing = {"emitted": emission.wall, "stream": emission.stream}
    if isinstance(event, Transcript):
        fields = {"committed": event.committed, "tentative": event.tentative, "language": event.language}
        return {"type": "transcript", **common, **fields, **timing}
    if isinstance(event, Translation):
        fields = {
            "committed": event.committed,
            "tentative": event.tentative,
            "source_language": event.source_language,
            "target_language": event.target_language,
        }
        return {"type": "translation", **common, **fields, **timing}
    return {"type": "subtitle", **common, "lines": list(event.lines), **timing}


class JsonlWriter:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()


class TerminalView:
    """Finals as lines that stay; on a terminal, the display's current lines redrawn in place below.
    When translating, each final translation is a line, and its source text an indented line beside
    it (after it with Whisper, which decodes the source once the translation is final; before it
    with a text backend, which translates the source's final)."""

    def __init__(self, stream: TextIO, *, translating: bool = False) -> None:
        self._stream = stream
        self._translating = translating
        self._tty = stream.isatty()
        self._live_lines = 0

    def _clear_live(self) -> None:
        if self._live_lines:
            self._stream.write(f"\x1b[{self._live_lines}F\x1b[J")
            self._live_lines = 0

    def show(self, emission: Emission) -> None:
        event = emission.event
        if isinstance(event, Transcript) and event.final and self._translating:
            self._clear_live()
            if event.committed:
                self._stream.write(f"          {event.language}: {event.committed}\n")
        elif isinstance(event, Transcript | Translation) and event.final:
            self._clear_live()
            if event.committed:
                self._stream.write(f"[{_clock(event.start)}] {event.committed}\n")
        elif isinstance(event, Subtitle) and not event.final and self._tty:
            self._clear_live()
            for line in event.lines:
                self._stream.write(f"  \x1b[2m| {line}\x1b[0m\n")
            self._live_lines = len(event.lines)
        self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._clear_live()
            self._stream.flush()
