"""The front-end stage: the glasses' microphones in, one channel toward the partner out.

It fills the live graph's front-end slot (AudioChunk -> AudioChunk, before VAD). The maths are
``algos.beamform``'s; this stage checks the input against the device profile, runs the beam on
its own thread through the session clock (so a replay stays deterministic), keeps stream time
exact (the beam's 8 ms lag is absorbed: each output chunk starts where its samples belong) and,
when asked, writes what it hands to recognition to a WAV file (``--save-frontend``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

from pipeline.algos.beamform import StreamingBeamformer, own_voice_threshold_db
from pipeline.backends.deepfilter import DeepFilter
from pipeline.config import FrontendConfig
from pipeline.errors import AudioError
from pipeline.events import SAMPLE_RATE, AudioChunk, Samples
from pipeline.runner import Clock


@functools.cache
def own_voice_db(config: FrontendConfig) -> float | None:
    """The threshold of own-voice evidence the profile's geometry gives (None without an array):
    computed once per profile, for the beam and for VAD's labels alike."""
    if not config.microphones:
        return None
    return own_voice_threshold_db(np.array(config.microphones), np.array(config.look), np.array(config.mouth))


def beamformer(config: FrontendConfig) -> StreamingBeamformer:
    """The profile's beam with its settings, as the live front-end runs it."""
    return StreamingBeamformer(
        np.array(config.microphones),
        np.array(config.look),
        np.array(config.mouth),
        config.beamformer,
        SAMPLE_RATE,
        estimate_steering=config.estimate_steering,
        loading=config.diagonal_loading,
        dereverb=config.dereverb,
        search_deg=config.search_deg,
        own_voice_db=own_voice_db(config),
    )


def check_channels(config: FrontendConfig, channels: int) -> None:
    """Refuses input the device profile cannot steer: more than one channel, but not one per
    microphone (mono is fine: it skips the beamformer; no profile takes anything)."""
    expected = len(config.microphones)
    if expected and channels not in (1, expected):
        raise AudioError(f"the input has {channels} channels but the device profile has {expected} microphones")


class FrontendStage:
    """AudioChunk (N channels) -> AudioChunk (1 channel): the beam of ``config.beamformer``, with
    the own-voice evidence of its block (``AudioChunk.own_voice``) for VAD to label utterances,
    then DeepFilterNet3 where ``config.denoise`` (its 30 ms look-ahead is held back, so every output
    sample keeps its stream position).

    Mono input passes through untouched (there is no array to steer); with no microphones in the
    configuration the channels are averaged, as VAD would. Input whose channel count
    is not the profile's number of microphones is refused with one line naming both. ``save``
    writes the output, 16 kHz mono float WAV, as it goes (what was written survives a failure).
    """

    name = "frontend"

    def __init__(self, config: FrontendConfig, clock: Clock | None = None, save: Path | None = None) -> None:
        self.config = config
        self._clock = clock or Clock()
        self._save = save
        self._writer: soundfile.SoundFile | None = None
        self._beam: StreamingBeamformer | None = None
        self._denoiser: DeepFilter | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frontend")
        self._position = 0  # stream position of the next output sample
        self.compute_seconds = 0.0  # as the stage waited for its thread
        # Each part's own time on that thread: the beam (with the own-voice evidence) and
        # DeepFilterNet; WPE's share of the beam's is the beam's ``dereverb_seconds``.
        self._beam_seconds = 0.0
        self._denoise_seconds = 0.0

    def stats(self) -> dict[str, float | int | str | None]:
        beam = self._beam
        return {
            "compute_s": round(self.compute_seconds, 3),
            "beamformer": self.config.beamformer if beam is not None else "none (mono)",
            "noise_frames": beam.noise_frames if beam is not None else None,
            "dereverb_s": round(beam.dereverb_seconds, 3) if beam is not None else 0.0,
            "beamformer_s": round(self._beam_seconds - beam.dereverb_seconds, 3) if beam is not None else 0.0,
            "denoise_s": round(self._denoise_seconds, 3),
        }

    def _check(self, chunk: AudioChunk) -> None:
        check_channels(self.config, chunk.channels)
        if chunk.channels > 1 and self._beam is None:
            self._beam = beamformer(self.config)

    def _process(self, samples: Samples) -> tuple[Samples, tuple[float, float] | None]:
        if self._beam is None:
            return self._denoise(samples.mean(axis=1, dtype=np.float32)), None
        started = time.perf_counter()
        out, mouth, look = self._beam.process(samples)
        self._beam_seconds += time.perf_counter() - started
        return self._denoise(out.astype(np.float32)), (float(mouth.sum()), float(look.sum()))

    def _denoise(self, mono: Samples) -> Samples:
        if not self.config.denoise:
            return mono
        if self._denoiser is None:
            self._denoiser = DeepFilter(self.config.denoise_limit_db, input_gain_db=self.config.denoise_gain_db)
        started = time.perf_counter()
        out = self._denoiser.process(mono)
        self._denoise_seconds += time.perf_counter() - started
        return out

    def _flush(self) -> Samples:
        tail = self._beam.flush().astype(np.float32) if self._beam is not None else np.zeros(0, np.float32)
        if self._denoiser is None:
            return tail
        return np.concatenate([self._denoiser.process(tail), self._denoiser.flush()])

    def _emit(self, mono: Samples, own_voice: tuple[float, float] | None = None) -> AudioChunk:
        chunk = AudioChunk(self._position, mono.reshape(-1, 1), own_voice=own_voice)
        self._position += len(mono)
        if self._save is not None:
            if self._writer is None:
                self._save.parent.mkdir(parents=True, exist_ok=True)
                self._writer = soundfile.SoundFile(self._save, "w", SAMPLE_RATE, 1, subtype="FLOAT")
            self._writer.write(mono)
        return chunk

    async def run(self, inputs: AsyncIterator[AudioChunk]) -> AsyncGenerator[AudioChunk, None]:
        try:
            async for chunk in inputs:
                self._check(chunk)
                if self._beam is None and not self.config.denoise:  # mono, or no profile: nothing to do
                    yield self._emit(chunk.mono())
                    continue
                started = time.perf_counter()
                out, own_voice = await self._clock.compute(self._executor, self._process, chunk.samples)
                self.compute_seconds += time.perf_counter() - started
                if len(out):
                    yield self._emit(out, own_voice)
            tail = self._flush()
            if len(tail):
                yield self._emit(tail)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
            if self._writer is not None:
                self._writer.close()
            if self._denoiser is not None:
                self._denoiser.close()
