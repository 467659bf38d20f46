"""The events that travel between stages.

A small closed set of frozen dataclasses. Stream time comes from sample counts at the source,
never from the wall clock, so a replay is deterministic; wall-clock emission times are recorded
by whoever measures latency, apart from the events. Control travels in-band (``final=True``);
errors are exceptions, not events.

Pipeline: AudioChunk -> SpeechSegment -> Transcript -> Translation -> Subtitle / SpeechAudio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

#: Every stage after the source works at this rate.
SAMPLE_RATE = 16_000

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True, eq=False)
class AudioChunk:
    """A block of audio from a source, at ``sample_rate``, all channels kept.

    ``start`` is the stream position of the first frame, in samples at ``sample_rate``.
    ``samples`` has shape (frames, channels), float32 in [-1, 1].
    """

    start: int
    samples: Samples
    sample_rate: int = SAMPLE_RATE
    #: The front-end's own-voice evidence over this block, where a microphone array gives it: the
    #: power of a beam toward the wearer's mouth and of the beam toward the partner, summed over
    #: the block in the speech band. Their ratio over an utterance says who spoke it.
    own_voice: tuple[float, float] | None = None

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def start_s(self) -> float:
        return self.start / self.sample_rate

    @property
    def end_s(self) -> float:
        return (self.start + self.frames) / self.sample_rate

    def mono(self) -> Samples:
        """The channels averaged: what ASR hears until the front-end (beamformer) exists."""
        if self.channels == 1:
            return self.samples[:, 0]
        mono: Samples = self.samples.mean(axis=1, dtype=np.float32)
        return mono


@dataclass(frozen=True, slots=True, eq=False)
class SpeechSegment:
    """Speech audio of one utterance, mono at 16 kHz, found by VAD.

    A live VAD sends an utterance in several pieces as it is spoken; ``final`` marks the last
    piece (the utterance is closed). ``start`` and ``end`` are stream positions in samples of
    this piece; ``voiced_until`` is the stream position just after the utterance's last voiced
    frame so far (the speaker is pausing when it lags behind ``end``); ``pauses`` are the
    silences inside the utterance that ended in this piece, as (start, end) stream positions.
    ``speech`` are the stretches of speech inside the piece, as (start, end) stream positions, where
    the VAD states them (a recording's chunks: Silero's stretches without padding). ``speaker`` is
    who the front-end heard in the utterance's latest speech ("wearer" or "partner"), where it can;
    ``speaker_since`` the stream position where that speaker's turn in the utterance began (its
    start, or where the evidence says the voice changed when another spoke before in it).
    """

    utterance: int
    start: int
    end: int
    audio: Samples
    final: bool = True
    voiced_until: int | None = None
    pauses: tuple[tuple[int, int], ...] = ()
    speech: tuple[tuple[int, int], ...] = ()
    speaker: str | None = None
    speaker_since: int | None = None

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its stream times in seconds."""

    text: str
    start: float
    end: float
    probability: float = 1.0


#: A speaker label a user or client gives ("wearer", "partner"): a short word, so that it is safe
#: in logs, file names and pages.
SPEAKER_LABEL = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True, slots=True)
class Transcript:
    """Recognised text of one utterance.

    ``committed`` is never retracted by a later Transcript of the same utterance; ``tentative``
    is replaced by the next one. ``final`` closes the utterance: nothing about it changes again.
    ``speaker`` says who spoke it where that is known: "wearer" or "partner" (a live session's
    label), "S1", "S2", ... (diarization).
    """

    utterance: int
    committed: str
    tentative: str
    start: float
    end: float
    language: str
    final: bool = False
    words: tuple[Word, ...] = field(default=())
    speaker: str | None = None

    @property
    def text(self) -> str:
        return (self.committed + " " + self.tentative).strip() if self.tentative else self.committed


@dataclass(frozen=True, slots=True)
class Translation:
    """Translated text of one source utterance, with the same commit rules as Transcript, and its
    speaker."""

    utterance: int
    committed: str
    tentative: str
    start: float
    end: float
    source_language: str
    target_language: str
    final: bool = False
    speaker: str | None = None

    def as_transcript(self) -> Transcript:
        """The translation as a transcript in the target language (for the transcript writers)."""
        return Transcript(
            self.utterance,
            self.committed,
            self.tentative,
            self.start,
            self.end,
            self.target_language,
            self.final,
            speaker=self.speaker,
        )


@dataclass(frozen=True, slots=True)
class Subtitle:
    """What the display shows now: whole lines laid out for its width.

    ``committed`` counts the characters at the start of each line that are committed text (never
    retracted: a display shows them steady and may dim the rest); empty where it is not known.
    ``speaker`` is the utterance's (a partner's phone shows the wearer's words only).
    """

    utterance: int
    lines: tuple[str, ...]
    start: float
    end: float
    final: bool = False
    committed: tuple[int, ...] = ()
    speaker: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SpeechAudio:
    """Synthesised speech for the wearer, mono float32 at ``sample_rate``."""

    utterance: int
    samples: Samples
    sample_rate: int
    final: bool = False
