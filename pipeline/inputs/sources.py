"""Audio sources: a recording played as if live, or a microphone.

A source is an async iterator of :class:`AudioChunk` at 16 kHz with every channel kept (the
front-end will beamform them); ``stop()`` ends it cleanly, so the pipeline can finish the open
utterance. Capture never waits on the stages after it: a microphone's callback only hands its
block over, and when the hand-over queue is full the block is dropped and counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from pipeline.errors import AudioError
from pipeline.events import SAMPLE_RATE, AudioChunk, Samples
from pipeline.inputs.audio import AudioReader


class FileSource:
    """A recording, paced at the speed it was recorded (``realtime``) or as fast as it is taken."""

    def __init__(self, path: str | Path, *, realtime: bool, block_ms: int = 100) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self._block_ms = block_ms
        self._reader = AudioReader(self.path, block_ms=block_ms)  # opens now: bad files fail early
        self.channels = self._reader.channels
        self._stopped = False
        self.position = 0.0  # stream seconds delivered so far
        self.started: float | None = None  # loop time of stream second 0
        self.overflows = 0  # never any for a file; present for a common interface

    def stop(self) -> None:
        self._stopped = True

    @property
    def lost(self) -> str | None:
        """Why the file ended early: damaged part way through (what came before it was played)."""
        return self._reader.damage

    def stats(self) -> dict[str, float | int | str | None]:
        return {"overflows": 0, "lost": self.lost}

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        blocks = self._reader.chunks()
        try:
            self.started = loop.time()
            while not self._stopped:
                chunk = await asyncio.to_thread(next, blocks, None)
                if chunk is None:
                    break
                if self.realtime:
                    # A block exists once it has been "recorded": at its end on the stream clock.
                    await asyncio.sleep(max(0.0, self.started + chunk.end_s - loop.time()))
                self.position = chunk.end_s
                yield chunk
        finally:
            self._reader.close()


def sounddevice_module(purpose: str = "microphone input") -> Any:
    """sounddevice, or a one-line error naming the missing PortAudio (for microphones and speakers)."""
    try:
        import sounddevice
    except OSError as e:  # raised at import when PortAudio's library is missing
        raise AudioError(f"{purpose} needs PortAudio (Debian: apt-get install libportaudio2): {e}") from None
    return sounddevice


def list_input_devices() -> list[str]:
    sd = sounddevice_module()
    devices = enumerate(sd.query_devices())
    return [f"{i}: {d['name']} ({d['max_input_channels']} ch)" for i, d in devices if d["max_input_channels"] > 0]


class MicrophoneSource:
    """A sounddevice input stream at the device's own rate, resampled to 16 kHz.

    ``device`` is an index or (part of) a name; ``None`` is the system default. ``overflows``
    counts blocks lost: PortAudio's input overflows plus blocks dropped because the pipeline
    had not taken the previous ones. A device that vanishes ends the stream: ``lost`` says why.
    """

    #: How long without a block before the device is presumed gone when PortAudio says its stream
    #: has stopped, in seconds; and how long even while PortAudio says it is still active (a
    #: backend can stop calling back without ending the stream).
    STALL_S = 2.0
    SILENT_DEVICE_S = 10.0

    def __init__(
        self,
        device: int | str | None = None,
        *,
        channels: int | None = None,
        block_ms: int = 100,
        queue_blocks: int = 50,
    ) -> None:
        sd = sounddevice_module()
        try:
            info = sd.query_devices(device, "input")
        except (ValueError, sd.PortAudioError) as e:
            available = "; ".join(list_input_devices()) or "none"
            raise AudioError(f"no input device {device!r} ({e}); available: {available}") from None
        self._sd = sd
        self.device = device
        self.device_name = str(info["name"])
        self.rate = int(info["default_samplerate"])
        max_channels = int(info["max_input_channels"])
        self.channels = channels or min(max_channels, 8)
        if not 1 <= self.channels <= max_channels:
            raise AudioError(f"device '{self.device_name}' has {max_channels} input channels, not {self.channels}")
        self._block = max(1, self.rate * block_ms // 1000)
        self._queue_blocks = queue_blocks
        self._stop = asyncio.Event()
        self.position = 0.0
        self.started: float | None = None
        self.overflows = 0
        self.lost: str | None = None

    def stop(self) -> None:
        self._stop.set()

    def stats(self) -> dict[str, Any]:
        """Blocks lost (overflows), and why the device ended the session early (``lost``)."""
        return {"overflows": self.overflows, "lost": self.lost}

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Samples] = asyncio.Queue(maxsize=self._queue_blocks)
        gone = asyncio.Event()

        def hand_over(block: Samples) -> None:
            if queue.full():
                self.overflows += 1  # the pipeline is behind: drop, never block the audio thread
                return
            queue.put_nowait(block)

        def callback(indata: Samples, frames: int, when: Any, status: Any) -> None:
            if status.input_overflow:
                loop.call_soon_threadsafe(self._count_overflow)
            loop.call_soon_threadsafe(hand_over, indata.copy())

        def finished() -> None:  # PortAudio ended the stream: stopped by us, or the device went away
            loop.call_soon_threadsafe(gone.set)

        resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, self.channels, dtype="float32", quality="HQ")
        try:
            stream = self._sd.InputStream(
                device=self.device,
                channels=self.channels,
                samplerate=self.rate,
                blocksize=self._block,
                dtype="float32",
                callback=callback,
                finished_callback=finished,
            )
            stream.start()
        except self._sd.PortAudioError as e:
            raise AudioError(f"cannot open input device '{self.device_name}': {e}") from None
        position = 0
        self.started = last_block = loop.time()
        waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(gone.wait())]
        try:
            while not self._stop.is_set():
                if gone.is_set() and queue.empty():
                    self.lost = f"input device '{self.device_name}' vanished"
                    break
                get = asyncio.ensure_future(queue.get())
                ready, _ = await asyncio.wait({get, *waits}, timeout=self.STALL_S, return_when=asyncio.FIRST_COMPLETED)
                if get not in ready:
                    get.cancel()
                    silent_s = loop.time() - last_block
                    if not ready and (not stream.active or silent_s >= self.SILENT_DEVICE_S):
                        self.lost = f"input device '{self.device_name}' stopped delivering audio"
                        break
                    continue
                last_block = loop.time()
                out = np.ascontiguousarray(resampler.resample_chunk(get.result()), dtype=np.float32)
                out = out.reshape(-1, self.channels)
                if len(out):
                    yield AudioChunk(position, out)
                    position += len(out)
                    self.position = position / SAMPLE_RATE
        finally:
            for wait in waits:
                wait.cancel()
            try:
                stream.abort()
                stream.close()
            except self._sd.PortAudioError:
                pass  # already gone with the device

    def _count_overflow(self) -> None:
        self.overflows += 1


Source = FileSource | MicrophoneSource
