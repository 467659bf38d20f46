"""Subtitle layout: what the display shows, laid out for it. A tap of the session graph: it
reads every text event the trunk publishes and publishes a Subtitle for each one shown.

Without translation each Transcript is laid out. With translation the wearer reads the
Translation (and the Transcript of a speaker only ``captioned``, such as the wearer's own words
when the glasses' array labels them); with ``display.show_source`` the top line shows the end of the source text heard
so far (its latest words), and the translation takes the lines below.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Collection

from pipeline.algos.layout import committed_chars, display_lines, wrap
from pipeline.config import DisplayConfig
from pipeline.events import Subtitle, Transcript, Translation


class SubtitleStage:
    """Transcript, Translation -> a Subtitle for each event the wearer reads."""

    name = "subtitles"

    def __init__(self, config: DisplayConfig, *, translating: bool = False, captioned: Collection[str] = ()) -> None:
        self._config = config
        self._translating = translating
        self._captioned = frozenset(captioned)  # speakers whose utterances are shown untranslated
        self._source: dict[int, str] = {}  # the latest source text of each open utterance
        self._closed = -1  # the latest utterance whose translation is final (ids only grow)

    def layout(self, event: Transcript | Translation) -> Subtitle:
        width, height = self._config.chars_per_line, self._config.lines
        source = self._source.get(event.utterance, "")
        if isinstance(event, Translation) and self._config.show_source and height > 1 and source:
            # The source line is the end of what was heard so far: it moves as speech goes on.
            top = wrap(source, width)[-1:]
            lines = (*top, *display_lines(event.committed, event.tentative, width, height - 1))
            committed = (0, *committed_chars(event.committed, event.tentative, width, height - 1))
        else:
            lines = display_lines(event.committed, event.tentative, width, height)
            committed = committed_chars(event.committed, event.tentative, width, height)
        if event.final:  # nothing of a final changes again
            committed = tuple(len(line) for line in lines)
        return Subtitle(event.utterance, lines, event.start, event.end, event.final, committed, event.speaker)

    async def run(self, inputs: AsyncIterator[object]) -> AsyncGenerator[Subtitle, None]:
        async for event in inputs:
            if not isinstance(event, Transcript | Translation):
                continue
            if isinstance(event, Transcript) and self._translating and event.speaker not in self._captioned:
                if event.utterance > self._closed:  # Whisper's source text comes after the translation
                    self._source[event.utterance] = event.text
                continue
            yield self.layout(event)
            if event.final:
                self._source.pop(event.utterance, None)
                self._closed = max(self._closed, event.utterance)
