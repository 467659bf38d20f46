"""One-line progress bars for long work, drawn on a terminal only (stderr), with tqdm: a recording's
seconds of audio (:class:`Progress`), and the files of a run of many (:class:`FilesBar`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

# Seconds of audio, as clocks, and the speed as a multiple of real time ("12.3x"): tqdm's own
# counter would read "754.2/3600.0 [...] 12.30s/s".
_WITH_TOTAL = "{desc} {percentage:3.0f}% |{bar:24}| {done}/{length} {speed}, {remaining} left"
_WITHOUT_TOTAL = "{desc} {done} done, {speed}"

if TYPE_CHECKING:
    _Tqdm = tqdm[Any]  # generic in its stubs only, not at run time
else:
    _Tqdm = tqdm


class _AudioBar(_Tqdm):
    """tqdm counting seconds of audio, which adds the fields ``done``, ``length`` and ``speed``."""

    @property
    def format_dict(self) -> MutableMapping[str, Any]:
        fields = super().format_dict
        elapsed = fields["elapsed"]
        fields.update(
            done=self.format_interval(fields["n"]),
            length=self.format_interval(fields["total"] or 0),
            speed=f"{fields['n'] / elapsed if elapsed else 0.0:.1f}x",
        )
        return fields


class Progress:
    """Shows how much of a recording is done, how fast, and the time left."""

    def __init__(
        self,
        label: str,
        total_s: float | None,
        stream: TextIO | None = None,
        min_interval: float = 0.2,
        enabled: bool = True,
    ) -> None:
        stream = stream or sys.stderr
        self.enabled = enabled and stream.isatty()
        self._total = total_s or None
        self._bar = _AudioBar(
            total=self._total,
            desc=label,
            file=stream,
            disable=not self.enabled,
            leave=False,  # the line is cleared at the end, as the results are printed after it
            mininterval=min_interval,
            miniters=0,  # redraw by time only: the steps are segments of any length
            bar_format=_WITH_TOTAL if self._total else _WITHOUT_TOTAL,
        )

    def update(self, done_s: float) -> None:
        """``done_s``: seconds of the recording done so far (a position, not an increment)."""
        # tqdm drops the total from the line once the count passes it; a last segment can end a
        # little after the duration the container declared.
        done = min(done_s, self._total) if self._total else done_s
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


class FilesBar(_Tqdm):
    """tqdm counting files, with their speed per minute (a file takes minutes: "0.02it/s" says little)."""

    @property
    def format_dict(self) -> MutableMapping[str, Any]:
        fields = super().format_dict
        done, elapsed = fields["n"] - fields["initial"], fields["elapsed"]
        fields["speed"] = f"{60 * done / elapsed:.1f} files/min" if done and elapsed else "? files/min"
        return fields

    @classmethod
    @contextmanager
    def shown(cls, total: int, skipped: int, *, enabled: bool) -> Iterator[FilesBar]:
        """A bar on stderr when it is a terminal; files ``skipped`` (done already) count as done, not in the speed."""
        bar = cls(
            total=total,
            initial=skipped,
            desc="files",
            file=sys.stderr,
            disable=not (enabled and sys.stderr.isatty()),
            leave=False,  # the caller prints its summary where the bar was
            smoothing=0,  # the average over the run: files differ too much in length for a recent rate
            mininterval=0.5,
            bar_format="{desc} {percentage:3.0f}% |{bar:24}| {n}/{total} {speed}, {remaining} left",
        )
        try:
            yield bar
        finally:
            bar.close()
