"""Facts about written text that several stages need: where sentences and clauses end (from
the punctuation Whisper gives a word), and which languages are written without spaces.

The live path ends utterances and trims audio after sentence ends, the recordings path breaks
subtitle cues there, and incremental translation translates up to a clause end.
"""

from __future__ import annotations

from pipeline.algos.agreement import key

#: Languages written without spaces between words.
UNSPACED = frozenset({"zh", "ja", "th", "lo", "km", "my", "yue", "bo"})
SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
CLAUSE_END = (*SENTENCE_END, ",", ";", ":", "，", "、", "；", "：")
#: Words with a full stop that do not end a sentence (as ``key`` gives them): titles and common
#: abbreviations in the languages measured here. "And Mr. | John Dashwood had..." was cut after
#: "Mr." and its second half decoded without it.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr gen gov sen rep rev capt col lt sgt mt vs "  # en
    "sra srta dra ud uds lic "  # es, pt
    "mme mlle mgr "  # fr
    "hr nr bzw zb dh ca".split()  # de
)


def ends_sentence(text: str) -> bool:
    """Whether a word ends a sentence: with a full stop, question or exclamation mark, and not as
    a title, an abbreviation or an initial ("Mr.", "Dr.", "J.")."""
    if not text.endswith(SENTENCE_END):
        return False
    stem = key(text)
    return not (text.endswith(".") and ((len(stem) == 1 and stem.isalpha()) or stem in ABBREVIATIONS))


def ends_clause(text: str) -> bool:
    """Whether a word ends a clause: a sentence end (as ``ends_sentence``), comma, semicolon or colon."""
    return ends_sentence(text) or (text.endswith(CLAUSE_END) and not text.endswith("."))
