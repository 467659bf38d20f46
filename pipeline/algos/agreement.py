"""Committing streamed words: LocalAgreement-2 with guards against Whisper's failure modes.

Each decode of the open utterance yields a hypothesis. A word is committed once two hypotheses
agree on it (and on everything before it); committed words are never retracted. This is the
LocalAgreement policy of whisper_streaming (Macháček et al., 2023), here applied to whole-
utterance decodes with word times in stream seconds. Decodes here come every ~0.3 s, and two
decodes of nearly the same audio agree on the same mistakes (on the first second of an
utterance Whisper invents whole phrases, twice alike), so the two hypotheses compared must be
decoded from audio ``min_gap_s`` apart: a word is committed once it survived that much more audio.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Sequence

from pipeline.events import Word

#: A committed word said again by a re-worded hypothesis ends at most this far from where it
#: ended when committed, in seconds (Whisper moves word times by up to half a second).
ANCHOR_S = 0.6
#: A word that starts this long before the end of the last committed word is taken as a re-recognition.
OVERLAP_S = 0.15


def key(text: str) -> str:
    """A word as compared between hypotheses: case, punctuation and accents of casing ignored."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in text if not unicodedata.category(c).startswith("P"))


def _same(a: Sequence[Word], b: Sequence[Word]) -> bool:
    return len(a) == len(b) and all(key(x.text) == key(y.text) for x, y in zip(a, b, strict=True))


#: A run of at least this many words said again at once is a loop too, even said only twice: in
#: noisy French one final read "Nous sommes tous en train de faire ce qu'il y a." twice and began
#: it a third time, over 8 s of a sentence with none of those words. Speech seldom repeats five
#: words in a row at once ("thank you very much, thank you very much" is four).
LONG_REPEAT_WORDS = 5


def cut_repetition(words: Sequence[Word], min_repeats: int = 3, max_ngram: int = 4) -> list[Word]:
    """Cuts a hypothesis where Whisper starts looping: an n-gram repeated ``min_repeats`` times
    in a row (a single word needs one more), or a run of ``LONG_REPEAT_WORDS`` or more words
    said twice in a row, keeps only its first occurrence."""
    keys = [key(w.text) for w in words]
    for i in range(len(keys)):
        for n in range(1, max_ngram + 1):
            needed = min_repeats + (1 if n == 1 else 0)
            if i + n * needed > len(keys):
                continue
            gram = keys[i : i + n]
            if all(keys[i + r * n : i + (r + 1) * n] == gram for r in range(1, needed)):
                return list(words[: i + n])
        for n in range(LONG_REPEAT_WORDS, (len(keys) - i) // 2 + 1):
            if keys[i : i + n] == keys[i + n : i + 2 * n]:
                return list(words[: i + n])
    return list(words)


#: Words Whisper places in less than this each, in seconds, ``UNHEARD_RUN`` or more in a row,
#: were not heard: it puts a repeat of what it just said (or of its prompt) into no time at all.
UNHEARD_WORD_S = 0.05
UNHEARD_RUN = 3


def cut_unheard(words: Sequence[Word]) -> list[Word]:
    """Cuts a hypothesis before the first run of ``UNHEARD_RUN`` words that take no time.

    Noisy Portuguese at 4.8 s came out as "... casa dos 20 anos. Segundo informações, ele estava
    na casa dos 20 anos." with every repeated word at 4.78-4.78 s, and the final reused it. Real
    words come out this way only when speech goes on past the end of the decoded audio (in 7 of
    172 windows of English read aloud, cut at 3 and 6 s: "...again, Phil. Lord but I'm glad to"
    at 4.96 s); they are the last, tentative words then, and the next decode hears them.
    """
    run = 0
    for i, word in enumerate(words):
        run = run + 1 if word.end - word.start < UNHEARD_WORD_S else 0
        if run == UNHEARD_RUN:
            return list(words[: i + 1 - UNHEARD_RUN])
    return list(words)


#: Whisper sometimes says its prompt (the committed text) again; this many words or more repeated
#: from the recent committed text are taken as such an echo.
MIN_ECHO_WORDS = 3


def _echo_length(committed: Sequence[Word], later: Sequence[Word]) -> int:
    """How many words at the start of ``later`` repeat a run of the recent committed words."""
    recent = [key(w.text) for w in committed[-40:]]
    words = [key(w.text) for w in later]
    best = 0
    for start in range(len(recent)):
        length = 0
        while length < len(words) and start + length < len(recent) and recent[start + length] == words[length]:
            length += 1
        best = max(best, length)
    return best if best >= MIN_ECHO_WORDS else 0


class LocalAgreement:
    """Feed each new hypothesis of one utterance to :meth:`update`."""

    def __init__(self, min_gap_s: float = 0.0, quick_gap_s: float = 0.0, quick_probability: float = 1.01) -> None:
        self.committed: list[Word] = []
        self.tentative: list[Word] = []
        self._since_trim = 0  # committed words after the current audio trim point
        self._min_gap = min_gap_s
        self._quick_gap = quick_gap_s
        self._quick_probability = quick_probability
        self._history: deque[tuple[float | None, list[Word]]] = deque(maxlen=32)  # (audio end, hypothesis)

    def new_words(self, hypothesis: Sequence[Word]) -> list[Word]:
        """The part of a hypothesis that goes beyond what is committed.

        The decoded audio starts at the trim point, so a hypothesis normally repeats the words
        committed since then: when it does, word for word, the rest is new. When Whisper has
        re-worded the committed part, the new words follow where it says the last committed
        words again at about the same time ("Okay, I" committed, "I thought, you know" heard:
        "thought, you know" is new); failing that, fall back on times, then drop an overlap of up
        to five words that repeats the committed end.
        """
        since_trim = self.committed[len(self.committed) - self._since_trim :] if self._since_trim else []
        if since_trim and _same(hypothesis[: len(since_trim)], since_trim):
            return list(hypothesis[len(since_trim) :])
        if not self.committed:
            return list(hypothesis)
        if (anchored := self._after_anchor(hypothesis)) is not None:
            return anchored
        last_end = self.committed[-1].end
        later = [w for w in hypothesis if w.start >= last_end - OVERLAP_S]
        for n in range(min(5, len(self.committed), len(later)), 0, -1):
            if _same(self.committed[-n:], later[:n]):
                return later[n:]
        return later[_echo_length(self.committed, later) :]

    def _after_anchor(self, hypothesis: Sequence[Word]) -> list[Word] | None:
        """The words after the committed text's last words (three, else two, else one), where the
        hypothesis says them again about where they were committed; None when it does not."""
        last = self.committed[-1]
        for n in range(min(3, len(self.committed)), 0, -1):
            tail = self.committed[-n:]
            ends = [
                j
                for j in range(n - 1, len(hypothesis))
                if abs(hypothesis[j].end - last.end) <= ANCHOR_S and _same(hypothesis[j - n + 1 : j + 1], tail)
            ]
            if ends:
                j = min(ends, key=lambda j: abs(hypothesis[j].end - last.end))
                return list(hypothesis[j + 1 :])
        return None

    def _earlier(self, audio_end: float | None, gap_s: float) -> list[Word] | None:
        """The latest hypothesis decoded from at least ``gap_s`` less audio."""
        for end, hypothesis in reversed(self._history):
            if audio_end is None or end is None or end <= audio_end - gap_s:
                return hypothesis
        return None

    def _agreed(
        self,
        new: Sequence[Word],
        earlier: Sequence[Word] | None,
        until: float | None,
        stop_after: tuple[str, ...],
        probability: float = 0.0,
    ) -> int:
        """How many of ``new`` the earlier hypothesis' new words begin with (no word ending after
        ``until``, none past a word ending with ``stop_after``, each at least ``probability`` in both)."""
        old = self.new_words(earlier) if earlier is not None else []
        agreed = 0
        while (
            agreed < min(len(new), len(old))
            and key(new[agreed].text) == key(old[agreed].text)
            and (until is None or new[agreed].end <= until)
            and min(new[agreed].probability, old[agreed].probability) >= probability
        ):
            agreed += 1
            if stop_after and new[agreed - 1].text.endswith(stop_after):
                break
        return agreed

    def update(
        self,
        hypothesis: Sequence[Word],
        audio_end: float | None = None,
        commit_until: float | None = None,
        stop_after: tuple[str, ...] = (),
        quick_until: float | None = None,
    ) -> list[Word]:
        """Commits the prefix this hypothesis shares with an earlier one, but no word ending after
        ``commit_until`` (stream seconds: the last moments of the audio are where Whisper guesses)
        and nothing past a word ending with one of ``stop_after`` (so that a sentence can be
        closed right after it). ``audio_end`` is where the hypothesis' audio ends. With quick
        commits on, a longer prefix is committed where it agrees with a hypothesis only
        ``quick_gap_s`` older, no word ending after ``quick_until``, each word at least
        ``quick_probability`` in both. Returns the newly committed words."""
        new = self.new_words(hypothesis)
        agreed = self._agreed(new, self._earlier(audio_end, self._min_gap), commit_until, stop_after)
        if self._quick_probability <= 1.0:
            quick = self._agreed(
                new, self._earlier(audio_end, self._quick_gap), quick_until, stop_after, self._quick_probability
            )
            agreed = max(agreed, quick)
        self._commit(new[:agreed])
        self.tentative = new[agreed:]
        self._history.append((audio_end, list(hypothesis)))
        return new[:agreed]

    def finish(self, hypothesis: Sequence[Word] | None = None) -> list[Word]:
        """Closes the utterance: commits the rest of ``hypothesis`` (or the tentative words)."""
        rest = self.new_words(hypothesis) if hypothesis is not None else self.tentative
        self._commit(rest)
        self.tentative = []
        return list(rest)

    def trim(self, at: float) -> None:
        """The decoded audio now starts at stream second ``at`` (a committed sentence end)."""
        self._since_trim = sum(1 for w in self.committed if w.start >= at - OVERLAP_S)

    def _commit(self, words: Sequence[Word]) -> None:
        self.committed.extend(words)
        self._since_trim += len(words)
