"""Custom vocabulary: names and terms spelled as the user gives them, and their translations.

A vocabulary file has one term a line, optionally with its translation (``Kowloon``,
``Comité Olímpico = Olympic Committee``); blank lines and lines starting with ``#`` are skipped.
Whisper hears the terms in its prompt (the mechanism behind faster-whisper's ``hotwords``), so
it spells them as given when it hears them. A text translator passes most names through
untranslated: where a term comes out of it as it went in, it is replaced by its translation
(or by the term's own spelling, when it has none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.algos.wer import tokens
from pipeline.errors import ConfigError

#: Characters of terms given to Whisper, at most (its prompt holds about 223 tokens).
MAX_PROMPT_CHARS = 200


@dataclass(frozen=True)
class Term:
    text: str
    translation: str = ""


def parse_terms(lines: Iterable[str]) -> tuple[Term, ...]:
    """Terms from lines of ``term`` or ``term = translation``; ConfigError for a malformed one."""
    terms = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        text, _, translation = (part.strip() for part in line.partition("="))
        if not text or ("=" in line and not translation):
            raise ConfigError(f"vocabulary line {number}: expected 'term' or 'term = translation', got '{line}'")
        terms.append(Term(text, translation))
    return tuple(terms)


def read_vocabulary(path: Path) -> tuple[str, ...]:
    """The lines of a vocabulary file, checked (the configuration keeps them as strings)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"vocabulary file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"vocabulary file {path} is not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"vocabulary file {path}: {e.strerror}") from None
    try:
        terms = parse_terms(lines)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    if not terms:
        raise ConfigError(f"vocabulary file {path} holds no terms")
    return tuple(f"{t.text} = {t.translation}" if t.translation else t.text for t in terms)


def prompt(terms: Sequence[Term], *, translated: bool = False) -> str:
    """The terms as Whisper's prompt (their translations when Whisper translates), as many as fit."""
    text = ""
    for term in terms:
        word = term.translation if translated and term.translation else term.text
        candidate = f"{text}, {word}" if text else word
        if len(candidate) + 1 > MAX_PROMPT_CHARS:
            break
        text = candidate
    return f"{text}." if text else ""


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(text) + r"(?!\w)", re.IGNORECASE)


def apply(translation: str, terms: Sequence[Term]) -> str:
    """A text translator's output with the terms it passed through replaced by their translations
    (or given their own spelling); longer terms first, so that one inside another stays whole."""
    for term in sorted(terms, key=lambda t: len(t.text), reverse=True):
        translation = _pattern(term.text).sub(term.translation or term.text, translation)
    return translation


def occurrences(text: str, term: str, language: str = "en") -> int:
    """How often ``term`` occurs in ``text``, both normalised as WER scoring does."""
    words, wanted = tokens(text, language), tokens(term, language)
    if not wanted:
        return 0
    return sum(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


def term_scores(
    pairs: Sequence[tuple[str, str]], terms: Sequence[Term], language: str = "en"
) -> dict[str, float | int]:
    """Term recall and precision over (reference, hypothesis) pairs: an occurrence counts as found
    when the hypothesis of the same pair holds the term as often."""
    expected = found = heard = 0
    for reference, hypothesis in pairs:
        for term in terms:
            want, got = occurrences(reference, term.text, language), occurrences(hypothesis, term.text, language)
            expected, heard, found = expected + want, heard + got, found + min(want, got)
    return {
        "term_occurrences": expected,
        "term_recall": round(found / expected, 4) if expected else 0.0,
        "term_precision": round(found / heard, 4) if heard else 0.0,
    }
