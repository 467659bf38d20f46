"""Subtitle cues from recognised segments: short enough to read, split where the words allow.

A Whisper segment can hold 30 s of speech. A readable cue holds at most two lines (about 42
characters each, the common broadcast limit) for at most ~7 s, so long segments are split
between words, using the word timestamps, preferring the end of a sentence or clause. A segment
without word times (a translation) gets them spread over its span by character count.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.algos.text import ends_clause, ends_sentence
from pipeline.events import Transcript, Word


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def _break_point(words: Sequence[Word]) -> int:
    """How many of ``words`` to put in this cue: after the last sentence end in its second half,
    else after the last clause end there, else all of them."""
    for ends in (ends_sentence, ends_clause):
        for i in range(len(words) - 1, len(words) // 2 - 1, -1):
            if ends(words[i].text):
                return i + 1
    return len(words)


def _join(words: Sequence[Word]) -> str:
    return " ".join(w.text for w in words).strip()


def spread(text: str, start: float, end: float) -> list[Word]:
    """The words of ``text`` timed in proportion to their characters over ``start``-``end``."""
    words = text.split()
    total = sum(len(w) + 1 for w in words) or 1
    timed, position = [], 0
    for word in words:
        begin = start + (end - start) * position / total
        position += len(word) + 1
        timed.append(Word(word, round(begin, 3), round(start + (end - start) * (position - 1) / total, 3)))
    return timed


def cues_for(segment: Transcript, max_chars: int = 84, max_seconds: float = 7.0) -> list[Cue]:
    """Splits one final segment into cues of at most ``max_chars`` / ``max_seconds`` where possible."""
    words = [w for w in segment.words if w.text]
    text = segment.text
    fits = len(text) <= max_chars and segment.end - segment.start <= max_seconds
    if fits or not text:
        return [Cue(segment.start, segment.end, text)] if text else []
    if not words:
        words = spread(text, segment.start, segment.end)
    cues: list[Cue] = []
    current: list[Word] = []
    for word in words:
        candidate = [*current, word]
        too_long = len(_join(candidate)) > max_chars or (current and word.end - current[0].start > max_seconds)
        if current and too_long:
            cut = _break_point(current)
            cues.append(Cue(current[0].start, current[cut - 1].end, _join(current[:cut])))
            current = current[cut:]
        current.append(word)
    if current:
        cues.append(Cue(current[0].start, current[-1].end, _join(current)))
    # Word times can overlap a little; keep cues in order and never zero-length.
    fixed = []
    previous_end = segment.start
    for cue in cues:
        start = max(cue.start, previous_end)
        end = max(cue.end, start + 0.05)
        fixed.append(Cue(round(start, 3), round(end, 3), cue.text))
        previous_end = end
    return fixed


def wrap_lines(text: str, max_chars: int) -> list[str]:
    """At most two balanced lines for a cue of ``max_chars`` (one line when it fits in half)."""
    half = max(max_chars // 2, 1)
    if len(text) <= half:
        return [text]
    # Balanced: the narrowest width that still yields two lines.
    for width in range((len(text) + 1) // 2, len(text) + 1):
        lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
        if len(lines) <= 2:
            return lines
    return [text]
