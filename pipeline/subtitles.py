"""Subtitle stage: each Transcript laid out for the display, passed on together with it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from pipeline.algos.layout import display_lines
from pipeline.config import DisplayConfig
from pipeline.events import Subtitle, Transcript


class SubtitleStage:
    """Transcript -> Transcript, Subtitle (the transcript first, unchanged)."""

    name = "subtitles"

    def __init__(self, config: DisplayConfig) -> None:
        self._config = config

    def layout(self, transcript: Transcript) -> Subtitle:
        width, height = self._config.chars_per_line, self._config.lines
        lines = display_lines(transcript.committed, transcript.tentative, width, height)
        return Subtitle(transcript.utterance, lines, transcript.start, transcript.end, transcript.final)

    async def run(self, inputs: AsyncIterator[Transcript]) -> AsyncGenerator[Transcript | Subtitle, None]:
        async for transcript in inputs:
            yield transcript
            yield self.layout(transcript)
