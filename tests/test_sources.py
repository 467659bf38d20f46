"""Sources: a recording paced in real time, and the microphone with sounddevice replaced by a
fake whose stream calls the callback from its own thread, as PortAudio does."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import soundfile

from pipeline.errors import AudioError
from pipeline.events import SAMPLE_RATE, AudioChunk
from pipeline.inputs.sources import FileSource, MicrophoneSource


async def _drain(source: Any, limit: int | None = None) -> list[AudioChunk]:
    chunks = []
    async for chunk in source.chunks():
        chunks.append(chunk)
        if limit is not None and len(chunks) >= limit:
            source.stop()
    return chunks


def test_file_source_paces_realtime_and_not_instant(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(str(path), np.zeros(int(0.6 * 44100), dtype=np.float32), 44100)
    started = time.perf_counter()
    chunks = asyncio.run(_drain(FileSource(path, realtime=True)))
    paced = time.perf_counter() - started
    assert sum(c.frames for c in chunks) == int(0.6 * SAMPLE_RATE)
    started = time.perf_counter()
    asyncio.run(_drain(FileSource(path, realtime=False)))
    assert time.perf_counter() - started < paced  # relative, never an absolute time limit
    assert paced >= 0.55  # it cannot run ahead of the recording


def test_file_source_stops_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(str(path), np.zeros(SAMPLE_RATE * 5, dtype=np.float32), SAMPLE_RATE)
    chunks = asyncio.run(_drain(FileSource(path, realtime=False), limit=3))
    assert len(chunks) == 3


class _Flags:
    def __init__(self, overflow: bool = False) -> None:
        self.input_overflow = overflow


class FakeStream:
    """Calls the callback from its own thread with a tone, like a PortAudio input stream."""

    plan: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        device: Any,
        channels: int,
        samplerate: int,
        blocksize: int,
        dtype: str,
        callback: Any,
        finished_callback: Any,
    ) -> None:
        self.channels, self.rate, self.block = channels, samplerate, blocksize
        self.callback, self.finished_callback = callback, finished_callback
        self.active = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        blocks = self.plan.get("blocks", 20)
        for i in range(blocks):
            if not self.active:
                return
            t = (np.arange(self.block) + i * self.block) / self.rate
            data = np.repeat((0.1 * np.sin(2 * np.pi * 300 * t))[:, None], self.channels, axis=1).astype(np.float32)
            self.callback(data, self.block, None, _Flags(overflow=i in self.plan.get("overflow_at", ())))
            time.sleep(self.plan.get("interval", 0.0))
        if self.plan.get("vanish"):
            self.active = False
            self.finished_callback()  # PortAudio ends the stream when the device goes away

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def abort(self) -> None:
        self.active = False

    def close(self) -> None:
        self._thread.join(timeout=2)


@pytest.fixture
def fake_sounddevice(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("sounddevice")
    devices: list[dict[str, Any]] = [
        {"name": "Glasses array", "max_input_channels": 4, "default_samplerate": 48000.0},
        {"name": "Speaker", "max_input_channels": 0, "default_samplerate": 48000.0},
    ]

    class PortAudioError(Exception):
        pass

    def query_devices(device: Any = None, kind: str | None = None) -> Any:
        if device is None and kind is None:
            return devices
        if device is None:
            return devices[0]
        matches = [d for i, d in enumerate(devices) if device == i or (isinstance(device, str) and device in d["name"])]
        if not matches or matches[0]["max_input_channels"] == 0:
            raise ValueError(f"No input device matching {device!r}")
        return matches[0]

    module.query_devices = query_devices  # type: ignore[attr-defined]
    module.InputStream = FakeStream  # type: ignore[attr-defined]
    module.PortAudioError = PortAudioError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    FakeStream.plan = {}
    return module


def test_microphone_is_resampled_with_all_channels(fake_sounddevice: types.ModuleType) -> None:
    FakeStream.plan = {"blocks": 20}
    source = MicrophoneSource("Glasses", block_ms=50)
    assert (source.rate, source.channels) == (48000, 4)

    async def run() -> list[AudioChunk]:
        chunks = []
        async for chunk in source.chunks():
            chunks.append(chunk)
            if sum(c.frames for c in chunks) >= 0.9 * SAMPLE_RATE:
                source.stop()
        return chunks

    chunks = asyncio.run(run())
    assert all(c.channels == 4 and c.sample_rate == SAMPLE_RATE for c in chunks)
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.frames for c in chunks[:-1]]))
    assert source.overflows == 0 and source.lost is None


def test_overflows_are_counted(fake_sounddevice: types.ModuleType) -> None:
    FakeStream.plan = {"blocks": 10, "overflow_at": (2, 5), "vanish": True}
    source = MicrophoneSource(0, channels=1, block_ms=20)
    asyncio.run(_drain(source))
    assert source.overflows == 2


def test_a_full_hand_over_queue_drops_instead_of_blocking(fake_sounddevice: types.ModuleType) -> None:
    FakeStream.plan = {"blocks": 40, "vanish": True}
    source = MicrophoneSource(0, channels=1, block_ms=20, queue_blocks=4)

    async def slow_consumer() -> int:
        count = 0
        async for _ in source.chunks():
            count += 1
            await asyncio.sleep(0.05)  # a pipeline that is far behind
        return count

    taken = asyncio.run(slow_consumer())
    assert taken > 0 and source.overflows > 0
    assert source.lost == "input device 'Glasses array' vanished"  # the end is never dropped


def test_a_vanished_device_ends_the_stream_with_a_reason(fake_sounddevice: types.ModuleType) -> None:
    FakeStream.plan = {"blocks": 5, "vanish": True}
    source = MicrophoneSource(0, channels=2, block_ms=20)
    chunks = asyncio.run(_drain(source))
    assert chunks  # what came before is kept
    assert source.lost == "input device 'Glasses array' vanished"


def test_a_stalled_device_is_noticed(fake_sounddevice: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeStream.plan = {"blocks": 3}  # stops calling back, and its stream goes inactive
    monkeypatch.setattr(MicrophoneSource, "STALL_S", 0.2)

    original_run = FakeStream._run

    def run_then_die(self: FakeStream) -> None:
        original_run(self)
        self.active = False

    monkeypatch.setattr(FakeStream, "_run", run_then_die)
    source = MicrophoneSource(0, channels=1, block_ms=20)
    asyncio.run(_drain(source))
    assert source.lost is not None and "stopped delivering audio" in source.lost


def test_a_device_that_stops_calling_back_but_stays_active_is_noticed(
    fake_sounddevice: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeStream.plan = {"blocks": 3}  # its stream stays active after the last block
    monkeypatch.setattr(MicrophoneSource, "STALL_S", 0.1)
    monkeypatch.setattr(MicrophoneSource, "SILENT_DEVICE_S", 0.3)
    source = MicrophoneSource(0, channels=1, block_ms=20)
    chunks = asyncio.run(_drain(source))
    assert chunks  # what came before is kept
    assert source.lost == "input device 'Glasses array' stopped delivering audio"


def test_unknown_device_and_channel_count_are_clear(fake_sounddevice: types.ModuleType) -> None:
    with pytest.raises(AudioError, match=r"no input device 'Webcam'.*available: 0: Glasses array \(4 ch\)"):
        MicrophoneSource("Webcam")
    with pytest.raises(AudioError, match="has 4 input channels, not 6"):
        MicrophoneSource(0, channels=6)
