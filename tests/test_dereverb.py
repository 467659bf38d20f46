"""Online WPE (algos/dereverb.py): a reverberant tail taken off, a source with no tail left alone,
no added latency."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import soundfile
from nara_wpe.wpe import online_wpe_step

from pipeline.algos.beamform import StreamingStft
from pipeline.algos.dereverb import StreamingWpe
from pipeline.algos.metrics import si_sdr

from .conftest import FIXTURES

RATE = 16_000
CHANNELS = 4
N_FFT = 256


def _dereverberate(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The input through the beamformer's STFT and WPE, back in samples, aligned with the input."""
    stft = StreamingStft(CHANNELS, N_FFT)
    spectrum = StreamingWpe(CHANNELS, N_FFT // 2 + 1, stft.hop / RATE).process(stft.analyse(x))
    out = np.stack([StreamingStft(1, N_FFT).synthesise(spectrum[:, :, m]) for m in range(CHANNELS)], axis=1)
    return out[stft.hop : stft.hop + len(x)]


def _room(rng: np.random.Generator) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The 30 s conversation fixture through four impulse responses: a direct path 0-3 samples
    late, then an exponential tail of noise from 10 ms on (RT60 0.6 s, direct-to-reverberant
    ratio about -15 dB). Returns the microphones' signals and, at microphone 1, what WPE should
    keep: the direct path and the first 50 ms."""
    source, rate = soundfile.read(FIXTURES / "en_conversation_2spk_30s.wav", dtype="float64")
    assert rate == RATE
    length = int(0.6 * RATE)
    t = np.arange(length) / RATE
    tail = np.exp(-6.9 * t / 0.6) * (t > 0.010)
    mics = []
    for m in range(CHANNELS):
        response = 0.3 * tail * rng.standard_normal(length)
        response[m] = 1.0
        mics.append(np.convolve(source, response)[: len(source)])
        if m == 0:
            early = np.convolve(source, response * (t < 0.050))[: len(source)]
    return np.stack(mics, axis=1), early


def test_the_reverberant_tail_is_taken_off() -> None:
    x, early = _room(np.random.default_rng(3))
    y = _dereverberate(x)
    last = slice(len(x) // 2, None)  # once the recursion has learnt the room
    before = si_sdr(x[last, 0], early[last])
    after = si_sdr(y[last, 0], early[last])
    assert after > before + 2.0, (before, after)  # measured: 1.8 -> 4.6 dB


def test_a_source_with_no_tail_passes_unchanged() -> None:
    # Noise at each microphone apart, white: nothing in earlier frames predicts it.
    rng = np.random.default_rng(4)
    x = 0.1 * rng.standard_normal((10 * RATE, CHANNELS))
    y = _dereverberate(x)
    last = slice(len(x) // 2, None)
    assert si_sdr(y[last, 0], x[last, 0]) > 10.0  # measured: 13.7 dB (what the recursion misadjusts)


def test_the_first_frames_pass_through_and_shapes_hold() -> None:
    # Before there is anything to predict from, a frame comes out as it went in: no lag.
    spectrum = np.random.default_rng(5).standard_normal((3, 129, CHANNELS)).astype(np.complex128)
    out = StreamingWpe(CHANNELS, 129, 0.008).process(spectrum)
    assert out.shape == spectrum.shape
    np.testing.assert_allclose(out, spectrum)


def test_the_recursion_is_the_reference_implementations() -> None:
    # nara_wpe's online step (the method's authors' group), frame by frame, on the same frames.
    rng = np.random.default_rng(6)
    spectrum = rng.standard_normal((60, 9, 3)) + 1j * rng.standard_normal((60, 9, 3))
    ours = StreamingWpe(3, 9, 0.008, taps=4, delay=2)
    taps, delay, alpha = ours.taps, ours.delay, ours.alpha
    buffer = np.zeros((taps + delay + 1, 9, 3), dtype=np.complex128)
    inverse = np.tile(np.eye(taps * 3, dtype=np.complex128), (9, 1, 1))
    weights = np.zeros((9, taps * 3, 3), dtype=np.complex128)
    expected = []
    for frame in spectrum:
        buffer = np.roll(buffer, -1, axis=0)
        buffer[-1] = frame
        power = np.maximum(np.mean(np.abs(buffer) ** 2, axis=(0, 2)), 1e-10)
        out, inverse, weights = online_wpe_step(buffer, power, inverse, weights, alpha, taps, delay)
        expected.append(out)
    np.testing.assert_allclose(ours.process(spectrum), np.array(expected), rtol=1e-9, atol=1e-12)


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one tap"):
        StreamingWpe(CHANNELS, 129, 0.008, taps=0)
