"""Latency and lagging metrics over timed event streams, and SI-SDR (pure functions).

Definitions (DESIGN.md): *final latency* is the time from the end of a reference utterance's
speech to the emission of the final event that completes it; *first-partial latency* is the time
from its speech onset to the first emission with committed text inside it; an utterance is
*dropped* when none of its words reached a final. Our utterances need not line up with the
reference's, so words decide: each emitted word belongs to the one reference utterance whose span
holds its middle, else to the nearest one within ``TOLERANCE_S`` (Whisper's word times are that
loose). One owner only: in quick turn-taking the next speaker's first word often lies within
0.3 s of this utterance's end, and counting it for both gave this utterance the next one's latency.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.algos.wer import tokens

#: How far outside a reference utterance's span an emitted word may lie and still belong to it.
TOLERANCE_S = 0.3


@dataclass(frozen=True)
class RefUtterance:
    start: float
    end: float
    text: str = ""
    translation: str = ""
    language: str = ""  # where the reference says which language this utterance is in
    speaker: str = ""  # where the reference says who spoke it ("wearer", "partner")


@dataclass(frozen=True)
class TimedTranscript:
    """An emitted transcript event reduced to what the metrics need."""

    emitted: float  # seconds on the measuring clock
    final: bool
    word_times: tuple[tuple[float, float], ...]  # committed words, stream seconds


@dataclass(frozen=True)
class UtteranceTiming:
    reference: RefUtterance
    first_partial: float | None  # latency, seconds
    final: float | None
    dropped: bool


def owner(references: Sequence[RefUtterance], word: tuple[float, float]) -> int | None:
    """The index of the reference utterance an emitted word (stream times) belongs to, if any."""
    middle = (word[0] + word[1]) / 2
    best: int | None = None
    best_distance = TOLERANCE_S
    for i, reference in enumerate(references):
        distance = max(reference.start - middle, middle - reference.end, 0.0)
        if distance <= best_distance:
            if distance == 0.0:
                return i
            best, best_distance = i, distance
    return best


def overlapped_most(references: Sequence[RefUtterance], start: float, end: float) -> int | None:
    """The index of the reference utterance (widened by ``TOLERANCE_S``) a span overlaps most, if any."""
    overlaps = [min(end, r.end + TOLERANCE_S) - max(start, r.start - TOLERANCE_S) for r in references]
    return overlaps.index(max(overlaps)) if overlaps and max(overlaps) > 0 else None


def utterance_timings(references: Sequence[RefUtterance], events: Sequence[TimedTranscript]) -> list[UtteranceTiming]:
    owners = [{owner(references, w) for w in e.word_times} for e in events]
    timings = []
    for i, reference in enumerate(references):
        with_words = [e for e, owned in zip(events, owners, strict=True) if i in owned]
        finals = [e.emitted for e in with_words if e.final]
        first = min((e.emitted for e in with_words), default=None)
        timings.append(
            UtteranceTiming(
                reference=reference,
                first_partial=None if first is None else round(first - reference.start, 4),
                final=None if not finals else round(max(finals) - reference.end, 4),
                dropped=not finals,
            )
        )
    return timings


@dataclass(frozen=True)
class ShownText:
    """A transcript event as the wearer sees it: all of its text, committed and tentative."""

    emitted: float  # seconds on the measuring clock
    utterance: int  # the recogniser's utterance
    text: str
    final: bool
    word_times: tuple[tuple[float, float], ...]  # committed words, stream seconds


def main_owner(references: Sequence[RefUtterance], word_times: Sequence[tuple[float, float]]) -> int | None:
    """The reference utterance most of these words (a recognised utterance's) fall on, if any."""
    owners = Counter(o for w in word_times if (o := owner(references, w)) is not None)
    return owners.most_common(1)[0][0] if owners else None


def first_text(references: Sequence[RefUtterance], shown: Sequence[ShownText], language: str) -> list[float | None]:
    """For each reference utterance, how long after it began the wearer first saw text of it that
    stays: the first event of a recognised utterance showing a word that utterance's final holds
    too (tentative words count; a guess the final drops does not). A recognised utterance belongs
    to the reference utterance most of its final's words fall on. None: nothing of it was seen."""
    latencies: list[float | None] = [None] * len(references)
    for final in (e for e in shown if e.final):
        index = main_owner(references, final.word_times)
        if index is None:
            continue
        own = ((e.emitted, e.text) for e in shown if e.utterance == final.utterance)
        emitted = first_kept(own, final.text, language)
        if emitted is not None:
            latency = round(emitted - references[index].start, 4)
            earlier = latencies[index]
            latencies[index] = latency if earlier is None else min(earlier, latency)
    return latencies


def first_kept(shown: Iterable[tuple[float, str]], final: str, language: str) -> float | None:
    """When the first of one utterance's shown texts, (time, text) in order, held a word its
    ``final`` text holds too; None if none did."""
    kept = set(tokens(final, language))
    return next((time for time, text in shown if kept & set(tokens(text, language))), None)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def average_lagging(
    delays: Sequence[float], source_length: float, reference_length: int, hypothesis_length: int | None = None
) -> float | None:
    """SimulEval's Average Lagging; with ``hypothesis_length``, Length-Adaptive AL (LAAL).

    ``delays[i]`` is the source time (same unit as ``source_length``) consumed when target word
    i was emitted. The ideal policy emits at the rate ``gamma`` target words per source unit:
    the reference length over the source length for AL, the longer of hypothesis and reference
    for LAAL (Papi et al., 2022), so that over-generation is not rewarded.
    """
    if not delays or source_length <= 0:
        return None
    if delays[0] > source_length:
        return delays[0]
    length = reference_length if hypothesis_length is None else max(hypothesis_length, reference_length)
    if length <= 0:
        return None
    gamma = length / source_length
    total = 0.0
    tau = 0
    for i, delay in enumerate(delays):
        total += delay - i / gamma
        tau = i + 1
        if delay >= source_length:
            break
    return total / tau


def word_emissions(updates: Sequence[tuple[float, str]]) -> list[float]:
    """When each committed word first appeared, from one utterance's events in order as
    (emission time, committed text). Committed text only grows, so word i appeared with the
    first event whose committed text had more than i words."""
    times: list[float] = []
    for emitted, committed in updates:
        times += [emitted] * (len(committed.split()) - len(times))
    return times


def retractions(updates: Sequence[str]) -> int:
    """How many times one utterance's committed text (events in order) lost or changed a word."""
    count = 0
    for before, after in itertools.pairwise(updates):
        if after.split()[: len(before.split())] != before.split():
            count += 1
    return count


def si_sdr(estimate: npt.ArrayLike, reference: npt.ArrayLike) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019): the reference
    scaled to best fit the estimate, against everything else in the estimate. Both zero-mean."""
    s = np.asarray(reference, dtype=np.float64)
    x = np.asarray(estimate, dtype=np.float64)[: len(s)]
    s = s[: len(x)] - np.mean(s[: len(x)])
    x = x - np.mean(x)
    target = (np.dot(x, s) / max(np.dot(s, s), 1e-20)) * s
    return float(10 * np.log10(max(np.dot(target, target), 1e-20) / max(np.dot(x - target, x - target), 1e-20)))
