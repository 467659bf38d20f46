"""Word error rate, with the text normalisation the references here need.

References come in several styles (LibriSpeech upper case, FLEURS lower case without
punctuation, others punctuated), so both sides are normalised the same way first: Unicode NFKC,
case folded, punctuation and apostrophes removed, hyphens split. Languages written without spaces
(Chinese, Japanese, Thai) are scored by character (CER).

The alignment and the counts are jiwer's (``jiwer.process_words``); so are the normalisation steps
it has an equivalent for. Two steps stay our own, because jiwer's nearest transforms give other
figures on the references measured here:

* case: ``jiwer.ToLowerCase`` is ``str.lower``, which leaves "Straße" one error away from
  "STRASSE" and final "ς" apart from "σ"; ``str.casefold`` makes them equal.
* punctuation: ``jiwer.RemovePunctuation`` deletes punctuation (category P) and keeps symbols
  (S), so "e.g." becomes one word "eg", "well—no" one word "wellno", and "3/4", "A&B" or "+" stay
  as they are; references here join words that way, so punctuation and symbols become a space.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import jiwer

from pipeline.algos.text import UNSPACED

#: Apostrophes join a word ("don't" -> "dont") rather than split it.
_APOSTROPHES = "'’"


class _FoldCase(jiwer.AbstractTransform):
    """Unicode NFKC, then case folded (not lowered: see the module docstring)."""

    def process_string(self, s: str) -> str:
        return unicodedata.normalize("NFKC", s).casefold()


class _PunctuationToSpace(jiwer.AbstractTransform):
    """Every punctuation mark and symbol but an apostrophe becomes a space, so it parts words
    (dashes and hyphens included) instead of gluing them together as ``jiwer.RemovePunctuation`` does."""

    def process_string(self, s: str) -> str:
        return "".join(
            " " if unicodedata.category(c).startswith(("P", "S")) and c not in _APOSTROPHES else c for c in s
        )


class _OneSentence(jiwer.AbstractTransform):
    """Tokens already split, taken as one sentence (jiwer reads a list of strings as many sentences)."""

    def process_list(self, inp: list[str]) -> list[list[str]]:
        return [inp]


_NORMALISE: list[jiwer.AbstractTransform] = [
    _FoldCase(),
    _PunctuationToSpace(),
    jiwer.SubstituteRegexes({f"[{_APOSTROPHES}]": ""}),
    # Any run of Unicode white space (jiwer.RemoveMultipleSpaces leaves a lone tab or line
    # separator, which its word split on " " would then keep inside a word).
    jiwer.SubstituteRegexes({r"\s+": " "}),
    jiwer.Strip(),
]
_TEXT = jiwer.Compose(_NORMALISE)
_WORDS = jiwer.Compose([*_NORMALISE, jiwer.ReduceToListOfListOfWords()])
# Characters without the spaces (jiwer's character split keeps them as characters).
_CHARACTERS = jiwer.Compose([*_NORMALISE, jiwer.RemoveWhiteSpace(), jiwer.ReduceToListOfListOfChars()])
_AS_TOKENS = _OneSentence()


def _transform(language: str) -> jiwer.Compose:
    return _CHARACTERS if language.split("-")[0] in UNSPACED else _WORDS


def normalise(text: str) -> str:
    result: str = _TEXT(text)
    return result


def tokens(text: str, language: str = "en") -> list[str]:
    result: list[list[str]] = _transform(language)(text)
    return result[0]


def _errors(output: jiwer.WordOutput) -> int:
    return output.substitutions + output.deletions + output.insertions


def _reference_length(output: jiwer.WordOutput) -> int:
    return output.hits + output.substitutions + output.deletions


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (substitutions, insertions, deletions)."""
    return _errors(jiwer.process_words(list(reference), list(hypothesis), _AS_TOKENS, _AS_TOKENS))


def wer(reference: str, hypothesis: str, language: str = "en") -> float:
    """Word (or, for unspaced scripts, character) error rate of one hypothesis against one reference."""
    transform = _transform(language)
    output = jiwer.process_words(reference, hypothesis, transform, transform)
    words = _reference_length(output)
    if not words:
        # jiwer gives the number of inserted words here; a rate is capped at 1.
        return 0.0 if not output.insertions else 1.0
    return _errors(output) / words


def corpus_wer(pairs: Sequence[tuple[str, str]], language: str = "en") -> float:
    """Errors summed over all pairs divided by reference words summed (not a mean of WERs)."""
    if not pairs:
        return 0.0
    transform = _transform(language)
    references, hypotheses = zip(*pairs, strict=True)
    output = jiwer.process_words(list(references), list(hypotheses), transform, transform)
    words = _reference_length(output)
    return _errors(output) / words if words else 0.0
