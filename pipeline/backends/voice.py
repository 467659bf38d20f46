"""Text to speech with piper (piper-tts, GPL-3.0-or-later), through its Python API.

The voice is loaded once and warmed up (the first synthesis is several times slower than the
rest); its ONNX Runtime session gets one thread, so recognition keeps the other core. piper's
own peak normalisation is off: loudness is the output chain's job (algos/output_chain.py).

piper's VITS voices draw noise inside the ONNX graph, unseeded (onnxruntime.set_seed does not
reach it): at piper's default noise scales the same text came out a few milliseconds longer or
shorter each time, and once in about five replays of the speech test Whisper heard a clause of
it differently (WER 10.1% against 2.9%). The noise scales are 0 here, so the same text gives
the same speech and a replay's speech is identical from run to run (heard back: 4.3% WER).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline import models
from pipeline.errors import ModelError
from pipeline.events import Samples

log = logging.getLogger(__name__)


class Voice(Protocol):
    """Speech for a clause of text, mono float32 at ``sample_rate``; ``length_scale`` below 1 speaks
    faster."""

    language: str
    sample_rate: int

    def synthesize(self, text: str, length_scale: float = 1.0) -> Samples: ...


def voice_language(onnx: Path) -> str:
    """A piper voice's language as an ISO 639-1 code, from its ``.onnx.json`` ("en_US" -> "en")."""
    try:
        config = json.loads(Path(f"{onnx}.json").read_text(encoding="utf-8"))
        code = config.get("language", {}).get("code") or config.get("espeak", {}).get("voice", "")
    except (OSError, ValueError, AttributeError) as e:
        raise ModelError(f"{onnx}.json: not a piper voice configuration ({e})") from None
    language = str(code).replace("-", "_").split("_")[0].lower()
    if len(language) != 2:
        raise ModelError(f"{onnx}.json: the voice does not say its language")
    return language


def available_voices() -> list[str]:
    """The registry's piper voices, as 'id (language)'."""
    return [f"{s.id} ({', '.join(s.languages)})" for s in models.load_registry().values() if s.kind == "piper"]


def check_voice(voice: str, language: str) -> Path:
    """The voice's ``.onnx`` file, after checking that it speaks ``language``; a one-line error
    naming the voices there are otherwise. Cheap: runs at start, before any model loads."""
    onnx = models.resolve(voice, "piper")
    spoken = voice_language(onnx)
    if spoken != language:
        raise ModelError(
            f"no voice for '{language}': voice '{voice}' speaks '{spoken}' "
            f"(voices here: {', '.join(available_voices())}; give a piper voice directory with --voice DIR)"
        )
    return onnx


def session_voice(voice: str, target: str, source: str) -> Path:
    """The checked voice of a session that speaks ``target`` when translating (else ``""``), and
    otherwise the spoken ``source`` language; with ``source`` "auto", the voice's own language
    (what is heard in another is shown, not spoken)."""
    language = target or source
    if language == "auto":
        language = voice_language(models.resolve(voice, "piper"))
    return check_voice(voice, language)


class PiperVoice:
    """A piper voice on one ONNX Runtime thread."""

    def __init__(self, onnx: Path) -> None:
        import onnxruntime
        from piper.config import PiperConfig, SynthesisConfig
        from piper.voice import PiperVoice as Piper

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Clauses differ in length, so every run has new shapes: with memory patterns on, 400
        # clauses grew the process from 380 to 572 MB (and to 720 MB with no arena); off, it
        # stays at 428 MB. Synthesis speed is unchanged (the voice's RTF is about 0.04).
        options.enable_mem_pattern = False
        try:
            config = PiperConfig.from_dict(json.loads(Path(f"{onnx}.json").read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(str(onnx), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:  # a damaged file: onnxruntime and piper raise many kinds
            raise ModelError(f"cannot load piper voice {onnx}: {type(e).__name__}: {e}") from None
        self._voice: Any = Piper(config=config, session=session)
        self._synthesis = SynthesisConfig
        self.language = voice_language(onnx)
        self.sample_rate = int(config.sample_rate)
        self.synthesize("Ready.")  # warm-up: the first run is several times slower
        log.info("voice %s loaded (%s, %d Hz)", onnx.name, self.language, self.sample_rate)

    def synthesize(self, text: str, length_scale: float = 1.0) -> Samples:
        synthesis = self._synthesis(
            normalize_audio=False, length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0
        )
        chunks = [c.audio_float_array for c in self._voice.synthesize(text, synthesis)]
        if not chunks:
            return np.zeros(0, np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)
