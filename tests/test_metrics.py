from __future__ import annotations

import pytest

from pipeline.algos.metrics import (
    RefUtterance,
    ShownText,
    TimedTranscript,
    average_lagging,
    first_text,
    owner,
    percentile,
    retractions,
    utterance_timings,
    word_emissions,
)


def test_percentiles_interpolate_like_numpy() -> None:
    assert percentile([0.5, 1.5, 1.0], 50) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([2.0], 95) == 2.0
    assert percentile([], 50) is None


def test_al_and_laal_worked_example() -> None:
    # 4 s of speech, 4 reference words emitted one per second: AL lags 1 s behind the ideal.
    assert average_lagging([1.0, 2.0, 3.0, 4.0], 4.0, reference_length=4) == pytest.approx(1.0)
    # Over-generation (5 words) lowers AL: ideal delays are spaced by the reference (1 s)...
    delays = [1.0, 2.0, 3.0, 4.0, 4.0]
    assert average_lagging(delays, 4.0, reference_length=4) == pytest.approx(1.0)
    # ...while LAAL spaces them by the longer hypothesis (0.8 s): (1 + 1.2 + 1.4 + 1.6) / 4.
    assert average_lagging(delays, 4.0, reference_length=4, hypothesis_length=5) == pytest.approx(1.3)
    # Nothing before the end of the source: the first delay is the lag.
    assert average_lagging([5.0, 5.0], 4.0, reference_length=2) == 5.0
    assert average_lagging([], 4.0, reference_length=2) is None


def test_timeline_latencies_and_drops() -> None:
    references = [RefUtterance(1.0, 3.0, "a b"), RefUtterance(4.0, 6.0, "c d"), RefUtterance(8.0, 9.0, "e")]
    events = [
        TimedTranscript(2.2, False, ((1.1, 1.5),)),  # first committed word of utterance 1
        TimedTranscript(3.6, True, ((1.1, 1.5), (2.0, 2.9))),  # its final
        TimedTranscript(5.0, False, ((4.1, 4.5),)),
        TimedTranscript(6.4, True, ((4.1, 4.5),)),  # utterance 2 split over two of ours...
        TimedTranscript(7.1, True, ((5.0, 5.9),)),  # ...complete at 7.1
        TimedTranscript(9.9, True, ()),  # an empty final: utterance 3 dropped
    ]
    timings = utterance_timings(references, events)
    assert [t.first_partial for t in timings] == [1.2, 1.0, None]
    assert [t.final for t in timings] == [pytest.approx(0.6), pytest.approx(1.1), None]
    assert [t.dropped for t in timings] == [False, False, True]


def test_a_word_belongs_to_one_reference_utterance() -> None:
    # Quick turn-taking: "Hello?" ends at 8.16 s and the other speaker's "Oh," starts at 8.44 s.
    references = [RefUtterance(7.63, 8.16, "Hello?"), RefUtterance(8.44, 8.88, "Oh, hello.")]
    events = [
        TimedTranscript(8.9, True, ((7.6, 8.1),)),  # "Hello?" final
        TimedTranscript(12.0, True, ((8.25, 8.45), (8.5, 8.8))),  # "Oh," (middle 8.35) is nearer the second
    ]
    timings = utterance_timings(references, events)
    assert [t.final for t in timings] == [pytest.approx(0.74), pytest.approx(3.12)]
    assert owner(references, (8.1, 8.4)) == 0  # middle 8.25: 0.09 s after the first, 0.19 s before the second
    assert owner(references, (9.2, 9.4)) is None  # too far from both


def test_word_emissions_time_each_word_by_its_first_commit() -> None:
    updates = [(1.0, ""), (1.5, "the cat"), (2.0, "the cat"), (2.4, "the cat sat on"), (3.0, "the cat sat on it")]
    assert word_emissions(updates) == [1.5, 1.5, 2.4, 2.4, 3.0]
    assert word_emissions([]) == []


def test_retractions_count_commits_that_change_earlier_words() -> None:
    assert retractions(["", "a", "a b", "a b c"]) == 0
    assert retractions(["a b", "a c", "a c d", "a"]) == 2


def test_first_text_counts_only_words_the_final_keeps() -> None:
    references = [RefUtterance(1.0, 4.0), RefUtterance(6.0, 9.0)]
    shown = [
        # A guess the final drops, then a tentative word it keeps, then the final.
        ShownText(1.4, 0, "Hello", False, ()),
        ShownText(1.9, 0, "The cat", False, ()),
        ShownText(4.6, 0, "The cat sat.", True, ((1.0, 1.5), (1.5, 2.0), (2.0, 3.5))),
        # The second reference utterance: only its final is seen.
        ShownText(9.8, 1, "It rained.", True, ((6.5, 7.0), (7.0, 8.5))),
        # An utterance nothing of which falls on a reference utterance.
        ShownText(12.0, 2, "Noise.", True, ((11.0, 11.5),)),
    ]
    assert first_text(references, shown, "en") == [0.9, 3.8]
    assert first_text(references, shown[3:4], "en") == [None, 3.8]
