"""The front-end stage and device profiles: multichannel in, one channel out on the stream's own
timeline, mono passed through, a profile that does not fit the input refused in one line, and the
audio handed to recognition saved when asked."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipeline.config import FrontendConfig, load_config
from pipeline.errors import ConfigError
from pipeline.events import AudioChunk
from pipeline.stages.frontend import FrontendStage

from .conftest import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
FIVE_MICS = ROOT / "configs" / "glasses-5mic.toml"
TALKER = FIXTURES / "array4_speech_doa_-0.829_0.553_-0.083.flac"
# The geometry the direction-labelled recordings were made with (see tests/test_beamform.py).
SPEECHBRAIN = ((-0.05, -0.05, 0.0), (-0.05, 0.05, 0.0), (0.05, 0.05, 0.0), (0.05, 0.05, 0.0))


async def _chunks(audio: np.ndarray, block: int) -> AsyncIterator[AudioChunk]:
    for start in range(0, len(audio), block):
        yield AudioChunk(start, audio[start : start + block].astype(np.float32))


def _run(stage: FrontendStage, audio: np.ndarray, block: int = 1600) -> list[AudioChunk]:
    async def collect() -> list[AudioChunk]:
        return [chunk async for chunk in stage.run(_chunks(audio, block))]

    return asyncio.run(collect())


@pytest.mark.parametrize("method", ["mwf", "mvdr", "fixed", "mean", "first"])
def test_every_method_gives_one_channel_on_the_streams_timeline(method: str, tmp_path: Path) -> None:
    audio, _ = soundfile.read(TALKER, dtype="float32")
    saved = tmp_path / "frontend.wav"
    stage = FrontendStage(FrontendConfig(microphones=SPEECHBRAIN, beamformer=method), save=saved)
    chunks = _run(stage, audio, block=1234)
    assert all(c.channels == 1 for c in chunks)
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.frames for c in chunks[:-1]]))
    out = np.concatenate([c.samples[:, 0] for c in chunks])
    assert len(out) == len(audio)
    written, rate = soundfile.read(saved, dtype="float32")
    assert rate == 16_000
    np.testing.assert_array_equal(written, out)
    if method == "first":
        np.testing.assert_array_equal(out, audio[:, 0])
    # Each part's time on the front-end's thread, within the stage's: WPE only where it runs.
    stats = {k: v for k, v in stage.stats().items() if isinstance(v, float)}
    assert stats["beamformer_s"] > 0.0 and stats["denoise_s"] == 0.0
    assert (stats["dereverb_s"] > 0.0) == (method not in ("mean", "first"))
    assert stats["dereverb_s"] + stats["beamformer_s"] <= stats["compute_s"]
    if method == "fixed":  # distortionless toward the talker it is not steered at, but the level stays
        assert 0.3 < np.std(out) / np.std(audio[:, 0]) < 2.0


def test_mono_passes_through_untouched() -> None:
    audio = np.random.default_rng(0).standard_normal((16_000, 1)).astype(np.float32) * 0.1
    chunks = _run(FrontendStage(FrontendConfig(microphones=SPEECHBRAIN)), audio)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), audio)


def test_input_the_profile_does_not_fit_is_refused_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "live", "--input", str(TALKER), "--instant", "--config", str(FIVE_MICS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "livesub: error: the input has 4 channels but the device profile has 5 microphones"


def test_the_shipped_device_profiles_load_and_bad_ones_are_named(tmp_path: Path) -> None:
    for name, count in (("glasses-4mic", 4), ("glasses-5mic", 5)):
        frontend = load_config([ROOT / "configs" / f"{name}.toml"]).frontend
        assert len(frontend.microphones) == count and frontend.look == (1.0, 0.0, 0.0)
    six = "microphones = [" + ", ".join(f"[{k / 10}, 0, 0]" for k in range(6)) + "]"
    bad = {
        "microphones = [[0, 0, 0]]": "at least 2 microphones",
        "microphones = [[0, 0], [1, 0]]": "frontend.microphones[0] must be [x, y, z] in metres",
        "microphones = [[0, 0, 0], [0, 0, 0.001]]": "at least 1 cm apart",
        "microphones = [[0, 0, 0], [0, 0, 5]]": "in metres",
        "beamformer = 'delay'": "frontend.beamformer must be one of",
        "look = [0, 0, 0]": "frontend.look must not be zero",
        "search_deg = 120": "frontend.search_deg must be 0 to 90",
        six: "frontend.dereverb costs too much",
    }
    for line, message in bad.items():
        path = tmp_path / "profile.toml"
        path.write_text(f"[frontend]\n{line}\n")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config([path])
    # The channel mean and microphone 1 skip the dereverberation: any number of microphones will do.
    path.write_text(f"[frontend]\n{six}\nbeamformer = 'mean'\n")
    assert len(load_config([path]).frontend.microphones) == 6


def test_noise_suppression_after_the_beam_keeps_the_streams_timeline(tmp_path: Path) -> None:
    # The direction-labelled talker with the labelled noise under it, 10 dB louder than it is.
    talker, _ = soundfile.read(TALKER, dtype="float32")
    noise, _ = soundfile.read(FIXTURES / "array4_noise_doa_0.702_-0.702_0.117.flac", dtype="float32")
    audio = talker + noise[: len(talker)] * np.float32(3.0)
    for given in (audio, audio[:, :1]):  # the array's beam, and mono input
        outs = {}
        for denoise in (False, True):
            config = FrontendConfig(microphones=SPEECHBRAIN, beamformer="fixed", denoise=denoise)
            stage = FrontendStage(config)
            chunks = _run(stage, given, block=1234)
            assert (float(stage.stats()["denoise_s"] or 0.0) > 0.0) == denoise
            assert [c.start for c in chunks] == list(np.cumsum([0] + [c.frames for c in chunks[:-1]]))
            outs[denoise] = np.concatenate([c.samples[:, 0] for c in chunks])
            assert len(outs[denoise]) == len(given) and np.all(np.isfinite(outs[denoise]))
        # Where the talker pauses (the quietest fifth of 20 ms frames), the noise is lowered by
        # its 12 dB limit (measured: 12.2 dB on the beam and on microphone 1).
        frames = [np.mean(outs[d][: len(outs[d]) // 320 * 320].reshape(-1, 320) ** 2, axis=1) for d in (False, True)]
        quiet = frames[0] <= np.percentile(frames[0], 20)
        assert 10 * np.log10(frames[0][quiet].sum() / frames[1][quiet].sum()) > 9.0
