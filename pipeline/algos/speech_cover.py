"""Decoded text checked against the speech VAD found: nothing lost, nothing invented.

Whisper decoding a long chunk sometimes stops early and skips a sentence or the end of one, or
fills a stretch of silence with a stock phrase ("Ich wünsche Ihnen einen schönen Abend."). Both
show in the times: speech that no decoded word overlaps for a while was skipped; a segment none of
whose words has its middle on speech was invented. Times are seconds on one timeline.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.events import Word

Span = tuple[float, float]

#: Whisper's word times can be off by this much at the edges of speech, in seconds.
TOLERANCE_S = 0.2
#: Speech without a word for this long inside a stretch was skipped, in seconds (Silero's
#: stretches hold no pause of a second, and words follow each other closer than that).
MIN_GAP_S = 1.5
#: No word lasts longer than this, in seconds; where Whisper stopped early, its alignment can
#: stretch the last word over the speech it skipped ("und" over 7 s of German). Such a word is
#: taken to last ``STRETCHED_WORD_S``.
MAX_WORD_S = 2.0
STRETCHED_WORD_S = 0.5
#: Nobody says words faster than this on average, in seconds a word (fast speech is about 0.15).
MIN_WORD_S = 0.08
#: Below this many words, a segment's pace says nothing.
PACE_WORDS = 3


def on_speech(words: Sequence[Word], speech: Sequence[Span], tolerance: float = TOLERANCE_S) -> bool:
    """True when some word's middle lies on a stretch of speech (widened by ``tolerance``)."""
    return any(
        start - tolerance <= (word.start + word.end) / 2 <= end + tolerance for word in words for start, end in speech
    )


def uncovered(speech: Sequence[Span], words: Sequence[Word], min_gap: float = MIN_GAP_S) -> list[Span]:
    """The parts of the stretches of speech that no word overlaps: whole stretches, and gaps of at
    least ``min_gap`` inside one (Whisper stopped before its end, or started late); a word longer
    than ``MAX_WORD_S`` counts for ``STRETCHED_WORD_S``."""
    gaps = []
    for start, end in speech:
        covering = sorted(
            (w.start, w.end if w.end - w.start <= MAX_WORD_S else w.start + STRETCHED_WORD_S)
            for w in words
            if w.start < end and w.end > start
        )
        if not covering:
            gaps.append((start, end))
            continue
        reached = start
        for word_start, word_end in [*covering, (end, end)]:
            if word_start - reached >= min_gap:
                gaps.append((reached, word_start))
            reached = max(reached, word_end)
    return gaps


def too_fast(words: Sequence[Word]) -> bool:
    """True when the words take less time than anyone could say them in: Whisper said a sentence
    again after the speech ended, its words crowded into the last moment ("Le même mois, tu as
    ainsi 17 personnes." in 0.18 s after the whole sentence had been heard)."""
    return len(words) >= PACE_WORDS and words[-1].end - words[0].start < MIN_WORD_S * len(words)


def repeats(before: str, text: str) -> bool:
    """True when ``text`` only says again what ``before`` ended with: Whisper looping in noise
    ("On est dans le fond qu'il y a." three times over one sentence of babble)."""
    said, again = _letters(before), _letters(text)
    return bool(again) and said.endswith(again)


def _letters(text: str) -> str:
    return " ".join("".join(c for c in word if c.isalnum()) for word in text.casefold().split())
