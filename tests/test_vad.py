"""The live VAD stage on real speech, at the levels the glasses hear."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import soundfile

from pipeline.bench import build_stream
from pipeline.config import load_config
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.sources import FileSource
from pipeline.stages.vad import LiveVadStage

from .conftest import FIXTURES

pytestmark = pytest.mark.integration  # Silero, shipped in faster-whisper, confirms the utterances

#: The German sentence's reader pauses between clauses; at -60 dBFS, after a pause, it came
#: apart in three. (First in a stream, before the VAD's gain has heard digital silence, it still
#: can: the gain anchors the clip's own noise floor, and WebRTC VAD misses speech 22 dB above it.)
CLIPS = ["fleurs-fr-000.ogg", "fleurs-es-003.ogg", "fleurs-de-002.ogg", "de_leopard_leichenhalle.wav"]


async def _utterances(path: Path) -> list[tuple[float, float]]:
    stage = LiveVadStage(load_config([]).vad)
    spans: dict[int, list[int]] = {}
    async for piece in stage.run(FileSource(path, realtime=False).chunks()):
        spans.setdefault(piece.utterance, [piece.start, piece.end])[1] = piece.end
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in spans.values()]


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
