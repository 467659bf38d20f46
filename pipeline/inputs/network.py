"""Audio that a client streams to ``livesub serve``: a source the server pushes messages into.

It is a :class:`~pipeline.session.Source` like a microphone: :class:`AudioChunk` at 16 kHz with
every channel kept, ``stop()`` ends it cleanly (the open utterance is finalised), ``stats()``
reports what was lost. The server's connection handler calls :meth:`NetworkSource.push` for each
binary message and must never wait on the pipeline (the same connection carries the events back,
and the other clients share the event loop), so the hand-over queue is bounded and a message
that does not fit is dropped and counted, as a microphone's blocks are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import soxr

from pipeline.events import SAMPLE_RATE, AudioChunk, Samples

#: Bytes per sample: PCM16.
SAMPLE_BYTES = 2


class NetworkSource:
    """PCM16 little-endian interleaved audio at the client's ``rate`` and ``channels``, resampled
    to 16 kHz with ``soxr.ResampleStream`` as :class:`~pipeline.inputs.sources.MicrophoneSource`
    does (not at all when the client already sends 16 kHz: the samples pass unchanged).

    Stream time counts the samples delivered, never the arrival times of messages, so network
    jitter does not move a word's time; audio dropped on overflow does not advance it (as with a
    microphone). The queue holds at most ``max_queued_s`` of audio: the pipeline keeps up with
    real time, so it fills only when the machine stalls or a client bursts far ahead.

    ``stop()`` ends the stream after the audio pushed before it: the client sent that audio and
    asked for its words. No message for ``idle_timeout_s`` seconds ends it too, and ``lost``
    says why (the session's summary carries it), as a microphone that stops delivering does.
    """

    def __init__(
        self,
        rate: int,
        channels: int = 1,
        *,
        max_queued_s: float = 15.0,
        idle_timeout_s: float | None = None,
    ) -> None:
        if rate <= 0 or channels <= 0:
            raise ValueError(f"a network source needs a positive rate and channel count, not {rate} Hz, {channels} ch")
        self.rate = rate
        self.channels = channels
        self.idle_timeout_s = idle_timeout_s
        self._max_queued = int(max_queued_s * rate)  # frames at the client's rate
        self._queued = 0
        # Unbounded as an asyncio.Queue so that stop()'s marker always fits; bounded by push().
        self._queue: asyncio.Queue[Samples | None] = asyncio.Queue()
        self._stopped = False
        self.position = 0.0  # stream seconds delivered so far
        self.received = 0  # frames pushed (at the client's rate), dropped ones included
        self.overflows = 0  # messages dropped because the queue was full
        self.lost: str | None = None

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame (one sample on every channel): a message holds whole frames."""
        return SAMPLE_BYTES * self.channels

    def push(self, pcm: bytes) -> bool:
        """Hands one message's audio over; never waits. False when it was dropped (queue full,
        or the stream already ended)."""
        if len(pcm) % self.frame_bytes:
            raise ValueError(f"{len(pcm)} bytes are not whole frames of {self.frame_bytes} bytes")
        if self._stopped:
            return False
        frames = len(pcm) // self.frame_bytes
        self.received += frames
        if self._queued + frames > self._max_queued:
            self.overflows += 1  # the pipeline is behind: drop, never hold up the connection
            return False
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)
        self._queue.put_nowait(samples.reshape(-1, self.channels))
        self._queued += frames
        return True

    def stop(self) -> None:
        """Ends the stream once the audio already pushed has been delivered."""
        if not self._stopped:
            self._stopped = True
            self._queue.put_nowait(None)

    def stats(self) -> dict[str, Any]:
        """Messages lost (overflows), and why the stream ended early (``lost``)."""
        return {"overflows": self.overflows, "lost": self.lost}

    async def _next(self) -> Samples | None:
        if self.idle_timeout_s is None:
            return await self._queue.get()
        try:
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as
            # the queue delivers, and the session's graph would then never finish cancelling.
            async with asyncio.timeout(self.idle_timeout_s):
                return await self._queue.get()
        except TimeoutError:
            self.lost = f"no audio for {self.idle_timeout_s:g} s"
            self._stopped = True
            return None

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        resampler = (
            None
            if self.rate == SAMPLE_RATE
            else soxr.ResampleStream(self.rate, SAMPLE_RATE, self.channels, dtype="float32", quality="HQ")
        )
        position = 0
        while True:
            block = await self._next()
            last = block is None
            if block is not None:
                self._queued -= len(block)
            if resampler is None:
                out = block if block is not None else np.zeros((0, self.channels), dtype=np.float32)
            else:  # the resampler's tail comes with the last call
                given = block if block is not None else np.zeros((0, self.channels), dtype=np.float32)
                resampled = resampler.resample_chunk(given, last=last)
                out = np.ascontiguousarray(resampled, dtype=np.float32).reshape(-1, self.channels)
            if len(out):
                yield AudioChunk(position, out)
                position += len(out)
                self.position = position / SAMPLE_RATE
            if last:
                return
