"""Online multichannel dereverberation: weighted prediction error (WPE), frame by frame.

Each microphone's STFT frame is predicted from all the microphones' frames ``delay + 1`` to
``delay + taps`` hops before it, and the prediction (the late reverberation) is taken away; the
direct sound and early reflections, which no earlier frame predicts, stay. The prediction filter
solves WPE's least-squares problem weighted by the inverse of the speech's power (Yoshioka and
Nakatani, 2012), over statistics that forget the past exponentially (the online form, Caroselli
et al., 2017).

The usual online form tracks the inverse of those statistics by recursive least squares (RLS),
as ``nara_wpe``'s ``online_wpe_step`` does. That recursion is numerically unstable: on a 20-minute
stream of the simulated glasses scenes it left its output 20 dB over its input after 7 minutes and
110 dB over after 13 (in double precision; in single precision within 3), and after 25
minutes of digital silence (a muted microphone) it amplified what came next 87 dB. So the statistics
themselves are kept here (a covariance and a cross-correlation, folded in every ``solve_every``
frames with one matrix product) and the filter is solved from them anew each time, with diagonal
loading: nothing accumulates error, silence only lets the statistics fade (the filter then goes to
zero and the input passes), and it costs less (RTF 0.09 against 0.14 on 4 microphones, this
machine: a solve every 64 ms instead of a rank-one update of the inverse every 8 ms).

Noise that no earlier frame predicts (sensor noise, babble) passes unchanged, and so do the
channels' phase relations for the direct sound: a beamformer after it still steers. The output is
frame-synchronous with the input: no added latency.

In the beamformer's 8 ms hops the prediction has to reach about 0.1 s back to help Whisper:
5 taps did not help at all (benchmarks/README.md, "The glasses' front-end").
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Complex = npt.NDArray[np.complex128]

#: The prediction's taps and delay, in STFT hops: with 8 ms hops it predicts from 24 to 96 ms back.
TAPS = 10
DELAY = 2
#: How long the statistics remember, in seconds.
MEMORY_S = 16.0
#: The filter is solved anew every this many frames (64 ms in 8 ms hops).
SOLVE_EVERY = 8
#: Diagonal loading, in seconds of frames (see ``__init__``).
PRIOR_S = 1.0
#: The smallest power a frame is weighted by, so that digital silence does not divide by zero.
FLOOR = 1e-10


class StreamingWpe:
    """WPE on a stream of multichannel STFT frames, (T, F, M) in, the same shape out.

    The output does not depend on how the stream is cut into calls.
    """

    def __init__(
        self,
        channels: int,
        bins: int,
        hop_s: float,
        taps: int = TAPS,
        delay: int = DELAY,
        memory_s: float = MEMORY_S,
        solve_every: int = SOLVE_EVERY,
        prior_s: float = PRIOR_S,
    ) -> None:
        if taps < 1 or delay < 1 or solve_every < 1 or not prior_s > 0:
            raise ValueError(
                f"WPE needs at least one tap, one frame of delay, one frame a solve and some loading, "
                f"not {taps}, {delay}, {solve_every} and {prior_s}"
            )
        self.taps, self.delay, self.solve_every = taps, delay, solve_every
        self.alpha = float(np.exp(-hop_s / memory_s))
        size = taps * channels
        # The frames before the next one: what its prediction and its power need.
        self._history = np.zeros((taps + delay, bins, channels), dtype=np.complex128)
        self._covariance = np.zeros((bins, size, size), dtype=np.complex128)
        self._correlation = np.zeros((bins, size, channels), dtype=np.complex128)
        # Loading that is always there, as if PRIOR_S of frames that predict nothing (the
        # identity, one a frame) were part of the statistics: where the frames are few (the
        # start, after silence) the filter stays small. From nothing, the first solve fitted 8
        # frames with 40 coefficients and the first second of the glasses fixture came out 20 dB
        # louder than it went in (4.6 dB from the identity at the start alone, as RLS starts;
        # 18 dB after a minute of digital silence had let that fade).
        self._prior = prior_s / hop_s
        self._filter: Complex = np.zeros((bins, size, channels), dtype=np.complex128)
        # The frames since the last solve: (earlier frames, frame, power) in pieces.
        self._block: list[tuple[Complex, Complex, npt.NDArray[np.float64]]] = []
        self._pending = 0

    def process(self, spectrum: Complex) -> Complex:
        """The frames with their late reverberation taken away."""
        spectrum = np.asarray(spectrum, dtype=np.complex128)
        count, bins, channels = spectrum.shape
        if count == 0:
            return spectrum.copy()
        frames = np.concatenate([self._history, spectrum])
        # Each frame's earlier frames, newest first, each microphone's taps together: (T, F, taps x M).
        windows = sliding_window_view(frames[: count + self.taps - 1], self.taps, axis=0)[..., ::-1]
        windows = windows.reshape(count, bins, channels * self.taps)
        # The speech's power in each bin: the mean over the microphones and the frames from the
        # oldest tap to the frame itself.
        energy = np.mean(np.abs(frames) ** 2, axis=2)
        power = np.maximum(sliding_window_view(energy, len(self._history) + 1, axis=0).mean(axis=-1), FLOOR)
        out = np.empty_like(spectrum)
        start = 0
        while start < count:
            stop = min(count, start + self.solve_every - self._pending)
            part = slice(start, stop)
            out[part] = spectrum[part] - np.einsum("fid,tfi->tfd", np.conj(self._filter), windows[part])
            self._block.append((windows[part], spectrum[part], power[part]))
            self._pending += stop - start
            if self._pending == self.solve_every:
                self._solve()
            start = stop
        self._history = frames[len(frames) - len(self._history) :]
        return out

    def _solve(self) -> None:
        """The block's frames folded into the statistics, each weighted by the inverse of its
        power and by how long ago it came, and the filter solved from them."""
        windows, frames, power = (np.concatenate(parts) for parts in zip(*self._block, strict=True))
        self._block, self._pending = [], 0
        age = np.arange(len(frames) - 1, -1, -1)
        weight = np.sqrt(self.alpha ** age[:, None] / power)[:, :, None]
        v = (windows * weight).transpose(1, 2, 0)  # (F, taps x M, frames)
        u = (frames * weight).transpose(1, 0, 2)  # (F, frames, M)
        decay = self.alpha ** len(frames)
        self._covariance *= decay
        self._covariance += v @ np.conj(v).transpose(0, 2, 1)
        self._correlation *= decay
        self._correlation += v @ np.conj(u)
        loaded = self._covariance + self._prior * np.eye(self._covariance.shape[1])
        self._filter = np.linalg.solve(loaded, self._correlation).astype(np.complex128, copy=False)
