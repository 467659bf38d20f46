"""The live segmenter with scripted detectors: square waves stand in for speech and noise.

WebRTC VAD's fake hears any frame above -40 dBFS (after the level gain) as voice, so it takes
both speech and noise for voice; Silero's fake hears speech only where the samples are louder
than 0.1, so it hears the speech and not the noise. Every stretch of audio here lasts a whole
number of 30 ms frames, so the gate's ends (whole frames) and Silero's (samples) agree.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.algos.live_segmenter import LiveSegmenter
from pipeline.config import VadConfig
from pipeline.events import SAMPLE_RATE, AudioChunk, Samples, SpeechSegment
from pipeline.stages.vad import LiveVadStage

CONFIG = VadConfig()  # 30 ms frames, 300 ms pre-roll, 150 ms post-roll, 650 ms closing silence
FRAME = SAMPLE_RATE * CONFIG.frame_ms // 1000
PRE_ROLL = CONFIG.pre_roll_ms * SAMPLE_RATE // 1000
POST_ROLL = CONFIG.post_roll_ms * SAMPLE_RATE // 1000


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def speech(seconds: float) -> Samples:
    """A 500 Hz square wave at 0.3: voice to both fakes."""
    return np.where(np.arange(_samples(seconds)) % 32 < 16, 0.3, -0.3).astype(np.float32)


def noise(seconds: float) -> Samples:
    """A 500 Hz square wave at 0.05: voice to WebRTC VAD's fake, no speech to Silero's."""
    return np.where(np.arange(_samples(seconds)) % 32 < 16, 0.05, -0.05).astype(np.float32)


def silence(seconds: float) -> Samples:
    return np.zeros(_samples(seconds), dtype=np.float32)


def loud_frame(pcm: bytes) -> bool:
    """WebRTC VAD's stand-in: a frame of 16-bit PCM is voiced above -40 dBFS."""
    frame = np.frombuffer(pcm, dtype=np.int16).astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(frame * frame))) > 0.01


def loud_spans(audio: Samples) -> list[tuple[int, int]]:
    """Silero's stand-in: the runs of samples louder than 0.1, to the sample."""
    loud = np.concatenate([[0], (np.abs(audio) > 0.1).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(loud))
    return [(int(start), int(end)) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def segment(
    audio: Samples, blocks: list[int] | None = None, segmenter: LiveSegmenter | None = None
) -> list[SpeechSegment]:
    """All pieces for ``audio``, pushed in blocks of the given sizes (cycled; 100 ms by default), then flushed."""
    segmenter = segmenter or LiveSegmenter(CONFIG, loud_frame, loud_spans)
    pieces: list[SpeechSegment] = []
    position = 0
    for size in itertools.cycle(blocks or [1600]):
        if position >= len(audio):
            break
        pieces += segmenter.push(audio[position : position + size])
        position += size
    return pieces + segmenter.flush()


def utterances(pieces: list[SpeechSegment]) -> dict[int, tuple[int, int, Samples]]:
    """Each utterance's (start, end, audio), checking that its pieces follow one another.

    The final piece starts where the sent audio ends, or at the utterance's end if audio after
    the end of speech was already sent; that audio is not part of the utterance.
    """
    spans: dict[int, tuple[int, int, Samples]] = {}
    by_id: dict[int, list[SpeechSegment]] = {}
    for piece in pieces:
        by_id.setdefault(piece.utterance, []).append(piece)
    assert list(by_id) == list(range(len(by_id)))  # ids count utterances from 0, in order
    for utterance, parts in by_id.items():
        *sent, final = parts
        assert final.final and not any(piece.final for piece in sent)
        for before, after in itertools.pairwise(sent):
            assert after.start == before.end > before.start  # no gap, no overlap, never empty
        sent_end = sent[-1].end if sent else final.start
        assert final.start == min(sent_end, final.end)
        for piece in parts:
            assert len(piece.audio) == piece.end - piece.start
        start = parts[0].start
        audio = np.concatenate([piece.audio for piece in parts])[: final.end - start]
        spans[utterance] = (start, final.end, audio)
    return spans


def test_an_utterance_is_confirmed_then_sent_in_pieces_and_closed_at_the_end_of_speech() -> None:
    audio = np.concatenate([silence(1.2), speech(1.5), silence(1.5)])
    segmenter = LiveSegmenter(CONFIG, loud_frame, loud_spans)
    pieces = segment(audio, segmenter=segmenter)
    [(start, end, utterance_audio)] = utterances(pieces).values()
    assert start == _samples(1.2) - PRE_ROLL
    assert end == _samples(2.7) + POST_ROLL
    np.testing.assert_array_equal(utterance_audio, audio[start:end])
    # Nothing is sent before Silero has heard enough of it to confirm it.
    assert pieces[0].end - pieces[0].start >= 0.45 * SAMPLE_RATE
    assert pieces[-1].final and pieces[-1].voiced_until == end
    assert max(piece.voiced_until or 0 for piece in pieces[:-1]) == _samples(2.7)
    assert segmenter.rejected == 0
    assert segmenter.frames == len(audio) // FRAME


def test_steady_noise_silero_hears_no_speech_in_is_rejected_and_logged_by_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    audio = np.concatenate([silence(1.2), noise(2.1), silence(1.5)])
    segmenter = LiveSegmenter(CONFIG, loud_frame, loud_spans)
    with caplog.at_level(logging.INFO, logger="pipeline.algos.live_segmenter"):
        assert segment(audio, segmenter=segmenter) == []
    assert segmenter.rejected == 1
    [record] = caplog.records
    assert record.getMessage() == "VAD: 0.90-3.45 s rejected: Silero heard no speech in it"


def test_without_silero_every_utterance_is_sent() -> None:
    audio = np.concatenate([silence(1.2), noise(2.1), silence(1.5)])
    segmenter = LiveSegmenter(CONFIG, loud_frame, None)
    [(start, end, _)] = utterances(segment(audio, segmenter=segmenter)).values()
    assert (start, end) == (_samples(1.2) - PRE_ROLL, _samples(3.3) + POST_ROLL)
    assert segmenter.rejected == 0


def test_silero_ends_an_utterance_that_noise_holds_open_for_webrtc_vad() -> None:
    audio = np.concatenate([silence(1.2), speech(1.5), noise(4.2), silence(1.5)])
    segmenter = LiveSegmenter(CONFIG, loud_frame, loud_spans)
    pieces: list[SpeechSegment] = []
    closed_at = None
    for position in range(0, len(audio), 1600):
        pieces += segmenter.push(audio[position : position + 1600])
        if closed_at is None and pieces and pieces[-1].final:
            closed_at = position + 1600
    pieces += segmenter.flush()
    speech_end = _samples(2.7)
    [(_, end, _)] = utterances(pieces).values()
    assert end == speech_end + POST_ROLL
    # Closed within a second of the speech's end, while the noise goes on for four more.
    assert closed_at is not None and closed_at - speech_end <= SAMPLE_RATE
    assert segmenter.rejected == 1  # the noise after it, an utterance of its own to WebRTC VAD


def test_flush_closes_the_open_utterance() -> None:
    audio = np.concatenate([silence(1.2), speech(2.1)])
    segmenter = LiveSegmenter(CONFIG, loud_frame, loud_spans)
    pieces: list[SpeechSegment] = []
    for position in range(0, len(audio), 1600):
        pieces += segmenter.push(audio[position : position + 1600])
    assert pieces and not any(piece.final for piece in pieces)
    last = segmenter.flush()
    assert last[-1].final and last[-1].end == len(audio)
    [(start, end, utterance_audio)] = utterances(pieces + last).values()
    np.testing.assert_array_equal(utterance_audio, audio[start:end])
    assert segmenter.flush() == []  # nothing left open


def test_pauses_inside_an_utterance_are_reported() -> None:
    audio = np.concatenate([silence(1.2), speech(0.9), silence(0.3), speech(0.9), silence(1.5)])
    pieces = segment(audio)
    assert len(utterances(pieces)) == 1
    assert [pause for piece in pieces for pause in piece.pauses] == [(_samples(2.1), _samples(2.4))]


#: Two sentences, then noise and silence: the first ends in silence, the second in noise.
STREAM = np.concatenate([silence(0.9), speech(1.2), silence(0.9), speech(0.9), noise(1.5), silence(1.2)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=100, max_value=8000), min_size=1, max_size=8))
def test_any_block_sizes_give_the_same_utterances(blocks: list[int]) -> None:
    segmenter = LiveSegmenter(CONFIG, loud_frame, loud_spans)
    spans = utterances(segment(STREAM, blocks, segmenter))
    assert [(start, end) for start, end, _ in spans.values()] == [
        (_samples(0.9) - PRE_ROLL, _samples(2.1) + POST_ROLL),
        (_samples(3.0) - PRE_ROLL, _samples(3.9) + POST_ROLL),
    ]
    for start, end, audio in spans.values():
        np.testing.assert_array_equal(audio, STREAM[start:end])
    # The noise after the second sentence opens one more utterance, which Silero rejects, when
    # enough of it is left after Silero closed the sentence; where it closed it depends on where
    # the blocks ended (its check runs at the end of a push, every 0.3 s at most).
    assert segmenter.rejected <= 1


def test_the_stage_sends_the_segmenters_pieces() -> None:
    async def chunks() -> AsyncIterator[AudioChunk]:
        for position in range(0, len(STREAM), 1600):
            yield AudioChunk(position, STREAM[position : position + 1600].reshape(-1, 1))

    async def run(stage: LiveVadStage) -> list[SpeechSegment]:
        return [piece async for piece in stage.run(chunks())]

    stage = LiveVadStage(CONFIG, is_speech=loud_frame, speech_spans=loud_spans)
    sent = asyncio.run(run(stage))
    expected = segment(STREAM)
    assert [(p.utterance, p.start, p.end, p.final, p.voiced_until, p.pauses) for p in sent] == [
        (p.utterance, p.start, p.end, p.final, p.voiced_until, p.pauses) for p in expected
    ]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(sent, expected, strict=True))
    assert stage.stats()["rejected"] == 1


def test_with_own_voice_evidence_every_piece_says_who_spoke() -> None:
    # Two utterances: the first with the mouth beam 5 dB over the look beam (the wearer), the
    # second 1 dB over it (a partner in a room); the threshold between is 2.7 dB.
    audio = np.concatenate([silence(0.5), speech(2.0), silence(1.5), speech(2.0), silence(1.0)])
    second = _samples(4.0)

    async def chunks() -> AsyncIterator[AudioChunk]:
        for position in range(0, len(audio), 1600):
            block = audio[position : position + 1600]
            power = float(np.sum(block.astype(np.float64) ** 2))  # the beams' power follows the sound's
            ratio = 10 ** ((5.0 if position < second else 1.0) / 10)
            yield AudioChunk(position, block.reshape(-1, 1), own_voice=(ratio * power, power))

    async def run(stage: LiveVadStage) -> list[SpeechSegment]:
        return [piece async for piece in stage.run(chunks())]

    labelled = asyncio.run(run(LiveVadStage(CONFIG, is_speech=loud_frame, speech_spans=loud_spans, own_voice_db=2.7)))
    assert {p.utterance for p in labelled} == {0, 1}
    assert all(p.speaker == ("wearer" if p.utterance == 0 else "partner") for p in labelled)
    # No evidence (mono, or no profile): no label, as before.
    unlabelled = asyncio.run(run(LiveVadStage(CONFIG, is_speech=loud_frame, speech_spans=loud_spans)))
    assert all(p.speaker is None for p in unlabelled)


def test_where_the_voice_changes_inside_an_utterance_the_pieces_say_where() -> None:
    # One utterance, no pause: the partner (the mouth beam 1 dB over the look beam, a block in
    # five 4 dB, as a room's reflections do) for 2 s, then the wearer (5 dB, a block in five 2 dB).
    audio = np.concatenate([silence(0.5), speech(4.0), silence(1.0)])
    turn = _samples(2.5)

    async def chunks() -> AsyncIterator[AudioChunk]:
        for index, position in enumerate(range(0, len(audio), 1600)):
            block = audio[position : position + 1600]
            power = float(np.sum(block.astype(np.float64) ** 2))
            db = (5.0, 2.0) if position >= turn else (1.0, 4.0)
            ratio = 10 ** (db[index % 5 == 2] / 10)
            yield AudioChunk(position, block.reshape(-1, 1), own_voice=(ratio * power, power))

    async def run() -> list[SpeechSegment]:
        stage = LiveVadStage(CONFIG, is_speech=loud_frame, speech_spans=loud_spans, own_voice_db=2.7)
        return [piece async for piece in stage.run(chunks())]

    pieces = asyncio.run(run())
    assert {p.utterance for p in pieces} == {0}
    partner = [p for p in pieces if p.speaker == "partner"]
    wearer = [p for p in pieces if p.speaker == "wearer"]
    assert partner and wearer and partner[-1].end <= wearer[0].start  # one turn, partner first
    assert {p.speaker_since for p in partner} == {pieces[0].start}
    [since] = {p.speaker_since for p in wearer}
    assert since is not None and abs(since - turn) <= 1600  # within a block of the change
