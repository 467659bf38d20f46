"""Silero VAD v6: the ONNX model shipped inside faster-whisper (no torch)."""

from __future__ import annotations

from pipeline.config import VadConfig
from pipeline.events import Samples


class SileroDetector:
    """Speech stretches in mono 16 kHz audio, from faster-whisper's bundled Silero model."""

    def __init__(self, config: VadConfig, max_speech_s: float, min_silence_ms: int, speech_pad_ms: int) -> None:
        from faster_whisper.vad import VadOptions

        self._options = VadOptions(
            threshold=config.threshold,
            min_silence_duration_ms=min_silence_ms,
            speech_pad_ms=speech_pad_ms,
            max_speech_duration_s=max_speech_s,
        )

    def __call__(self, audio: Samples) -> list[tuple[int, int]]:
        from faster_whisper.vad import get_speech_timestamps

        if len(audio) < 512:  # shorter than one Silero window
            return []
        return [(int(t["start"]), int(t["end"])) for t in get_speech_timestamps(audio, self._options)]
