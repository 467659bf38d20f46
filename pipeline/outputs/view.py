"""Outputs of a live session that are branches of its graph: the terminal view and JSONL events."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TextIO

import numpy as np

from pipeline.events import Subtitle, Transcript, Translation
from pipeline.runner import Emission, Policy


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


def _json(value: Any) -> Any:
    """A field as JSON: tuples as lists, dataclasses (words) as objects."""
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return value


def event_record(emission: Emission) -> dict[str, Any]:
    """One JSONL line: the event's type (its class, lower case), its fields (audio samples left
    out), and when it was emitted on both clocks. Any event type has one, without a case here."""
    event = emission.event
    values = ((f.name, getattr(event, f.name)) for f in dataclasses.fields(event))
    record = {name: _json(value) for name, value in values if not isinstance(value, np.ndarray)}
    return {"type": type(event).__name__.lower(), **record, "emitted": emission.wall, "stream": emission.stream}


class JsonlSink:
    """Every event as a JSON line (nothing dropped). The stream is the caller's to close."""

    name = "events"
    policy: Policy = "all"

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def open(self) -> None: ...

    def write(self, emission: Emission) -> None:
        self.write_record(event_record(emission))

    def write_record(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class TerminalView:
    """Finals as lines that stay; on a terminal, the display's current lines redrawn in place below.
    When translating, each final translation is a line, and its source text an indented line beside
    it (after it with Whisper, which decodes the source once the translation is final; before it
    with a text backend, which translates the source's final). A display: it wants only the newest
    partial state, so its queue keeps the latest."""

    name = "terminal"
    policy: Policy = "latest"

    def __init__(self, stream: TextIO, *, translating: bool = False) -> None:
        self._stream = stream
        self._translating = translating
        self._tty = stream.isatty()
        self._live_lines = 0
        self.finals = 0

    def _clear_live(self) -> None:
        if self._live_lines:
            self._stream.write(f"\x1b[{self._live_lines}F\x1b[J")
            self._live_lines = 0

    def open(self) -> None: ...

    def write(self, emission: Emission) -> None:
        event = emission.event
        if isinstance(event, Transcript) and event.final and self._translating:
            self._clear_live()
            if event.committed:
                self._stream.write(f"          {event.language}: {event.committed}\n")
        elif isinstance(event, Transcript | Translation) and event.final:
            self._clear_live()
            self.finals += 1
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
