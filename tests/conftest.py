"""Shared fixtures. Integration tests use the real bundled models on real recordings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipeline.backends.whisper import WhisperDecoder
from pipeline.config import AsrConfig

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
