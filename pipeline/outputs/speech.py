"""Speech for the wearer: a branch that speaks committed text clause by clause.

    text events -> clauses (algos/clauses.py) -> voice (piper, its own thread)
                -> output chain (EQ, loudness, resampling, limiter) -> playout queue
                -> speaker device (sounddevice) and/or a WAV on the session's timeline

It is a branch of the session graph, so it never delays subtitles: ``write`` only cuts text into
clauses; synthesis runs in a task of its own. Only committed text is spoken, so nothing heard is
ever retracted. What piles up beyond ``tts.max_backlog_s`` is shed, oldest first
(algos/playout.py). Times are on the session's timeline: the wall clock since the source started
when live, the stream clock in a replay (there synthesis counts as instant, so a replay's
schedule is the same on any machine).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.algos.clauses import ClauseSplitter
from pipeline.algos.output_chain import OutputChain
from pipeline.algos.playout import Clause, Playout
from pipeline.backends.voice import Voice
from pipeline.config import TtsConfig
from pipeline.errors import AudioError
from pipeline.events import Samples, Transcript, Translation
from pipeline.inputs.sources import sounddevice_module
from pipeline.runner import Clock, Emission, Policy, Stats


class SpeechWav:
    """The session's speech as a WAV on its timeline (``--speak-to``): each clause's samples at the
    moment they were handed to the output, silence between, so it lines up with the input."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None
        self._rate = 0
        self._written = 0  # frames

    def open(self, rate: int) -> None:
        import soundfile

        self._rate = rate
        try:
            self._file = soundfile.SoundFile(self.path, "w", samplerate=rate, channels=1, subtype="PCM_16")
        except (OSError, RuntimeError) as e:
            raise AudioError(f"cannot write speech to {self.path}: {e}") from None

    def place(self, samples: Samples, start_s: float) -> None:
        start = round(start_s * self._rate)
        if start > self._written:
            self._file.write(np.zeros(start - self._written, np.float32))
            self._written = start
        samples = samples[self._written - start :]  # a frame of rounding overlap at most
        self._file.write(samples)
        self._written += len(samples)

    def close(self, end_s: float = 0.0) -> None:
        if self._file is None:
            return
        self.place(np.zeros(0, np.float32), end_s)  # silence up to the end of the input
        self._file.close()
        self._file = None


def list_output_devices() -> list[str]:
    sd = sounddevice_module("audio output")
    devices = sd.query_devices()
    return [f"{i}: {d['name']}" for i, d in enumerate(devices) if d["max_output_channels"] > 0]


class SpeakerDevice:
    """An audio output through sounddevice, fed whole clauses; its callback plays what is queued
    and silence otherwise. Underruns (PortAudio's output underflow) are counted; a device that
    vanishes ends speech output with a message while the session goes on."""

    def __init__(self, device: int | str | None, rate: int) -> None:
        sd = sounddevice_module("audio output")
        try:
            info = sd.query_devices(device, "output")
        except (ValueError, sd.PortAudioError) as e:
            available = "; ".join(list_output_devices())
            if not available:
                raise AudioError("no speaker: this machine has no audio output device") from None
            which = repr(device) if device is not None else "(the system's default)"
            raise AudioError(f"no output device {which} ({e}); available: {available}") from None
        self._sd = sd
        self.device = device
        self.name = str(info["name"])
        self.rate = rate
        self._buffer: deque[Samples] = deque()  # shared with PortAudio's thread: under the lock
        self._offset = 0
        self._lock = threading.Lock()
        self._stream: Any = None
        self._gone = False
        self.underruns = 0
        self.lost: str | None = None

    def start(self) -> None:
        def callback(outdata: Any, frames: int, when: Any, status: Any) -> None:
            if status.output_underflow:
                self.underruns += 1
            out = outdata[:, 0]
            filled = 0
            with self._lock:
                while filled < frames and self._buffer:
                    block = self._buffer[0]
                    n = min(frames - filled, len(block) - self._offset)
                    out[filled : filled + n] = block[self._offset : self._offset + n]
                    filled += n
                    self._offset += n
                    if self._offset == len(block):
                        self._buffer.popleft()
                        self._offset = 0
            out[filled:] = 0.0

        def finished() -> None:  # PortAudio ended the stream: closed by us, or the device went away
            self._gone = True

        try:
            self._stream = self._sd.OutputStream(
                device=self.device,
                channels=1,
                samplerate=self.rate,
                dtype="float32",
                callback=callback,
                finished_callback=finished,
            )
            self._stream.start()
        except self._sd.PortAudioError as e:
            raise AudioError(f"cannot open output device '{self.name}' at {self.rate} Hz: {e}") from None

    def play(self, samples: Samples) -> None:
        if self.lost is None:
            with self._lock:
                self._buffer.append(samples)

    def check(self) -> str | None:
        """Why the device stopped, once it has (then nothing more is sent to it)."""
        if self.lost is None and self._stream is not None and (self._gone or not self._stream.active):
            self.lost = f"speaker device '{self.name}' vanished"
            with self._lock:
                self._buffer.clear()
                self._offset = 0
        return self.lost

    @property
    def queued_s(self) -> float:
        with self._lock:
            return (sum(len(b) for b in self._buffer) - self._offset) / self.rate

    def close(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.abort()
            self._stream.close()
        except self._sd.PortAudioError:
            pass  # already gone with the device
        self._stream = None


@dataclass(frozen=True)
class Spoken:
    """One clause as the wearer heard it (times on the session's timeline)."""

    utterance: int
    text: str
    ready: float
    start: float
    duration: float


class SpeechBranch:
    """The speech branch. ``translating``: speak Translation events, else Transcript events; text
    in a language other than the voice's is not spoken (counted)."""

    name = "speech"
    policy: Policy = "all"

    def __init__(
        self,
        config: TtsConfig,
        voice: Voice,
        clock: Clock,
        *,
        translating: bool,
        wav: SpeechWav | None = None,
        device: SpeakerDevice | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.voice = voice
        self.clock = clock
        self.translating = translating
        self.chain = OutputChain(config.output, voice.sample_rate)
        self.wav = wav
        self.device = device
        self.notice = notice or (lambda message: print(f"livesub: {message}", file=sys.stderr))
        self.splitter = ClauseSplitter()
        self.playout: Playout[Samples] = Playout(config.max_backlog_s)
        self.spoken: list[Spoken] = []
        self.finals: dict[int, float] = {}  # utterance -> when its final text arrived (timeline)
        self.unspoken_language = 0
        self.hurried = 0  # clauses spoken faster to catch up
        self.failed = 0  # clauses the voice could not say
        self.compute_s = 0.0
        self._pending: deque[tuple[int, str, float]] = deque()  # (utterance, text, when the text came)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="voice")
        self._tasks: list[asyncio.Task[None]] = []

    # -- the branch --------------------------------------------------------------------------

    def open(self) -> None:
        if self.wav is not None:
            self.wav.open(self.chain.output_rate)
        if self.device is not None:
            self.device.start()
        self._idle.set()
        self._tasks.append(asyncio.get_running_loop().create_task(self._work()))
        if not self.clock.replay:
            self._tasks.append(asyncio.get_running_loop().create_task(self._tick()))

    def write(self, emission: Emission) -> None:
        event = emission.event
        if not isinstance(event, Translation if self.translating else Transcript):
            return
        if event.speaker == "wearer":
            return  # the wearer's own words are never spoken back to the wearer
        language = event.target_language if isinstance(event, Translation) else event.language
        when = emission.wall if not self.clock.replay else emission.stream
        if language != self.voice.language:
            self.unspoken_language += int(event.final)
            return
        if event.final:
            self.finals[event.utterance] = when
        for text in self.splitter.feed(event.utterance, event.committed, event.final):
            self._pending.append((event.utterance, text, when))
            self._idle.clear()
            self._wake.set()

    async def finish(self) -> None:
        """Speaks what is still pending (the session is over); live, waits until it is heard."""
        worker = self._tasks[0]
        idle = asyncio.ensure_future(self._idle.wait())
        await asyncio.wait([idle, worker], return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()
        if worker.done():  # it ended on a bug: say so rather than wait forever
            worker.result()
        for task in self._tasks:
            task.cancel()
        self._hand_out(self.playout.flush())
        if self.device is not None and not self.clock.replay:
            while not self._device_lost() and self.device.queued_s > 0:
                await asyncio.sleep(0.05)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.wav is not None:
            ends = [s.start + s.duration for s in self.spoken]
            self.wav.close(max([self.clock.stream if self.clock.replay else self.clock.wall, *ends]))
        if self.device is not None:
            self.device.close()

    def stats(self) -> Stats:
        skipped = self.playout.skipped
        speech_s = sum(s.duration for s in self.spoken)
        figures: Stats = {
            "clauses": len(self.spoken),
            "skipped_clauses": len(skipped),
            "skipped_utterances": len({utterance for utterance, _ in skipped}),
            "hurried_clauses": self.hurried,
            "failed_clauses": self.failed,
            "speech_s": round(speech_s, 3),
            "compute_s": round(self.compute_s, 3),
            "rtf": round(self.compute_s / speech_s, 4) if speech_s else None,
            "unspoken_language": self.unspoken_language,
        }
        if self.device is not None:
            figures |= {"underruns": self.device.underruns, "device_lost": self.device.lost}
        return figures

    # -- inside ----------------------------------------------------------------------------------

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            utterance, text, when = self._pending.popleft()
            now = when if self.clock.replay else self.clock.wall
            scale = self.config.length_scale
            if self.playout.backlog(now) > self.config.max_backlog_s / 2:
                scale *= self.config.hurry_length_scale
                self.hurried += 1
            started = loop.time()
            try:
                audio = await loop.run_in_executor(self._executor, self._render, text, scale)
            except Exception as e:  # one clause the voice cannot say must not end the session
                self.failed += 1
                if self.failed == 1:
                    self.notice(f"the voice failed on a clause ({type(e).__name__}); it is skipped")
                continue
            finally:
                self.compute_s += loop.time() - started
            now = when if self.clock.replay else self.clock.wall
            clause = Clause(utterance, text, audio, len(audio) / self.chain.output_rate, now)
            self._hand_out(self.playout.add(clause, now))

    def _render(self, text: str, length_scale: float) -> Samples:
        return self.chain.process(self.voice.synthesize(text, length_scale))

    async def _tick(self) -> None:
        """Live: starts queued clauses when they are due, and watches the device."""
        while True:
            self._hand_out(self.playout.advance(self.clock.wall))
            self._device_lost()
            await asyncio.sleep(0.01)

    def _device_lost(self) -> bool:
        """Whether the speaker has gone; says so once."""
        if self.device is None:
            return False
        if self.device.lost is None and (lost := self.device.check()):
            self.notice(f"{lost}; speech output stopped (subtitles go on)")
        return self.device.lost is not None

    def _hand_out(self, clauses: list[Clause[Samples]]) -> None:
        for clause in clauses:
            assert clause.start is not None
            self.spoken.append(Spoken(clause.utterance, clause.text, clause.ready, clause.start, clause.duration))
            if self.wav is not None:
                self.wav.place(clause.audio, clause.start)
            if self.device is not None:
                self.device.play(clause.audio)
