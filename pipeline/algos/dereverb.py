"""Online multichannel dereverberation: weighted prediction error (WPE), frame by frame.

Each microphone's STFT frame is predicted from all the microphones' frames ``delay + 1`` to
``delay + taps`` hops before it, and the prediction (the late reverberation) is taken away; the
direct sound and early reflections, which no earlier frame predicts, stay. The prediction filter
is tracked by recursive least squares weighted by the inverse of the speech's power (Yoshioka and
Nakatani, 2012; Caroselli et al., 2017, the online form). It computes what ``nara_wpe``'s
``online_wpe_step`` (MIT, by the method's Paderborn group) computes, and a test holds it to that;
it is written here because that step computes the inverse covariance's update as a product of
three terms anew every frame, and the Hermitian update in place costs half as much (0.14 against
0.29 RTF on 4 microphones, this machine).

Noise that no earlier frame predicts (sensor noise, babble) passes unchanged, and so do the
channels' phase relations for the direct sound: a beamformer after it still steers. The output is
frame-synchronous with the input: no added latency.

In the beamformer's 8 ms hops the prediction has to reach about 0.1 s back to help Whisper:
5 taps did not help at all (benchmarks/README.md, "The glasses' front-end"). The cost grows with
the square of taps x microphones.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Complex = npt.NDArray[np.complex128]

#: The prediction's taps and delay, in STFT hops: with 8 ms hops it predicts from 24 to 96 ms back.
TAPS = 10
DELAY = 2
#: How long the recursion remembers, in seconds.
MEMORY_S = 16.0


class StreamingWpe:
    """WPE on a stream of multichannel STFT frames, (T, F, M) in, the same shape out."""

    def __init__(
        self, channels: int, bins: int, hop_s: float, taps: int = TAPS, delay: int = DELAY, memory_s: float = MEMORY_S
    ) -> None:
        if taps < 1 or delay < 1:
            raise ValueError(f"WPE needs at least one tap and one frame of delay, not {taps} and {delay}")
        self.taps, self.delay = taps, delay
        self.alpha = float(np.exp(-hop_s / memory_s))
        size = taps * channels
        self._buffer = np.zeros((taps + delay + 1, bins, channels), dtype=np.complex128)
        self._inverse = np.tile(np.eye(size, dtype=np.complex128), (bins, 1, 1))
        self._filter = np.zeros((bins, size, channels), dtype=np.complex128)

    def process(self, spectrum: Complex) -> Complex:
        """The frames with their late reverberation taken away."""
        out = np.empty_like(spectrum, dtype=np.complex128)
        for t, frame in enumerate(spectrum):
            self._buffer = np.roll(self._buffer, -1, axis=0)
            self._buffer[-1] = frame
            out[t] = self._step()
        return out

    def _step(self) -> Complex:
        """One frame of recursive least squares: the current frame less its prediction from the
        earlier ones, then the filter and the inverse covariance updated in place."""
        bins, size = self._filter.shape[:2]
        # The earlier frames, newest first, each microphone's taps together: (F, taps x M).
        window = self._buffer[: -self.delay - 1][::-1].transpose(1, 2, 0).reshape(bins, size)
        residual: Complex = self._buffer[-1] - np.einsum("fid,fi->fd", np.conj(self._filter), window)
        # The speech's power in each bin: the recent frames' mean over the microphones, floored so
        # that digital silence does not divide by zero.
        power = np.maximum(np.mean(np.abs(self._buffer) ** 2, axis=(0, 2)), 1e-10)
        projected = np.matmul(self._inverse, window[:, :, None])[:, :, 0]
        gain = projected / (self.alpha * power + np.einsum("fi,fi->f", np.conj(window), projected).real)[:, None]
        # The inverse covariance is Hermitian: window^H times it is the projection's conjugate.
        self._inverse -= gain[:, :, None] * np.conj(projected)[:, None, :]
        self._inverse *= 1.0 / self.alpha
        self._filter += gain[:, :, None] * np.conj(residual)[:, None, :]
        return residual
