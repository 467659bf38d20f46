"""Live utterances from mono 16 kHz audio, sent in pieces as they are spoken.

WebRTC VAD decides each 10-30 ms frame on a level-normalised copy of the audio, a hysteresis
gate (``vad_gate``) turns the decisions into utterances, and Silero confirms each utterance
before any of it is sent, so steady noise that fools WebRTC VAD never costs a decode. Silero
also ends a confirmed utterance where it hears the speech end, which WebRTC VAD can miss by
seconds (clicks and non-stationary noise are voice to it).

Both detectors are passed in, so this module is synchronous and free of I/O: the live VAD stage
runs :meth:`LiveSegmenter.push` on its model thread, and tests pass fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from pipeline.algos.vad_gate import FLOOR_DBFS, MAX_GAIN_DB, LevelNormaliser, SpeechGate
from pipeline.config import VadConfig
from pipeline.events import SAMPLE_RATE, Samples, SpeechSegment

log = logging.getLogger(__name__)

#: Whether one frame of 16-bit little-endian PCM at 16 kHz is voiced (WebRTC VAD's ``is_speech``).
FrameDetector = Callable[[bytes], bool]
#: Speech spans in mono 16 kHz audio, as (start, end) sample offsets into it (Silero).
SpanDetector = Callable[[Samples], list[tuple[int, int]]]

#: Frames quieter than this (dBFS) are never speech, whatever the gain: digital silence. Speech
#: at -60 dBFS has soft frames below -80 dBFS; with -80 here a sentence came apart in the middle
#: (German FLEURS at -60 dBFS: four utterances for one, each decoded without the others).
SILENCE_FLOOR_DBFS = -95.0
#: Audio a pending utterance needs before Silero is asked to confirm it, and how often it is asked again.
CONFIRM_AFTER_S = 0.45
CONFIRM_EVERY_S = 0.3
#: Audio of a confirmed utterance Silero looks at, as often, for where its speech ended, in seconds.
TAIL_S = 3.0
#: Silero hears its audio raised (see :func:`raised`), its loudest sample no higher than this.
SILERO_PEAK = 0.5


def raised(audio: Samples, frame: int, silence: float) -> Samples:
    """The audio as Silero hears it, raised much as WebRTC VAD's copy is: its quietest frame
    that is not digital silence (RMS above ``silence``) to ``FLOOR_DBFS``, by at most
    ``MAX_GAIN_DB``; unlike that copy, by one gain for the whole slice, digital silence never
    counted as its floor, and never so far that its loudest sample passes ``SILERO_PEAK`` (no
    clipping); never lowered. As it was, Silero missed quiet speech WebRTC VAD heard: JFK's "ask
    not" at -57 dBFS, two short words between pauses, was refused and lost from a stream's text."""
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    heard = rms[rms > silence]
    if not heard.size:
        return audio
    peak = float(np.max(np.abs(audio)))
    floor_gain = 10 ** (FLOOR_DBFS / 20) / float(np.min(heard))
    gain = min(10 ** (MAX_GAIN_DB / 20), floor_gain, SILERO_PEAK / peak)
    return audio * np.float32(gain) if gain > 1.0 else audio


class LiveSegmenter:
    """Mono 16 kHz audio in, pieces of confirmed utterances out.

    Each piece carries new audio of the open utterance; the last piece has ``final=True`` and
    ``end`` at the end of speech (audio sent after that point, during the closing silence, is
    not part of the utterance). Utterance ids count confirmed utterances from 0. ``rejected``
    counts the utterances Silero did not confirm; ``frames`` the frames decided so far.

    ``is_speech`` decides one frame; ``speech_spans`` is Silero, or None to send every
    utterance unconfirmed. The results depend on the audio Silero is given, so the slices it
    is asked about and their order are part of this class's behaviour.
    """

    def __init__(self, config: VadConfig, is_speech: FrameDetector, speech_spans: SpanDetector | None) -> None:
        self._config = config
        self._is_speech = is_speech
        self._speech_spans = speech_spans
        self._frame = SAMPLE_RATE * config.frame_ms // 1000
        self._gate = SpeechGate(
            frame_ms=config.frame_ms,
            start_voiced_ms=config.start_voiced_ms,
            end_silence_ms=config.end_silence_ms,
            pre_roll_ms=config.pre_roll_ms,
            post_roll_ms=config.post_roll_ms,
            max_utterance_ms=int(config.max_utterance_s * 1000),
        )
        self._level = LevelNormaliser(frame_ms=config.frame_ms)
        self._floor = 10 ** (SILENCE_FLOOR_DBFS / 20)
        # Audio from _history_start on; kept back to the open utterance's start (or the pre-roll).
        self._history = np.zeros(0, dtype=np.float32)
        self._history_start = 0
        self._pending = np.zeros(0, dtype=np.float32)  # less than one frame, not yet decided
        self._utterance = 0
        self._start: int | None = None  # open utterance's first sample
        self._sent = 0  # next sample of the open utterance to send
        self._confirmed = False
        self._next_check = 0
        self._next_tail = 0
        self.rejected = 0
        self.frames = 0

    def push(self, audio: Samples) -> list[SpeechSegment]:
        """Takes the next mono 16 kHz audio; returns the pieces now ready."""
        self._history = np.concatenate([self._history, audio])
        audio = np.concatenate([self._pending, audio])
        first_frame = self.frames
        decisions = self._frame_decisions(audio)
        self._pending = audio[len(decisions) * self._frame :]
        segments: list[SpeechSegment] = []
        for i, (voiced, rms) in enumerate(decisions):
            for boundary in self._gate.push(voiced, rms):
                position = boundary.frame * self._frame
                if boundary.kind == "start":
                    self._start = self._sent = position
                    self._next_check = 0
                else:
                    segments += self._advance((first_frame + i + 1) * self._frame)
                    segments += self._close(position)
        self.frames += len(decisions)
        segments += self._advance(self.frames * self._frame)
        segments += self._tail(self.frames * self._frame)
        self._trim()
        return segments

    def flush(self) -> list[SpeechSegment]:
        """End of input: closes an open utterance. Audio short of a whole frame is never decided."""
        segments: list[SpeechSegment] = []
        for boundary in self._gate.flush():
            segments += self._advance(self.frames * self._frame)
            segments += self._close(boundary.frame * self._frame)
        return segments

    def _frame_decisions(self, audio: Samples) -> list[tuple[bool, float]]:
        """(voiced, rms) for each whole frame of ``audio``."""
        decisions = []
        for i in range(0, len(audio) - self._frame + 1, self._frame):
            frame = audio[i : i + self._frame]
            rms = float(np.sqrt(np.mean(frame * frame)))
            gain = self._level.gain(rms)
            pcm = np.clip(frame * (gain * 32767.0), -32768, 32767).astype(np.int16).tobytes()
            # The floor comes first: digital silence never reaches the detector.
            voiced = rms > self._floor and self._is_speech(pcm)
            decisions.append((voiced, rms))
        return decisions

    def _slice(self, start: int, end: int) -> Samples:
        return self._history[start - self._history_start : end - self._history_start].copy()

    def _silero(self, start: int, end: int) -> list[tuple[int, int]]:
        """Silero's speech spans in the audio from stream sample ``start`` to ``end``, as offsets
        from ``start``, heard :func:`raised` (to confirm an utterance and to find its speech end)."""
        assert self._speech_spans is not None
        return self._speech_spans(raised(self._slice(start, end), self._frame, self._floor))

    def _confirm(self, now: int) -> bool:
        if self._speech_spans is None:
            return True
        assert self._start is not None
        return bool(self._silero(self._start, now))

    def _advance(self, now: int) -> list[SpeechSegment]:
        """Sends the open utterance's new audio, once confirmed."""
        if self._start is None:
            return []
        if not self._confirmed:
            if now - self._start < CONFIRM_AFTER_S * SAMPLE_RATE or now < self._next_check:
                return []
            self._confirmed = self._confirm(now)
            self._next_check = now + int(CONFIRM_EVERY_S * SAMPLE_RATE)
            if not self._confirmed:
                return []
        if now <= self._sent:
            return []
        voiced_until = self._gate.voiced_until * self._frame
        pauses = tuple((s * self._frame, e * self._frame) for s, e in self._gate.pauses)
        self._gate.pauses.clear()
        piece = SpeechSegment(
            self._utterance, self._sent, now, self._slice(self._sent, now), False, voiced_until, pauses
        )
        self._sent = now
        return [piece]

    def _tail(self, now: int) -> list[SpeechSegment]:
        """Ends the open utterance where Silero heard its speech end, once that is
        ``end_silence_ms`` ago. WebRTC VAD takes clicks and non-stationary noise for voice: a
        click after the last word held an utterance open 1.5 s longer, noise 2 s; Silero heard
        no speech in either, and its speech ends were within 0.1 s of the references'."""
        if self._speech_spans is None or self._start is None or not self._confirmed or now < self._next_tail:
            return []
        self._next_tail = now + int(CONFIRM_EVERY_S * SAMPLE_RATE)
        begin = max(self._start, now - int(TAIL_S * SAMPLE_RATE))
        spans = self._silero(begin, now)
        speech_end = begin + spans[-1][1] if spans else begin
        if now - speech_end < self._config.end_silence_ms * SAMPLE_RATE // 1000:
            return []
        end = min(now, speech_end + self._config.post_roll_ms * SAMPLE_RATE // 1000)
        self._gate.end_at(-(-end // self._frame))
        return self._close(end)  # the audio up to now has been sent: push advanced first

    def _close(self, end: int) -> list[SpeechSegment]:
        """Ends the open utterance at stream sample ``end``: its final piece, or a rejection."""
        assert self._start is not None
        # A short utterance can close before it was ever asked about; ask now, if it is long enough to tell.
        if not self._confirmed and end - self._start >= 0.25 * SAMPLE_RATE:
            self._confirmed = self._confirm(end)
        pieces = []
        if self._confirmed:
            begin = min(self._sent, end)
            pieces.append(SpeechSegment(self._utterance, begin, end, self._slice(begin, end), True, end))
            self._utterance += 1
        else:
            self.rejected += 1
            # Times only: what was said is personal data and never logged.
            span = f"{self._start / SAMPLE_RATE:.2f}-{end / SAMPLE_RATE:.2f} s"
            log.info("VAD: %s rejected: Silero heard no speech in it", span)
        self._start = None
        self._confirmed = False
        self._gate.pauses.clear()
        return pieces

    def _trim(self) -> None:
        """Drops history that no slice will need: older than the open utterance and the pre-roll."""
        now = self.frames * self._frame
        keep = now - int((self._config.pre_roll_ms / 1000 + 1.0) * SAMPLE_RATE)
        if self._start is not None:
            keep = min(keep, self._start)
        drop = keep - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start = keep
