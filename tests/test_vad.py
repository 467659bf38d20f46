"""The live VAD stage on real speech, at the levels the glasses hear."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipeline.bench import build_stream
from pipeline.config import load_config
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all
from pipeline.inputs.sources import FileSource
from pipeline.stages.vad import LiveVadStage

from .conftest import FIXTURES

pytestmark = pytest.mark.integration  # Silero, shipped in faster-whisper, confirms the utterances

#: The German sentence's reader pauses between clauses; at -60 dBFS, after a pause, it came
#: apart in three. (First in a stream, before the VAD's gain has heard digital silence, it still
#: can: the gain anchors the clip's own noise floor, and WebRTC VAD misses speech 22 dB above it.)
CLIPS = ["fleurs-fr-000.ogg", "fleurs-es-003.ogg", "fleurs-de-002.ogg", "de_leopard_leichenhalle.wav"]


async def _vad(path: Path) -> tuple[list[tuple[float, float]], int]:
    """The utterances VAD sends (start and end, seconds), and how many Silero refused."""
    stage = LiveVadStage(load_config([]).vad)
    spans: dict[int, list[int]] = {}
    async for piece in stage.run(FileSource(path, realtime=False).chunks()):
        spans.setdefault(piece.utterance, [piece.start, piece.end])[1] = piece.end
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in spans.values()], stage.rejected


async def _utterances(path: Path) -> list[tuple[float, float]]:
    return (await _vad(path))[0]


@pytest.mark.parametrize("level_dbfs", [-25.0, -60.0])
def test_each_sentence_is_one_utterance_loud_or_quiet(tmp_path: Path, level_dbfs: float) -> None:
    # At -60 dBFS the soft ends of words fall below -80 dBFS; when that was the VAD's silence
    # floor, a sentence came apart into utterances decoded apart.
    audio, segments = build_stream([FIXTURES / name for name in CLIPS], level_dbfs=level_dbfs)
    stream = tmp_path / "stream.wav"
    soundfile.write(str(stream), audio, SAMPLE_RATE)
    utterances = asyncio.run(_utterances(stream))
    assert len(utterances) == len(segments)
    for (start, end), segment in zip(utterances, segments, strict=True):
        assert start <= segment["start"] and end >= segment["end"] - 0.2


def test_an_utterance_ends_where_silero_hears_the_speech_end(tmp_path: Path) -> None:
    # The French sentence's recording has a click 0.9 s after its last word. At -60 dBFS, WebRTC
    # VAD (on the level-raised copy) hears it as 360 ms of voice, and held the utterance open 1.7 s
    # after the speech; Silero hears no speech in it.
    audio, segments = build_stream([FIXTURES / "fleurs-fr-003.ogg"], level_dbfs=-60.0)
    stream = tmp_path / "stream.wav"
    soundfile.write(str(stream), audio, SAMPLE_RATE)
    [(start, end)] = asyncio.run(_utterances(stream))
    assert start <= segments[0]["start"]
    assert segments[0]["end"] - 0.1 <= end <= segments[0]["end"] + 0.5


def test_two_quiet_words_between_pauses_are_confirmed_and_quiet_noise_is_not(tmp_path: Path) -> None:
    # JFK's "ask not" at -57 dBFS: WebRTC VAD (on its level-raised copy) heard it, but Silero,
    # given the audio as it was, heard no speech, and the words were lost from a stream's text.
    # Silero now hears it raised too. White noise at -60 dBFS over a -85 dBFS hiss, which WebRTC
    # VAD's copy takes for voice, is raised 25 dB for Silero the same way, and still refused.
    ask_not = read_all(FIXTURES / "en_jfk_inaugural_44k_stereo.flac")[int(3.0 * SAMPLE_RATE) : int(4.6 * SAMPLE_RATE)]
    random = np.random.default_rng(0)
    noise = random.normal(0.0, 10 ** (-60 / 20), 2 * SAMPLE_RATE).astype(np.float32)
    hiss = random.normal(0.0, 10 ** (-85 / 20), SAMPLE_RATE).astype(np.float32)
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    for sound, sent, refused in (
        (np.concatenate([silence, ask_not * np.float32(10 ** (-43 / 20)), silence, silence]), 1, 0),
        (np.concatenate([hiss, noise, hiss, hiss]), 0, 1),
    ):
        stream = tmp_path / "stream.wav"
        soundfile.write(str(stream), sound, SAMPLE_RATE, subtype="FLOAT")
        utterances, rejected = asyncio.run(_vad(stream))
        assert (len(utterances), rejected) == (sent, refused)
