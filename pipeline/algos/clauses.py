"""What to speak, and when: committed text cut into clauses.

Committed text never changes, so any prefix of it may be spoken. Speaking it word by word would
sound broken and a voice only starts once its whole input is synthesised, so text is handed over
at clause boundaries: a sentence end (. ? ! …) always, a comma, semicolon or colon once the
clause holds ``min_words`` words (a lone "So," is kept for the next clause, where it sounds
natural). When the utterance is final, what is left is cut the same way and its tail follows:
short clauses let a pile-up shed less, and a newer utterance wait less behind an older one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Punctuation that ends a clause, when a space (or the end of the committed text) follows: "1,000"
# and "3.5" do not end one.
_SENTENCE_END = re.compile(r"[.?!…。？！]+[\"'»”)]*(?=\s|$)")
_CLAUSE_END = re.compile(r"[,;:，；：]+(?=\s|$)")


@dataclass
class _Utterance:
    spoken: int = 0  # characters of the committed text handed over so far
    done: bool = False


@dataclass
class ClauseSplitter:
    """Feeds on each update of an utterance's committed text; returns the clauses now ready."""

    min_words: int = 3
    _utterances: dict[int, _Utterance] = field(default_factory=dict)

    def feed(self, utterance: int, committed: str, final: bool) -> list[str]:
        state = self._utterances.setdefault(utterance, _Utterance())
        if state.done:
            return []
        clauses = []
        while (end := self._next_end(committed, state.spoken)) is not None:
            clause = committed[state.spoken : end].strip()
            state.spoken = end
            if _has_words(clause):
                clauses.append(clause)
        if final:  # the rest, however short
            state.done = True
            rest = committed[state.spoken :].strip()
            state.spoken = len(committed)
            if _has_words(rest):
                clauses.append(rest)
        return clauses

    def _next_end(self, text: str, start: int) -> int | None:
        """The end of the first clause after ``start`` that is ready to speak, if any."""
        for match in sorted(
            [*_SENTENCE_END.finditer(text, start), *_CLAUSE_END.finditer(text, start)], key=lambda m: m.end()
        ):
            sentence = _SENTENCE_END.fullmatch(match.group()) is not None
            if sentence or len(text[start : match.end()].split()) >= self.min_words:
                return match.end()
        return None


def _has_words(text: str) -> bool:
    return any(c.isalnum() for c in text)
