"""The open utterance's decisions, pure: taking VAD's pieces, coverage, early stops, splits, guards."""

from __future__ import annotations

import numpy as np

from pipeline.algos.agreement import LocalAgreement
from pipeline.algos.open_utterance import STOPPED_EARLY_S, OpenUtterance, heard_words
from pipeline.events import SAMPLE_RATE, Word

S = SAMPLE_RATE


def _loud(seconds: float) -> np.ndarray:
    return np.full(int(seconds * S), 0.1, dtype=np.float32)


def _closed_at(utterance: OpenUtterance) -> int | None:
    return utterance.end


def test_pieces_are_appended_in_utterance_offsets_until_vad_closes_it() -> None:
    utterance = OpenUtterance(0, start=10 * S)
    utterance.take(_loud(1.0), voiced_until=11 * S, pauses=[], end=None)
    utterance.take(_loud(0.5), voiced_until=int(11.2 * S), pauses=[(11 * S, int(11.1 * S))], end=None)
    assert utterance.samples == int(1.5 * S) and _closed_at(utterance) is None
    assert utterance.voiced_until == int(1.2 * S) and utterance.pauses == [(S, int(1.1 * S))]
    assert utterance.pausing()  # 0.3 s without voice is a pause
    utterance.take(_loud(0.1), voiced_until=int(11.2 * S), pauses=[], end=int(11.4 * S))
    assert utterance.end == int(1.4 * S) and len(utterance.whole) == int(1.6 * S)
    assert utterance.span() == (10.0, 11.4)


def test_a_closed_utterance_is_covered_once_its_voiced_audio_was_decoded() -> None:
    utterance = OpenUtterance(0, start=0)
    utterance.take(_loud(2.0), voiced_until=int(1.6 * S), pauses=[], end=2 * S)
    utterance.decoded = int(1.5 * S)
    assert not utterance.covered()
    utterance.decoded = int(1.56 * S)  # within COVER_TOLERANCE_S of the last voiced frame
    assert utterance.covered()


def test_a_final_stopped_early_only_after_a_trim_and_a_second_short() -> None:
    utterance = OpenUtterance(0, start=0)
    utterance.take(_loud(4.0), voiced_until=4 * S, pauses=[], end=4 * S)
    words = [Word("one", 0.2, 0.5), Word("two", 0.6, 4.0 - STOPPED_EARLY_S - 0.1)]
    assert not utterance.stopped_early(words)  # no trim: Whisper heard it all at once
    utterance.trim = S
    assert utterance.stopped_early(words)
    assert not utterance.stopped_early([*words, Word("three", 3.0, 3.5)])
    assert not utterance.stopped_early([])


def test_a_split_hands_the_audio_and_pauses_after_it_to_the_next_utterance() -> None:
    utterance = OpenUtterance(3, start=S, vad_id=7)
    utterance.take(_loud(3.0), voiced_until=4 * S, pauses=[(2 * S, int(2.4 * S))], end=None)
    rest = utterance.split(int(1.2 * S), next_id=4, agreement=LocalAgreement(2.0))
    assert utterance.end == int(1.2 * S)
    assert (rest.id, rest.vad_id, rest.start, rest.samples) == (4, 7, int(2.2 * S), int(1.8 * S))
    assert rest.pauses == [] and rest.voiced_until == int(1.8 * S)


def test_the_rest_of_a_split_vad_closes_before_it_began_holds_no_audio() -> None:
    # A sentence end cut in the middle of the quiet after it (at 2.4 s), where VAD then heard the
    # speech end earlier (2.16 s): the rest was decoded from its start to 0.24 s before its end,
    # that is nearly all of it, and came out as "You".
    utterance = OpenUtterance(0, start=S)
    utterance.take(_loud(2.0), voiced_until=3 * S, pauses=[], end=None)
    rest = utterance.split(int(1.4 * S), next_id=1, agreement=LocalAgreement(2.0))
    rest.take(_loud(0.4), voiced_until=int(2.16 * S), pauses=[], end=int(2.16 * S))
    assert rest.end == 0 and rest.speech_end == 0


def test_guards_drop_what_whisper_would_and_words_said_over_silence() -> None:
    audio = np.concatenate([_loud(1.0), np.zeros(S, dtype=np.float32)])
    words = [Word("real", 0.1, 0.6), Word("invented", 1.2, 1.8)]
    kept = heard_words(words, audio, 0.0, no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.2)
    assert kept == [Word("real", 0.1, 0.6)]
    assert heard_words(words, audio, 0.0, no_speech_prob=0.9, avg_logprob=-1.5, compression_ratio=1.2) is None
    loop = [Word("la", 0.1 * i, 0.1 * i + 0.08) for i in range(1, 4)]
    assert heard_words(loop, audio, 0.0, no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.2) is not None


def test_a_translation_keeps_words_whisper_gives_no_time() -> None:
    # Whisper's English words are not the ones spoken: mid-sentence runs of them take no time
    # (German, 46.7-57.3 s of out/streams/stream_de.wav), which in a transcript marks a repeat.
    audio = _loud(3.0)
    words = [
        Word("worked", 1.0, 1.0),
        Word("hard", 1.0, 1.1),
        Word("to", 1.1, 1.1),
        Word("get", 1.1, 1.1),
        Word("to", 1.1, 1.1),
        Word("death.", 1.1, 1.8),
    ]

    def guarded(timed: bool) -> list[Word] | None:
        return heard_words(words, audio, 0.0, no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.2, timed=timed)

    assert [w.text for w in guarded(True) or []] == ["worked", "hard"]
    assert guarded(False) == words


def test_a_final_that_skipped_speech_its_hypotheses_heard_is_found() -> None:
    def skipped(first_word_s: float, pauses: list[tuple[int, int]], heard_s: float = 10.2) -> int | None:
        utterance = OpenUtterance(0, start=10 * S)
        utterance.take(_loud(6.0), voiced_until=16 * S, pauses=pauses, end=16 * S)
        utterance.heard([Word("Sem", heard_s, heard_s + 0.3), Word("carro", heard_s + 0.3, heard_s + 0.6)])
        final = [Word("O", first_word_s, first_word_s + 0.2), Word("romantismo", 15.3, 15.9)]
        utterance.heard(final)
        return utterance.skipped_before(final)

    assert skipped(14.0, []) == 4 * S  # 3.8 s of speech an earlier hypothesis heard: decode it apart
    assert skipped(14.0, [], heard_s=13.0) is None  # no hypothesis heard words that far before
    assert skipped(11.0, []) is None
    assert skipped(14.0, [(int(10.5 * S), int(13.2 * S))]) is None  # a pause VAD heard, then the speaker
    # A final that stretched its first word over the skipped speech (Whisper's "O" over 5.6 s).
    assert skipped(10.2, []) is None
    utterance = OpenUtterance(0, start=10 * S)
    utterance.take(_loud(6.0), voiced_until=16 * S, pauses=[], end=16 * S)
    utterance.heard([Word("Sem", 10.2, 10.5)])
    assert utterance.skipped_before([Word("O", 10.2, 14.5), Word("romantismo", 14.5, 15.0)]) == 4 * S
    utterance.agreement.committed.append(Word("Sem", 10.2, 10.5))
    assert utterance.skipped_before([Word("O", 10.2, 14.5), Word("romantismo", 14.5, 15.0)]) is None
