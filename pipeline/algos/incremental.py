"""Incremental translation policy: translated words are committed by agreement, never retracted.

The committed source text of an utterance grows; each time it reaches a clause or sentence end
(or the utterance ends) it is translated again. A translated word is committed once two
consecutive translations agree on it and on everything before it (LocalAgreement on the target
side, as SimulStreaming does); a backend that can force a prefix (CTranslate2's
``target_prefix``) is given the committed words, so its translations always start with them.
"""

from __future__ import annotations

from pipeline.algos.agreement import key
from pipeline.algos.text import ends_clause


def at_boundary(source: str) -> bool:
    """Whether source text ends where translating it is a good idea: at a sentence or clause end."""
    words = source.split()
    return bool(words) and ends_clause(words[-1])


class TargetAgreement:
    """Feed each new translation of the same utterance to :meth:`update`, the last to :meth:`finish`."""

    def __init__(self) -> None:
        self.committed: list[str] = []
        self.tentative: list[str] = []

    def _new_words(self, translation: str) -> tuple[list[str], bool]:
        """The words beyond the committed ones, and whether the translation starts with exactly
        the committed words (a backend that cannot be forced may re-word them). Re-worded, the
        words after the last committed word(s) it repeats are taken as new (at most the last
        three committed words are looked for), else those after as many words as are committed."""
        words = translation.split()
        done = [key(w) for w in self.committed]
        if [key(w) for w in words[: len(done)]] == done:
            return words[len(done) :], True
        for n in range(min(3, len(done)), 0, -1):
            for i in range(len(words) - n, -1, -1):
                if [key(w) for w in words[i : i + n]] == done[-n:]:
                    return words[i + n :], False
        return words[len(done) :], False

    def update(self, translation: str) -> list[str]:
        """Commits the new words this translation shares with the previous one; a translation
        that re-worded the committed words commits nothing (its new words stay tentative)."""
        new, aligned = self._new_words(translation)
        if not aligned:
            self.tentative = new
            return []
        agreed = 0
        while agreed < min(len(new), len(self.tentative)) and key(new[agreed]) == key(self.tentative[agreed]):
            agreed += 1
        self.committed += new[:agreed]
        self.tentative = new[agreed:]
        return new[:agreed]

    def finish(self, translation: str) -> list[str]:
        rest, _ = self._new_words(translation)
        self.committed += rest
        self.tentative = []
        return rest

    @property
    def prefix(self) -> str:
        return " ".join(self.committed)
