"""Word error rate, with the text normalisation the references here need.

References come in several styles (LibriSpeech upper case, FLEURS lower case without
punctuation, others punctuated), so both sides are normalised the same way first: Unicode NFKC,
case folded, punctuation and apostrophes removed, hyphens split. Languages written without spaces
(Chinese, Japanese, Thai) are scored by character (CER).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from pipeline.algos.text import UNSPACED


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("-", " ").replace("–", " ").replace("—", " ")
    kept = [" " if unicodedata.category(c).startswith(("P", "S")) and c not in "'’" else c for c in text]
    text = "".join(kept).replace("'", "").replace("’", "")
    return re.sub(r"\s+", " ", text).strip()


def tokens(text: str, language: str = "en") -> list[str]:
    text = normalise(text)
    if language.split("-")[0] in UNSPACED:
        return [c for c in text if not c.isspace()]
    return text.split()


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def wer(reference: str, hypothesis: str, language: str = "en") -> float:
    """Word (or, for unspaced scripts, character) error rate of one hypothesis against one reference."""
    ref = tokens(reference, language)
    hyp = tokens(hypothesis, language)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def corpus_wer(pairs: Sequence[tuple[str, str]], language: str = "en") -> float:
    """Errors summed over all pairs divided by reference words summed (not a mean of WERs)."""
    errors = 0
    words = 0
    for reference, hypothesis in pairs:
        ref = tokens(reference, language)
        errors += edit_distance(ref, tokens(hypothesis, language))
        words += len(ref)
    return errors / words if words else 0.0
