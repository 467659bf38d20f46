"""The streaming ASR stage with a scripted decoder standing in for Whisper."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import numpy as np
import pytest

from pipeline.algos.open_utterance import OpenUtterance
from pipeline.algos.text import ends_clause, ends_sentence
from pipeline.backends.whisper import Hypothesis
from pipeline.config import AsrConfig, StreamingConfig
from pipeline.events import SAMPLE_RATE, SpeechSegment, Transcript, Translation, Word
from pipeline.runner import Clock
from pipeline.stages.streaming import StreamingAsrStage

# The "speaker" says these words; times are seconds from the utterance's start.
SCRIPT = [
    ("The", 0.2, 0.4),
    ("quick", 0.5, 0.8),
    ("brown", 0.9, 1.2),
    ("fox", 1.3, 1.6),
    ("jumps", 1.7, 2.1),
    ("over", 2.2, 2.5),
    ("the", 2.6, 2.7),
    ("lazy", 2.8, 3.1),
    ("dog.", 3.2, 3.6),
]


class ScriptedDecoder:
    """Returns the script's words heard completely in the audio it is given.

    Each sample of the audio holds its own stream time in seconds, so the decoder knows where
    the decoded audio starts, as Whisper would from the sound itself. The word being spoken at
    the audio's end comes out wrong, as Whisper's guesses at a cut-off word do.
    """

    model_id = "scripted"
    languages: tuple[str, ...] = ("en",)

    def __init__(
        self,
        utterance_start: float = 0.0,
        delay: float = 0.0,
        script: list[tuple[str, float, float]] = SCRIPT,
        **hypothesis: Any,
    ) -> None:
        self.script = script
        self.utterance_start = utterance_start
        self.delay = delay
        self.hypothesis = hypothesis
        self.calls: list[tuple[float, int]] = []  # (audio seconds, beam size)

    def decode_utterance(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        task: str,
        beam_size: int,
        prompt: str = "",
        pad_s: float = 3.0,
        languages: tuple[str, ...] = (),
    ) -> Hypothesis:
        time.sleep(self.delay)
        self.calls.append((len(audio) / SAMPLE_RATE, beam_size))
        offset = float(audio[0]) - self.utterance_start if len(audio) else 0.0
        heard = offset + len(audio) / SAMPLE_RATE
        words = [Word(t, s - offset, e - offset) for t, s, e in self.script if s >= offset - 0.05 and e <= heard]
        partly = [t for t, s, e in self.script if s < heard < e]
        if partly:
            words.append(Word(partly[0][::-1], heard - offset - 0.1, heard - offset))
        text = " ".join(w.text for w in words)
        fields = {"no_speech_prob": 0.01, "avg_logprob": -0.2, "compression_ratio": 1.2} | self.hypothesis
        if "words" in fields:
            words = fields.pop("words")
        return Hypothesis(text=text, words=tuple(words), language="en", audio_s=len(audio) / SAMPLE_RATE, **fields)


def words(text: str, start: float, step: float = 0.5) -> list[Word]:
    return [Word(t, start + i * step, start + i * step + 0.4) for i, t in enumerate(text.split())]


def _timed_audio(start: int, end: int) -> np.ndarray:
    return (np.arange(start, end) / SAMPLE_RATE).astype(np.float32)


async def _pieces(
    utterances: list[tuple[int, float, float]], piece_s: float = 0.1, pace: float = 0.0
) -> AsyncIterator[SpeechSegment]:
    """Utterances (id, start s, end s) sent as VAD sends them: in pieces, the last one final."""
    for utterance, start_s, end_s in utterances:
        start, end = int(start_s * SAMPLE_RATE), int(end_s * SAMPLE_RATE)
        step = int(piece_s * SAMPLE_RATE)
        for position in range(start, end, step):
            stop = min(position + step, end)
            voiced = min(stop, start + int(3.6 * SAMPLE_RATE))
            yield SpeechSegment(utterance, position, stop, _timed_audio(position, stop), False, voiced)
            await asyncio.sleep(pace)
        yield SpeechSegment(utterance, end, end, np.zeros(0, dtype=np.float32), True, end)


async def _collect(stage: StreamingAsrStage, pieces: AsyncIterator[SpeechSegment]) -> list[Transcript | Translation]:
    return [t async for t in stage.run(pieces)]


def _stage(decoder: ScriptedDecoder, *, live: bool = False, **streaming: Any) -> StreamingAsrStage:
    """The stage as a replay runs it (a decode every 0.3 s of audio, whatever the machine's speed:
    deterministic), or ``live``, where the decoder's speed sets the cadence."""
    defaults = {"partial_interval_s": 0.3, "replay_step_s": 0.3, "first_decode_s": 0.5, "commit_margin_s": 0.3}
    config = StreamingConfig(**defaults | streaming)
    clock = Clock(replay=not live)
    return StreamingAsrStage(decoder, AsrConfig(language="en"), config, clock=clock)


@pytest.mark.parametrize("live", [False, True])
def test_committed_text_only_grows_and_the_final_has_every_word(live: bool) -> None:
    decoder = ScriptedDecoder(delay=0.01)
    transcripts = asyncio.run(_collect(_stage(decoder, live=live), _pieces([(0, 0.0, 3.8)], pace=0.02)))
    partials = [t for t in transcripts if not t.final]
    assert len(partials) >= (1 if live else 3)  # live, how many depends on the machine's speed
    committed = [t.committed for t in transcripts]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(committed))
    assert any(t.tentative for t in partials)
    final = transcripts[-1]
    assert final.final and final.committed == "The quick brown fox jumps over the lazy dog." and final.tentative == ""
    assert [t.final for t in transcripts].count(True) == 1
    # The guessed, cut-off words never reached committed text.
    assert all(" xof" not in t.committed and "spmuj" not in t.committed for t in transcripts)


def test_final_reuses_a_covering_hypothesis_instead_of_decoding_again() -> None:
    decoder = ScriptedDecoder(delay=0.005)
    # The utterance ends 0.8 s after the last word: during that pause a decode covers it all.
    stage = _stage(decoder)
    transcripts = asyncio.run(_collect(stage, _pieces([(0, 0.0, 4.4)], pace=0.02)))
    assert transcripts[-1].committed == "The quick brown fox jumps over the lazy dog."
    assert stage.reused_finals == 1
    assert decoder.calls[-1][1] == 5  # the pause decode used the final beam size


def test_work_is_coalesced_when_decoding_is_slower_than_audio_arrives() -> None:
    decoder = ScriptedDecoder(delay=0.3)
    stage = _stage(decoder, live=True, partial_interval_s=0.1)
    transcripts = asyncio.run(_collect(stage, _pieces([(0, 0.0, 3.8)], piece_s=0.05, pace=0.005)))
    assert transcripts[-1].committed == "The quick brown fox jumps over the lazy dog."
    assert len(decoder.calls) <= 5  # 76 pieces arrived during about 0.4 s: never one decode each


def test_utterances_are_finalised_in_order() -> None:
    decoder = ScriptedDecoder()
    utterances = [(0, 0.0, 3.8), (1, 5.0, 8.8), (2, 10.0, 13.8)]
    stage = _stage(decoder)
    decoders = {0: 0.0, 1: 5.0, 2: 10.0}

    def decode(audio: np.ndarray, **kw: Any) -> Hypothesis:
        decoder.utterance_start = max(s for s in decoders.values() if s <= float(audio[0]) + 1e-6)
        return ScriptedDecoder.decode_utterance(decoder, audio, **kw)

    decoder.decode_utterance = decode  # type: ignore[method-assign]
    transcripts = asyncio.run(_collect(stage, _pieces(utterances, pace=0.001)))
    finals = [t for t in transcripts if t.final]
    assert [t.utterance for t in finals] == [0, 1, 2]
    assert [t.start for t in finals] == [0.0, 5.0, 10.0]
    assert all(t.committed == "The quick brown fox jumps over the lazy dog." for t in finals)


def test_no_speech_and_loops_are_not_committed() -> None:
    silent = ScriptedDecoder(no_speech_prob=0.9, avg_logprob=-1.5)
    transcripts = asyncio.run(_collect(_stage(silent), _pieces([(0, 0.0, 3.8)])))
    assert all(t.committed == "" for t in transcripts)

    loop = [Word(w, 0.1 + 0.3 * i, 0.3 + 0.3 * i) for i, w in enumerate(["thank", "you"] * 6)]
    looping = ScriptedDecoder(words=loop, compression_ratio=3.0)
    transcripts = asyncio.run(_collect(_stage(looping), _pieces([(0, 0.0, 3.8)])))
    assert transcripts[-1].committed == "thank you"


def test_a_finished_sentence_before_a_pause_is_final_without_waiting_for_vad() -> None:
    # One VAD utterance: "Hello there." then a 0.6 s pause, then "How are you?".
    script = [("Hello", 0.1, 0.5), ("there.", 0.6, 1.1), ("How", 1.7, 2.0), ("are", 2.1, 2.3), ("you?", 2.4, 2.9)]
    voiced = [(0.1, 1.1), (1.7, 2.9)]

    async def pieces() -> AsyncIterator[SpeechSegment]:
        step = int(0.1 * SAMPLE_RATE)
        for position in range(0, int(3.5 * SAMPLE_RATE), step):
            now = (position + step) / SAMPLE_RATE
            voiced_until = max((min(e, now) for s, e in voiced if s < now), default=0.0)
            yield SpeechSegment(
                0,
                position,
                position + step,
                _timed_audio(position, position + step),
                False,
                int(voiced_until * SAMPLE_RATE),
            )
            await asyncio.sleep(0.01)
        end = int(3.5 * SAMPLE_RATE)
        yield SpeechSegment(0, end, end, np.zeros(0, dtype=np.float32), True, int(2.9 * SAMPLE_RATE))

    stage = _stage(ScriptedDecoder(script=script), first_decode_s=0.3, partial_interval_s=0.1)
    transcripts = asyncio.run(_collect(stage, pieces()))
    finals = [t for t in transcripts if t.final]
    assert [(t.utterance, t.committed) for t in finals] == [(0, "Hello there."), (1, "How are you?")]
    assert stage.sentence_finals >= 1
    assert finals[0].end < 1.7  # it ended in the pause, before the next sentence began
    first_final = transcripts.index(finals[0])
    assert all(t.utterance == 1 for t in transcripts[first_final + 1 :])  # nothing more about utterance 0


def test_the_next_speakers_words_heard_before_a_quick_sentence_end_stay_on_screen() -> None:
    # Quick turn-taking: "Hello there." and at once "How are you today?", no pause VAD hears. The
    # hypothesis that ends the first sentence has already heard the next one begin: its words go
    # to the next utterance's line with the final, not off the screen until that line's decode.
    script = [
        ("Hello", 0.1, 0.5),
        ("there.", 0.6, 1.1),
        ("How", 1.2, 1.5),
        ("are", 1.6, 1.8),
        ("you", 1.9, 2.2),
        ("today?", 2.3, 2.8),
    ]
    decoder = ScriptedDecoder(script=script)

    async def collect() -> list[tuple[Transcript | Translation, int]]:  # each event, with the decodes made before it
        return [(t, len(decoder.calls)) async for t in _stage(decoder).run(_pieces([(0, 0.0, 3.2)]))]

    events = asyncio.run(collect())
    transcripts = [t for t, _ in events]
    first_final = next(i for i, t in enumerate(transcripts) if t.final)
    assert transcripts[first_final].committed == "Hello there."
    carried, decodes = events[first_final + 1]
    assert (carried.utterance, carried.final, carried.committed) == (1, False, "")
    assert carried.tentative.startswith("How are") and decodes == events[first_final][1]  # no decode of its own
    final = transcripts[-1]
    assert (final.utterance, final.final, final.committed) == (1, True, "How are you today?")


def test_translating_streams_translations_and_the_source_text_follows_each_final() -> None:
    decoder = ScriptedDecoder(delay=0.005)
    tasks: list[str] = []

    def decode(audio: np.ndarray, **kw: Any) -> Hypothesis:
        tasks.append(kw["task"])
        hypothesis = ScriptedDecoder.decode_utterance(decoder, audio, **kw)
        if kw["task"] == "transcribe":  # stands for the source language's words
            words = tuple(dataclasses.replace(w, text=w.text.upper()) for w in hypothesis.words)
            return dataclasses.replace(hypothesis, words=words, language="es")
        return dataclasses.replace(hypothesis, language="es")

    decoder.decode_utterance = decode  # type: ignore[method-assign]
    config = StreamingConfig(partial_interval_s=0.3, first_decode_s=0.5, commit_margin_s=0.3, trim_after_s=2.0)
    stage = StreamingAsrStage(decoder, AsrConfig(language="es"), config, translate=True)
    events = asyncio.run(_collect(stage, _pieces([(0, 0.0, 3.8)], pace=0.02)))
    translations = [e for e in events if isinstance(e, Translation)]
    assert len(translations) >= 3 and all(t.source_language == "es" and t.target_language == "en" for t in translations)
    committed = [t.committed for t in translations]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(committed))
    assert translations[-1].final and translations[-1].committed == "The quick brown fox jumps over the lazy dog."
    # Only after the translation is final is the source decoded, once; it ends the utterance.
    assert tasks.count("transcribe") == 1 and tasks[-1] == "transcribe"
    source = events[-1]
    assert isinstance(source, Transcript) and source.final and source.language == "es"
    assert source.committed == "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG."
    assert events.index(source) == events.index(translations[-1]) + 1
    # Translated audio is never trimmed (trim_after_s was 2 s): each decode took all audio so far.
    lengths = [seconds for seconds, _ in decoder.calls]
    assert lengths == sorted(lengths) and lengths[-1] >= 3.7


def test_no_sentence_cut_before_committed_words() -> None:
    # Whisper first hears no sentence end ("Hello there how ..." gets committed), then, with more
    # audio, puts one after "there". Cutting there would put "how" into both utterances.
    script = [
        ("Hello", 0.1, 0.5),
        ("there", 0.6, 1.0),
        ("how", 1.1, 1.3),
        ("are", 1.4, 1.6),
        ("you", 1.7, 2.0),
        ("doing", 2.1, 2.5),
        ("today?", 2.6, 3.0),
    ]
    decoder = ScriptedDecoder(script=script)

    def decode(audio: np.ndarray, **kw: Any) -> Hypothesis:
        hypothesis = ScriptedDecoder.decode_utterance(decoder, audio, **kw)
        if len(audio) / SAMPLE_RATE >= 2.9:  # the late sentence end
            words = [dataclasses.replace(w, text="there.") if w.text == "there" else w for w in hypothesis.words]
            return dataclasses.replace(hypothesis, words=tuple(words))
        return hypothesis

    decoder.decode_utterance = decode  # type: ignore[method-assign]
    stage = _stage(decoder, agree_gap_s=0.5, first_decode_s=0.3, partial_interval_s=0.1)
    transcripts = asyncio.run(_collect(stage, _pieces([(0, 0.0, 4.0)], pace=0.01)))
    finals = [t.committed for t in transcripts if t.final]
    assert " ".join(finals).lower().replace(".", "") == "hello there how are you doing today?"


def test_audio_is_not_trimmed_after_committed_words_whisper_has_reworded() -> None:
    # Noisy speech: "All now is almost time to work" was committed from short decodes; with 8 s
    # heard, Whisper hears "All nouns on one side of the world". The committed words' times no
    # longer hold, and a cut after "work" would take away audio of words not yet committed.
    committed = words("All now is almost time to work", start=0.2)
    stage = _stage(ScriptedDecoder(), trim_after_s=6.0)

    def trim_point(hypothesis: list[Word]) -> float:
        utterance = OpenUtterance(0, 0, audio=[np.zeros(8 * SAMPLE_RATE, dtype=np.float32)], samples=8 * SAMPLE_RATE)
        utterance.agreement.update(committed)
        utterance.agreement.update(committed)
        utterance.hypothesis = hypothesis
        utterance.trim_if_long(stage._config.trim_after_s)
        return utterance.trim / SAMPLE_RATE

    assert trim_point(committed + words("safe for you", start=3.7)) > 2.0  # said again: cut after "work"
    assert trim_point(words("All nouns on one side of the world say for you", start=0.2, step=0.6)) == 0.0


def test_a_sentence_end_two_hypotheses_agree_on_ends_the_utterance_without_a_pause() -> None:
    # Quick turn-taking: no pause anywhere, so VAD would close nothing until the very end.
    script = [
        ("Hello", 0.1, 0.5),
        ("there.", 0.6, 1.0),
        ("How", 1.1, 1.3),
        ("are", 1.4, 1.6),
        ("you", 1.7, 2.0),
        ("doing", 2.1, 2.5),
        ("today?", 2.6, 3.0),
    ]
    # Words are committed only 2 s behind the audio (the default), so commits do not end it.
    stage = _stage(
        ScriptedDecoder(script=script), agree_gap_s=0.5, first_decode_s=0.3, partial_interval_s=0.1, commit_margin_s=2.0
    )
    finals = [t for t in asyncio.run(_collect(stage, _pieces([(0, 0.0, 3.4)], pace=0.01))) if t.final]
    assert finals[0].committed == "Hello there."
    assert finals[0].end < 1.2  # cut between "there." and "How", long before VAD's end


def test_a_sentence_end_followed_by_nothing_whisper_hears_ends_the_utterance() -> None:
    # VAD still hears voice 1 s after "Hello there." (it would close the utterance much later).
    stage = _stage(ScriptedDecoder())
    noise = np.random.default_rng(0).normal

    def end_after(level: float, previous_decoded_s: float = 1.5) -> float | None:
        audio = np.concatenate([noise(0, 0.1, SAMPLE_RATE), noise(0, level, SAMPLE_RATE)]).astype(np.float32)
        utterance = OpenUtterance(0, 0, audio=[audio], samples=len(audio), voiced_until=len(audio), decoded=len(audio))
        utterance.previous_decoded = int(previous_decoded_s * SAMPLE_RATE)
        utterance.hypothesis = utterance.previous = [Word("Hello", 0.1, 0.5), Word("there.", 0.6, 1.0)]
        at = utterance.sentence_end(stage._config.commit_margin_s)
        return None if at is None else at / SAMPLE_RATE

    assert end_after(0.02) == 1.5  # 14 dB quieter: noise or a breath, cut in the middle
    # As loud as the speech: the next sentence (a next speaker?), whose start Whisper leaves out
    # until it is decoded apart: cut just after the word.
    assert end_after(0.08) == 1.2
    # But not where the decode before ended just after the word: Whisper leaves out a decode's
    # last words, so it had nothing after the word to hear ("...que se concentró?" at 0.08 s).
    assert end_after(0.08, previous_decoded_s=1.08) is None


def test_a_sentence_end_is_agreed_on_by_its_word_and_time_not_by_every_word_before_it() -> None:
    # The two-speaker conversation: "Well, there's / there is not much difference. At least..."
    audio = np.full(3 * SAMPLE_RATE, 0.1, dtype=np.float32)
    utterance = OpenUtterance(0, 0, audio=[audio], samples=len(audio), voiced_until=len(audio), decoded=len(audio))
    utterance.previous = [Word("there", 0.1, 0.3), Word("is", 0.3, 0.5), Word("not", 0.5, 0.7), Word("much.", 0.7, 1.0)]
    utterance.hypothesis = [Word("there's", 0.1, 0.5), Word("not", 0.5, 0.7), Word("much.", 0.7, 1.1)]
    utterance.hypothesis += [Word("At", 2.0, 2.2)]
    assert utterance.sentence_end(3.0) == int(1.55 * SAMPLE_RATE)  # between "much." and "At"
    utterance.previous[-1] = Word("much.", 1.2, 1.5)  # the same word heard elsewhere: no agreement
    assert utterance.sentence_end(3.0) is None


def test_a_sentence_end_is_agreed_on_with_the_hypothesis_before_the_previous_one() -> None:
    # Quick turns in Portuguese: given two speakers' sentences, Whisper gave both in one decode and
    # only the second (its first word stretched over the first) in the next, every other decode,
    # so no two consecutive hypotheses agreed on the sentence end.
    audio = np.full(4 * SAMPLE_RATE, 0.1, dtype=np.float32)
    utterance = OpenUtterance(0, 0, audio=[audio], samples=len(audio), voiced_until=len(audio), decoded=len(audio))
    both = [Word("perdeu", 0.1, 0.5), Word("o", 0.5, 0.6), Word("carro.", 0.6, 1.6), Word("O", 2.0, 2.2)]
    second = [Word("O", 0.1, 2.2), Word("romantismo", 2.2, 2.9)]
    utterance.older, utterance.previous = both, second
    utterance.hypothesis = [*both, Word("romantismo", 2.2, 2.9)]
    assert utterance.sentence_end(3.0) == int(1.8 * SAMPLE_RATE)  # between "carro." and "O"
    # Nothing heard after it is weaker evidence: that needs the latest two decodes.
    utterance.older = both[:3]
    utterance.hypothesis = both[:3]
    assert utterance.sentence_end(3.0) is None


def test_a_sentence_end_is_agreed_on_where_whisper_stretched_its_last_word_over_the_pause() -> None:
    # The two-speaker conversation: with the full stop, Whisper gives "Jersey." the pause after it
    # (13.53-14.38 s); the decode before, which heard the next speaker's "And" as no more than a
    # breath, had "Jersey" end at 14.01 s. The word starts where it did: agreed, cut before "And".
    audio = np.full(3 * SAMPLE_RATE, 0.1, dtype=np.float32)
    utterance = OpenUtterance(0, 0, audio=[audio], samples=len(audio), voiced_until=len(audio), decoded=len(audio))
    utterance.previous = [Word("New", 0.1, 0.3), Word("Jersey", 0.3, 0.8)]
    utterance.hypothesis = [Word("New", 0.1, 0.3), Word("Jersey.", 0.3, 1.15), Word("And", 1.15, 1.3)]
    assert utterance.sentence_end(3.0) == int(1.15 * SAMPLE_RATE)


def test_titles_and_initials_do_not_end_sentences() -> None:
    assert all(ends_sentence(w) for w in ("dog.", "you?", "Ja!", "etc.", "5.", "好。"))
    assert not any(ends_sentence(w) for w in ("Mr.", "Dr.", "Sra.", "J.", "dog", "Hello,"))
    assert all(ends_clause(w) for w in ("dog.", "Hello,", "namely:", "你好，"))
    assert not any(ends_clause(w) for w in ("Mr.", "J.", "dog"))
    stage = _stage(ScriptedDecoder())
    audio = np.concatenate([np.full(SAMPLE_RATE, 0.1), np.full(SAMPLE_RATE, 0.001)]).astype(np.float32)
    utterance = OpenUtterance(0, 0, audio=[audio], samples=len(audio), voiced_until=len(audio), decoded=len(audio))
    utterance.hypothesis = utterance.previous = [Word("And", 0.1, 0.5), Word("Mr.", 0.6, 1.0)]
    assert utterance.sentence_end(stage._config.commit_margin_s) is None  # "And Mr. | John Dashwood..." once


class Hearing(ScriptedDecoder):
    """Hears ``heard`` (a Hypothesis) whatever audio it is given."""

    def __init__(self, heard: Hypothesis) -> None:
        super().__init__()
        self.heard = heard

    def decode_utterance(self, audio: np.ndarray, **kw: Any) -> Hypothesis:
        super().decode_utterance(audio, **kw)
        return self.heard


def _closed(decoded_s: float, heard: list[Word], logprob: float) -> OpenUtterance:
    """SCRIPT's utterance as VAD closed it: voiced until 3.6 s, ended 3.8 s; its latest decode
    reached ``decoded_s`` and heard ``heard`` with average log-probability ``logprob``."""
    utterance = OpenUtterance(0, 0, audio=[_timed_audio(0, int(3.8 * SAMPLE_RATE))], samples=int(3.8 * SAMPLE_RATE))
    utterance.voiced_until, utterance.end = int(3.6 * SAMPLE_RATE), int(3.8 * SAMPLE_RATE)
    utterance.decoded = int(decoded_s * SAMPLE_RATE)
    utterance.hypothesis, utterance.final_quality, utterance.logprob = heard, True, logprob
    return utterance


def test_final_reuses_a_hypothesis_that_decoded_all_the_speech() -> None:
    # VAD closed the utterance 0.2 s after the last voiced frame; the latest decode reached past
    # that frame. Decoding the short tail again (after a trim) once lost a whole clause in noise.
    decoder = Hearing(Hypothesis("", (), "en", -2.0, 0.0, 0.0, 0.0))
    heard = [Word(t, s, e) for t, s, e in SCRIPT]
    final = asyncio.run(_stage(decoder)._final(_closed(3.62, heard, -0.4)))
    assert final is not None and final.committed == "The quick brown fox jumps over the lazy dog."
    assert decoder.calls == []


def test_a_final_decode_whisper_is_unsure_of_gives_way_to_the_latest_hypothesis() -> None:
    # The latest decode stopped short of the last voiced frame, so the final decodes again; in
    # noise that decode came out as one wrong word at log-probability -1.75.
    decoder = Hearing(Hypothesis("en", (Word("en", 0.0, 0.3),), "en", -1.75, 0.0, 1.0, 3.8))
    heard = [Word(t, s, e) for t, s, e in SCRIPT if e <= 3.4]  # all but "dog."
    final = asyncio.run(_stage(decoder)._final(_closed(3.4, heard, -0.4)))
    assert len(decoder.calls) == 1  # it did decode again...
    # ...and kept what it had heard before, rather than "en".
    assert final is not None and final.committed == "The quick brown fox jumps over the lazy"


def test_a_final_that_stopped_early_after_a_trim_is_decoded_again_whole() -> None:
    # After a trim, Whisper heard "fox jumps" with "The quick brown" as its prompt and stopped,
    # though the speech went on for 1.5 s more ("...had then leisure to consider how much").
    decoder = ScriptedDecoder()
    heard = [Word(t, s, e) for t, s, e in SCRIPT if e <= 2.1]
    utterance = _closed(3.62, heard, -0.3)
    for _ in range(2):
        utterance.agreement.update(heard[:3])
    utterance.trim = int(1.25 * SAMPLE_RATE)
    stage = _stage(decoder)
    final = asyncio.run(stage._final(utterance))
    assert final is not None and final.committed == "The quick brown fox jumps over the lazy dog."
    assert decoder.calls == [(3.8, 5)] and stage.whole_finals == 1  # once, all of it, at the final beam size
    # Where the final reaches the speech's end, nothing more is decoded.
    utterance = _closed(3.62, [Word(t, s, e) for t, s, e in SCRIPT], -0.3)
    utterance.trim = int(1.25 * SAMPLE_RATE)
    decoder.calls.clear()
    asyncio.run(stage._final(utterance))
    assert decoder.calls == []


def test_logs_say_how_each_final_was_made_and_never_what_was_said(caplog: pytest.LogCaptureFixture) -> None:
    decoder = ScriptedDecoder()
    with caplog.at_level(logging.INFO, logger="pipeline.stages.streaming"):
        transcripts = asyncio.run(_collect(_stage(decoder), _pieces([(0, 0.0, 3.8)])))
    assert transcripts[-1].final and transcripts[-1].committed == "The quick brown fox jumps over the lazy dog."
    [record] = [r for r in caplog.records if "final" in r.getMessage()]
    assert record.getMessage().startswith("utterance 0 final, 0.00-3.80 s, 9 words: ")
    assert not {"quick", "brown", "fox", "jumps", "lazy", "dog"} & set(caplog.text.lower().split())


def test_each_labelled_speaker_gets_their_action_language_and_task() -> None:
    # Three utterances the array labelled: the partner's (translated), the wearer's (captioned,
    # in the wearer's language), another of the partner's; with the wearer's action "drop" the
    # wearer's is not even decoded.
    decoder = ScriptedDecoder()
    seen: list[tuple[str | None, str]] = []

    def decode(audio: np.ndarray, **kw: Any) -> Hypothesis:
        seen.append((kw["language"], kw["task"]))
        return ScriptedDecoder.decode_utterance(decoder, audio, **kw)

    decoder.decode_utterance = decode  # type: ignore[method-assign]

    async def labelled() -> AsyncIterator[SpeechSegment]:
        for utterance, who in enumerate(("partner", "wearer", "partner")):
            async for piece in _pieces([(utterance, 0.0, 3.8)]):
                yield dataclasses.replace(piece, speaker=who)

    config = StreamingConfig(partial_interval_s=0.3, first_decode_s=0.5, commit_margin_s=0.3)
    for wearer, expected in (("caption", ["partner", "wearer", "partner"]), ("drop", ["partner", "partner"])):
        seen.clear()
        stage = StreamingAsrStage(
            decoder,
            AsrConfig(language="es"),
            config,
            translate=True,
            actions={"partner": "translate", "wearer": wearer},
            wearer_language="en",
        )
        events = asyncio.run(_collect(stage, labelled()))
        finals = [e for e in events if e.final and not (isinstance(e, Transcript) and e.speaker == "partner")]
        assert [e.speaker for e in finals] == expected
        for event in finals:
            if event.speaker == "wearer":  # captioned: a transcript in the wearer's language
                assert isinstance(event, Transcript) and event.language == "en"
            else:
                assert isinstance(event, Translation) and event.source_language == "es"
        assert {task for language, task in seen if language == "en"} <= {"transcribe"}
        assert ("en", "transcribe") in seen if wearer == "caption" else all(lang == "es" for lang, _ in seen)


def test_an_utterance_whose_first_pieces_told_nobody_takes_the_first_label_before_it_is_decoded() -> None:
    # In noise the first 0.1-0.3 s of speech may hold no frame loud enough for the array to tell
    # whose voice it is: VAD sends those pieces unlabelled, the later ones labelled.
    async def late(who: str, unlabelled_s: float) -> AsyncIterator[SpeechSegment]:
        async for piece in _pieces([(0, 0.0, 3.8)]):
            told = piece.final or piece.end > unlabelled_s * SAMPLE_RATE
            yield dataclasses.replace(piece, speaker=who if told else None)

    def finals(wearer: str, unlabelled_s: float) -> list[Transcript | Translation]:
        stage = StreamingAsrStage(
            ScriptedDecoder(),
            AsrConfig(language="es"),
            StreamingConfig(partial_interval_s=0.3, first_decode_s=0.5, commit_margin_s=0.3),
            translate=True,
            actions={"partner": "translate", "wearer": wearer},
            wearer_language="en",
            clock=Clock(replay=True),  # a decode every 0.3 s of audio: deterministic
        )
        return [e for e in asyncio.run(_collect(stage, late("wearer", unlabelled_s))) if e.final]

    [final] = finals("caption", 0.3)
    assert isinstance(final, Transcript) and final.speaker == "wearer" and final.language == "en"
    assert finals("drop", 0.3) == []
    # Once decoding has begun the utterance keeps what it was decoded as (the session's default).
    kept = finals("drop", 2.0)
    assert any(isinstance(e, Translation) for e in kept) and all(e.speaker is None for e in kept)
    # Decoded already, a label that asks for what it is decoded as (the partner's: translated) still
    # names its speaker.
    stage = StreamingAsrStage(
        ScriptedDecoder(),
        AsrConfig(language="es"),
        StreamingConfig(partial_interval_s=0.3, first_decode_s=0.5, commit_margin_s=0.3),
        translate=True,
        actions={"partner": "translate", "wearer": "caption"},
        clock=Clock(replay=True),
    )
    events = asyncio.run(_collect(stage, late("partner", 2.0)))
    assert [e.speaker for e in events if e.final] == ["partner", "partner"]


def test_where_the_array_labels_utterances_an_unlabelled_one_waits_for_its_label_before_decoding() -> None:
    # The partner spoke (labelled); then VAD starts an utterance 1.5 s before anything in it is loud
    # enough to tell it is the wearer's. Decoded at 0.5 s as the default it would be translated:
    # it waits for its label (up to LABEL_WAIT_S), and the wearer's action, drop, is kept.
    async def pieces() -> AsyncIterator[SpeechSegment]:
        async for piece in _pieces([(0, 0.0, 3.8), (1, 5.0, 8.8)]):
            told = piece.utterance == 0 or piece.final or piece.end > 6.5 * SAMPLE_RATE
            yield dataclasses.replace(piece, speaker=("partner", "wearer")[piece.utterance] if told else None)

    def run(wait: bool) -> list[Transcript | Translation]:
        stage = StreamingAsrStage(
            ScriptedDecoder(script=SCRIPT + [(t, s + 5.0, e + 5.0) for t, s, e in SCRIPT]),
            AsrConfig(language="es"),
            StreamingConfig(partial_interval_s=0.3, first_decode_s=0.5, commit_margin_s=0.3),
            translate=True,
            actions={"partner": "translate", "wearer": "drop"},
            clock=Clock(replay=True),
        )
        with mock.patch("pipeline.stages.streaming.LABEL_WAIT_S", 2.0 if wait else 0.0):
            return asyncio.run(_collect(stage, pieces()))

    events = run(wait=True)
    assert events and {e.speaker for e in events} == {"partner"} and all(e.start < 5.0 for e in events)
    assert any(e.start >= 5.0 and e.speaker is None for e in run(wait=False))  # what the wait prevents


def test_where_another_voice_takes_over_inside_an_utterance_it_is_split_there() -> None:
    # The partner says "The quick brown fox" and the wearer, without a pause VAD hears, "jumps over
    # the lazy dog.": VAD labels its pieces "partner" until its evidence turns, at 2.4 s, and then
    # "wearer", since 1.65 s.
    async def pieces(turn: bool) -> AsyncIterator[SpeechSegment]:
        async for piece in _pieces([(0, 0.0, 3.8)]):
            if turn and piece.end > 2.4 * SAMPLE_RATE:
                yield dataclasses.replace(piece, speaker="wearer", speaker_since=int(1.65 * SAMPLE_RATE))
            else:
                yield dataclasses.replace(piece, speaker="partner", speaker_since=0)

    def finals(turn: bool, wearer: str = "caption") -> list[Transcript | Translation]:
        stage = StreamingAsrStage(
            ScriptedDecoder(),
            AsrConfig(language="es"),
            StreamingConfig(partial_interval_s=0.3, replay_step_s=0.3, first_decode_s=0.5, commit_margin_s=0.3),
            translate=True,
            actions={"partner": "translate", "wearer": wearer},
            wearer_language="en",
            clock=Clock(replay=True),
        )
        events = asyncio.run(_collect(stage, pieces(turn)))
        assert stage.speaker_finals == int(turn)
        # The finals shown: translations, and the wearer's captions (not the translations' sources).
        return [e for e in events if e.final and (isinstance(e, Translation) or e.speaker == "wearer")]

    partner, wearer = finals(turn=True)
    assert isinstance(partner, Translation) and partner.speaker == "partner"
    assert partner.committed == "The quick brown fox" and partner.end == pytest.approx(1.65, abs=0.01)
    assert isinstance(wearer, Transcript) and wearer.speaker == "wearer" and wearer.language == "en"
    assert wearer.committed == "jumps over the lazy dog." and wearer.start == pytest.approx(1.65, abs=0.01)
    # Dropped, the wearer's words are in no event at all.
    [partner] = finals(turn=True, wearer="drop")
    assert partner.committed == "The quick brown fox"
    # No turn: one utterance, the partner's.
    [whole] = finals(turn=False)
    assert whole.speaker == "partner" and whole.committed == "The quick brown fox jumps over the lazy dog."
