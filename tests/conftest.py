"""Shared fixtures. Integration tests use the real bundled models on real recordings."""

from __future__ import annotations

import os
from pathlib import Path

# One arithmetic on every x86 machine with AVX2, so that replays, and the tests that assert what
# they give, come out the same on the next machine as on this one. Left to choose, CTranslate2 takes
# Intel MKL on Intel processors and oneDNN elsewhere, each with the widest vector instructions
# there, and numpy's OpenBLAS picks its kernels by processor too: the glasses fixture's partner
# came out at 35.1% WER through MVDR on the machine the test was written on and 59.5% on an AMD
# one with AVX2 only. oneDNN with AVX2 everywhere (MKL on AMD is five times slower). Set before
# numpy or CTranslate2 loads; not on a processor without AVX2, where CTranslate2 would refuse it.
_CPUINFO = Path("/proc/cpuinfo")
if _CPUINFO.exists() and " avx2" in _CPUINFO.read_text(encoding="utf-8", errors="replace"):
    for _name, _value in (
        ("CT2_USE_MKL", "0"),
        ("CT2_FORCE_CPU_ISA", "AVX2"),
        ("ONEDNN_MAX_CPU_ISA", "AVX2"),
        ("OPENBLAS_CORETYPE", "Haswell"),
    ):
        os.environ.setdefault(_name, _value)

from collections.abc import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile  # noqa: E402

from pipeline.backends.whisper import WhisperDecoder  # noqa: E402
from pipeline.config import AsrConfig  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "audio_fixtures"


def reference(name: str) -> str:
    """The reference transcript kept beside a fixture recording."""
    return (FIXTURES / name).with_suffix(".txt").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="session")
def whisper_base() -> Iterator[WhisperDecoder]:
    yield WhisperDecoder(AsrConfig(model="whisper-base"))


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), audio, rate)
    return path
