"""The chain between the voice and the speaker: EQ, loudness, resampling, a look-ahead peak limiter.

Bone-conduction transducers carry no bass and distort when driven with it, and the wearer hears
them against the world; so the chain cuts the bass, lifts the presence band that carries
consonants, brings every clause to one loudness (voices and sentences differ by several LU), and
keeps every sample under a ceiling. It works one clause at a time: a clause is synthesised whole
before it is played, so the limiter sees the clause's future and adds no delay, and the loudness
gain depends on that clause alone (causal: never on what is said later).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyloudnorm
import soxr
from scipy import ndimage, signal

from pipeline.config import SpeechOutputConfig

logger = logging.getLogger(__name__)

#: Order of the Butterworth prototype of the presence boost. It must be odd (see
#: ``_presence_sections``); 5 makes the boost fall 30 dB an octave outside the band, so the
#: default +4 dB over 1.5-4 kHz adds under 0.01 dB at 1 kHz, where order 1 would add 1.2 dB.
PRESENCE_ORDER = 5
#: A band edge at or above the voice's Nyquist frequency is moved down to this fraction of it.
BAND_EDGE_OF_NYQUIST = 0.9
#: pyloudnorm's gating block, in seconds: it measures nothing shorter.
LOUDNESS_BLOCK_S = 0.4


class OutputChain:
    """One clause at a time, from the voice's rate to the device: EQ'd, loudness-normalised, limited.

    Counters for the session's stats are kept as attributes: ``clauses``, ``limited_samples``
    (samples that were above the ceiling before the limiter), ``last_loudness_lufs`` (the last
    clause after the EQ, before its gain) and ``last_gain_db``.
    """

    def __init__(self, config: SpeechOutputConfig, input_rate: int) -> None:
        if input_rate <= 0:
            raise ValueError(f"input_rate must be positive, not {input_rate}")
        self.config = config
        self.input_rate = input_rate
        self._sos = _design_eq(config, input_rate)
        self._meter = pyloudnorm.Meter(input_rate)
        self._out_meter = pyloudnorm.Meter(config.sample_rate)
        self.clauses = 0
        self.limited_samples = 0
        self.last_loudness_lufs = -math.inf
        self.last_gain_db = 0.0

    @property
    def output_rate(self) -> int:
        return self.config.sample_rate

    def process(self, clause: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One clause in at input_rate (mono float32), out at config.sample_rate, EQ'd, loudness-normalised, limited."""
        shaped = self.equalise(clause)
        if shaped.size == 0:
            return np.zeros(0, dtype=np.float32)
        self.clauses += 1
        self.last_loudness_lufs = self._loudness(shaped)
        if math.isfinite(self.last_loudness_lufs):
            self.last_gain_db = min(self.config.loudness_lufs - self.last_loudness_lufs, self.config.max_gain_db)
        else:
            self.last_gain_db = 0.0  # silence (below the -70 LUFS gate) is left silent, not raised to hiss
        shaped *= 10 ** (self.last_gain_db / 20)
        # Resampling before the limiter: the new samples between the old ones can peak higher.
        if self.input_rate != self.output_rate:
            shaped = np.asarray(soxr.resample(shaped, self.input_rate, self.output_rate), dtype=np.float64)
        self.limited_samples += int(np.count_nonzero(np.abs(shaped) > _ceiling(self.config.ceiling_dbfs)))
        limited = self._limit(shaped)
        # The limiter takes some loudness off the peakiest clauses (about 0.6 LU of piper's speech
        # at -18 LUFS): measured on the clause as it leaves, that much more gain, limited again.
        lost = self.config.loudness_lufs - self._out_loudness(limited)
        if math.isfinite(self.last_loudness_lufs) and lost > 0.1:
            extra = min(lost, self.config.max_gain_db - self.last_gain_db)
            if extra > 0:
                self.last_gain_db += extra
                limited = self._limit(shaped * 10 ** (extra / 20))
        return limited

    def _limit(self, samples: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        config = self.config
        return limit_peaks(
            samples, self.output_rate, config.ceiling_dbfs, config.limiter_lookahead_ms, config.limiter_release_ms
        )

    def equalise(self, clause: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
        """The EQ alone, at the input rate: the high-pass and the presence boost.

        Each clause starts from rest (piper's clauses start and end in silence, and the next
        clause may come after a pause or never), so no filter state is carried between clauses.
        """
        samples = np.nan_to_num(np.asarray(clause, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if samples.ndim != 1:
            raise ValueError(f"a clause is mono (one dimension), not of shape {samples.shape}")
        if samples.size == 0 or len(self._sos) == 0:
            return samples
        return np.asarray(signal.sosfilt(self._sos, samples), dtype=np.float64)

    def eq_response_db(self, frequencies: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The EQ's magnitude in dB at these frequencies (Hz, below half the input rate), as designed."""
        frequencies = np.asarray(frequencies, dtype=np.float64)
        if len(self._sos) == 0:
            return np.zeros_like(frequencies)
        _, response = signal.freqz_sos(self._sos, worN=frequencies, fs=self.input_rate)
        return np.asarray(20 * np.log10(np.abs(response)), dtype=np.float64)

    def _loudness(self, samples: npt.NDArray[np.float64]) -> float:
        """Integrated loudness (ITU-R BS.1770) of one clause at the input rate, in LUFS; -inf for silence."""
        return _integrated(self._meter, samples, self.input_rate)

    def _out_loudness(self, samples: npt.NDArray[np.float32]) -> float:
        return _integrated(self._out_meter, samples.astype(np.float64), self.output_rate)


def _integrated(meter: Any, samples: npt.NDArray[np.float64], rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770) of one clause, in LUFS; -inf for silence."""
    block = math.ceil(LOUDNESS_BLOCK_S * rate)
    if samples.size < block:
        # pyloudnorm refuses less than one 400 ms block. The clause repeated end to end has the
        # same mean square in every block as the clause over its length, so the loudness of
        # the repetition stands for the clause's.
        samples = np.tile(samples, math.ceil(block / samples.size))
    return float(meter.integrated_loudness(samples))


def limit_peaks(
    x: npt.NDArray[np.floating[Any]], rate: int, ceiling_dbfs: float, lookahead_ms: float, release_ms: float
) -> npt.NDArray[np.float32]:
    """``x`` with no sample above ``ceiling_dbfs``: a look-ahead peak limiter over the whole of ``x``.

    The gain glides down over the look-ahead before a peak (a step in gain would click) and
    recovers towards 1 with a time constant of ``release_ms`` (a quick recovery pumps).
    """
    samples = np.asarray(x, dtype=np.float64)
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    ceiling = _ceiling(ceiling_dbfs)
    required = ceiling / np.maximum(np.abs(samples), ceiling)  # 1 where the sample is under the ceiling
    lookahead = max(1, round(lookahead_ms * rate / 1000))
    # The least gain needed over the next `lookahead` samples: the window is [n, n + lookahead - 1].
    ahead = ndimage.minimum_filter1d(required, lookahead, mode="nearest", origin=-(lookahead // 2))
    # Its moving average over [n - lookahead + 1, n]: every window averaged holds sample n, so the
    # average never exceeds required[n], and the gain ramps down over the look-ahead before a peak.
    average = ndimage.uniform_filter1d(ahead, lookahead, mode="nearest", origin=(lookahead - 1) // 2)
    attack = np.minimum(np.asarray(average, dtype=np.float64), required)  # rounding in the running sum only
    # Release: the reduction 1 - gain decays at most by `decay` a sample, i.e.
    # reduction[n] = max(attack_reduction[n], decay * reduction[n - 1]). Unrolled, that is
    # decay**n * max over k <= n of attack_reduction[k] / decay**k: a running maximum, taken in logs
    # so that decay**-k cannot overflow on a long clause.
    log_decay = -1000 / (release_ms * rate)
    steps = np.arange(samples.size) * log_decay
    with np.errstate(divide="ignore"):
        log_reduction = np.log(1.0 - attack)  # -inf where no gain reduction is needed
    held = np.maximum.accumulate(log_reduction - steps) + steps
    gain = np.minimum(1.0 - np.exp(held), attack)
    # After the look-ahead gain, |sample| <= ceiling but for rounding in the product; this catches that.
    limited: npt.NDArray[np.float32] = (samples * gain).astype(np.float32)
    np.clip(limited, -ceiling, ceiling, out=limited)
    return limited


def _ceiling(ceiling_dbfs: float) -> np.float32:
    """The ceiling as the largest float32 not above it, so that a float32 sample at it is not above it."""
    exact = 10 ** (ceiling_dbfs / 20)
    ceiling = np.float32(exact)
    return ceiling if float(ceiling) <= exact else np.nextafter(ceiling, np.float32(0))


def _design_eq(config: SpeechOutputConfig, rate: int) -> npt.NDArray[np.float64]:
    """The EQ at ``rate`` as second-order sections: the high-pass, then the presence boost."""
    nyquist = rate / 2
    sections = []
    if config.highpass_hz > 0:
        if config.highpass_hz >= BAND_EDGE_OF_NYQUIST * nyquist:
            raise ValueError(f"tts.output.highpass_hz {config.highpass_hz} Hz would remove all of a voice at {rate} Hz")
        sections.append(signal.butter(config.highpass_order, config.highpass_hz, "highpass", fs=rate, output="sos"))
    if config.presence_db > 0:
        high = min(config.presence_high_hz, BAND_EDGE_OF_NYQUIST * nyquist)
        if high != config.presence_high_hz:
            logger.info("presence band ends at %.0f Hz, below the voice's Nyquist frequency", high)
        if config.presence_low_hz < high:
            sections.append(_presence_sections(config.presence_low_hz, high, config.presence_db, rate))
        else:
            logger.info("no presence boost: the band lies above what a voice at %d Hz carries", rate)
    if not sections:
        return np.zeros((0, 6))
    return np.asarray(np.vstack(sections), dtype=np.float64)


def _presence_sections(low_hz: float, high_hz: float, gain_db: float, rate: int) -> npt.NDArray[np.float64]:
    """A boost of ``gain_db`` over [low_hz, high_hz] that is 0 dB outside it: H = S + K·P.

    P and S are the Butterworth band-pass and band-stop of one odd order over the band. For an odd
    order, P·conj(S) is purely imaginary on the unit circle, so |H|² = |S|² + K²|P|² =
    1 + (K² - 1)|P|²: the gain rises monotonically from 0 dB outside the band to exactly
    ``gain_db`` at its centre, never dips below 0 dB, and is as flat across the band as |P| is.
    At order 1 this is the familiar peaking biquad 1 + (K - 1)·P.

    It is designed the way ``scipy.signal.butter`` designs P and S, from the same low-pass
    prototype, where P is 1/D(p) and S is the high-pass pᴺ/D(p), so H is (pᴺ + K)/D(p). Adding P's
    and S's polynomials in z instead loses the zeros to rounding when the band is narrow for the rate.
    """
    boost = 10 ** (gain_db / 20)
    _, poles, _ = signal.buttap(PRESENCE_ORDER)
    zeros = np.roots(np.concatenate([[1.0], np.zeros(PRESENCE_ORDER - 1), [boost]]))  # pᴺ + K
    low, high = 2 * rate * np.tan(np.pi * np.array([low_hz, high_hz]) / rate)  # pre-warped, as butter does
    analog = signal.lp2bp_zpk(zeros, poles, 1.0, wo=math.sqrt(low * high), bw=high - low)
    sos = signal.zpk2sos(*signal.bilinear_zpk(*analog, fs=rate))
    return np.asarray(sos, dtype=np.float64)
