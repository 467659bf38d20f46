"""Speaker embeddings: resemblyzer's voice encoder, converted to ONNX, run with onnxruntime.

The model (``models/voice_encoder/``; origin, licence and how it was checked in its README) holds
resemblyzer's whole front end, so this module needs only numpy before it. What resemblyzer's
``preprocess_wav`` and ``VoiceEncoder.embed_utterance`` do around the network is done here the
same way: the audio is raised (never lowered) to -30 dBFS RMS; it is cut into partial utterances
of 160 frames (1.6 s), one starting every 77 frames (1.3 a second), the last one kept only if
audio covers at least 75% of it, padded with silence; the partials' unit-norm embeddings are
averaged and the mean is normalised again. One thing differs: speech shorter than a partial is
repeated to fill it, where resemblyzer pads it with silence (see :meth:`SpeakerEncoder.embed`).
resemblyzer also trims long silences with WebRTC VAD before embedding; here the caller gives
stretches of speech, found by its own VAD.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import ModelError
from pipeline.events import SAMPLE_RATE, Samples

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
# Inside an installed wheel the model is package data; in a source checkout it is under models/.
_MODEL_PLACES = (
    _HERE.parent / "data" / "voice_encoder" / "voice_encoder.onnx",
    _HERE.parent.parent / "models" / "voice_encoder" / "voice_encoder.onnx",
)

Embedding = npt.NDArray[np.float32]

#: Size of one embedding.
DIMENSIONS = 256
#: The encoder's STFT: 25 ms windows every 10 ms, centred (half a window of context each side).
WINDOW = 400
HOP = 160
#: A partial utterance: 160 frames (1.6 s); one starts every 77 frames (resemblyzer's 1.3 a second).
PARTIAL_FRAMES = 160
PARTIAL_STEP_FRAMES = 77
#: A last partial is kept when audio covers at least this much of it (or when it is the only one).
MIN_COVERAGE = 0.75
#: Samples one partial's row holds: its frames plus the half windows of context around them.
PARTIAL_SAMPLES = (PARTIAL_FRAMES - 1) * HOP + WINDOW
#: Quieter audio is raised to this RMS level, as resemblyzer's preprocess_wav does.
TARGET_DBFS = -30.0
#: Partials run through the network at once (bounds memory on long stretches).
BATCH = 32


def default_model_path() -> Path:
    for place in _MODEL_PLACES:
        if place.is_file():
            return place
    return _MODEL_PLACES[-1]


def partial_starts(samples: int) -> list[int]:
    """First frame of each partial utterance of audio ``samples`` long (resemblyzer's layout)."""
    frames = math.ceil((samples + 1) / HOP)
    starts = list(range(0, max(1, frames - PARTIAL_FRAMES + PARTIAL_STEP_FRAMES + 1), PARTIAL_STEP_FRAMES))
    coverage = (samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def raise_volume(audio: Samples, target_dbfs: float = TARGET_DBFS) -> Samples:
    """``audio`` raised to ``target_dbfs`` RMS when it is quieter; louder audio is left alone."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms <= 0.0:
        return audio
    gain_db = target_dbfs - 20.0 * math.log10(rms)
    if gain_db <= 0.0:
        return audio
    raised: Samples = (audio * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    return raised


class SpeakerEncoder:
    """Unit-norm voice embeddings of 16 kHz mono speech; the same voice gives nearby vectors.

    Loads ``models/voice_encoder/voice_encoder.onnx`` (or ``path``) with onnxruntime on one
    thread. Not thread-safe: give each thread its own, or call it from one model thread.
    """

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        self.path = path or default_model_path()
        if not self.path.is_file():
            raise ModelError(f"speaker model not found: {self.path} (reinstall livesub)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for damaged files
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"speaker model {self.path} cannot be loaded: {reason}") from error
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if [i.name for i in inputs] != ["audio"] or [o.name for o in outputs] != ["embedding"]:
            raise ModelError(f"speaker model {self.path} is not livesub's voice encoder (wrong inputs/outputs)")

    def embed(self, audio: Samples) -> Embedding:
        """The voice embedding of one stretch of speech: float32 (256,), unit norm.

        Speech shorter than one partial (1.6 s) is repeated until it fills one. resemblyzer pads
        it with silence instead, which measured worse: pieces of 14 speakers' speech were closest
        to their own speaker's embedding 69% of the time at 0.5 s and 88% at 1 s when padded,
        93% and 97% when repeated. Under about 0.5 s an embedding says little (82% at 0.3 s).
        Raises ValueError for audio shorter than one STFT window (25 ms).
        """
        mean = self.embed_partials(audio).mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if not norm > 0.0:
            raise ValueError("no voice to embed (silent audio)")
        embedding: Embedding = (mean / norm).astype(np.float32)
        return embedding

    def embed_spans(self, audio: Samples, spans: Sequence[tuple[float, float]]) -> Embedding:
        """The embeddings of spans of a recording, (start, end) in seconds: float32 (spans, 256).

        A span shorter than one STFT window (25 ms) is widened to one, around its middle.
        """
        embeddings = []
        for start_s, end_s in spans:
            start, end = round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE)
            if end - start < WINDOW:
                start = min(max(0, (start + end - WINDOW) // 2), max(0, len(audio) - WINDOW))
                end = start + WINDOW
            embeddings.append(self.embed(audio[start:end]))
        stacked: Embedding = np.stack(embeddings) if embeddings else np.zeros((0, DIMENSIONS), dtype=np.float32)
        return stacked

    def embed_partials(self, audio: Samples) -> Embedding:
        """The embeddings of each partial utterance of ``audio``: float32 (partials, 256)."""
        if audio.ndim != 1:
            raise ValueError("audio must be mono")
        if len(audio) < WINDOW:
            raise ValueError(f"audio too short to embed: {len(audio)} samples, at least {WINDOW} needed")
        audio = raise_volume(np.asarray(audio, dtype=np.float32))
        if len(audio) < PARTIAL_FRAMES * HOP:
            audio = np.resize(audio, PARTIAL_FRAMES * HOP)  # repeated until it fills one partial
        starts = partial_starts(len(audio))
        # Silence around the audio: half a window before it (the centred STFT's padding), and
        # after it as much as the last partial needs.
        padded = np.zeros(max(len(audio) + WINDOW, starts[-1] * HOP + PARTIAL_SAMPLES), dtype=np.float32)
        padded[WINDOW // 2 : WINDOW // 2 + len(audio)] = audio
        rows = np.stack([padded[s * HOP : s * HOP + PARTIAL_SAMPLES] for s in starts])
        parts = [self._session.run(None, {"audio": rows[i : i + BATCH]})[0] for i in range(0, len(rows), BATCH)]
        embeddings: Embedding = np.concatenate(parts).astype(np.float32)
        return embeddings


__all__ = ["DIMENSIONS", "SAMPLE_RATE", "Embedding", "SpeakerEncoder", "partial_starts", "raise_volume"]
