"""Compute cost of the live path's hot spots, with pytest-benchmark.

In the suite each runs once, as a plain test of what it measures (``--benchmark-disable`` in
pyproject.toml). To measure: ``.venv/bin/python -m pytest tests/test_speed.py --benchmark-enable``
(figures in benchmarks/README.md, "Decode cost"). Nothing here asserts a time: on a shared
machine that would flake; latency targets are met with ``livesub bench``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.algos.wer import wer
from pipeline.backends.whisper import WhisperDecoder
from pipeline.config import load_config
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all
from pipeline.inputs.sources import FileSource
from pipeline.stages.vad import LiveVadStage

from .conftest import FIXTURES, reference

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("window", ["sized", "30 s"])
def test_one_decode_of_a_4_s_utterance(benchmark: Any, whisper_base: WhisperDecoder, window: str) -> None:
    # The live path sizes Whisper's encoder to the audio plus 3 s; faster-whisper pads to 30 s.
    audio = read_all(FIXTURES / "fleurs-en-004.ogg")
    pad_s = 3.0 if window == "sized" else 30.0 - len(audio) / SAMPLE_RATE

    def decode() -> str:
        return whisper_base.decode_utterance(audio, language="en", task="transcribe", beam_size=5, pad_s=pad_s).text

    text = benchmark(decode)
    assert wer(reference("fleurs-en-004.ogg"), text) <= 0.15  # the sized encoder hears it as well


def test_live_vad_on_30_s_of_conversation(benchmark: Any) -> None:
    # WebRTC VAD on every 30 ms frame, Silero confirming each utterance and listening for its end.
    path = FIXTURES / "en_conversation_2spk_30s.wav"

    async def utterances() -> list[tuple[int, int]]:
        stage = LiveVadStage(load_config([]).vad)
        spans: dict[int, list[int]] = {}
        async for piece in stage.run(FileSource(path, realtime=False).chunks()):
            spans.setdefault(piece.utterance, [piece.start, piece.end])[1] = piece.end
        return [(start, end) for start, end in spans.values()]

    spans = benchmark(lambda: asyncio.run(utterances()))
    assert spans and spans[0][0] / SAMPLE_RATE >= 6.0  # the 6.7 s of leading silence is no utterance
    speech = sum(end - start for start, end in spans) / SAMPLE_RATE
    assert 15.0 <= speech <= 24.0  # the speech, about 23 s of it: not the silence, and not lost
