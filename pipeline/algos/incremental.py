"""Incremental translation policy: translated words are committed by agreement, never retracted.

The committed source text of an utterance grows; each time it reaches a clause or sentence end
(or the utterance ends) it is translated again. A translated word is committed once two
consecutive translations agree on it and on everything before it (LocalAgreement on the target
side, as SimulStreaming does); a backend that can force a prefix (CTranslate2's
``target_prefix``) is given the committed words, so its translations always start with them.
"""

from __future__ import annotations

from pipeline.algos.agreement import key

#: Source text ending with one of these is a good place to translate.
BOUNDARY = (".", "?", "!", ",", ";", ":", "。", "？", "！", "，", "；", "：", "、")


def at_boundary(source: str) -> bool:
    return source.rstrip().endswith(BOUNDARY)


class TargetAgreement:
    """Feed each new translation of the same utterance to :meth:`update`, the last to :meth:`finish`."""

    def __init__(self) -> None:
        self.committed: list[str] = []
        self.tentative: list[str] = []

    def _new_words(self, translation: str) -> list[str]:
        """The words beyond the committed ones. A translation that re-worded the committed part
        (a backend that cannot be forced) is taken to cover it with as many words."""
        words = translation.split()
        return words[len(self.committed) :]

    def update(self, translation: str) -> list[str]:
        new = self._new_words(translation)
        agreed = 0
        while agreed < min(len(new), len(self.tentative)) and key(new[agreed]) == key(self.tentative[agreed]):
            agreed += 1
        self.committed += new[:agreed]
        self.tentative = new[agreed:]
        return new[:agreed]

    def finish(self, translation: str) -> list[str]:
        rest = self._new_words(translation)
        self.committed += rest
        self.tentative = []
        return rest

    @property
    def prefix(self) -> str:
        return " ".join(self.committed)
