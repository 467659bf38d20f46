"""Decoded text checked against the speech VAD found: nothing lost, nothing invented.

Whisper decoding a long chunk sometimes stops early and skips a sentence, or fills a stretch of
silence with a stock phrase ("Ich wünsche Ihnen einen schönen Abend."). Both show in the times:
a stretch of speech that no decoded word overlaps was skipped; a segment none of whose words has
its middle on speech was invented. Times are seconds on one timeline.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.events import Word

Span = tuple[float, float]

#: Whisper's word times can be off by this much at the edges of speech, in seconds.
TOLERANCE_S = 0.2


def on_speech(words: Sequence[Word], speech: Sequence[Span], tolerance: float = TOLERANCE_S) -> bool:
    """True when some word's middle lies on a stretch of speech (widened by ``tolerance``)."""
    return any(
        start - tolerance <= (word.start + word.end) / 2 <= end + tolerance for word in words for start, end in speech
    )


def uncovered(speech: Sequence[Span], words: Sequence[Word]) -> list[Span]:
    """The stretches of speech that no word overlaps."""
    return [(start, end) for start, end in speech if not any(w.start < end and w.end > start for w in words)]


def repeats(before: str, text: str) -> bool:
    """True when ``text`` only says again what ``before`` ended with: Whisper looping in noise
    ("On est dans le fond qu'il y a." three times over one sentence of babble)."""
    said, again = _letters(before), _letters(text)
    return bool(again) and said.endswith(again)


def _letters(text: str) -> str:
    return " ".join("".join(c for c in word if c.isalnum()) for word in text.casefold().split())
