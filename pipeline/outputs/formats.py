"""Transcript files: SubRip (.srt), WebVTT (.vtt), plain text (.txt) and JSON.

SRT, WebVTT and text are appended cue by cue as segments are finished, so an interrupted run
keeps everything done so far; the JSON document is rewritten atomically now and then and at the
end, with ``"complete": false`` until the whole recording is done.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import srt

from pipeline.algos.cues import Cue, cues_for, wrap_lines
from pipeline.config import OutputConfig
from pipeline.events import Transcript


def _millis(seconds: float) -> int:
    # To the nearest millisecond: srt's own formatting truncates, and would write 59.9996 s as
    # 00:00:59,999 where WebVTT has 00:01:00.000.
    return max(0, round(seconds * 1000))


def timestamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, separator ",") or ``HH:MM:SS.mmm`` (WebVTT, ".")."""
    millis = _millis(seconds)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str, max_chars: int) -> list[str]:
    # "-->" would end a cue's timing line early in either format; a blank line would end the cue,
    # also one inside a wrapped line ("a\n\nb" is one line to wrap_lines).
    wrapped = wrap_lines(text.replace("-->", "->"), max_chars)
    return [part for line in wrapped for part in line.splitlines() if part.strip()]


def srt_cue(index: int, cue: Cue, max_chars: int) -> str:
    subtitle = srt.Subtitle(
        index=index,
        start=timedelta(milliseconds=_millis(cue.start)),
        end=timedelta(milliseconds=_millis(cue.end)),
        content="\n".join(_cue_text(cue.text, max_chars)),
    )
    # Not reindexed: srt would renumber from 1 (this is one cue of many) and drop an empty cue,
    # which would put the numbering out of step with the cues already written.
    block: str = srt.compose([subtitle], reindex=False)
    return block


def vtt_cue(cue: Cue, max_chars: int) -> str:
    """One WebVTT cue block, written here rather than with webvtt-py: its writers (``WebVTT.write``,
    ``save``, ``content``; checked in webvtt-py 0.6.0) give only a whole document from the
    ``WEBVTT`` header on, so appending cue by cue with it would mean rewriting the file at every
    cue (and a Ctrl-C during a rewrite losing it) or cutting the header off a one-cue document.
    It also leaves "&" and "<" as they are (cue markup in WebVTT), which are escaped here."""
    escaped = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    lines = "\n".join(_cue_text(escaped, max_chars))
    return f"{timestamp(cue.start, '.')} --> {timestamp(cue.end, '.')}\n{lines}\n\n"


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Writes ``document`` to a new file beside ``path`` and renames it over ``path``, so that an
    interruption leaves the old file or the new one, never half of one. The file's permissions
    follow the umask, as the other transcript files' do (``mkstemp`` would make it 0600)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            json.dump(document, f, ensure_ascii=False, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def segment_json(segment: Transcript) -> dict[str, Any]:
    return {
        "id": segment.utterance,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "language": segment.language,
        **({"speaker": segment.speaker} if segment.speaker else {}),
        "words": [
            {"word": w.text, "start": w.start, "end": w.end, "probability": round(w.probability, 3)}
            for w in segment.words
        ],
    }


class TranscriptWriter:
    """Writes one recording's transcript files into ``out_dir`` as ``<stem>.<format>``.

    Files are created at the first segment, so a recording with no speech leaves none behind.
    """

    def __init__(
        self, out_dir: Path, stem: str, formats: tuple[str, ...], *, max_cue_chars: int = 84, max_cue_s: float = 7.0
    ) -> None:
        self.paths = {fmt: out_dir / f"{stem}.{fmt}" for fmt in formats}
        self._max_chars = max_cue_chars
        self._max_seconds = max_cue_s
        self._streams: dict[str, IO[str]] = {}
        self._cue_index = 0
        self._labelled = False  # lines start with their speaker
        self.segments: list[Transcript] = []

    def _open(self) -> None:
        for fmt, path in self.paths.items():
            if fmt == "json":
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open across add() calls)
            if fmt == "vtt":
                stream.write("WEBVTT\n\n")
            self._streams[fmt] = stream

    def add(self, segment: Transcript) -> None:
        if not self._streams and not self.segments:
            self._open()
        self.segments.append(segment)
        self._write(segment, self._labelled)
        for stream in self._streams.values():
            stream.flush()

    def _write(self, segment: Transcript, labelled: bool) -> None:
        label = f"[{segment.speaker}] " if labelled and segment.speaker else ""
        for cue in cues_for(segment, self._max_chars - len(label), self._max_seconds):
            cue = Cue(cue.start, cue.end, label + cue.text)
            self._cue_index += 1
            if "srt" in self._streams:
                self._streams["srt"].write(srt_cue(self._cue_index, cue, self._max_chars))
            if "vtt" in self._streams:
                self._streams["vtt"].write(vtt_cue(cue, self._max_chars))
        if "txt" in self._streams:
            self._streams["txt"].write(label + segment.text + "\n")

    def relabel(self, speakers: list[str | None]) -> None:
        """Sets each segment's speaker (in order) and writes SRT, WebVTT and text again, each line
        starting with its speaker ("[S1] ...") when more than one spoke."""
        self.segments = [replace(s, speaker=who) for s, who in zip(self.segments, speakers, strict=True)]
        self._labelled = len({s.speaker for s in self.segments if s.speaker}) > 1
        if not self.segments:
            return
        self.close()
        self._cue_index = 0
        self._open()
        for segment in self.segments:
            self._write(segment, self._labelled)
        self.close()

    def write_json(self, document: dict[str, Any]) -> None:
        if "json" in self.paths and self.segments:
            self.paths["json"].parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.paths["json"], {**document, "segments": [segment_json(s) for s in self.segments]})

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()

    @property
    def written(self) -> list[Path]:
        return [path for path in self.paths.values() if path.exists()] if self.segments else []


def transcript_writer(out_dir: Path, stem: str, output: OutputConfig) -> TranscriptWriter:
    """A writer of ``output.formats`` with cues as long as ``output`` allows."""
    return TranscriptWriter(
        out_dir, stem, output.formats, max_cue_chars=output.max_cue_chars, max_cue_s=output.max_cue_s
    )
