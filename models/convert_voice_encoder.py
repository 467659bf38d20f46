"""Convert resemblyzer's voice encoder to ONNX, once, and check the result against resemblyzer.

The speaker embeddings livesub uses for diarization come from the voice encoder that ships inside
the ``resemblyzer`` wheel on PyPI (``resemblyzer/pretrained.pt``, Apache-2.0). resemblyzer runs
on torch, which livesub does not depend on; this script turns the encoder into
``models/voice_encoder/voice_encoder.onnx``, which ``pipeline.backends.speakers`` runs with
onnxruntime and numpy alone. It is run by hand when the model changes, never at run time.

How to run it (in a throw-away virtual environment, never in livesub's own ``.venv``)::

    python3 -m venv /tmp/convert-venv
    /tmp/convert-venv/bin/pip install torch==2.13.0 onnx onnxruntime librosa scipy soundfile webrtcvad-wheels
    /tmp/convert-venv/bin/pip install --no-deps resemblyzer==0.1.4
    /tmp/convert-venv/bin/python models/convert_voice_encoder.py [--check-only]

(``torch==2.13.0``: a CPU build; ``--no-deps`` keeps pip from building ``webrtcvad`` from source,
``webrtcvad-wheels`` provides the same module.)

The graph holds the whole front end, so nothing but numpy is needed before it:

- input ``audio``: float32 ``(batch, samples)``, each row one partial utterance as 16 kHz audio,
  already including the 200 samples of context that resemblyzer's centred STFT sees on each side
  (a partial of 160 frames is 25,840 samples; any length of at least 400 samples is accepted,
  giving ``1 + (samples - 400) // 160`` frames);
- a 400-sample periodic Hann window and a DFT as a strided convolution with constant cosine and
  sine kernels (the power spectrum, |X|², of 201 bins every 160 samples), then resemblyzer's 40-band
  Slaney mel filterbank (librosa's, computed here, stored as a constant); no logarithm, as in
  resemblyzer;
- resemblyzer's 3-layer LSTM (256 units), its linear layer, ReLU and L2 normalisation;
- output ``embedding``: float32 ``(batch, 256)``, one unit-norm embedding per partial.

Cutting an utterance into partials, averaging their embeddings and the volume normalisation are
done in ``pipeline/backends/speakers.py``, the same way as resemblyzer's ``embed_utterance`` and
``preprocess_wav`` (a partial is 1.6 s, one starts every 77 frames, i.e. 1.3 a second; a last
partial less than 75% covered by audio is dropped unless it is the only one). Speech shorter than
a partial is the one exception: livesub repeats it to fill the partial, resemblyzer pads it with
silence; for those pieces resemblyzer is given the same repeated audio.

What it checks, on real recordings from ``audio_fixtures/`` and ``../shared/audio/``: the
cosine similarity between resemblyzer's ``VoiceEncoder().embed_utterance`` and livesub's
``SpeakerEncoder.embed`` running this ONNX file, (a) on audio that went through resemblyzer's
``preprocess_wav`` (its volume normalisation and silence trimming) and (b) on the raw audio, which
livesub normalises itself and resemblyzer gets through ``normalize_volume``; and the similarity
of every single partial embedding. It fails unless every figure is above 0.99, and prints them all,
with the file's size and SHA-256 (copy them into ``models/voice_encoder/README.md``). The same
inputs give the same bytes: converting again reproduces the shipped file.

It imports torch, which livesub's ``.venv`` does not have: ruff checks it, mypy does not (it is not
among ``[tool.mypy] files``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import sys
import types
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import onnx
import soundfile
import torch
from resemblyzer import VoiceEncoder, hparams, normalize_volume, preprocess_wav
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "voice_encoder" / "voice_encoder.onnx"
SHARED = ROOT.parent / "shared" / "audio"

SAMPLE_RATE = hparams.sampling_rate  # 16,000
N_FFT = SAMPLE_RATE * hparams.mel_window_length // 1000  # 400 samples (25 ms)
HOP = SAMPLE_RATE * hparams.mel_window_step // 1000  # 160 samples (10 ms)
N_MELS = hparams.mel_n_channels  # 40
OPSET = 17
PARTIAL_SAMPLES = hparams.partials_n_frames * HOP  # 1.6 s

#: Real recordings the result is checked on: one speaker, two, a meeting; English, German, French.
CHECK_RECORDINGS = [
    ROOT / "audio_fixtures" / "en_conversation_2spk_30s.wav",
    ROOT / "audio_fixtures" / "de_leopard_leichenhalle.wav",
    SHARED / "fleurs" / "fleurs-fr-001.ogg",
    SHARED / "speech" / "en_jfk_inaugural_16k.wav",
    SHARED / "speech" / "en_librispeech_1272-128104-0000_mister_quilter.wav",
    SHARED / "speech" / "en_arctic_axb_a0005.wav",  # 1.6 s: about one partial
    SHARED / "speech_noref" / "en_ami_meeting_excerpt_30s.wav",
]
#: Pieces of them shorter than a partial (seconds).
CHECK_PIECES = [
    (ROOT / "audio_fixtures" / "en_conversation_2spk_30s.wav", 14.5, 15.3),
    (SHARED / "speech" / "en_jfk_inaugural_16k.wav", 1.0, 2.2),
]


class FrontEndAndEncoder(nn.Module):
    """Audio rows -> power spectrum -> mel -> resemblyzer's LSTM -> unit-norm embeddings."""

    def __init__(self, encoder: VoiceEncoder) -> None:
        super().__init__()
        n = torch.arange(N_FFT, dtype=torch.float64)
        window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)  # librosa's "hann"
        bins = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
        phase = 2 * torch.pi * bins[:, None] * n[None, :] / N_FFT
        # One output channel per (bin, cos) and (bin, sin): the real and imaginary parts of the DFT.
        kernels = torch.cat([torch.cos(phase) * window, -torch.sin(phase) * window])
        self.register_buffer("dft", kernels[:, None, :].float())
        mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)  # Slaney scale and norm
        self.register_buffer("mel", torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32)))
        self.lstm = encoder.lstm
        self.linear = encoder.linear

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spectrum = nn.functional.conv1d(audio[:, None, :], self.dft, stride=HOP)  # (batch, 2 * bins, frames)
        real, imag = spectrum.chunk(2, dim=1)
        power = (real * real + imag * imag).transpose(1, 2)  # (batch, frames, bins)
        mels = power @ self.mel  # (batch, frames, 40)
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(encoder: VoiceEncoder) -> None:
    model = FrontEndAndEncoder(encoder).eval()
    example = torch.zeros(2, N_FFT + 159 * HOP)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (example,),
        str(OUT),
        input_names=["audio"],
        output_names=["embedding"],
        dynamic_axes={"audio": {0: "batch", 1: "samples"}, "embedding": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    graph = onnx.load(str(OUT))
    onnx.checker.check_model(graph)
    graph.producer_name = "livesub models/convert_voice_encoder.py"
    graph.doc_string = (
        "resemblyzer 0.1.4 voice encoder (resemble-ai/Resemblyzer, Apache-2.0) with its mel front end; "
        "input audio (batch, samples) 16 kHz rows incl. 200 samples of context each side; "
        "output embedding (batch, 256), unit norm"
    )
    onnx.save(graph, str(OUT))


def load(path: Path) -> np.ndarray:
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(mono, dtype=np.float32)


def filled(audio: np.ndarray) -> np.ndarray:
    """livesub repeats speech shorter than a partial until it fills one, where resemblyzer pads it
    with silence: resemblyzer is given the same repeated audio."""
    audio = audio.astype(np.float32)
    return np.resize(audio, PARTIAL_SAMPLES) if len(audio) < PARTIAL_SAMPLES else audio


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def livesub_encoder() -> Any:
    """livesub's own SpeakerEncoder on the new file: the code that runs it is what gets checked.

    ``pipeline/__init__.py`` imports the whole pipeline (and its dependencies, absent here), so the
    packages are set up empty and only ``pipeline.backends.speakers`` (numpy, onnxruntime) is loaded.
    """
    for name in ("pipeline", "pipeline.backends"):
        package = types.ModuleType(name)
        package.__path__ = [str(ROOT.joinpath(*name.split(".")))]
        sys.modules[name] = package
    speakers = importlib.import_module("pipeline.backends.speakers")
    return speakers.SpeakerEncoder(OUT)


def check(encoder: VoiceEncoder) -> float:
    """Compare livesub's ONNX pipeline with resemblyzer's own on real recordings; the lowest figure."""
    ours = livesub_encoder()
    clips = [(str(path.relative_to(path.parent.parent)), load(path)) for path in CHECK_RECORDINGS]
    # Pieces shorter than one partial (1.6 s), which are padded with silence.
    for path, start, end in CHECK_PIECES:
        audio = load(path)[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        clips.append((f"{path.relative_to(path.parent.parent)} {start}-{end} s", audio))
    worst, largest = 1.0, 0.0
    print(f"{'recording':60} {'s':>5} {'preprocessed':>12} {'raw':>10} {'partials':>8} {'min partial':>11}")
    for name, audio in clips:
        raw = filled(normalize_volume(audio, hparams.audio_norm_target_dBFS, increase_only=True))
        theirs_raw, ours_raw = encoder.embed_utterance(raw), ours.embed(audio)
        on_raw = cosine(theirs_raw, ours_raw)
        largest = max(largest, float(np.max(np.abs(theirs_raw - ours_raw))))
        _, theirs, _ = encoder.embed_utterance(raw, return_partials=True)
        mine = ours.embed_partials(audio)
        assert theirs.shape == mine.shape, (theirs.shape, mine.shape)
        partial = min(cosine(a, b) for a, b in zip(theirs, mine, strict=True))
        # preprocess_wav also trims long silences: a different stretch of audio, the same comparison.
        preprocessed = filled(preprocess_wav(audio))
        on_preprocessed = cosine(encoder.embed_utterance(preprocessed), ours.embed(preprocessed))
        worst = min(worst, on_preprocessed, on_raw, partial)
        seconds = len(audio) / SAMPLE_RATE
        print(f"{name:60} {seconds:5.1f} {on_preprocessed:12.7f} {on_raw:10.7f} {len(mine):8d} {partial:11.7f}")
    print(f"largest difference in one dimension of an embedding (raw audio): {largest:.1e}")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check-only", action="store_true", help="check the existing ONNX file, do not convert")
    args = parser.parse_args()
    torch.manual_seed(0)
    encoder = VoiceEncoder(device="cpu", verbose=False)
    weights = Path(sys.modules[VoiceEncoder.__module__].__file__ or "").parent / "pretrained.pt"
    print(f"resemblyzer {importlib.metadata.version('resemblyzer')}, torch {torch.__version__}")
    print(f"weights {weights} sha256 {sha256(weights)}")
    if not args.check_only:
        convert(encoder)
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes, sha256 {sha256(OUT)}")
    worst = check(encoder)
    print(f"lowest cosine similarity: {worst:.7f} (1 - cos = {1 - worst:.1e})")
    if worst <= 0.99:
        print("FAILED: the ONNX pipeline does not match resemblyzer")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
