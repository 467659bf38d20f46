"""Reading recordings: any common format, rate and channel count, in blocks, resampled to 16 kHz.

Uncompressed formats (WAV, FLAC, AIFF, ...) are read with libsndfile (soundfile) and resampled with
soxr. Compressed ones (Opus, Vorbis, MP3, AAC/m4a, webm, ...) are decoded and resampled by FFmpeg
through PyAV, which faster-whisper itself uses: on the 25 FLEURS Opus clips here, libsndfile's
decoding gave Whisper a higher WER in four languages of five (by 1-2 points). Files are read block
by block, so a two-hour recording never sits in memory whole, and stream time is counted in
output samples, so chunk positions are exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr

from pipeline.errors import AudioError
from pipeline.events import SAMPLE_RATE, AudioChunk, Samples

log = logging.getLogger(__name__)


class _Decoder:
    """Blocks of float32 frames (frames, channels) at the file's own rate."""

    sample_rate: int
    channels: int
    frames: int | None  # None when the container does not say

    def blocks(self, frames: int) -> Iterator[Samples]:
        raise NotImplementedError

    def close(self) -> None:
        pass


#: libsndfile formats whose audio is better decoded by FFmpeg (see the module's docstring).
COMPRESSED = frozenset({"OGG", "MP3"})


class _SoundFileDecoder(_Decoder):
    def __init__(self, path: Path) -> None:
        self._file = soundfile.SoundFile(str(path))
        self.format = str(self._file.format)
        self.sample_rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)

    def blocks(self, frames: int) -> Iterator[Samples]:
        while True:
            block = self._file.read(frames, dtype="float32", always_2d=True)
            if len(block) == 0:
                return
            yield block

    def close(self) -> None:
        self._file.close()


class _AvDecoder(_Decoder):
    def __init__(self, path: Path) -> None:
        import av

        self._container: Any = av.open(str(path))
        if not self._container.streams.audio:
            self._container.close()
            raise AudioError(f"{path}: has no audio stream")
        self._stream = self._container.streams.audio[0]
        self.channels = int(self._stream.codec_context.channels)
        if not self.channels:
            self._container.close()
            raise AudioError(f"{path}: the audio stream has no channels")
        duration = self._stream.duration
        time_base = self._stream.time_base
        self.sample_rate = SAMPLE_RATE  # FFmpeg resamples, as for faster-whisper; channels stay as they are
        self.frames = int(duration * time_base * SAMPLE_RATE) if duration and time_base else None
        self._resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)

    def blocks(self, frames: int) -> Iterator[Samples]:
        pending: list[Samples] = []
        count = 0
        for packet_frame in self._container.decode(self._stream):
            for frame in self._resampler.resample(packet_frame):
                pending.append(np.ascontiguousarray(frame.to_ndarray().T, dtype=np.float32))
                count += pending[-1].shape[0]
            if count >= frames:
                yield np.concatenate(pending)
                pending, count = [], 0
        for frame in self._resampler.resample(None):  # what the resampler still holds
            pending.append(np.ascontiguousarray(frame.to_ndarray().T, dtype=np.float32))
        if pending:
            yield np.concatenate(pending)

    def close(self) -> None:
        self._container.close()


def _open(path: Path) -> _Decoder:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty")
    try:
        decoder = _SoundFileDecoder(path)
        if decoder.format not in COMPRESSED:
            return decoder
        decoder.close()
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        log.debug("libsndfile cannot open %s (%s); trying FFmpeg", path, e)
    try:
        return _AvDecoder(path)
    except AudioError:
        raise
    except Exception as e:  # PyAV raises many error types (InvalidDataError, ValueError, ...)
        log.debug("FFmpeg cannot open %s: %s", path, e)
        raise AudioError(f"{path}: not a recognised audio file") from None


class AudioReader:
    """A recording read in blocks and resampled to 16 kHz, channels kept.

    Use as a context manager; iterate :meth:`chunks` for :class:`AudioChunk` events whose
    ``start`` counts 16 kHz samples from the beginning of the file.
    """

    def __init__(self, path: str | Path, block_ms: int = 1000) -> None:
        self.path = Path(path)
        self._decoder = _open(self.path)
        if self._decoder.sample_rate < 4000 or self._decoder.channels < 1:
            self._decoder.close()
            raise AudioError(
                f"{self.path}: unusable audio ({self._decoder.sample_rate} Hz, {self._decoder.channels} channels)"
            )
        self._block_frames = max(1, self._decoder.sample_rate * block_ms // 1000)
        self.damage: str | None = None  # why the stream ended early, when it did (see chunks)

    @property
    def source_rate(self) -> int:
        return self._decoder.sample_rate

    @property
    def channels(self) -> int:
        return self._decoder.channels

    @property
    def duration(self) -> float | None:
        """Length in seconds, when the container says."""
        frames = self._decoder.frames
        return frames / self._decoder.sample_rate if frames else None

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._decoder.close()

    def chunks(self) -> Iterator[AudioChunk]:
        """The whole file as 16 kHz chunks; a file with no frames raises AudioError. A stream
        damaged part way through ends where the damage begins, and :attr:`damage` says so: what
        came before it is still worth transcribing."""
        rate = self._decoder.sample_rate
        resampler = (
            None
            if rate == SAMPLE_RATE
            else soxr.ResampleStream(rate, SAMPLE_RATE, self.channels, dtype="float32", quality="HQ")
        )
        position = 0
        decoded = 0
        blocks = self._decoder.blocks(self._block_frames)
        while True:
            try:
                block = next(blocks, None)
            except AudioError:
                raise
            except Exception as e:  # a damaged stream part way through: its end
                if decoded == 0:
                    raise AudioError(f"{self.path}: decoding failed at the start ({type(e).__name__})") from None
                self.damage = f"{self.path}: decoding failed after {decoded / rate:.1f} s ({type(e).__name__})"
                block = None
            last = block is None
            if block is None:
                block = np.zeros((0, self.channels), dtype=np.float32)
            decoded += len(block)
            # Non-finite samples (a damaged float file) would poison every stage after this one.
            if not np.isfinite(block).all():
                block = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
            out = block if resampler is None else resampler.resample_chunk(block, last=last)
            out = np.ascontiguousarray(out, dtype=np.float32).reshape(-1, self.channels)
            if len(out):
                yield AudioChunk(start=position, samples=out)
                position += len(out)
            if last:
                break
        if decoded == 0:
            raise AudioError(f"{self.path}: contains no audio")


def read_all(path: str | Path) -> Samples:
    """A whole (short) recording as mono 16 kHz samples. For tests and short clips only."""
    with AudioReader(path) as reader:
        parts = [chunk.mono() for chunk in reader.chunks()]
        if reader.damage:
            raise AudioError(reader.damage)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
