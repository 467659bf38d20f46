"""A one-line progress bar for long work, drawn on a terminal only (stderr)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Shows how much of a recording is done, how fast, and the time left."""

    def __init__(
        self, label: str, total_s: float | None, stream: TextIO | None = None, min_interval: float = 0.2
    ) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty()
        self._label = label
        self._total = total_s
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._min_interval = min_interval

    def update(self, done_s: float) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        elapsed = now - self._started
        speed = done_s / elapsed if elapsed > 0 else 0.0
        if self._total:
            fraction = min(done_s / self._total, 1.0)
            bar = "#" * int(fraction * 24)
            eta = (self._total - done_s) / speed if speed > 0 else 0.0
            done = f"{_clock(done_s)}/{_clock(self._total)}"
            text = f"{self._label} {fraction:4.0%} [{bar:<24}] {done} {speed:.1f}x, {_clock(eta)} left"
        else:
            text = f"{self._label} {_clock(done_s)} done, {speed:.1f}x"
        self._stream.write("\r\x1b[2K" + text)
        self._stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
