from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest
import soundfile
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import signal

from pipeline.algos.output_chain import PRESENCE_ORDER, OutputChain, limit_peaks
from pipeline.config import SpeechOutputConfig

from .conftest import FIXTURES

RATE = 22050
DEFAULT = SpeechOutputConfig()
FLAT = SpeechOutputConfig(highpass_hz=0, presence_db=0)
CEILING = 10 ** (DEFAULT.ceiling_dbfs / 20)
TONES_HZ = [100, 200, 250, 500, 1000, 2000, 2700, 4000, 6000]


def _tone(hz: float, seconds: float = 0.5, amplitude: float = 0.1, rate: int = RATE) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _rms_db(x: npt.NDArray[np.floating[Any]]) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


def _measured_gain_db(chain: OutputChain, hz: float) -> float:
    """Steady-state gain of the EQ for one tone: RMS over the second half, past the filters' transient."""
    tone = _tone(hz)
    half = len(tone) // 2
    return _rms_db(chain.equalise(tone)[half:]) - _rms_db(tone[half:])


def _speech(rate: int = RATE) -> npt.NDArray[np.float32]:
    audio, file_rate = soundfile.read(str(FIXTURES / "fleurs-en-001.ogg"), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    return np.asarray(soxr.resample(mono, file_rate, rate), dtype=np.float32)


# The EQ


def test_tones_follow_the_designed_response() -> None:
    chain = OutputChain(DEFAULT, RATE)
    predicted = chain.eq_response_db(np.array(TONES_HZ, dtype=np.float64))
    measured = np.array([_measured_gain_db(chain, hz) for hz in TONES_HZ])
    assert np.abs(measured - predicted).max() <= 1.0, list(
        zip(TONES_HZ, measured.round(2), predicted.round(2), strict=True)
    )


def test_the_design_cuts_bass_and_lifts_presence() -> None:
    chain = OutputChain(DEFAULT, RATE)
    centre = math.sqrt(DEFAULT.presence_low_hz * DEFAULT.presence_high_hz)
    assert chain.eq_response_db(np.array([centre]))[0] == pytest.approx(DEFAULT.presence_db, abs=0.5)
    assert chain.eq_response_db(np.array([100.0]))[0] < -6
    below_1k = np.linspace(1.0, 1000.0, 4000)
    assert chain.eq_response_db(below_1k).max() <= 0.1
    everywhere = np.linspace(1.0, RATE / 2 - 1, 8000)
    assert chain.eq_response_db(everywhere).max() <= DEFAULT.presence_db + 1e-6


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_the_presence_boost_follows_the_butterworth_band_pass_in_power(rate: int) -> None:
    """|H|² = 1 + (K² - 1)|P|²: 0 dB outside the band, never below, exactly the boost at the centre."""
    config = replace(DEFAULT, highpass_hz=0, presence_low_hz=1000, presence_high_hz=3000, presence_db=6)
    chain = OutputChain(config, rate)
    frequencies = np.linspace(1.0, 0.45 * rate, 3000)
    band_pass = signal.butter(PRESENCE_ORDER, [1000, 3000], "bandpass", fs=rate, output="sos")
    _, passed = signal.freqz_sos(band_pass, worN=frequencies, fs=rate)
    expected = 10 * np.log10(1 + (10 ** (6 / 10) - 1) * np.abs(passed) ** 2)
    response = chain.eq_response_db(frequencies)
    assert np.abs(response - expected).max() < 1e-6
    assert response.min() >= -1e-9


def test_a_flat_profile_changes_nothing() -> None:
    chain = OutputChain(FLAT, RATE)
    assert np.all(chain.eq_response_db(np.linspace(1.0, RATE / 2, 100)) == 0)
    for hz in TONES_HZ:
        assert _measured_gain_db(chain, hz) == pytest.approx(0, abs=0.1)


def test_a_presence_band_above_the_voices_nyquist_is_clamped() -> None:
    # An 8 kHz voice: the default band's upper edge (4 kHz) is the Nyquist frequency.
    chain = OutputChain(DEFAULT, 8000)
    response = chain.eq_response_db(np.linspace(1.0, 3999.0, 2000))
    assert np.all(np.isfinite(response))
    assert response.max() == pytest.approx(DEFAULT.presence_db, abs=0.1)
    assert np.all(np.isfinite(chain.process(_tone(2000, rate=8000))))
    # A band wholly above what a 16 kHz voice carries: no boost at all, rather than a crash.
    high = replace(DEFAULT, presence_low_hz=9000, presence_high_hz=12000)
    assert OutputChain(high, 16000).eq_response_db(np.linspace(1.0, 7999.0, 500)).max() <= 1e-9


# The limiter


LOUD = replace(DEFAULT, loudness_lufs=-6)  # the loudest target allowed: the limiter works hard
MATERIAL = [
    # Harmonics in phase: a buzz with a crest factor of about 8.
    pytest.param(sum(_tone(120 * k, 2.0, 0.4) for k in range(1, 31)), id="harmonics"),
    pytest.param(np.random.default_rng(0).normal(0, 10 ** (10 / 20), 2 * RATE).astype(np.float32), id="noise+10dB"),
    pytest.param(np.pad(np.ones(1, np.float32), (RATE // 2, RATE // 2)), id="spike"),
    pytest.param(np.pad(np.ones(1, np.float32), (0, RATE // 5)), id="spike-first"),
]


@pytest.mark.parametrize("clause", MATERIAL)
@pytest.mark.parametrize("config", [DEFAULT, LOUD], ids=["default", "loud"])
def test_no_sample_exceeds_the_ceiling(config: SpeechOutputConfig, clause: npt.NDArray[np.float32]) -> None:
    chain = OutputChain(config, RATE)
    out = chain.process(clause)
    assert out.dtype == np.float32
    assert np.all(np.abs(out) <= CEILING)
    if config is LOUD:
        assert chain.limited_samples > 0


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(np.float64, st.integers(1, 3000), elements=st.floats(-20, 20)),
    ceiling_dbfs=st.floats(-20, 0),
    lookahead_ms=st.floats(0.5, 50),
    release_ms=st.floats(1, 2000),
)
def test_the_limiter_never_exceeds_its_ceiling(
    x: npt.NDArray[np.float64], ceiling_dbfs: float, lookahead_ms: float, release_ms: float
) -> None:
    out = limit_peaks(x, 16000, ceiling_dbfs, lookahead_ms, release_ms)
    assert out.shape == x.shape
    assert np.all(np.abs(out) <= 10 ** (ceiling_dbfs / 20))
    # It only ever lowers the level, and never flips a sign.
    assert np.all(np.abs(out) <= np.abs(x.astype(np.float32)))
    assert np.all(out * x >= 0)


def test_the_limiter_looks_ahead_and_releases() -> None:
    rate, lookahead_ms, release_ms = 48000, 5.0, 50.0
    x = np.full(rate, 0.5)
    peak = rate // 2
    x[peak] = 2.0
    gain = limit_peaks(x, rate, -1, lookahead_ms, release_ms) / x
    lookahead = round(lookahead_ms * rate / 1000)
    assert np.all(gain[: peak - lookahead] == 1)  # untouched before the look-ahead
    assert np.all(np.diff(gain[peak - lookahead : peak + 1]) <= 0)  # glides down into the peak
    assert gain[peak - lookahead // 2] < 1
    assert gain[peak] == pytest.approx(CEILING / 2, rel=1e-6)
    after = peak + round(release_ms * rate / 1000)  # one time constant on, a third of the reduction is left
    assert 1 - gain[after] == pytest.approx((1 - CEILING / 2) / math.e, rel=0.01)
    assert gain[peak + 6 * round(release_ms * rate / 1000)] > 0.99


def test_the_limiter_passes_what_is_under_the_ceiling_unchanged() -> None:
    x = _tone(440, 1.0, 0.8)
    assert np.array_equal(limit_peaks(x, RATE, -1, 5, 50), x)
    assert limit_peaks(np.zeros(0), RATE, -1, 5, 50).shape == (0,)


# Loudness


def test_speech_is_brought_to_the_target_loudness() -> None:
    chain = OutputChain(DEFAULT, RATE)
    speech = _speech()
    clause = 2 * RATE
    out = np.concatenate([chain.process(speech[i : i + clause]) for i in range(0, len(speech), clause)])
    loudness = pyloudnorm.Meter(chain.output_rate).integrated_loudness(out.astype(np.float64))
    assert loudness == pytest.approx(DEFAULT.loudness_lufs, abs=1.0)
    assert np.all(np.abs(out) <= CEILING)


def test_a_quiet_clause_gains_at_most_max_gain() -> None:
    chain = OutputChain(FLAT, RATE)
    quiet = _tone(1000, 1.0, 10 ** (-50 / 20))
    out = chain.process(quiet)
    assert chain.last_gain_db == DEFAULT.max_gain_db
    assert _rms_db(out) - _rms_db(quiet) == pytest.approx(DEFAULT.max_gain_db, abs=0.1)


def test_silence_gets_no_gain() -> None:
    chain = OutputChain(DEFAULT, RATE)
    out = chain.process(np.zeros(RATE, np.float32))
    assert chain.last_gain_db == 0
    assert not np.any(out)


def test_a_loud_clause_is_turned_down() -> None:
    chain = OutputChain(FLAT, RATE)
    chain.process(_tone(1000, 1.0, 0.7))
    assert chain.last_gain_db < -1


def test_a_short_clause_gets_the_gain_of_a_long_one() -> None:
    """pyloudnorm measures no less than 400 ms; a 0.2 s clause is measured repeated."""
    chain = OutputChain(FLAT, RATE)
    chain.process(_tone(1000, 1.0, 0.05))
    long_gain = chain.last_gain_db
    out = chain.process(_tone(1000, 0.2, 0.05))
    assert chain.last_gain_db == pytest.approx(long_gain, abs=0.5)
    assert len(out) == pytest.approx(0.2 * chain.output_rate, abs=1)


# Rates and odd input


@pytest.mark.parametrize("input_rate", [16000, 22050, 24000])
@pytest.mark.parametrize("output_rate", [16000, 48000])
def test_any_voice_rate_to_any_device_rate(input_rate: int, output_rate: int) -> None:
    chain = OutputChain(replace(DEFAULT, sample_rate=output_rate), input_rate)
    assert chain.output_rate == output_rate
    clause = _tone(700, 1.3, 0.3, input_rate) + _tone(2500, 1.3, 0.3, input_rate)
    out = chain.process(clause)
    assert out.dtype == np.float32
    assert abs(len(out) - len(clause) * output_rate / input_rate) <= 1
    assert np.all(np.abs(out) <= CEILING)
    assert chain.clauses == 1


def test_empty_and_non_finite_clauses() -> None:
    chain = OutputChain(DEFAULT, RATE)
    empty = chain.process(np.zeros(0, np.float32))
    assert empty.dtype == np.float32
    assert empty.shape == (0,)
    assert chain.clauses == 0
    broken = _tone(1000, 0.5, 0.3)
    broken[[10, 500, 3000]] = [np.nan, np.inf, -np.inf]
    out = chain.process(broken)
    assert np.all(np.isfinite(out))
    assert np.all(np.abs(out) <= CEILING)
    with pytest.raises(ValueError, match="mono"):
        chain.process(np.zeros((100, 2), np.float32))
