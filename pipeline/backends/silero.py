"""Silero VAD v6: the ONNX model shipped inside faster-whisper (no torch)."""

from __future__ import annotations

from pipeline.config import VadConfig
from pipeline.events import SAMPLE_RATE, Samples

#: Silence this long between the stretches found is searched again on its own, in seconds.
RESCAN_S = 3.0


class SileroDetector:
    """Speech stretches in mono 16 kHz audio, from faster-whisper's bundled Silero model.

    Silero carries its state through the audio, and after loud speech it can miss quiet speech
    altogether: a FLEURS sentence at -62 dBFS, 0.8 s after a louder one, went unheard for its
    whole 10.5 s, yet was found when searched alone. With ``rescan``, each silence of at least
    ``RESCAN_S`` between the stretches found is searched again on its own.
    """

    def __init__(
        self, config: VadConfig, max_speech_s: float, min_silence_ms: int, speech_pad_ms: int, rescan: bool = False
    ) -> None:
        from faster_whisper.vad import VadOptions

        self._rescan = int(RESCAN_S * SAMPLE_RATE) if rescan else 0
        self._options = VadOptions(
            threshold=config.threshold,
            min_silence_duration_ms=min_silence_ms,
            speech_pad_ms=speech_pad_ms,
            max_speech_duration_s=max_speech_s,
        )

    def __call__(self, audio: Samples) -> list[tuple[int, int]]:
        regions = self._detect(audio)
        if not self._rescan:
            return regions
        found = []
        after = 0  # the end of the stretch before the silence
        for start, end in [*regions, (len(audio), len(audio))]:
            if start - after >= self._rescan:
                found += [(after + s, after + e) for s, e in self._detect(audio[after:start])]
            after = max(after, end)
        return sorted(regions + found)

    def _detect(self, audio: Samples) -> list[tuple[int, int]]:
        from faster_whisper.vad import get_speech_timestamps

        if len(audio) < 512:  # shorter than one Silero window
            return []
        return [(int(t["start"]), int(t["end"])) for t in get_speech_timestamps(audio, self._options)]
