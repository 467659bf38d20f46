"""The recording path's speech check: skipped speech decoded again, invented and looping text dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from pipeline.algos.speech_cover import on_speech, repeats, too_fast, uncovered
from pipeline.backends.whisper import Decoded
from pipeline.config import AsrConfig
from pipeline.events import SAMPLE_RATE, Samples, SpeechSegment, Transcript, Word
from pipeline.stages.asr import RecordingAsrStage


def _words(*spans: tuple[float, float]) -> list[Word]:
    return [Word(f"w{i}", start, end) for i, (start, end) in enumerate(spans)]


def test_a_word_is_on_speech_when_its_middle_is() -> None:
    speech = [(1.0, 3.0), (5.0, 7.0)]
    assert on_speech(_words((2.9, 3.3)), speech)  # middle 3.1: within the tolerance
    assert on_speech(_words((8.0, 9.0), (5.5, 6.0)), speech)
    assert not on_speech(_words((3.5, 4.5)), speech)
    assert not on_speech(_words((7.2, 9.0)), speech)  # overlaps speech, but its middle is in silence
    assert not on_speech([], speech)


def test_stretches_and_long_gaps_no_word_overlaps_are_uncovered() -> None:
    speech = [(1.0, 3.0), (5.0, 7.0), (9.0, 9.5)]
    assert uncovered(speech, _words((1.2, 1.5), (2.0, 2.5))) == [(5.0, 7.0), (9.0, 9.5)]
    assert uncovered(speech, []) == speech
    # Short gaps at the edges or between words are speech too, not skipped.
    assert uncovered(speech, _words((1.1, 2.0), (2.9, 5.1), (5.2, 6.0), (6.2, 6.9), (9.4, 9.8))) == []
    # Whisper stopped early (the last 3 s of a stretch) or started late.
    long = [(10.0, 20.0)]
    assert uncovered(long, _words((10.1, 11.0), (11.2, 13.0), (15.2, 17.0))) == [(13.0, 15.2), (17.0, 20.0)]
    assert uncovered(long, _words((12.0, 13.0), (13.0, 19.8))) == [(10.0, 12.0), (13.5, 20.0)]
    assert uncovered(long, _words((10.0, 11.5), (14.0, 15.0), (15.0, 20.0))) == [(11.5, 14.0), (15.5, 20.0)]
    # The last word heard stretched over the rest: no word lasts 7 s.
    assert uncovered(long, _words((10.0, 12.0), (12.0, 19.0))) == [(12.5, 20.0)]


def test_words_crowded_into_a_moment_were_not_heard() -> None:
    # Whisper's sentence again after the speech ended: eight words in 0.18 s.
    crowded = [
        Word(w, 8.14 if i == 0 else 8.32, 8.32) for i, w in enumerate("Le même mois tu as ainsi 17 personnes".split())
    ]
    assert too_fast(crowded)
    assert not too_fast(_words((0.0, 0.22), (0.22, 0.34), (0.34, 0.64)))  # "Le même mois," as said
    assert not too_fast([Word("Oui.", 3.0, 3.05)])  # one short word says nothing


def test_a_segment_repeating_the_end_of_the_one_before_is_a_loop() -> None:
    assert repeats("On est dans le fond, qu'il y a.", "on est dans le fond qu'il y a")
    assert repeats("¡Hora ve, 2002!", "2002!")
    assert not repeats("2002 war ein gutes Jahr.", "2002!")
    assert not repeats("Er kam.", "")
    assert not repeats("", "Er kam.")


class _Whisper:
    """Whisper as it fails on a long chunk: the whole chunk's decode skips the second stretch of
    speech, fills the trailing silence with a stock phrase and repeats itself; decoded alone, the
    second stretch is heard (when ``hears_alone``)."""

    model_id = "scripted"

    def __init__(self, hears_alone: bool) -> None:
        self.hears_alone = hears_alone
        self.calls: list[tuple[float, str | None]] = []

    def decode(
        self,
        audio: Samples,
        *,
        language: str | None,
        task: str,
        beam_size: int,
        prompt: str | None = None,
        word_timestamps: bool = True,
        languages: tuple[str, ...] = (),
    ) -> tuple[list[Decoded], str, float]:
        seconds = len(audio) / SAMPLE_RATE
        self.calls.append((seconds, prompt))
        if seconds > 9:  # the whole chunk, 0-10 s of the stream
            return (
                [
                    _decoded("The first sentence.", 1.0, 3.0),
                    _decoded("The first sentence.", 3.0, 3.4),
                    _decoded("Thanks for watching.", 8.5, 9.8),
                ],
                "en",
                0.99,
            )
        if not self.hears_alone:
            return [], "en", 0.99
        return [_decoded("The second one.", 1.0, 3.0)], "en", 0.99  # 4-8 s of the stream: speech at 5-7 s


def _decoded(text: str, start: float, end: float) -> Decoded:
    step = (end - start) / len(text.split())
    words = tuple(Word(w, start + i * step, start + (i + 1) * step) for i, w in enumerate(text.split()))
    return Decoded(text, start, end, words, avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=1.2)


def _transcribe(whisper: _Whisper) -> tuple[list[Transcript], RecordingAsrStage]:
    stage = RecordingAsrStage(whisper, AsrConfig(language="en"))
    chunk = SpeechSegment(
        0, 0, 10 * SAMPLE_RATE, np.zeros(10 * SAMPLE_RATE, np.float32), speech=((16000, 48000), (80000, 112000))
    )

    async def chunks() -> AsyncIterator[SpeechSegment]:
        yield chunk

    async def run() -> list[Transcript]:
        return [t async for t in stage.run(chunks())]

    return asyncio.run(run()), stage


def test_skipped_speech_is_decoded_again_and_invented_text_dropped() -> None:
    whisper = _Whisper(hears_alone=True)
    transcripts, stage = _transcribe(whisper)
    assert [(t.utterance, t.committed, t.start, t.end) for t in transcripts] == [
        (0, "The first sentence.", 1.0, 3.0),
        (1, "The second one.", 5.0, 7.0),
    ]
    assert all(t.final and t.language == "en" for t in transcripts)
    # The stretch at 5-7 s decoded alone with a second of audio either side, without a prompt.
    assert whisper.calls[1] == (4.0, "")
    assert stage.stats() | {"compute_s": 0} == {
        "compute_s": 0,
        "recovered": 1,
        "dropped": 1,
        "repeated": 1,
        "unrecognised": 0,
    }


def test_speech_heard_neither_way_is_reported_with_its_times() -> None:
    transcripts, stage = _transcribe(_Whisper(hears_alone=False))
    assert [t.committed for t in transcripts] == ["The first sentence."]
    assert stage.unrecognised == [(5.0, 7.0)]
    assert stage.recovered == 0
