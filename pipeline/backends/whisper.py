"""Speech recognition with faster-whisper (CTranslate2).

The model is loaded by local path (a model *name* would make faster-whisper reach for a hub) and
runs on a thread of its own; faster-whisper's lazy ``segments`` generator is consumed inside that
thread, or the decode would run on the event loop.
"""

from __future__ import annotations

import logging
import math
import os
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline import models
from pipeline.algos.text import UNSPACED
from pipeline.config import AsrConfig
from pipeline.errors import ConfigError, ModelError
from pipeline.events import SAMPLE_RATE, Samples, Word

log = logging.getLogger(__name__)

#: Characters of earlier text passed as Whisper's prompt (it keeps at most 223 tokens anyway).
PROMPT_CHARS = 600
#: Tokens one second of speech can need, at most, and a few more for any utterance. The fastest
#: real speech here needs 10.5 tokens a second (a Mandarin clip; FLEURS readers 5-6). A looping
#: decode otherwise runs to Whisper's 224 tokens: 2.4 s for 2.3 s of audio, measured on the
#: conversation, where "Hello? Hello?" became "Hello" 112 times and the stream stalled behind it.
TOKENS_PER_S = 12
EXTRA_TOKENS = 10
#: Live utterances quieter than this RMS level are raised to it before Whisper hears them (at
#: most by MAX_GAIN_DB, and never beyond PEAK_DBFS at their loudest sample).
QUIET_DBFS = -35.0
MAX_GAIN_DB = 40.0
PEAK_DBFS = -1.0


@dataclass(frozen=True)
class Decoded:
    """One Whisper segment, times in seconds relative to the decoded audio."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@dataclass(frozen=True)
class Hypothesis:
    """One decode of an utterance's audio: words with times in seconds from the audio's start."""

    text: str
    words: tuple[Word, ...]
    language: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    audio_s: float


def words_from_alignment(pieces: list[tuple[str, float, float, float]], language: str) -> list[Word]:
    """Whole words from Whisper's aligned pieces (text, start, end, probability).

    The alignment splits words at punctuation: "L'accident" arrives as "L" and "'accident",
    "États-Unis" as "États" and "-Unis", "there." as "there" and ".". Where words are
    separated by spaces, a piece that does not start with one continues the word before it.
    Opening marks ("¿", "«") that stand alone are joined to the word after them.
    """
    words: list[Word] = []
    opening = ""
    for text, start, end, probability in pieces:
        bare = text.strip()
        if not bare:
            continue
        continues = language not in UNSPACED and not text[:1].isspace()
        if continues and words:
            last = words[-1]
            words[-1] = Word(last.text + bare, last.start, max(last.end, end), min(last.probability, probability))
        elif all(not c.isalnum() for c in bare) and language not in UNSPACED:
            opening += bare
        else:
            words.append(Word(opening + bare, start, end, probability))
            opening = ""
    return words


def audible(audio: Samples) -> Samples:
    """Quiet audio raised to ``QUIET_DBFS`` (RMS), by at most ``MAX_GAIN_DB``; louder audio as it is.

    Whisper's features are not level-free: on German FLEURS speech at -60 dBFS, one decode of a
    10 s clip averaged log-probability -0.47 and heard "falassen"; the same audio 30 dB louder,
    -0.30 and "verlassen". Streamed at that level, German went from 30.7% to 16.7% WER with this
    and the VAD's lower silence floor together (offline 14.9%).
    """
    quiet = 10 ** (QUIET_DBFS / 20)
    rms = float(np.sqrt(np.mean(audio * audio))) if len(audio) else 0.0
    if rms <= 0.0 or rms >= quiet:
        return audio
    peak = float(np.max(np.abs(audio)))
    gain = min(quiet / rms, 10 ** (MAX_GAIN_DB / 20), 10 ** (PEAK_DBFS / 20) / peak)
    return audio * np.float32(gain) if gain > 1.0 else audio


def as_pcm16(audio: Samples) -> Samples:
    """The audio rounded to 16-bit steps, as Whisper heard it in training (ffmpeg's s16 output).

    Measured on the 25 FLEURS clips here: the same audio as float gave a WER higher by 2-3
    points in three languages of five, though the two differ by at most 1/65536.
    """
    quantized: Samples = (np.clip(np.round(audio * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)
    return quantized


def compression_ratio(text: str) -> float:
    """How well the text compresses: above ~2.4 Whisper is usually looping."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def likeliest(scores: list[tuple[str, float]], allowed: tuple[str, ...] = ()) -> str:
    """The most probable language of Whisper's (language, probability) scores, among ``allowed``
    when given (a conversation known to be in those)."""
    candidates = [(p, code) for code, p in scores if not allowed or code in allowed]
    return max(candidates)[1] if candidates else scores[0][0]


class Decoder(Protocol):
    """What the streaming recogniser needs of a speech recogniser (Whisper, or a test's script)."""

    model_id: str
    languages: tuple[str, ...]

    def decode_utterance(
        self,
        audio: Samples,
        *,
        language: str | None,
        task: str,
        beam_size: int,
        prompt: str = "",
        pad_s: float = 3.0,
        languages: tuple[str, ...] = (),
    ) -> Hypothesis: ...


def check_languages(decoder: Decoder, languages: Iterable[str]) -> None:
    """Raises ConfigError for the first of ``languages`` the model does not know ('auto' is always fine)."""
    known = decoder.languages
    for language in languages:
        if language == "auto" or language in known:
            continue
        if len(known) == 1:
            raise ConfigError(f"model '{decoder.model_id}' knows only '{known[0]}', not '{language}'")
        raise ConfigError(f"unknown language '{language}' (use auto or one of: {' '.join(sorted(known))})")


class ChunkDecoder(Protocol):
    """What a recording's recogniser needs: whole chunks decoded into timed segments."""

    model_id: str

    def decode(
        self,
        audio: Samples,
        *,
        language: str | None,
        task: str,
        beam_size: int,
        prompt: str | None = None,
        word_timestamps: bool = True,
        languages: tuple[str, ...] = (),
    ) -> tuple[list[Decoded], str, float]: ...


class WhisperDecoder:
    """A loaded Whisper model. ``decode`` blocks: call it from the model's own thread.

    ``live`` models leave half the cores to the audio side (VAD, front-end, translation, the
    sinks) unless ``config.threads`` says otherwise: on this 2-core machine one thread per decode
    made the beam search 25-35% faster and finals p95 1.95 -> 1.62 s in real time
    (benchmarks/README, session 22). Recordings and replays use every core."""

    def __init__(self, config: AsrConfig, *, live: bool = False) -> None:
        self.model_id = config.model
        self.path: Path = models.resolve(config.model, "whisper")
        self.compute_type = config.compute_type
        cores = os.cpu_count() or 1
        self.threads = config.threads or (max(1, cores // 2) if live else cores)
        started = time.perf_counter()
        try:
            from faster_whisper import WhisperModel

            self._model: Any = WhisperModel(
                str(self.path), device="cpu", compute_type=config.compute_type, cpu_threads=self.threads
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelError(f"cannot load Whisper model from {self.path}: {e}") from None
        self.load_seconds = time.perf_counter() - started
        self.languages: tuple[str, ...] = tuple(self._model.supported_languages)
        log.info(
            "loaded %s (%s, %d threads) in %.2f s", self.path, config.compute_type, self.threads, self.load_seconds
        )

    def decode(
        self,
        audio: Samples,
        *,
        language: str | None,
        task: str,
        beam_size: int,
        prompt: str | None = None,
        word_timestamps: bool = True,
        languages: tuple[str, ...] = (),
    ) -> tuple[list[Decoded], str, float]:
        """Decodes mono 16 kHz audio; returns its segments, the language and its probability.
        With no ``language`` it is detected, among ``languages`` when given.

        faster-whisper falls back to sampling at higher temperatures when a decode looks like a
        loop or has a low log-probability; the sampler is seeded here, so the same run always
        gives the same text (a rerun of ``transcribe`` once gave a different segment without it).
        CTranslate2 seeds a thread's generator once, at its first sample (src/random.cc), so a
        decode's samples still depend on the decodes before it in the process.
        """
        import ctranslate2

        ctranslate2.set_random_seed(0)
        audio = as_pcm16(audio)
        probability = None
        if language is None and languages:
            _, _, scores = self._model.detect_language(audio)
            language = likeliest(scores, languages)
            probability = dict(scores)[language]
        segments, info = self._model.transcribe(
            audio,
            language=language,
            task=task,
            beam_size=beam_size,
            initial_prompt=prompt or None,
            word_timestamps=word_timestamps,
            vad_filter=False,
        )
        decoded = []
        for s in segments:  # the lazy generator: this is where the decoding happens
            pieces = [(w.word, float(w.start), float(w.end), float(w.probability)) for w in (s.words or ())]
            words = tuple(words_from_alignment(pieces, info.language))
            decoded.append(
                Decoded(
                    s.text.strip(),
                    float(s.start),
                    float(s.end),
                    words,
                    s.avg_logprob,
                    s.no_speech_prob,
                    s.compression_ratio,
                )
            )
        return decoded, info.language, float(probability or info.language_probability)

    def decode_utterance(
        self,
        audio: Samples,
        *,
        language: str | None,
        task: str,
        beam_size: int,
        prompt: str = "",
        pad_s: float = 3.0,
        languages: tuple[str, ...] = (),
    ) -> Hypothesis:
        """Decodes one utterance (at most 30 s) with the encoder sized to the audio; with no
        ``language``, in the one detected (among ``languages`` when given).

        faster-whisper pads every window to 30 s, so one decode costs ~0.55 s here whatever the
        clip's length. The CTranslate2 encoder accepts shorter input: sized to the audio plus
        ``pad_s`` of silence, a 5 s utterance encodes in ~0.1 s instead of ~0.46 s. Measured on
        33 real clips, WER with 3 s of padding matches the 30 s window
        (README, "Live subtitles", the Streaming ASR bullet).
        There is no temperature fallback: a live decode must have a bounded cost, so the tokens
        it may generate are bounded by the audio's length too (``TOKENS_PER_S``); the caller
        guards against loops and low confidence.
        """
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self._model
        extractor = model.feature_extractor
        features = extractor(as_pcm16(audible(audio)))[:, : extractor.nb_max_frames]
        content_frames = features.shape[-1]
        frames = min(extractor.nb_max_frames, math.ceil((content_frames + pad_s * 100) / 100) * 100)
        features = np.pad(features, ((0, 0), (0, frames - content_frames)))
        encoded = model.encode(features)
        if language is None:
            scores = model.model.detect_language(encoded)[0]
            language = likeliest([(token[2:-2], p) for token, p in scores], languages)
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task=task, language=language)
        previous = tokenizer.encode(" " + prompt.strip()) if prompt.strip() else []
        sequence = model.get_prompt(tokenizer, previous, without_timestamps=True)
        budget = min(224, math.ceil(len(audio) / SAMPLE_RATE * TOKENS_PER_S) + EXTRA_TOKENS)
        result = model.model.generate(
            encoded,
            [sequence],
            beam_size=beam_size,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_length=min(model.max_length, len(sequence) + budget),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -math.inf
        words: tuple[Word, ...] = ()
        if tokens:
            alignment = model.find_alignment(tokenizer, [tokens], encoded, content_frames)[0]
            pieces = [(w["word"], float(w["start"]), float(w["end"]), float(w["probability"])) for w in alignment]
            words = tuple(
                Word(w.text, round(w.start, 3), round(w.end, 3), w.probability)
                for w in words_from_alignment(pieces, language)
            )
        return Hypothesis(
            text=text,
            words=words,
            language=language,
            avg_logprob=float(avg_logprob),
            no_speech_prob=float(result.no_speech_prob),
            compression_ratio=compression_ratio(text),
            audio_s=len(audio) / SAMPLE_RATE,
        )
