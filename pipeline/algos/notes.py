"""Meeting notes from a transcript without a language model: sentences, an extractive summary,
topics and the decisions and action items said aloud.

Everything here is a pure function of its input: the same transcript always gives the same notes,
and nothing is learnt or downloaded. Five languages are covered by hand-written tables: English,
Spanish, German, French and Portuguese (``en``, ``es``, ``de``, ``fr``, ``pt``).

- ``sentences``: the words of the segments, split after sentence-ending punctuation (. ? ! …)
  unless the word is a title, an initial or an abbreviation ("Mr.", "J. Smith", "a.c.", "z.B.",
  "am 3. März"); a sentence runs on across segments when a segment does not end one, but never
  across a change of speaker. Each sentence is timed by its first and last word (by its segments
  when they carry no words).
- ``summary``: extractive. Sentences become TF-IDF vectors (scikit-learn; stop words and a light
  plural folding per language, written here) and are ranked by LexRank (Erkan & Radev, 2004):
  PageRank over the graph whose edges are the cosine similarities, so a sentence ranks high when
  it shares words with many sentences that themselves do. Sentences under four words ("Okay.",
  "Yes, exactly.") are never picked, nor one nearly repeating a sentence already picked.
- ``topics``: TextTiling (Hearst, 1997) over sentences: the cosine similarity of the blocks of
  ``BLOCK`` sentences either side of every gap, smoothed, and a new topic where a dip in it is
  at least ``DEPTH_MIN`` deep (the value and how it was chosen are with it). Keywords are the
  topic's terms with the highest count x IDF.
- ``items``: decisions and action items from cue phrases ("we decided", "I'll", "hay que",
  "wir müssen", "il faut", "vou"...), with the owner (a name the task is given to, or the speaker
  when they commit themselves) and the due time as said ("on Friday", "el viernes", "bis Ende des
  Monats").

Limits. Cue phrases find what is said in the expected ways and miss the rest ("that's on me"),
and they take any future "I'll" for a commitment ("I'll be honest"), and "Maria will be away"
for a task. A name is only found when it is capitalised, so an all-lower-case transcript gives
no named owners (and "maria will send it" is no item at all). A question is an action only when
it asks someone to do something ("can you..."). Words are not stemmed beyond plurals (none in
German), so "decide" and "decision" are different terms. TF-IDF over single sentences is
sparse: fewer than ``2 * MIN_TOPIC_SENTENCES`` sentences with content words are always one
topic, and the threshold was set on a few scripted meetings, not measured on real ones. LexRank
favours short sentences full of the meeting's most frequent words, and the subject talked about
longest. Due times are kept as said, not resolved to dates.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from pipeline.algos.text import ABBREVIATIONS

__all__ = [
    "BLOCK",
    "DEPTH_MIN",
    "LANGUAGES",
    "MIN_SUMMARY_WORDS",
    "MIN_TOPIC_SENTENCES",
    "SMOOTHING",
    "Item",
    "Sentence",
    "Topic",
    "items",
    "sentences",
    "summary",
    "topics",
]

#: The languages with stop words and cue phrases here.
LANGUAGES = ("en", "es", "de", "fr", "pt")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of the transcript, with the times of its first and last word (seconds)."""

    text: str
    start: float
    end: float
    speaker: str | None
    language: str


@dataclass(frozen=True, slots=True)
class Topic:
    """A stretch of the meeting about one subject, with its most telling words."""

    start: float
    end: float
    keywords: tuple[str, ...]
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True, slots=True)
class Item:
    """A decision or an action item: the sentence that says it, who is to do it and by when."""

    kind: Literal["decision", "action"]
    text: str
    start: float
    end: float
    owner: str | None  # a name the task was given to, or the speaker who took it on; else None
    due: str | None  # the time phrase as said ("on Friday", "el viernes"), not a resolved date
    speaker: str | None


# --------------------------------------------------------------------------------------------
# Text normalisation


_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "´": "'", "`": "'"})


def _fold_char(char: str) -> str:
    """One character without accents and case, always as one character (so that positions in
    folded text are positions in the original)."""
    if char in "’‘ʼ´`":
        return "'"
    base = unicodedata.normalize("NFD", char)[0]
    lower = base.lower()
    return lower if len(lower) == 1 else base


def _fold(text: str) -> str:
    """Text as cue phrases are matched: no accents, lower case, one apostrophe, same length."""
    return "".join(_fold_char(c) for c in text)


def _fold_pattern(source: str) -> str:
    """A regular expression written with accents, folded like the text (ASCII left as it is:
    lower-casing would turn ``\\W`` into ``\\w``)."""
    return "".join(_fold_char(c) if ord(c) > 127 else c for c in source)


def _base_language(language: str) -> str:
    return language.strip().lower().replace("_", "-").split("-")[0]


# --------------------------------------------------------------------------------------------
# Sentences

_CLOSERS = "\"'”’»)]}"
_OPENERS = "\"'“‘«¿¡([{"
_MONTHS = frozenset(
    _fold(m)
    for m in (
        "january february march april may june july august september october november december "
        "enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre "
        "januar februar märz april mai juni juli august september oktober november dezember "
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre "
        "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro"
    ).split()
)
#: Abbreviations that may also end a sentence: they do when the next word is capitalised.
_SOFT_ABBREVIATIONS = frozenset("etc usw approx vgl ggf evtl inkl bspw resp cf".split())
#: Dotted abbreviations that never end a sentence ("e.g. Maria", "z.B. Montag").
_DOTTED_CONTINUING = frozenset("eg ie zb dh ua pej pex vgl".split())


def _first_letter_upper(word: str) -> bool:
    return next((c.isupper() for c in word if c.isalpha()), False)


def _ends_sentence(word: str, following: str | None) -> bool:
    """Whether ``word`` ends a sentence, given the word after it (None at the end of a turn)."""
    if following is None:
        return True
    bare = word.rstrip(_CLOSERS)
    if bare.endswith(("?", "!", "？", "！", "。")):
        return True
    if bare.endswith(("…", "...")):
        # A trailing-off "So... we" goes on; "...Then" starts anew.
        return _first_letter_upper(following)
    if not bare.endswith("."):
        return False
    stem = bare.rstrip(".").lstrip(_OPENERS)
    if not stem:
        return True
    core = _fold(stem).replace(".", "")
    next_upper = _first_letter_upper(following)
    if "." in stem:  # "a.c.", "e.g.", "U.S.", "3.5."
        return next_upper and core not in _DOTTED_CONTINUING
    if core in ABBREVIATIONS:  # titles: "Mr. Smith", "Dr. Weber"
        return False
    if core in _SOFT_ABBREVIATIONS:
        return next_upper
    if len(stem) == 1 and stem.isalpha():
        # "J. Smith" is an initial; "option B. Then we..." ends a sentence.
        return not (next_upper and _fold(following.strip(_OPENERS + _CLOSERS + ".,;:")) not in _ALL_STOP_WORDS)
    # Not after the German ordinal date "am 3. März".
    return not (stem.isdigit() and _fold(following.strip(_OPENERS + _CLOSERS + ".,;:")) in _MONTHS)


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: float
    end: float
    speaker: str | None
    language: str


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _tokens(segment: Mapping[str, Any]) -> Iterator[_Token]:
    seg_start = _number(segment.get("start"), 0.0)
    seg_end = max(seg_start, _number(segment.get("end"), seg_start))
    speaker = segment.get("speaker")
    speaker = str(speaker) if speaker is not None else None
    language = str(segment.get("language") or "")
    words = [w for w in segment.get("words") or () if str(w.get("word", "")).strip()]
    if words:
        for word in words:
            start = _number(word.get("start"), seg_start)
            end = max(start, _number(word.get("end"), start))
            # Whisper's words carry a leading space; any other whitespace becomes one space.
            yield _Token(" ".join(str(word["word"]).split()), start, end, speaker, language)
    else:
        for text in str(segment.get("text") or "").split():
            yield _Token(text, seg_start, seg_end, speaker, language)


def sentences(segments: Sequence[Mapping[str, Any]]) -> list[Sentence]:
    """The transcript's sentences in order, each timed from its first word's start to its last
    word's end (its segments' times where they have no words).

    A sentence ends at ".", "?", "!" or "…" (not after a title, initial or abbreviation), and at
    a change of speaker; otherwise it goes on into the next segment.
    """
    tokens = [token for segment in segments for token in _tokens(segment)]
    found: list[Sentence] = []
    current: list[_Token] = []
    for i, token in enumerate(tokens):
        current.append(token)
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if following is not None and following.speaker != token.speaker:
            following = None
        if _ends_sentence(token.text, following.text if following else None):
            first = current[0]
            text = " ".join(t.text for t in current)
            found.append(Sentence(text, first.start, max(t.end for t in current), first.speaker, first.language))
            current = []
    return found


# --------------------------------------------------------------------------------------------
# Terms: stop words and light plural folding

#: Words in scikit-learn's English list that carry a meeting's subject ("the billing system").
_ENGLISH_CONTENT_WORDS = frozenset(
    "bill bottom call cry describe detail empty fill fire front full interest mill move name part serious show "
    "side sincere system thick thin top amount".split()
)
# Short, honest lists: function words, pronouns, auxiliaries and the fillers of talk. English
# starts from scikit-learn's list. All are matched after folding (no accents, lower case).
_STOP_SOURCE = {
    "en": " ".join(sorted(ENGLISH_STOP_WORDS - _ENGLISH_CONTENT_WORDS))
    + " ll ve re don didn doesn isn aren wasn weren won wouldn couldn shouldn ain let lets im youre"
    " okay ok yeah yes yep uh um uhm hmm mm oh ah like just really actually basically think know guess"
    " going gonna wanna want got get gets getting thing things stuff lot lots maybe sure right well"
    " good great kind sort mean say said tell told need needs look looks make let's",
    "es": "a al algo algunas algunos ante antes aquel aquella aquellas aquello aquellos aqui así bien bueno cada"
    " casi como con contra cual cuales cuando de del desde donde dos durante e el ella ellas ello ellos en"
    " entonces entre era eramos eran eres es esa esas ese eso esos esta estaba estamos estan estar estas este"
    " esto estos estoy fue fueron ha habia han has hasta hay he la las le les lo los mas me mi mis mucho"
    " muy nada ni no nos nosotros o os otra otras otro otros para pero poco por porque pues que quien se"
    " sea ser si sido siempre sin sobre solo son soy su sus tambien tampoco tan te tenemos tener tengo"
    " tiene tienen todo todos tu tus un una unas uno unos usted ustedes va vamos van voy y ya yo vale"
    " sí claro eh este pues o sea ok okay creo digo dice hacer hace puede puedes podemos entonces",
    "de": "aber alle allem allen aller alles als also am an andere anderen auch auf aus bei beim bin bis bist"
    " da dann das dass dem den denn der des dich die dir doch dort du durch ein eine einem einen einer"
    " eines er es etwas euch euer für gegen gibt habe haben hat hatte hier hin hinter ich ihm ihn ihnen"
    " ihr ihre im in ist ja jetzt kann kein keine können man mehr mein meine mich mir mit muss müssen"
    " nach nicht nichts noch nun nur ob oder ohne schon sehr sein seine sich sie sind so soll sollen"
    " sollten über um und uns unser unsere unter viel vom von vor war waren was weil wenn wer werde"
    " werden wie wieder wir wird wo wollen zu zum zur zwischen okay ok genau gut halt mal eben eigentlich"
    " glaube denke ähm äh hm naja na also klar",
    "fr": "a à ai aie ainsi alors as au aussi autre aux avec avoir avons bien c ça car ce cela celle celui ces"
    " cet cette chaque comme comment d dans de des deux donc dont du elle elles en encore est et été"
    " être eu fait faire il ils j je jusqu l la le les leur leurs lui m ma mais me même mes moi mon"
    " n ne ni nos notre nous on ont ou où par pas peu peut plus pour pourquoi qu quand que quel quelle"
    " qui s sa sans se ses si son sont sous sur t ta te tes toi ton tous tout toute toutes très tu un"
    " une va vais vos votre vous y euh ben bon bah ok okay oui voilà alors enfin quoi hein truc chose"
    " aujourd hui faut crois pense dit dire",
    "pt": "a à ao aos as às até com como da das de dela dele deles depois do dos e é ela elas ele eles em"
    " entre era eram essa essas esse esses esta está estamos estão estar estas este estes eu foi foram"
    " há isso isto já la lá lhe lhes mais mas me mesmo meu meus minha minhas muito na nas não nem no"
    " nos nós nossa nosso num numa o os ou para pela pelas pelo pelos por porque qual quando que quem"
    " se sem ser seu seus só sua suas também te tem têm temos ter teu tu tua um uma umas uns você vocês"
    " vai vamos vou sim ok okay né então tá bom bem coisa acho assim aqui ali pode podemos fazer",
}
_STOP_WORDS = {language: frozenset(_fold(w) for w in words.split()) for language, words in _STOP_SOURCE.items()}
_ALL_STOP_WORDS = frozenset().union(*_STOP_WORDS.values())
_WORD = re.compile(r"[^\W\d_]+")


def _stem(term: str, language: str) -> str:
    """Plural folding only, where a plain rule is right most of the time (not German)."""
    if language == "en" and len(term) > 4 and term.endswith("ies"):
        return term[:-3] + "y"
    if language == "es" and len(term) > 6 and term.endswith("iones"):
        return term[:-2]  # reuniones -> reunion
    if language == "pt" and len(term) > 5 and term.endswith("oes"):
        return term[:-3] + "ao"  # decisões -> decisao
    if language in ("en", "es", "fr", "pt") and len(term) > 4 and term.endswith("s"):
        return term if term.endswith(("ss", "us", "is")) else term[:-1]
    return term


def _surface_terms(text: str, language: str) -> list[tuple[str, str]]:
    """(term, word as written) for the content words of ``text``."""
    stop = _STOP_WORDS.get(language, frozenset())
    pairs = []
    for word in _WORD.findall(unicodedata.normalize("NFC", text).translate(_APOSTROPHES)):
        folded = _fold(word)
        if len(folded) >= 2 and folded not in stop:
            pairs.append((_stem(folded, language), word))
    return pairs


def _analyzer(language: str) -> Callable[[str], list[str]]:
    def terms(text: str) -> list[str]:
        return [term for term, _ in _surface_terms(text, language)]

    return terms


Matrix = npt.NDArray[np.float64]


def _tfidf(texts: Sequence[str], language: str) -> tuple[Matrix, dict[str, float]]:
    """L2-normalised TF-IDF rows for ``texts`` and the inverse document frequency of each term."""
    analyzer = _analyzer(_base_language(language))
    if not any(analyzer(t) for t in texts):
        return np.zeros((len(texts), 0)), {}
    vectorizer = TfidfVectorizer(analyzer=analyzer)
    rows = np.asarray(vectorizer.fit_transform(texts).toarray(), dtype=np.float64)
    terms = vectorizer.get_feature_names_out()
    return rows, {str(t): float(v) for t, v in zip(terms, vectorizer.idf_, strict=True)}


# --------------------------------------------------------------------------------------------
# Summary

#: Sentences shorter than this (in words) are never in the summary: "Okay, sounds good."
MIN_SUMMARY_WORDS = 4
#: A sentence this similar (cosine) to one already picked only repeats it.
_REPEAT_SIMILARITY = 0.7
_DAMPING = 0.85


def _lexrank(similarity: Matrix) -> Matrix:
    """Continuous LexRank: the stationary distribution of a random walk that follows similarity
    edges with probability ``_DAMPING`` and jumps anywhere otherwise (power iteration)."""
    n = similarity.shape[0]
    weights = similarity.copy()
    np.fill_diagonal(weights, 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    # A sentence sharing no word with any other spreads its weight evenly.
    transition = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), 1.0 / n)
    scores = np.full(n, 1.0 / n)
    for _ in range(200):
        updated = (1 - _DAMPING) / n + _DAMPING * (transition.T @ scores)
        done = float(np.abs(updated - scores).sum()) < 1e-12
        scores = updated
        if done:
            break
    return scores


def summary(sentences: Sequence[Sentence], language: str, count: int = 5) -> list[Sentence]:
    """The ``count`` most central sentences (LexRank over TF-IDF cosine similarity), in time
    order. Sentences under ``MIN_SUMMARY_WORDS`` words or without content words are skipped, and
    so is one repeating a sentence already picked. Ties go to the earlier sentence."""
    if count <= 0 or not sentences:
        return []
    rows, _ = _tfidf([s.text for s in sentences], language)
    eligible = [i for i, s in enumerate(sentences) if len(s.text.split()) >= MIN_SUMMARY_WORDS and rows[i].any()]
    if not eligible:
        return []
    vectors = rows[eligible]
    similarity = vectors @ vectors.T
    scores = _lexrank(similarity)
    # Rounded so that floating-point noise cannot reorder equal scores; then earlier first.
    order = sorted(range(len(eligible)), key=lambda j: (-round(float(scores[j]), 9), eligible[j]))
    picked: list[int] = []
    for j in order:
        if len(picked) == count:
            break
        if all(similarity[j, k] < _REPEAT_SIMILARITY for k in picked):
            picked.append(j)
    return [sentences[eligible[j]] for j in sorted(picked)]


# --------------------------------------------------------------------------------------------
# Topics

#: Sentences (with content words: "Okay." does not count) in the block either side of a gap.
BLOCK = 4
#: Gap similarities are averaged over this many neighbouring gaps before depths are measured, so
#: that one sentence sharing no word with its neighbours does not look like a change of subject.
SMOOTHING = 3
#: A topic boundary needs a dip in the (smoothed) block similarity at least this deep: the rises
#: to the nearest peaks on its left and right, added. On scripted meetings of 9-11 sentences per
#: subject, in English and Spanish, the dip between two subjects was 0.58-0.59 deep, the deepest
#: one within a subject 0.25, and 0.35 in a 20-sentence meeting on one subject whose talk drifts
#: (password resets, then the help centre, then billing). 0.45 lies between them.
DEPTH_MIN = 0.45
#: The fewest content sentences in a topic: a boundary closer than this to another one or to an
#: end is not taken (the shallower of two close boundaries gives way).
MIN_TOPIC_SENTENCES = 4
_KEYWORDS = 5


def _cosine(a: Matrix, b: Matrix) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


def _depths(scores: Sequence[float]) -> list[float]:
    """TextTiling's depth of each gap: how far the score climbs to its peak on either side."""
    depths = []
    for i, score in enumerate(scores):
        left = i
        while left > 0 and scores[left - 1] >= scores[left]:
            left -= 1
        right = i
        while right < len(scores) - 1 and scores[right + 1] >= scores[right]:
            right += 1
        depths.append((scores[left] - score) + (scores[right] - score))
    return depths


def _smooth(scores: Sequence[float]) -> list[float]:
    """Each score averaged with its neighbours (``SMOOTHING`` in all, fewer at the ends)."""
    half = SMOOTHING // 2
    return [float(np.mean(scores[max(0, i - half) : i + half + 1])) for i in range(len(scores))]


def _boundaries(rows: Matrix) -> list[int]:
    """Indices of the sentences that start a new topic. Only sentences with content words are
    compared; the fillers before a boundary stay with the topic before it."""
    content = [i for i in range(rows.shape[0]) if rows[i].any()]
    vectors = rows[content]
    n = len(content)
    if n < 2 * MIN_TOPIC_SENTENCES:
        return []
    # Gap g lies between content sentences g-1 and g.
    gaps = range(1, n)
    raw = [_cosine(vectors[max(0, g - BLOCK) : g].sum(axis=0), vectors[g : g + BLOCK].sum(axis=0)) for g in gaps]
    depths = _depths(_smooth(raw))
    candidates = sorted(
        (g for g, depth in zip(gaps, depths, strict=True) if depth >= DEPTH_MIN),
        key=lambda g: (-round(depths[g - 1], 9), g),
    )
    chosen: list[int] = []
    for g in candidates:
        if min(g, n - g) >= MIN_TOPIC_SENTENCES and all(abs(g - c) >= MIN_TOPIC_SENTENCES for c in chosen):
            chosen.append(g)
    return sorted(content[g] for g in chosen)


def _keywords(part: Sequence[Sentence], idf: Mapping[str, float], language: str) -> tuple[str, ...]:
    """The terms of ``part`` with the highest count x IDF, each as it is most often written."""
    counts: Counter[str] = Counter()
    written: dict[str, Counter[str]] = {}
    for sentence in part:
        for term, word in _surface_terms(sentence.text, language):
            counts[term] += 1
            written.setdefault(term, Counter())[word] += 1
    ranked = sorted(counts, key=lambda t: (-round(counts[t] * idf.get(t, 1.0), 9), t))[:_KEYWORDS]
    # The most frequent spelling; on a tie lower case ("budget" over "Budget" at a sentence start).
    return tuple(min(written[t], key=lambda w: (-written[t][w], not w.islower(), w)) for t in ranked)


def topics(sentences: Sequence[Sentence], language: str) -> list[Topic]:
    """The meeting cut where its subject changes (TextTiling over sentences, see ``DEPTH_MIN``),
    each part with its time range and up to five keywords. A short or single-subject meeting is
    one topic; no sentences, no topics."""
    if not sentences:
        return []
    base = _base_language(language)
    rows, idf = _tfidf([s.text for s in sentences], base)
    cuts = [0, *_boundaries(rows), len(sentences)]
    found = []
    for begin, end in itertools.pairwise(cuts):
        part = tuple(sentences[begin:end])
        found.append(Topic(part[0].start, max(s.end for s in part), _keywords(part, idf, base), part))
    return found


# --------------------------------------------------------------------------------------------
# Decisions and action items


@dataclass(frozen=True, slots=True)
class _Said:
    """A sentence in the forms cue phrases are matched on, all of the same length so that a
    match's position is the same in each."""

    text: str  # as said (NFC)
    lowered: str  # lower case, one kind of apostrophe, accents kept
    folded: str  # and without accents: "müssen" is "mussen", "décidé" is "decide"

    @classmethod
    def of(cls, text: str) -> _Said:
        text = unicodedata.normalize("NFC", text)
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text.translate(_APOSTROPHES))
        return cls(text, lowered, _fold(text))


def _bounded(alternative: str) -> str:
    # A cue is a whole word, except a clitic that hangs on the word before it ("Maria'll").
    opening = "" if alternative.startswith("'") else r"(?<![\w'])"
    return rf"{opening}(?:{alternative})(?![\w'])"


@dataclass(frozen=True, slots=True)
class _Cue:
    """Phrases matched without accents (most), and phrases whose accents matter, matched with
    them: Spanish "enviará" is a future, "espera" is not."""

    folded: re.Pattern[str] | None
    accented: re.Pattern[str] | None

    def finditer(self, said: _Said) -> list[re.Match[str]]:
        found = [*(self.folded.finditer(said.folded) if self.folded else ())]
        found += self.accented.finditer(said.lowered) if self.accented else ()
        return sorted(found, key=lambda m: (m.start(), -m.end()))


def _cue(*alternatives: str, accented: Sequence[str] = ()) -> _Cue:
    """Cue phrases as regular expressions, written in lower case with their accents."""
    folded = "|".join(_bounded(_fold_pattern(a)) for a in alternatives)
    strict = "|".join(_bounded(a) for a in accented)
    return _Cue(re.compile(folded) if folded else None, re.compile(strict) if strict else None)


@dataclass(frozen=True, slots=True)
class _Cues:
    """One language's cue phrases."""

    decision: _Cue
    #: The speaker takes the task on ("I'll", "voy a"): owner = the speaker.
    first_person: _Cue
    #: The verb after a name that gives that person the task ("Maria will", "Maria enviará").
    assigned: _Cue
    #: German also puts the name after the verb: "Dann schickt Maria den Bericht".
    assigned_before_name: _Cue | None
    #: Actions for the group, the listener or no one in particular: owner unknown.
    other: _Cue
    #: Requests, the only questions that are actions ("can you ...?").
    request: _Cue
    #: A time phrase with its preposition ("on Friday", "bis Ende des Monats"), for the due time.
    when: _Cue
    #: A deadline ("by Friday", "bis Freitag", "d'ici vendredi", "até sexta"): an action cue itself.
    deadline: _Cue
    #: A word just before a cue that negates it ("no voy a").
    negation_before: frozenset[str]
    #: A word just after an action cue that negates it ("I will not").
    negation_after: frozenset[str]
    #: Determiners and prepositions: a capitalised word after one is a noun, not a name ("Der
    #: Bericht wird", "Bis Freitag muss").
    before_nouns: frozenset[str]


def _time_cues(prepositions: str, times: Sequence[str], deadline_prepositions: str) -> tuple[_Cue, _Cue]:
    """The "when" and "deadline" cues from a language's time phrases (longest first: a regular
    expression takes the first alternative that matches)."""
    phrase = "|".join(times)
    return _cue(rf"(?:(?:{prepositions}) )?(?:{phrase})"), _cue(rf"(?:{deadline_prepositions}) (?:{phrase})")


_EN_DAYS = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_EN_MONTHS = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_EN_DAY_NUMBER = r"\d{1,2}(?:st|nd|rd|th)?"
_EN_WHEN, _EN_DEADLINE = _time_cues(
    r"no later than|by|before|until|till|due|for|on|at",
    (
        rf"(?:the )?end of (?:the |this |next )?(?:day|week|month|quarter|year|sprint|{_EN_MONTHS})",
        rf"(?:the )?{_EN_DAY_NUMBER} of {_EN_MONTHS}",
        rf"{_EN_MONTHS} {_EN_DAY_NUMBER}",
        rf"{_EN_DAY_NUMBER} {_EN_MONTHS}",
        r"the day after tomorrow",
        rf"(?:next |this |coming |the )?{_EN_DAYS}(?: (?:morning|afternoon|evening|night))?",
        r"(?:next|this|the following) (?:week|month|quarter|year|sprint)",
        r"in (?:\d+|one|two|three|four|five|six|a couple of|a few) (?:days?|weeks?|months?)",
        r"tomorrow(?: (?:morning|afternoon|evening|night))?",
        r"today|tonight|eod",
    ),
    r"no later than|by|before|until|till|due",
)

_ES_DAYS = r"(?:lunes|martes|miércoles|jueves|viernes|sábado|domingo)"
_ES_MONTHS = r"(?:enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre)"
_ES_WHEN, _ES_DEADLINE = _time_cues(
    r"a más tardar|antes del|antes de|hasta|para",
    (
        rf"(?:el |a |al )?(?:fin|final|finales) de(?:l)? (?:este |la |el )?"
        rf"(?:día|semana|mes|trimestre|año|{_ES_MONTHS})",
        rf"(?:el )?\d{{1,2}} de {_ES_MONTHS}",
        r"pasado mañana",
        rf"(?:el próximo |la próxima |el |este |esta )?{_ES_DAYS}"
        r"(?: (?:que viene|próximo|por la (?:mañana|tarde|noche)))?",
        r"(?:la )?semana que viene|(?:el )?mes que viene|(?:la )?próxima semana|(?:el )?próximo mes",
        r"esta semana|este mes",
        r"en (?:\d+|un|una|dos|tres|cuatro|cinco|seis|un par de) (?:días?|semanas?|mes|meses)",
        # "mañana" is also "morning": "esta mañana", "por la mañana".
        r"(?<!la )(?<!esta )(?<!una )(?<!cada )mañana(?: (?:por la (?:mañana|tarde|noche)|temprano))?",
        r"hoy|esta tarde|esta noche",
    ),
    r"a más tardar|antes del|antes de|hasta|para",
)

_DE_DAYS = r"(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag)"
_DE_MONTHS = r"(?:januar|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember)"
_DE_WHEN, _DE_DEADLINE = _time_cues(
    r"bis spätestens|spätestens|bis|vor",
    (
        rf"(?:zum )?ende (?:der |des |dieser |nächster |diesen |nächsten )?"
        rf"(?:woche|monats|jahres|quartals|tages|sprints|{_DE_MONTHS})",
        rf"(?:zum |am )?\d{{1,2}}\. {_DE_MONTHS}",
        r"übermorgen",
        rf"(?:am |zum |nächsten |kommenden |diesen |nächster |kommender )?{_DE_DAYS}(?:früh|morgen|nachmittag|abend)?",
        r"(?:nächste|kommende|diese) woche|(?:nächsten|kommenden|diesen) monat|(?:nächstes|dieses) jahr",
        r"in (?:\d+|einem|einer|zwei|drei|vier|fünf|sechs|ein paar) (?:tagen|tag|wochen|woche|monaten|monat)",
        # "morgen" is also "morning": "guten Morgen", "am Morgen".
        r"(?<!guten )(?<!am )(?<!jeden )(?<!den )(?<!der )morgen(?: früh)?",
        r"heute(?: abend| nachmittag)?",
    ),
    r"bis spätestens|spätestens|bis",
)

_FR_DAYS = r"(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)"
_FR_MONTHS = r"(?:janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre)"
_FR_WHEN, _FR_DEADLINE = _time_cues(
    r"au plus tard|jusqu'à|d'ici|avant|pour",
    (
        rf"(?:la )?fin (?:de la |du |de l'|de |d')?(?:journée|semaine|mois|trimestre|année|{_FR_MONTHS})",
        rf"(?:le )?\d{{1,2}}(?:er)? {_FR_MONTHS}",
        r"après-demain|après demain",
        rf"(?:le |ce |cette )?{_FR_DAYS}(?: (?:prochain|matin|après-midi|soir))?",
        r"la semaine prochaine|le mois prochain|cette semaine|ce mois-ci|l'année prochaine",
        r"dans (?:\d+|un|une|deux|trois|quatre|cinq|six|quelques) (?:jours?|semaines?|mois)",
        r"demain(?: (?:matin|après-midi|soir))?",
        r"aujourd'hui|ce soir",
    ),
    r"au plus tard|jusqu'à|d'ici|avant",
)

# "segunda" and "quinta" alone are also "second" and "fifth": weekdays only with "-feira" or after
# a preposition ("na sexta", "até sexta").
_PT_WEEKDAY = r"(?:segunda|terça|quarta|quinta|sexta)(?:-feira| feira)?|sábado|domingo"
_PT_MONTHS = r"(?:janeiro|fevereiro|março|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro)"
_PT_WHEN, _PT_DEADLINE = _time_cues(
    r"no máximo até|antes da|antes do|antes de|até|para",
    (
        rf"(?:o |ao )?(?:fim|final) (?:do |da |de )?(?:dia|semana|mês|trimestre|ano|{_PT_MONTHS})",
        rf"(?:o |no )?(?:dia )?\d{{1,2}} de {_PT_MONTHS}",
        r"depois de amanhã",
        rf"(?:na próxima |no próximo |próxima |próximo |nesta |neste |na |no )(?:{_PT_WEEKDAY})",
        r"(?:segunda|terça|quarta|quinta|sexta)(?:-feira| feira)|sábado|domingo",
        r"(?:a )?semana que vem|(?:o )?mês que vem|(?:a |na )?próxima semana|(?:o |no )?próximo mês",
        r"esta semana|este mês",
        r"em (?:\d+|um|uma|dois|duas|três|quatro|cinco|seis) (?:dias?|semanas?|mês|meses)",
        r"amanhã(?: de (?:manhã|tarde))?",
        r"hoje(?: à tarde| à noite)?",
        rf"(?<=até )(?:a |o )?(?:{_PT_WEEKDAY})",
    ),
    r"no máximo até|antes da|antes do|antes de|até",
)

_CUES: dict[str, _Cues] = {
    "en": _Cues(
        decision=_cue(
            r"we(?: have|'ve)?(?: all| just| finally)? (?:decided|agreed|settled on|chose|chosen)",
            r"(?:it was|it's|it is|that's|that is|it has been) (?:decided|agreed|settled)",
            r"let's go with|we(?:'ll| will| are going to|'re going to|'re| are)? go(?:ing)? with",
            r"the decision is|decision is made|final decision|(?:we've|we have|we) made (?:a|the) decision",
        ),
        first_person=_cue(
            r"i(?:'ll| will| shall| am going to|'m going to|'m gonna| am gonna)",
            r"i (?:need|have|must|should|can) (?:to )?(?:send|do|take|check|write|prepare|follow|call|set|book|"
            r"review|update|fix|share|draft|schedule|look|finish|handle|organi[sz]e)",
            r"let me(?! (?:see|think|say|be|explain|ask|just|know))|leave it (?:to|with) me|i'm on it",
        ),
        assigned=_cue(
            r"'ll|'s going to|'s gonna",
            r"will|shall|is going to|is gonna|is to|has to|needs to|should|to",
            r"can take care|takes care|is taking care|is responsible for|is in charge of",
        ),
        assigned_before_name=None,
        other=_cue(
            r"we(?:'ll| will)(?! see)",
            r"we(?: shall| need to| have to| must| should| are going to|'re going to|'re gonna| are gonna)",
            r"let's(?! (?:see|think|say))|let us",
            r"(?:can|could|would) you|you (?:need|have|must|should) to",
            r"(?:someone|somebody) (?:needs|has|should|must)",
            r"action items?|to-do|todo|to do(?= list| item|:)|follow[- ]up|make sure",
        ),
        request=_cue(r"(?:can|could|would) you|would you mind"),
        when=_EN_WHEN,
        deadline=_EN_DEADLINE,
        negation_before=frozenset({"not", "never"}),
        negation_after=frozenset({"not", "never"}),
        # Not "that": "we agreed that Maria will...".
        before_nouns=frozenset(
            "the a an this these those our your their my his her its by on at in for of to from".split()
        ),
    ),
    "es": _Cues(
        decision=_cue(
            r"(?:hemos |ya )?(?:decidido|decidimos|acordado|acordamos)",
            r"se decidió|se acordó|queda decidido|está decidido|quedó decidido|quedamos en",
            r"la decisión (?:es|fue)|nos quedamos con|vamos con (?:la|el)",
        ),
        first_person=_cue(
            r"(?:yo )?voy a(?! ver)",
            r"(?:yo )?me (?:encargo|ocupo)|(?:yo )?tengo que|lo hago yo|yo lo hago|déjamelo",
            accented=(r"\w+(?:aré|eré|iré)|haré|diré|pondré|tendré|podré|saldré",),
        ),
        assigned=_cue(
            r"va a(?! ver)|se (?:encarga|ocupa)(?:rá)? de|tiene que|debe|queda a cargo",
            accented=(r"\w+(?:ará|erá|irá)|hará|dirá|pondrá|tendrá",),
        ),
        assigned_before_name=None,
        other=_cue(
            r"tenemos que|hay que|habrá que|debemos|deberíamos|necesitamos|vamos a(?! ver)",
            r"\w+(?:aremos|eremos|iremos)|haremos",
            r"(?:me |nos )?(?:puedes|podrías|puede usted|podéis|podrían)",
            r"tareas? pendientes?|acciones? pendientes?|punto de acción",
        ),
        request=_cue(r"(?:me |nos )?(?:puedes|podrías|puede usted|podéis|podrían)"),
        when=_ES_WHEN,
        deadline=_ES_DEADLINE,
        negation_before=frozenset({"no", "nunca"}),
        negation_after=frozenset({"nunca"}),
        before_nouns=frozenset(
            "el la los las un una unos unas este esta ese esa nuestro nuestra su mi de en para hasta a".split()
        ),
    ),
    "de": _Cues(
        decision=_cue(
            r"(?:wir )?haben (?:wir )?(?:beschlossen|entschieden)|(?:ist|wurde) (?:beschlossen|entschieden)",
            r"wir einigen uns|einigen wir uns|(?:wir )?haben uns (?:darauf )?geeinigt",
            r"die entscheidung (?:ist|lautet)|es bleibt bei|wir bleiben bei|wir machen es so",
        ),
        first_person=_cue(
            r"ich (?:werde|schicke|sende|kümmere mich|übernehme|mache|erledige|schreibe|bereite|rufe|kläre|prüfe|muss)",
            r"(?:werde|schicke|sende|kümmere|übernehme|mache|erledige|schreibe|kläre|prüfe|muss) ich",
            r"lass mich(?! (?:mal )?(?:sehen|überlegen|nachdenken))",
        ),
        assigned=_cue(r"wird|schickt|sendet|kümmert sich|übernimmt|erledigt|schreibt|bereitet|klärt|prüft|muss|soll"),
        assigned_before_name=_cue(r"wird|schickt|sendet|kümmert sich|übernimmt|erledigt|schreibt|klärt|prüft|muss"),
        other=_cue(
            r"wir (?:müssen|sollten|werden|sollen)|(?:müssen|sollten|werden) wir",
            r"lass uns|lasst uns",
            r"(?:kannst|könntest) du|(?:können|könnten) sie",
            r"to-do|todo|aufgabe|aktionspunkt",
        ),
        request=_cue(r"(?:kannst|könntest) du|(?:können|könnten) sie"),
        when=_DE_WHEN,
        deadline=_DE_DEADLINE,
        negation_before=frozenset({"nie", "niemals"}),
        negation_after=frozenset({"nicht", "nie", "niemals"}),
        before_nouns=frozenset(
            "der die das den dem des ein eine einen einem einer eines unser unsere unseren unserem "
            "dieser diese dieses diesen mein meine dein deine sein seine ihr ihre "
            "bis am an auf mit für von zu zum zur im bei nach vor".split()
        ),
    ),
    "fr": _Cues(
        decision=_cue(
            r"(?:nous avons|on a|nous avons tous|on a tous) (?:décidé|convenu|choisi|tranché)",
            r"il a été décidé|c'est décidé|c'est acté|c'est validé|(?:nous sommes|on est) (?:tous )?d'accord",
            r"la décision est|on part sur|on retient",
        ),
        first_person=_cue(
            r"je vais(?! voir)|je m'(?:en )?occupe|je me charge|je m'en charge",
            r"je (?:dois|peux) (?:envoyer|faire|préparer|vérifier|appeler|écrire|regarder|finir)",
            r"j'\w+rai|je \w+rai|laissez-moi|laisse-moi",
        ),
        assigned=_cue(r"va(?! voir)|s'occupe(?:ra)? de|se charge(?:ra)? de|doit", accented=(r"\w+ra",)),
        assigned_before_name=None,
        other=_cue(
            r"il faut|il faudra|nous devons|on doit|on devra|nous allons|on va(?! voir)|nous devrions|on devrait",
            r"tu peux|vous pouvez|peux-tu|pouvez-vous|pourrais-tu|pourriez-vous|tu pourrais",
            r"à faire|point d'action|actions? à mener",
        ),
        request=_cue(r"tu peux|vous pouvez|peux-tu|pouvez-vous|pourrais-tu|pourriez-vous|tu pourrais"),
        when=_FR_WHEN,
        deadline=_FR_DEADLINE,
        negation_before=frozenset({"ne", "n"}),
        negation_after=frozenset({"pas", "jamais", "plus"}),
        before_nouns=frozenset(
            "le la les l un une des ce cette ces notre nos votre son sa mon ma de du pour avant en".split()
        ),
    ),
    "pt": _Cues(
        decision=_cue(
            r"(?:nós )?(?:decidimos|combinamos|concordamos|acordamos)",
            r"(?:ficou|está|foi) (?:decidido|combinado|acordado|definido)",
            r"a decisão (?:é|foi)|vamos com|vamos ficar com",
        ),
        first_person=_cue(
            r"(?:eu )?vou",
            r"(?:eu )?(?:envio|mando|cuido|faço|preparo)|(?:eu )?me encarrego|deixa comigo|fico com",
            r"(?:eu )?(?:tenho que|tenho de|preciso)",
            r"\w+(?:arei|erei|irei)|farei|direi",
        ),
        assigned=_cue(
            r"vai|fica(?:rá)? (?:responsável|encarregad[oa])|se encarrega|tem que|tem de|deve",
            accented=(r"\w+(?:ará|erá|irá)|fará|dirá|cuidará",),
        ),
        assigned_before_name=None,
        other=_cue(
            r"precisamos|temos que|temos de|devemos|é preciso|teremos que|vamos(?! (?:lá|ver|embora))",
            r"\w+(?:aremos|eremos|iremos)|faremos",
            r"(?:você|tu) (?:pode|poderia)|podes|pode me|poderia",
            r"tarefas? pendentes?|ações? pendentes?|item de ação",
        ),
        request=_cue(r"(?:você|tu) (?:pode|poderia)|podes|pode me|poderia"),
        when=_PT_WHEN,
        deadline=_PT_DEADLINE,
        negation_before=frozenset({"nao", "nunca"}),
        negation_after=frozenset({"nunca"}),
        before_nouns=frozenset(
            "o a os as um uma este esta esse essa nosso nossa seu sua meu minha de do da até para em".split()
        ),
    ),
}

#: Capitalised words that are not a person's name where one would stand before a verb.
_NOT_NAMES = (
    frozenset(
        _fold(w)
        for w in (
            "everyone everybody someone somebody nobody anyone anybody who what which it this that there then so "
            "and but also okay ok yes no well now alguien nadie todos jemand niemand alle man personne tout "
            "alguém ninguém todo gente"
        ).split()
    )
    | _MONTHS
    | frozenset(
        _fold(w)
        for w in (
            "monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight "
            "lunes martes miércoles jueves viernes sábado domingo hoy mañana "
            "montag dienstag mittwoch donnerstag freitag samstag sonntag heute morgen übermorgen "
            "lundi mardi mercredi jeudi vendredi samedi dimanche demain "
            "segunda terça quarta quinta sexta sábado domingo hoje amanhã"
        ).split()
    )
)
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_NAME_AFTER = re.compile(r"\s+(" + _NAME_WORD.pattern + ")")
_CONJUNCTIONS = frozenset({"and", "y", "e", "und", "et"})


def _is_name(word: str) -> bool:
    folded = _fold(word)
    # "QA will test" names a team; "WE DECIDED TO" is shouting, not a name.
    shouted = word.isupper() and len(word) > 3
    return word[:1].isupper() and not shouted and folded not in _NOT_NAMES and folded not in _ALL_STOP_WORDS


def _name_before(said: _Said, position: int, cues: _Cues) -> str | None:
    """The capitalised name (or names joined by "and") right before ``position``: "Maria will",
    "Ana y Luis enviarán". Only spaces may stand between them and the verb."""
    text = said.text
    words = list(_NAME_WORD.finditer(text[:position].translate(_APOSTROPHES)))  # "John" of "John'll"
    names: list[re.Match[str]] = []
    i = len(words) - 1
    while i >= 0 and len(names) < 4:
        word = words[i]
        if text[word.end() : names[0].start() if names else position].strip():
            break  # a comma or other mark: "Perfect, Maria will" is Maria alone
        is_joint = bool(names) and _fold(word.group()) in _CONJUNCTIONS and i >= 1
        if not (_is_name(word.group()) or is_joint):
            break
        names.insert(0, word)
        i -= 1
    while names and _fold(names[0].group()) in _CONJUNCTIONS:
        names.pop(0)
        i += 1
    if not names:
        return None
    if i >= 0 and not text[words[i].end() : names[0].start()].strip() and _fold(words[i].group()) in cues.before_nouns:
        return None  # "Der Bericht wird...", "The Board will..."
    return text[names[0].start() : names[-1].end()]


def _name_after(said: _Said, position: int) -> str | None:
    """A capitalised name right after ``position`` (the German order "Dann schickt Maria...")."""
    match = _NAME_AFTER.match(said.text, position)
    return match.group(1) if match and _is_name(match.group(1)) else None


def _addressee(said: _Said, cues: _Cues) -> str | None:
    """The person a request is addressed to: "John, can you...", "can you, John, ...",
    "could you send it, John?"."""
    match = next(iter(cues.request.finditer(said)), None)
    if match is None:
        return None
    text = said.text
    before = re.search(r"([^\W\d_]+)\s*,[\s¿¡]*$", text[: match.start()])
    if before and _is_name(before.group(1)):
        return before.group(1)
    for after in re.finditer(r",\s*([^\W\d_]+)\s*(?=,|[?.!]*\s*$)", text[match.end() :]):
        if _is_name(after.group(1)):
            return after.group(1)
    return None


def _negated(said: _Said, match: re.Match[str], cues: _Cues, after: bool) -> bool:
    before_words = said.folded[: match.start()].replace("'", " ").split()
    after_words = said.folded[match.end() :].split()
    return (bool(before_words) and before_words[-1].strip(",;:") in cues.negation_before) or (
        after and bool(after_words) and after_words[0].strip(",.;:!?") in cues.negation_after
    )


def _said(cue: _Cue, said: _Said, cues: _Cues, after: bool = True) -> bool:
    """Whether ``cue`` is in the sentence and not negated there."""
    return any(not _negated(said, m, cues, after) for m in cue.finditer(said))


def _assignee(said: _Said, cues: _Cues) -> str | None:
    """The name a task is given to: "Maria will...", "Maria enviará...", "Dann schickt Maria..."."""
    for match in cues.assigned.finditer(said):
        name = _name_before(said, match.start(), cues)
        if name and not _negated(said, match, cues, after=True):
            return name
    if cues.assigned_before_name:
        for match in cues.assigned_before_name.finditer(said):
            name = _name_after(said, match.end())
            if name and not _negated(said, match, cues, after=True):
                return name
    return None


def _due(said: _Said, cues: _Cues) -> str | None:
    match = next(iter(cues.when.finditer(said)), None)
    return said.text[match.start() : match.end()].strip(" ,.;:!?") if match else None


def _kind(said: _Said, cues: _Cues) -> Literal["decision", "action"] | None:
    if said.text.rstrip(_CLOSERS + " ").endswith("?"):
        # A question decides nothing ("did we agree?") and is only an action when it asks for one.
        return "action" if _said(cues.request, said, cues) else None
    if _said(cues.decision, said, cues, after=False):  # "we decided not to" is still a decision
        return "decision"
    if _said(cues.first_person, said, cues) or _said(cues.other, said, cues):
        return "action"
    # "Ok, tomorrow." is not a task; "the report is due by Friday" is.
    if len(said.text.split()) >= 4 and _said(cues.deadline, said, cues):
        return "action"
    return "action" if _assignee(said, cues) else None


def _item(sentence: Sentence, language: str) -> Item | None:
    cues = _CUES[language]
    said = _Said.of(sentence.text)
    kind = _kind(said, cues)
    if kind is None:
        return None
    owner = _assignee(said, cues) or _addressee(said, cues)
    if owner is None and _said(cues.first_person, said, cues):
        owner = sentence.speaker
    return Item(kind, sentence.text, sentence.start, sentence.end, owner, _due(said, cues), sentence.speaker)


def items(sentences: Sequence[Sentence], language: str) -> list[Item]:
    """Decisions and action items in time order, one per sentence at most.

    A sentence with a decision cue ("we decided", "acordamos", "on a décidé") is a decision; else
    one with an action cue ("I'll", "hay que", "wir müssen", "d'ici vendredi", "Maria vai") is an
    action. A question is an action only when it asks someone to do something. Each sentence is
    read with the cues of its own language when that is one of ``LANGUAGES``, else with those of
    ``language``; in any other language there are no items.
    """
    fallback = _base_language(language)
    found = []
    for sentence in sentences:
        own = _base_language(sentence.language)
        cue_language = own if own in _CUES else fallback
        if cue_language in _CUES:
            item = _item(sentence, cue_language)
            if item is not None:
                found.append(item)
    return found
