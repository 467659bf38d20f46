"""The live session's transcript files: a branch writing each final as it comes (SRT, WebVTT,
text as configured, JSON at the end), and the translation's beside it when translating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import OutputConfig
from pipeline.events import Transcript, Translation
from pipeline.outputs.formats import transcript_writer
from pipeline.runner import Emission, Policy


class TranscriptSink:
    """Finals of the source text into ``<stem>.<format>`` for each of ``output.formats`` (cues
    as long as ``output`` allows), and with ``target`` finals of the translation into
    ``<stem>.<target>.<format>``. ``about`` goes into both JSON documents, and
    ``translation`` (backend, languages) into the translation's."""

    name = "transcript"
    policy: Policy = "all"

    def __init__(
        self,
        out_dir: Path,
        stem: str,
        output: OutputConfig,
        *,
        about: dict[str, Any],
        target: str = "",
        translation: dict[str, Any] | None = None,
    ) -> None:
        self._source = transcript_writer(out_dir, stem, output)
        self._translated = transcript_writer(out_dir, f"{stem}.{target}", output) if target else None
        self._about = about
        self._translation = translation

    def open(self) -> None: ...

    def write(self, emission: Emission) -> None:
        event = emission.event
        if isinstance(event, Transcript) and event.final and event.committed:
            self._source.add(event)
        elif isinstance(event, Translation) and event.final and event.committed and self._translated is not None:
            self._translated.add(event.as_transcript())

    def close(self) -> None:
        self._source.write_json(self._about)
        self._source.close()
        if self._translated is not None:
            self._translated.write_json({**self._about, "translation": self._translation})
            self._translated.close()

    @property
    def written(self) -> list[Path]:
        return self._source.written + (self._translated.written if self._translated is not None else [])
