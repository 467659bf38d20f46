"""Beamforming maths for a glasses array: steering vectors, spatial covariances, MVDR weights.

Pure functions of numpy arrays, per frequency bin (the first axis is frequency throughout):
``steering`` is (F, M), a covariance (F, M, M), weights (F, M), and a beam's output for one
STFT frame is ``w^H x`` per bin. Positions are in metres in the frame's axes (x forward, y
left, z up), directions are unit vectors in the same axes. Steering vectors are relative to the
reference microphone (its entry is 1), so a distortionless beam passes the source as that
microphone hears it.

Two beams come from one formula, MVDR: w = R^-1 d / (d^H R^-1 d), with R regularised (a
condition-number cap, then diagonal loading) so that a small array at low frequencies does not
buy directivity with white-noise gain. The *fixed* (superdirective) beam takes R as the
coherence of a diffuse noise field, which depends on the geometry alone; the *adaptive* one takes
R as the noise covariance measured while nobody speaks (side talkers, the room's noise).

The *multichannel Wiener filter* (MWF) estimates the partner as microphone 1 hears it, room
reflections and all, from two covariances: of the partner with the noise, and of the noise (the
side talker included) alone: w = (Rs + mu Rn)^-1 Rs e1 with Rs their difference. A steered beam
(MVDR) passes only what reaches the microphones as a plane wave from ahead, which a room's
reflections are not; the MWF needs no direction for the partner's sound, only the times when the
partner speaks (Doclo & Moonen; its output SNR is never below microphone 1's).
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.algos.dereverb import StreamingWpe

Complex = npt.NDArray[np.complex128]
Real = npt.NDArray[np.float64]
#: A covariance or coherence per bin, (F, M, M), real or complex.
Matrix = npt.NDArray[Any]

#: Speed of sound in air at about 20 degrees C, in m/s.
SPEED_OF_SOUND = 343.0
#: Largest ratio of a covariance's largest to smallest eigenvalue the beams are designed with
#: (the SPEAR challenge's superdirective baseline caps it at 1e2).
CONDITION_CAP = 100.0
#: Diagonal loading, as a fraction of the covariance's mean eigenvalue.
DIAGONAL_LOADING = 1e-3
#: The band own-voice evidence and the noise floor are measured in: speech, in Hz.
SPEECH_BAND_HZ = (200.0, 4000.0)


def stft_frequencies(n_fft: int, rate: int) -> Real:
    """The centre frequencies of a real FFT's bins, in Hz."""
    return np.asarray(np.fft.rfftfreq(n_fft, 1.0 / rate), dtype=np.float64)


def far_field_steering(mics: Real, direction: Real, freqs: Real, reference: int = 0) -> Complex:
    """A plane wave arriving from ``direction`` (a vector pointing from the array toward the
    source), relative to microphone ``reference``: (F, M)."""
    u = np.asarray(direction, dtype=np.float64)
    u = u / np.linalg.norm(u)
    # A microphone further along u hears the wave earlier: its delay is -(p . u) / c.
    delays = -(np.asarray(mics, dtype=np.float64) @ u) / SPEED_OF_SOUND
    delays = delays - delays[reference]
    steering: Complex = np.exp(-2j * np.pi * np.outer(freqs, delays))
    return steering


def turned(direction: Real, degrees: float) -> Real:
    """``direction`` turned by ``degrees`` about the frame's vertical axis (z; positive: to the left)."""
    a = np.radians(degrees)
    x, y, z = np.asarray(direction, dtype=np.float64)
    return np.array([x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a), z])


def steered_gain_db(noise: Matrix, speech: Matrix, steerings: Complex) -> Real:
    """For each candidate steering vector (K, F, M): how far an MVDR beam toward it, designed
    against ``noise`` (regularised, (F, M, M)), raises the power of ``speech`` (the covariance of
    speech with noise) over the noise's, in dB, averaged over the bins: (K,). The candidate
    that points at the talker passes the most of him while the noise stays where it is.

    Per bin, with q = R_n^-1 d: the beam's output power on speech is q^H R_x q / (d^H q)^2 and on
    noise 1 / (d^H q), so their ratio is q^H R_x q / d^H q."""
    inverse = np.linalg.inv(np.asarray(noise, dtype=np.complex128))
    q = np.einsum("fmn,kfn->kfm", inverse, steerings)
    heard = np.einsum("kfm,fmn,kfn->kf", np.conj(q), np.asarray(speech, dtype=np.complex128), q).real
    noise_out = np.einsum("kfm,kfm->kf", np.conj(steerings), q).real
    gain: Real = np.mean(10.0 * np.log10(np.maximum(heard, 1e-30) / np.maximum(noise_out, 1e-30)), axis=1)
    return gain


def near_field_steering(mics: Real, source: Real, freqs: Real, reference: int = 0) -> Complex:
    """A spherical wave from a point ``source`` (the wearer's mouth), relative to microphone
    ``reference``: each microphone's delay and 1/r attenuation, (F, M)."""
    distances = np.linalg.norm(np.asarray(mics, dtype=np.float64) - np.asarray(source, dtype=np.float64), axis=1)
    gains = distances[reference] / distances
    delays = (distances - distances[reference]) / SPEED_OF_SOUND
    steering: Complex = gains[None, :] * np.exp(-2j * np.pi * np.outer(freqs, delays))
    return steering


def diffuse_coherence(mics: Real, freqs: Real) -> Real:
    """The coherence between microphones in a spherically isotropic (diffuse) noise field:
    sin(k d) / (k d) for microphones d apart, (F, M, M)."""
    positions = np.asarray(mics, dtype=np.float64)
    spacing = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=2)
    coherence: Real = np.sinc(2.0 * freqs[:, None, None] * spacing[None, :, :] / SPEED_OF_SOUND)
    return coherence


def regularise(covariance: Matrix, cap: float = CONDITION_CAP, loading: float = DIAGONAL_LOADING) -> Complex:
    """A Hermitian covariance per bin with its condition number capped at ``cap`` (small
    eigenvalues raised to largest / cap) and ``loading`` times its mean eigenvalue added to the
    diagonal. A zero covariance becomes the identity (nothing known: no preferred direction)."""
    r = np.asarray(covariance, dtype=np.complex128)
    r = 0.5 * (r + np.conj(np.swapaxes(r, -1, -2)))
    values, vectors = np.linalg.eigh(r)
    top = values[..., -1:]
    floor = np.maximum(top / cap, 0.0)
    values = np.maximum(values, floor)
    values = values + loading * values.mean(axis=-1, keepdims=True)
    empty = top[..., 0] <= 0.0
    values[empty] = 1.0
    out: Complex = (vectors * values[..., None, :]) @ np.conj(np.swapaxes(vectors, -1, -2))
    return out


def mvdr_weights(covariance: Matrix, steering: Complex) -> Complex:
    """Minimum-variance distortionless-response weights per bin, (F, M): the least output power
    under ``covariance`` with the response toward ``steering`` held at exactly 1. The covariance
    should be regularised first (:func:`regularise`)."""
    r = np.asarray(covariance, dtype=np.complex128)
    solved = np.linalg.solve(r, steering[..., None])[..., 0]
    denominator = np.einsum("fm,fm->f", np.conj(steering), solved)
    weights: Complex = solved / np.conj(denominator)[:, None]
    return weights


def mwf_weights(noisy: Matrix, noise: Matrix, mu: float = 1.0, reference: int = 0) -> Complex:
    """Multichannel Wiener filter weights per bin, (F, M): the least-squares estimate of the
    speech as microphone ``reference`` hears it, from the covariance of speech with noise
    (``noisy``) and of the noise alone: w = (Rs + mu Rn)^-1 Rs e_ref, with Rs = noisy - noise
    made positive semidefinite (negative eigenvalues, which only estimation error gives, set to
    0). ``mu`` above 1 takes more noise off for more speech distortion."""
    rx = np.asarray(noisy, dtype=np.complex128)
    rn = np.asarray(noise, dtype=np.complex128)
    difference = rx - rn
    values, vectors = np.linalg.eigh(0.5 * (difference + np.conj(np.swapaxes(difference, -1, -2))))
    rs = (vectors * np.maximum(values, 0.0)[..., None, :]) @ np.conj(np.swapaxes(vectors, -1, -2))
    system = rs + mu * rn
    size = system.shape[-1]
    scale = np.trace(system, axis1=-2, axis2=-1).real / size
    system = system + 1e-6 * np.maximum(scale, 1e-30)[:, None, None] * np.eye(size)
    weights: Complex = np.linalg.solve(system, rs[:, :, reference : reference + 1])[..., 0]
    return weights


def superdirective_weights(mics: Real, steering: Complex, freqs: Real, cap: float = CONDITION_CAP) -> Complex:
    """The fixed beam: MVDR against diffuse noise (superdirective), condition number capped."""
    return mvdr_weights(regularise(diffuse_coherence(mics, freqs), cap=cap), steering)


def response(weights: Complex, steering: Complex) -> Complex:
    """The beam's complex gain toward a source with this steering vector, per bin: w^H d."""
    gain: Complex = np.einsum("fm,fm->f", np.conj(weights), steering)
    return gain


def white_noise_gain(weights: Complex, steering: Complex) -> Real:
    """How much the beam raises the look direction over uncorrelated (sensor) noise, per bin,
    as a power ratio |w^H d|^2 / w^H w (M for delay-and-sum; low values amplify sensor noise)."""
    power = np.abs(response(weights, steering)) ** 2
    gain: Real = power / np.einsum("fm,fm->f", np.conj(weights), weights).real
    return gain


def directivity(weights: Complex, steering: Complex, coherence: Matrix) -> Real:
    """Directivity factor per bin: the look direction's power over diffuse noise's, a power ratio."""
    power = np.abs(response(weights, steering)) ** 2
    noise = np.einsum("fm,fmn,fn->f", np.conj(weights), coherence, weights).real
    factor: Real = power / noise
    return factor


def apply(weights: Complex, spectrum: Complex) -> Complex:
    """The beam's output for STFT frames: ``spectrum`` is (F, M) or (T, F, M); gives (F,) or (T, F)."""
    out: Complex = np.einsum("fm,...fm->...f", np.conj(weights), spectrum)
    return out


def relative_transfer_function(speech: Matrix, noise: Matrix, reference: int = 0) -> Complex:
    """The dominant source's relative transfer function per bin from the covariance of noisy
    speech and of noise alone: the principal generalised eigenvector v of (speech, noise),
    mapped back as noise @ v and scaled so the reference microphone's entry is 1, (F, M)."""
    rn = regularise(noise, cap=1e4, loading=1e-6)
    rx = np.asarray(speech, dtype=np.complex128)
    # Whiten by the noise's Cholesky factor: the generalised problem becomes an ordinary one.
    chol = np.linalg.cholesky(rn)
    inverse = np.linalg.inv(chol)
    whitened = inverse @ rx @ np.conj(np.swapaxes(inverse, -1, -2))
    whitened = 0.5 * (whitened + np.conj(np.swapaxes(whitened, -1, -2)))
    _, vectors = np.linalg.eigh(whitened)
    principal = vectors[..., -1]
    transfer = np.einsum("fmn,fn->fm", chol, principal)
    scale = transfer[:, reference : reference + 1]
    scale = np.where(np.abs(scale) > 1e-12, scale, 1.0)
    rtf: Complex = transfer / scale
    return rtf


def similarity(a: Complex, b: Complex) -> Real:
    """How alike two steering vectors are per bin, in [0, 1]: |a^H b|^2 / (|a|^2 |b|^2)."""
    inner = np.abs(np.einsum("fm,fm->f", np.conj(a), b)) ** 2
    norms = np.einsum("fm,fm->f", np.conj(a), a).real * np.einsum("fm,fm->f", np.conj(b), b).real
    out: Real = inner / np.maximum(norms, 1e-30)
    return out


class StreamingStft:
    """Block-by-block STFT analysis and overlap-add synthesis, sqrt-Hann, 50% overlap.

    Frame k spans input samples [k*hop - hop, k*hop + hop): the first frame starts half a frame
    before the stream, so every output sample is the sum of two frames' halves and
    ``synthesise`` gives back exactly what ``analyse`` took (the windows' squares sum to one).
    The output of frame k is complete up to sample k*hop: it lags the input by ``hop`` samples,
    the algorithmic latency (8 ms at 16 kHz with the default 256-sample frames).
    """

    def __init__(self, channels: int, n_fft: int = 256) -> None:
        if n_fft % 2:
            raise ValueError(f"n_fft must be even, not {n_fft}")
        self.n_fft = n_fft
        self.hop = n_fft // 2
        self.window = np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft))
        self._input = np.zeros((self.hop, channels))
        self._overlap = np.zeros(self.hop)

    def analyse(self, samples: npt.NDArray[np.floating]) -> Complex:
        """STFT frames completed by these samples, (T, F, M)."""
        self._input = np.concatenate([self._input, np.asarray(samples, dtype=np.float64)])
        count = max(0, (len(self._input) - self.n_fft) // self.hop + 1)
        if count == 0:
            return np.zeros((0, self.n_fft // 2 + 1, self._input.shape[1]), dtype=np.complex128)
        starts = np.arange(count) * self.hop
        frames = self._input[starts[:, None] + np.arange(self.n_fft)[None, :]]
        self._input = self._input[count * self.hop :]
        spectrum: Complex = np.fft.rfft(frames * self.window[None, :, None], axis=1)
        return spectrum

    def synthesise(self, spectrum: Complex) -> Real:
        """Output samples for single-channel frames (T, F): ``hop`` samples per frame."""
        frames = np.fft.irfft(spectrum, n=self.n_fft, axis=-1) * self.window[None, :]
        out = np.empty(len(frames) * self.hop)
        for k, frame in enumerate(frames):
            out[k * self.hop : (k + 1) * self.hop] = self._overlap + frame[: self.hop]
            self._overlap = frame[self.hop :].copy()
        return out


#: Beamformer methods: the adaptive MVDR (fixed beam until it has heard noise), the multichannel
#: Wiener filter (MVDR until it has heard the partner), the fixed superdirective beam, the
#: channels' mean, the first microphone alone.
METHODS = ("mvdr", "mwf", "fixed", "mean", "first")
#: The methods that take the samples as they are, with no STFT: no dereverberation either.
UNFILTERED = ("mean", "first")
#: The MWF's partner detector: the look beam's output in the speech band against the noise it
#: should give (a-posteriori SNR, dB, smoothed over about two frames). Under ``NOISE_SNR_DB`` the
#: frame is noise (side talker included, which the beam nulls), over ``PARTNER_SNR_DB`` the
#: partner's speech; between, neither covariance takes it. Tuned on simulated rooms (see
#: benchmarks/README.md, "The glasses' front-end").
NOISE_SNR_DB = 2.0
PARTNER_SNR_DB = 6.0
#: The noise floor is never below the quietest frame of this many seconds just heard.
FLOOR_WINDOW_S = 2.0
#: A frame's beam power (speech band, summed over its bins) below this, in dB, is digital
#: silence (white noise at -96 dBFS, 16-bit's least step, gives about -57 dB).
SILENT_DB = -100.0
#: The partner search's candidate directions lie this many degrees apart (azimuth, about ``look``).
SEARCH_STEP_DEG = 5.0
#: How much each new search moves the candidates' smoothed scores (per ``update_hops`` frames).
SEARCH_SMOOTHING = 0.1


class StreamingBeamformer:
    """A multichannel stream in, one channel out: the beam toward the partner, and for every
    frame what a beam toward the wearer's mouth hears against the look beam (own-voice evidence).
    ``mean`` and ``first`` give the channels' mean or microphone 1, with no lag, and the same
    evidence.

    ``mvdr`` tracks the noise covariance in frames with no speech in them (a frame's beam power
    within ``noise_margin_db`` of the tracked noise floor), freezes it while anyone speaks, and
    re-designs the beam from it every ``update_hops`` frames; until it has heard
    ``min_noise_s`` of noise it is the fixed beam. The steering vector is the look direction's
    (far field); where ``estimate_steering`` is set, the partner's relative transfer function
    estimated from speech frames replaces it in the bins where it is close enough to the look
    direction to be the partner (similarity at least ``steering_similarity``).

    ``mwf`` runs that MVDR toward the look direction as a detector: a frame where its output is
    no louder than the noise covariance predicts is noise, one well above it the partner (the
    side talker, in the noise covariance, is nulled and stays noise). The noise covariance is
    tracked over ``mwf_noise_time_s``, the partner's (with the noise) over ``speech_time_s`` of
    the partner's frames, and the output is the Wiener filter's estimate of the partner at
    microphone 1 (:func:`mwf_weights`); until ``min_noise_s`` of the partner has been heard, the
    MVDR's.

    With ``search_deg`` above 0, ``mvdr`` steers toward the partner wherever he stands within that
    many degrees (azimuth) of ``look``: every update it scores candidate directions
    ``SEARCH_STEP_DEG`` apart by how much an MVDR beam toward each raises the partner's speech
    over the noise (:func:`steered_gain_db`, the side talker being in the noise covariance), and
    steers toward the best of their smoothed scores. The fixed beam and the own-voice evidence
    stay on ``look``.

    With ``dereverb``, every STFT frame first loses its late reverberation (online WPE,
    :class:`~pipeline.algos.dereverb.StreamingWpe`), before the beams, the own-voice evidence
    and the covariances see it; ``mean`` and ``first`` are left as they are.
    """

    def __init__(
        self,
        mics: Real,
        look: Real,
        mouth: Real,
        method: str = "mvdr",
        rate: int = 16_000,
        n_fft: int = 256,
        *,
        noise_time_s: float = 1.0,
        noise_margin_db: float = 3.0,
        speech_margin_db: float = 6.0,
        min_noise_s: float = 0.5,
        update_hops: int = 8,
        floor_rise_db_s: float = 1.0,
        cap: float = CONDITION_CAP,
        loading: float = DIAGONAL_LOADING,
        estimate_steering: bool = False,
        steering_similarity: float = 0.7,
        own_voice_db: float | None = None,
        mwf_noise_time_s: float = 3.0,
        speech_time_s: float = 10.0,
        mu: float = 1.0,
        dereverb: bool = False,
        search_deg: float = 0.0,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown beamformer method '{method}' (known: {', '.join(METHODS)})")
        self.mics = np.asarray(mics, dtype=np.float64)
        self.channels = len(self.mics)
        self.method = method
        self.stft = StreamingStft(self.channels, n_fft)
        self.hop = self.stft.hop
        freqs = stft_frequencies(n_fft, rate)
        dereverberate = dereverb and method not in UNFILTERED
        self.wpe = StreamingWpe(self.channels, len(freqs), self.hop / rate) if dereverberate else None
        # The directions MVDR may steer at: ``look`` alone, or with the search every
        # ``SEARCH_STEP_DEG`` within ``search_deg`` of it (``look`` the middle one).
        steps = int(search_deg // SEARCH_STEP_DEG) if method == "mvdr" else 0
        self._azimuths = SEARCH_STEP_DEG * np.arange(-steps, steps + 1)
        self._candidates = np.stack([far_field_steering(self.mics, turned(look, a), freqs) for a in self._azimuths])
        self.look_steering = self._candidates[steps]
        self._best = steps  # the candidate MVDR steers at: ``look`` until the search finds the partner
        self.mouth_steering = near_field_steering(self.mics, np.asarray(mouth, dtype=np.float64), freqs)
        self.fixed = superdirective_weights(self.mics, self.look_steering, freqs)
        self.mouth_beam = superdirective_weights(self.mics, self.mouth_steering, freqs)
        self.weights = self.fixed
        self._scores: Real | None = None
        self._scored_frames = 0  # speech frames heard at the last search
        self._band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
        self._alpha = float(np.exp(-self.hop / ((mwf_noise_time_s if method == "mwf" else noise_time_s) * rate)))
        self._speech_alpha = float(np.exp(-self.hop / (speech_time_s * rate)))
        self._mu = mu
        self._noise_margin_db = noise_margin_db
        self._speech_margin_db = speech_margin_db
        self._min_noise_frames = int(min_noise_s * rate / self.hop)
        self._update_hops = update_hops
        self._floor_rise_db_s = floor_rise_db_s
        self._cap, self._loading = cap, loading
        self._rate = rate
        self._estimate = estimate_steering
        self._similarity = steering_similarity
        # While the wearer speaks (own-voice evidence over ``own_voice_db``, smoothed over about
        # 100 ms of speech), the output moves to the beam toward the mouth: the look beam colours
        # the wearer's near voice, which needs no help against the noise.
        self._own_voice_db = own_voice_db
        self._own_mouth = 0.0
        self._own_look = 0.0
        self._toward_mouth = 0.0  # 0: the look beam, 1: the mouth's delay-and-sum
        self.mouth_sum = (
            self.mouth_steering / np.einsum("fm,fm->f", np.conj(self.mouth_steering), self.mouth_steering).real[:, None]
        )
        self.noise_covariance = np.zeros((len(freqs), self.channels, self.channels), dtype=np.complex128)
        self.speech_covariance = np.zeros_like(self.noise_covariance)
        self.noise_frames = 0
        self.speech_frames = 0
        # Each covariance's weights so far (1 - alpha^n): an average of few frames is not too small.
        self._noise_weight = 0.0
        self._speech_weight = 0.0
        self.look_weights = self.fixed  # the MWF's detector: MVDR toward the look direction
        self._snr_db: float | None = None
        self._since_update = 0
        self._floor_db: float | None = None
        self._recent: collections.deque[float] = collections.deque(maxlen=round(FLOOR_WINDOW_S * rate / self.hop))
        self._noise_power = np.zeros(2)  # the mouth and look beams' power in noise, speech band
        self._skip = self.hop  # the first frame's first half lies before the stream
        self.taken = 0  # input samples so far
        self.given = 0  # output samples so far
        self.dereverb_seconds = 0.0  # time spent in WPE, for the cost of each part

    def _is_noise(self, power_db: float) -> tuple[bool, bool]:
        """(noise, speech) for one frame, from its beam power against the tracked noise floor:
        the floor follows a quieter frame quickly and rises slowly (``floor_rise_db_s``), as a
        minimum does, but never stays below the quietest frame of the last ``FLOOR_WINDOW_S``: a
        stream that begins quieter than it goes on (a room's sound building up, a microphone's
        first buffers) would otherwise hold it down for as many seconds as it was dB too low.
        Digital silence is neither noise nor speech."""
        if power_db < SILENT_DB:
            return False, False
        self._recent.append(power_db)
        if self._floor_db is None or power_db < self._floor_db:
            self._floor_db = power_db if self._floor_db is None else 0.7 * self._floor_db + 0.3 * power_db
        else:
            self._floor_db += self._floor_rise_db_s * self.hop / self._rate
        self._floor_db = max(self._floor_db, min(self._recent))
        return power_db < self._floor_db + self._noise_margin_db, power_db > self._floor_db + self._speech_margin_db

    def _partner(self, frame: Complex, noise: bool) -> tuple[bool, bool]:
        """The MWF's (noise, partner) for one frame: the look beam's output power in the speech
        band against the noise covariance's prediction of it (until the noise is known, the
        floor's ``noise`` and no partner)."""
        if self.noise_frames < self._min_noise_frames:
            return noise, False
        weights, band = self.look_weights[self._band], frame[self._band]
        heard = float(np.sum(np.abs(apply(weights, band)) ** 2))
        covariance = self.noise_covariance[self._band] / self._noise_weight
        expected = float(np.einsum("fm,fmn,fn->", np.conj(weights), covariance, weights).real)
        snr_db = 10.0 * np.log10(max(heard, 1e-30) / max(expected, 1e-30))
        self._snr_db = snr_db if self._snr_db is None else 0.5 * (self._snr_db + snr_db)
        return self._snr_db < NOISE_SNR_DB, self._snr_db > PARTNER_SNR_DB

    def _update(self) -> None:
        if self.method == "mwf" and self.noise_frames >= self._min_noise_frames:
            noise = self.noise_covariance / self._noise_weight
            self.look_weights = mvdr_weights(regularise(noise, self._cap, self._loading), self.look_steering)
            self.weights = self.look_weights
            if self.speech_frames >= self._min_noise_frames:
                self.weights = mwf_weights(self.speech_covariance / self._speech_weight, noise, self._mu)
            return
        if self.method != "mvdr" or self.noise_frames < self._min_noise_frames:
            return
        noise = regularise(self.noise_covariance, self._cap, self._loading)
        if self._estimate and self.speech_frames >= self._min_noise_frames:
            estimated = relative_transfer_function(self.speech_covariance, self.noise_covariance)
            near = similarity(estimated, self.look_steering) >= self._similarity
            steering = np.where(near[:, None], estimated, self.look_steering)
        else:
            if len(self._azimuths) > 1 and self.speech_frames >= max(self._min_noise_frames, 1):
                self._search(noise)
            steering = self._candidates[self._best]
        self.weights = mvdr_weights(noise, steering)

    @property
    def azimuth_deg(self) -> float:
        """Where MVDR steers, in degrees from ``look`` (azimuth; positive: to the left)."""
        return float(self._azimuths[self._best])

    def _search(self, noise: Complex) -> None:
        """The partner's direction among the candidates, from the speech heard since the last
        search (none new: the direction stays)."""
        if self.speech_frames > self._scored_frames:
            self._scored_frames = self.speech_frames
            band = self._band
            speech = self.speech_covariance[band] / self._speech_weight
            scores = steered_gain_db(noise[band], speech, self._candidates[:, band])
            if self._scores is None:
                self._scores = scores
            else:
                self._scores += SEARCH_SMOOTHING * (scores - self._scores)
            self._best = int(np.argmax(self._scores))

    def process(self, samples: npt.NDArray[np.floating]) -> tuple[Real, Real, Real]:
        """(beam output, and per STFT frame the power of the beam toward the wearer's mouth and of
        the fixed beam toward the partner, in the speech band, in frames of speech (0 elsewhere)):
        their ratio over an utterance is its own-voice evidence.

        The output lags the input by ``hop`` samples (see :class:`StreamingStft`): after n input
        samples in all, n - hop output samples have come out; :meth:`flush` gives the rest.
        """
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"the beamformer takes ({self.channels} channels) frames, not shape {x.shape}")
        self.taken += len(x)
        spectrum = self.stft.analyse(x)
        if self.wpe is not None:
            started = time.perf_counter()
            spectrum = self.wpe.process(spectrum)
            self.dereverb_seconds += time.perf_counter() - started
        band = spectrum[:, self._band]
        look = np.sum(np.abs(apply(self.fixed[self._band], band)) ** 2, axis=1)
        mouth = np.sum(np.abs(apply(self.mouth_beam[self._band], band)) ** 2, axis=1)
        states = []
        noise_mouth, noise_look = np.empty(len(look)), np.empty(len(look))
        for t, power in enumerate(look):
            noise, speech = self._is_noise(10.0 * np.log10(power + 1e-20))
            if noise:  # each beam's noise power, as the noise covariance is tracked
                heard = np.array([mouth[t], power])
                alpha = self._alpha if self._noise_power[1] > 0.0 else 0.0
                self._noise_power = alpha * self._noise_power + (1 - alpha) * heard
            states.append((noise, speech))
            noise_mouth[t], noise_look[t] = self._noise_power
        # Own-voice evidence from frames of speech only, less each beam's noise: noise would pull
        # it toward the noise's own value (a diffuse field's, or with noise in each microphone
        # apart, the ratio of the beams' white-noise gains, which is above the threshold).
        speaking = np.array([speech for _, speech in states], dtype=bool)
        mouth = np.maximum(mouth - noise_mouth, 0.0)
        look = np.maximum(look - noise_look, 0.0)
        evidence = (np.where(speaking, mouth, 0.0), np.where(speaking, look, 0.0))
        if self.method in UNFILTERED:
            mono = x.mean(axis=1) if self.method == "mean" else x[:, 0]
            self.given += len(mono)
            return mono, *evidence
        out = np.empty(spectrum.shape[:2], dtype=np.complex128)
        for t, frame in enumerate(spectrum):
            out[t] = apply(self.weights, frame)
            noise, speech = states[t]
            if self._own_voice_db is not None:
                if speech:
                    self._own_mouth = 0.9 * self._own_mouth + 0.1 * mouth[t]
                    self._own_look = 0.9 * self._own_look + 0.1 * look[t]
                wearer = self._own_mouth > self._own_look * 10 ** (self._own_voice_db / 10)
                self._toward_mouth = (
                    min(1.0, self._toward_mouth + 0.125) if wearer else max(0.0, self._toward_mouth - 0.125)
                )
                if self._toward_mouth > 0.0:
                    out[t] = (1.0 - self._toward_mouth) * out[t] + self._toward_mouth * apply(self.mouth_sum, frame)
            outer = frame[:, :, None] * np.conj(frame[:, None, :])
            speech_alpha = self._alpha
            if self.method == "mwf":
                noise, speech = self._partner(frame, noise)
                speech_alpha = self._speech_alpha
            if noise:
                self.noise_covariance = self._alpha * self.noise_covariance + (1 - self._alpha) * outer
                self._noise_weight = self._alpha * self._noise_weight + (1 - self._alpha)
                self.noise_frames += 1
            elif speech and mouth[t] < look[t]:  # speech, and not the wearer's
                self.speech_covariance = speech_alpha * self.speech_covariance + (1 - speech_alpha) * outer
                self._speech_weight = speech_alpha * self._speech_weight + (1 - speech_alpha)
                self.speech_frames += 1
            self._since_update += 1
            if self._since_update >= self._update_hops:
                self._since_update = 0
                self._update()
        given = self._trim(self.stft.synthesise(out))
        self.given += len(given)
        return given, *evidence

    def flush(self) -> Real:
        """The output still held back at the end of the stream (the last ``hop`` samples)."""
        if self.method in UNFILTERED:
            return np.zeros(0)
        taken, given = self.taken, self.given
        out, _, _ = self.process(np.zeros((self.stft.n_fft, self.channels)))
        self.taken, self.given = taken, taken
        return out[: taken - given]

    def _trim(self, out: Real) -> Real:
        if self._skip:
            cut = min(self._skip, len(out))
            self._skip -= cut
            out = out[cut:]
        return out


#: Own-voice evidence's threshold lies this far from a diffuse field's value toward the wearer's.
#: Measured on simulated rooms (free field, no head), utterance by utterance, 4-mic profile:
#: partner up to 1.8 dB, wearer from 4.0 dB (threshold 3.0); 5-mic: partner up to -4.3 dB, wearer
#: from 1.1 dB (threshold -0.8). A partner lies near the diffuse value (reverberation is diffuse).
OWN_VOICE_FRACTION = 0.4
#: Speech's long-term spectrum for the threshold's prediction: flat to 500 Hz, then falling
#: 4.5 dB an octave (its power lies low, where a small array's beams hardly differ).
SPEECH_CORNER_HZ = 500.0
SPEECH_SLOPE = 1.5


def own_voice_threshold_db(mics: Real, look: Real, mouth: Real, rate: int = 16_000, n_fft: int = 256) -> float:
    """Where own-voice evidence (the mouth beam's power over the look beam's, in the speech band)
    says "the wearer", from the geometry alone: the values the wearer's mouth and a diffuse field
    give to speech-shaped sound, and ``OWN_VOICE_FRACTION`` of the way from the second to the first."""
    freqs = stft_frequencies(n_fft, rate)
    band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
    weights = np.minimum(1.0, (SPEECH_CORNER_HZ / freqs[band]) ** SPEECH_SLOPE)
    toward_mouth = near_field_steering(mics, mouth, freqs)
    look_beam = superdirective_weights(mics, far_field_steering(mics, look, freqs), freqs)[band]
    mouth_beam = superdirective_weights(mics, toward_mouth, freqs)[band]

    def ratio_db(mouth_power: Real, look_power: Real) -> float:
        return float(10.0 * np.log10(np.sum(weights * mouth_power) / np.sum(weights * look_power)))

    wearer = ratio_db(
        np.abs(response(mouth_beam, toward_mouth[band])) ** 2, np.abs(response(look_beam, toward_mouth[band])) ** 2
    )
    coherence = diffuse_coherence(mics, freqs)[band]
    diffuse = ratio_db(
        np.einsum("fm,fmn,fn->f", np.conj(mouth_beam), coherence, mouth_beam).real,
        np.einsum("fm,fmn,fn->f", np.conj(look_beam), coherence, look_beam).real,
    )
    return diffuse + OWN_VOICE_FRACTION * (wearer - diffuse)
