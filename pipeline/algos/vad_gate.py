"""Speech/silence hysteresis over per-frame VAD decisions, and level normalisation for them.

The gate opens when enough of the recent frames are voiced (one voiced click is not speech),
starting the utterance a little before the first voiced frame (pre-roll keeps the first
syllable), and closes after a stretch of silence, ending just after the last voiced frame.
An utterance that grows too long is split at its quietest recent frame.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

#: The level normalisation's target for the noise floor (dBFS), and the most it raises, in dB.
FLOOR_DBFS = -60.0
MAX_GAIN_DB = 40.0


@dataclass(frozen=True)
class Boundary:
    """An utterance starts or ends at ``frame`` (frame indices count from the stream's start)."""

    kind: str  # "start" or "end"
    frame: int


class SpeechGate:
    """Feed one decision per frame to :meth:`push`; it returns the boundaries it decided."""

    def __init__(
        self,
        *,
        frame_ms: int,
        start_window_ms: int = 300,
        start_voiced_ms: int = 150,
        end_silence_ms: int = 500,
        pre_roll_ms: int = 300,
        post_roll_ms: int = 150,
        max_utterance_ms: int = 15000,
        split_search_ms: int = 3000,
        min_pause_ms: int = 200,
    ) -> None:
        def frames(ms: int) -> int:
            return max(1, math.ceil(ms / frame_ms))

        self.frame_ms = frame_ms
        self._window = frames(start_window_ms)
        self._start_voiced = min(frames(start_voiced_ms), self._window)
        self._end_silence = frames(end_silence_ms)
        self._pre_roll = frames(pre_roll_ms)
        self._post_roll = frames(post_roll_ms)
        self._max_frames = frames(max_utterance_ms)
        self._split_search = min(frames(split_search_ms), self._max_frames // 2)
        self._recent: deque[bool] = deque(maxlen=self._window)
        self._energies: deque[float] = deque(maxlen=self._split_search)
        self._frame = 0  # index of the next frame
        self._floor = 0  # no utterance may start before this frame
        self.start: int | None = None  # the open utterance's first frame
        #: Silences inside utterances (first silent frame, first voiced frame after it) of at
        #: least ``min_pause_ms``; the reader takes them and clears the list.
        self.pauses: list[tuple[int, int]] = []
        self._min_pause = frames(min_pause_ms)
        self._last_voiced = 0

    @property
    def open(self) -> bool:
        return self.start is not None

    @property
    def voiced_until(self) -> int:
        """The frame after the open utterance's last voiced frame."""
        return self._last_voiced + 1

    def push(self, voiced: bool, energy: float = 0.0) -> list[Boundary]:
        frame = self._frame
        self._frame += 1
        self._recent.append(voiced)
        self._energies.append(energy)
        if self.start is None:
            if sum(self._recent) < self._start_voiced:
                return []
            first_voiced = frame - len(self._recent) + 1 + self._recent.index(True)
            self.start = max(self._floor, first_voiced - self._pre_roll)
            self._last_voiced = frame
            return [Boundary("start", self.start)]
        if voiced:
            if frame - self._last_voiced - 1 >= self._min_pause:
                self.pauses.append((self._last_voiced + 1, frame))
            self._last_voiced = frame
        if frame - self._last_voiced >= self._end_silence:
            return self._close(min(self._last_voiced + 1 + self._post_roll, frame + 1))
        if frame + 1 - self.start >= self._max_frames:
            # Split at the quietest recent frame; the rest continues as a new utterance.
            recent = list(self._energies)
            quietest = recent.index(min(recent))
            split = frame + 1 - len(recent) + quietest
            split = max(split, self.start + 1)
            boundaries = self._close(split)
            self.start = split
            self._last_voiced = frame
            return [*boundaries, Boundary("start", split)]
        return []

    def end_at(self, frame: int) -> list[Boundary]:
        """Closes the open utterance at ``frame``: another detector heard its speech end there."""
        if self.start is None:
            return []
        return self._close(max(frame, self.start + 1))

    def flush(self) -> list[Boundary]:
        """End of input: closes an open utterance."""
        if self.start is None:
            return []
        return self._close(min(self._last_voiced + 1 + self._post_roll, self._frame))

    def _close(self, end: int) -> list[Boundary]:
        self.start = None
        self._floor = end
        self._recent.clear()
        return [Boundary("end", end)]


class LevelNormaliser:
    """A gain for the VAD's copy of the audio, so that quiet speech (-60 dBFS) is still heard.

    WebRTC VAD has fixed energy thresholds, so speech near -60 dBFS reads as silence. Raising the
    loudest recent frames to a target would also raise the pauses between loud speech into the
    VAD's range; instead the gain anchors the *noise floor* (the quietest recent frames) at
    ``floor_dbfs``, which keeps the speech-to-noise ratio the VAD relies on, moves only slowly,
    and never attenuates. ``max_gain_db`` bounds it on digital silence.
    """

    def __init__(
        self, *, frame_ms: int, floor_dbfs: float = FLOOR_DBFS, max_gain_db: float = MAX_GAIN_DB, window_s: float = 3.0
    ) -> None:
        self._floor = 10 ** (floor_dbfs / 20)
        self._max_gain = 10 ** (max_gain_db / 20)
        self._recent: deque[float] = deque(maxlen=max(1, int(window_s * 1000 / frame_ms)))

    def gain(self, rms: float) -> float:
        self._recent.append(rms)
        floor = min(self._recent)
        if floor <= 0:
            return self._max_gain
        return min(self._max_gain, max(1.0, self._floor / floor))
