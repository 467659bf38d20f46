"""Configuration: one frozen dataclass per stage, nested in :class:`Config`, loaded from TOML.

The defaults live here; ``configs/default.toml`` documents every setting with the same values (a
test keeps the two equal). Unknown keys are errors that name the key, and ranges are checked when
a section is built, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.algos.beamform import METHODS, UNFILTERED
from pipeline.algos.vocab import Term, parse_terms
from pipeline.errors import ConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class AudioConfig:
    """Reading and capturing audio."""

    #: Size of the blocks read from a file or captured from a device, in milliseconds.
    block_ms: int = 100

    def __post_init__(self) -> None:
        _check(10 <= self.block_ms <= 5000, "audio.block_ms must be between 10 and 5000")


@dataclass(frozen=True)
class VadConfig:
    """Finding speech.

    Live audio: WebRTC VAD decides each frame (on a level-normalised copy, so quiet speech
    counts), a hysteresis gate turns frames into utterances, and Silero (shipped in
    faster-whisper) confirms each utterance before it reaches ASR, so steady noise does not.
    Recordings: Silero finds stretches of speech directly.
    """

    #: WebRTC VAD frame length: 10, 20 or 30 ms.
    frame_ms: int = 30
    #: WebRTC VAD aggressiveness, 0 (least) to 3 (most eager to call a frame non-speech).
    aggressiveness: int = 3
    #: Voiced audio within the last 300 ms that starts an utterance, in milliseconds.
    start_voiced_ms: int = 150
    #: Silence that ends an utterance, in milliseconds (the main part of the final latency).
    end_silence_ms: int = 650
    #: Audio kept before the first voiced frame and after the last one, in milliseconds.
    pre_roll_ms: int = 300
    post_roll_ms: int = 150
    #: Longest live utterance before it is split at its quietest point, in seconds.
    max_utterance_s: float = 25.0
    #: Confirm each live utterance with Silero before it reaches ASR.
    confirm: bool = True
    #: Silero speech probability above which audio is speech.
    threshold: float = 0.5
    #: Recordings: silence that ends a stretch of speech, and audio kept around it, in ms.
    #: 2 s of context matched faster-whisper's own WER on FLEURS; 0.4 s cost 1-3 points.
    recording_min_silence_ms: int = 1000
    recording_speech_pad_ms: int = 2000

    def __post_init__(self) -> None:
        _check(self.frame_ms in (10, 20, 30), "vad.frame_ms must be 10, 20 or 30")
        _check(0 <= self.aggressiveness <= 3, "vad.aggressiveness must be 0 to 3")
        _check(self.frame_ms <= self.start_voiced_ms <= 300, "vad.start_voiced_ms must be between frame_ms and 300")
        _check(self.end_silence_ms >= 100, "vad.end_silence_ms must be at least 100")
        _check(0 <= self.pre_roll_ms <= 2000 and 0 <= self.post_roll_ms <= 2000, "vad rolls must be 0 to 2000 ms")
        _check(2.0 <= self.max_utterance_s <= 30.0, "vad.max_utterance_s must be 2 to 30 s")
        _check(0.0 < self.threshold < 1.0, "vad.threshold must be between 0 and 1")
        _check(self.recording_min_silence_ms >= 0, "vad.recording_min_silence_ms must not be negative")
        _check(self.recording_speech_pad_ms >= 0, "vad.recording_speech_pad_ms must not be negative")


@dataclass(frozen=True)
class AsrConfig:
    """Speech recognition with faster-whisper."""

    #: Model id from models/registry.toml, or a path to a CTranslate2 Whisper model directory.
    model: str = "whisper-base"
    #: Spoken language as an ISO 639-1 code, or "auto" to detect it from the first speech.
    language: str = "auto"
    #: "transcribe" keeps the spoken language; "translate" gives English (Whisper's own).
    task: str = "transcribe"
    beam_size: int = 5
    #: CTranslate2 compute type; int8 is the fastest on CPU at no measurable cost in WER.
    compute_type: str = "int8"
    #: CPU threads for the model; 0: every core for recordings and replays, half of them (at least one) live.
    threads: int = 0
    #: Recordings: pass the previous chunk's text as the prompt. Off by default: with it Whisper
    #: skipped and invented whole sentences in multi-sentence recordings (benchmarks/README).
    condition_on_previous_text: bool = False
    #: Names and terms to spell as given: "term" or "term = translation" (``--vocab FILE``).
    vocabulary: tuple[str, ...] = ()
    #: The languages a conversation switches between (two or more ISO 639-1 codes, with
    #: ``language = "auto"``): each utterance is recognised in the one it is in.
    languages: tuple[str, ...] = ()
    #: Recordings: stretches of speech are merged into chunks spanning at most this long, in s.
    max_chunk_s: float = 28.0
    #: Recordings: a silence longer than this, in seconds, starts a new chunk.
    max_gap_s: float = 2.0

    def __post_init__(self) -> None:
        _check(self.task in ("transcribe", "translate"), "asr.task must be transcribe or translate")
        _check(1 <= self.beam_size <= 10, "asr.beam_size must be between 1 and 10")
        _check(self.threads >= 0, "asr.threads must not be negative")
        _check(1.0 <= self.max_chunk_s <= 30.0, "asr.max_chunk_s must be between 1 and 30")
        _check(self.max_gap_s >= 0.0, "asr.max_gap_s must not be negative")
        _check(bool(self.language), "asr.language must not be empty (use auto)")
        parse_terms(self.vocabulary)  # a malformed term is a ConfigError
        if self.languages:
            _check(len(set(self.languages)) >= 2, "asr.languages must name two or more different languages")
            _check(self.language == "auto", "give either asr.language or asr.languages, not both")

    @property
    def terms(self) -> tuple[Term, ...]:
        return parse_terms(self.vocabulary)


@dataclass(frozen=True)
class StreamingConfig:
    """Live recognition: how the open utterance is re-decoded and when words are committed."""

    #: Least new audio between two decodes of the open utterance, in seconds. Decodes never
    #: queue: while one runs, arriving audio waits and is decoded together by the next.
    partial_interval_s: float = 0.3
    #: Audio an utterance needs before its first decode, in seconds.
    first_decode_s: float = 1.0
    #: A word is committed when two hypotheses decoded from audio at least this far apart, in
    #: seconds, agree on it (and on all before it). Patience pays in noise, where early decodes
    #: agree on the same mistakes: with 4 s (and the margin 3 s, trims after 12 s) WER on 11
    #: noisy and babble streams went from 41.6% to 38.9%, on 10 clean and quiet ones from 18.6%
    #: to 17.8%, and in quick turn-taking the latest final from 15.8 s to 5.3 s after its speech;
    #: the first committed word comes at 4.8 s instead of 3.1 s (tentative text still at 0.73 s).
    agree_gap_s: float = 4.0
    #: Words ending in the last this many seconds of the decoded audio stay tentative.
    commit_margin_s: float = 3.0
    #: Quick commits (off when above 1): words whose probability is at least this in two
    #: hypotheses decoded ``quick_gap_s`` apart, ending ``quick_margin_s`` before the audio's end.
    quick_probability: float = 0.65
    quick_gap_s: float = 1.5
    quick_margin_s: float = 1.0
    #: Beam size for decodes of the open utterance. Greedy decoding (1) commits consistent
    #: mistakes on short audio; 5 costs ~20% more compute here and halves the streaming WER.
    partial_beam_size: int = 5
    #: Beam size for the decode that finalises an utterance, and for decodes made during a
    #: pause (which the final reuses when the speaker does not go on).
    final_beam_size: int = 5
    #: Finalise with the latest hypothesis when it covers the utterance's audio at final quality.
    reuse_hypothesis: bool = True
    #: Silence appended to the utterance for the encoder, in seconds (see asr.decode_utterance).
    encoder_pad_s: float = 3.0
    #: Once the decoded audio is this long, in seconds, start it after a committed word (the
    #: words before become the prompt): decodes then cost the same however long the utterance.
    #: 12 s rather than 6 s: more of the sentence heard at once (WER in noise 41.6% -> 40.1% by
    #: itself), for 13-27% more compute (RTF 0.36-0.40 -> 0.45).
    trim_after_s: float = 12.0
    #: Characters of the previous utterance given to Whisper as its prompt (0 for none), when
    #: it ended at most ``context_gap_s`` before this one began. Off by default: measured on
    #: FLEURS streams it raised WER (es 9.2% -> 13.0%, en 8.7% -> 10.7%): earlier text leaks
    #: into the next utterance ("foreigners" recognised twice). Measured again in session 19 on
    #: eight streams: 21.6% -> 23.2% with a 2 s gap; within one VAD utterance only (gap 0), 19.4%
    #: -> 20.3% on twelve, with quick-turn finals up to 5 s late.
    context_chars: int = 0
    context_gap_s: float = 1.0
    #: Replays (``live --instant``, ``bench --mode instant``): a decode every this much audio, in
    #: seconds, whatever the machine's speed, so that a replay gives the same events every time.
    #: Chosen so that a replay scores as a real-time session does: on the ten held-out streams,
    #: 0.8 s gave 25.8% WER (ASR RTF 0.25), 0.5 s 26.6% (0.34), 0.4 s 26.7% (0.44); played in
    #: real time, 26.4-27.4% over four runs (0.54).
    replay_step_s: float = 0.5

    def __post_init__(self) -> None:
        _check(0.05 <= self.partial_interval_s <= 5.0, "streaming.partial_interval_s must be 0.05 to 5")
        _check(0.1 <= self.first_decode_s <= 5.0, "streaming.first_decode_s must be 0.1 to 5")
        _check(0.0 <= self.agree_gap_s <= 5.0, "streaming.agree_gap_s must be 0 to 5")
        _check(0.0 <= self.commit_margin_s <= 5.0, "streaming.commit_margin_s must be 0 to 5")
        _check(0.0 <= self.quick_probability <= 1.01, "streaming.quick_probability must be 0 to 1.01 (above 1: off)")
        _check(0.0 <= self.quick_gap_s <= 5.0, "streaming.quick_gap_s must be 0 to 5")
        _check(0.0 <= self.quick_margin_s <= 5.0, "streaming.quick_margin_s must be 0 to 5")
        _check(1 <= self.partial_beam_size <= 10, "streaming.partial_beam_size must be 1 to 10")
        _check(1 <= self.final_beam_size <= 10, "streaming.final_beam_size must be 1 to 10")
        _check(0.0 <= self.encoder_pad_s <= 30.0, "streaming.encoder_pad_s must be 0 to 30")
        _check(2.0 <= self.trim_after_s <= 30.0, "streaming.trim_after_s must be 2 to 30")
        _check(0 <= self.context_chars <= 1000, "streaming.context_chars must be 0 to 1000")
        _check(self.context_gap_s >= 0.0, "streaming.context_gap_s must not be negative")
        _check(0.1 <= self.replay_step_s <= 5.0, "streaming.replay_step_s must be 0.1 to 5")


Point = tuple[float, float, float]
SPEAKER_ACTIONS = ("translate", "caption", "drop")


#: Online WPE's cost grows about with the cube of the microphones: RTF 0.09 alone on 4 here, 0.14
#: on 5, 0.22 on 6, 0.42 on 8 (its filter is solved from (10 x microphones)-square statistics).
MAX_DEREVERB_MICROPHONES = 5


@dataclass(frozen=True)
class FrontendConfig:
    """The glasses' microphone array and what the front-end does with it (``[frontend]``): a
    device profile such as ``configs/glasses-4mic.toml``.

    Positions are in metres in the frame's axes: x forward (where the wearer looks), y left, z
    up, the origin at the middle of the bridge. With no ``microphones`` there is no array: the
    channels are averaged, as before. Mono input skips the beamformer.
    """

    #: One position per input channel, in channel order.
    microphones: tuple[Point, ...] = ()
    #: Toward the partner (a direction; it need not be a unit vector).
    look: Point = (1.0, 0.0, 0.0)
    #: The wearer's mouth.
    mouth: Point = (0.0, 0.0, -0.09)
    #: "mvdr" (adaptive: noise measured while nobody speaks; the fixed beam until then), "mwf"
    #: (multichannel Wiener filter: the partner as microphone 1 hears him, SI-SDR about 4 dB over
    #: MVDR's, but Whisper recognises it worse: for listening, see the README), "fixed"
    #: (superdirective toward ``look``), "mean" (the channels averaged), "first" (microphone 1).
    beamformer: str = "mvdr"
    #: Steer the adaptive beam by the partner's transfer function estimated from speech, where it
    #: is close to ``look`` (else the look direction's plane wave).
    estimate_steering: bool = False
    #: Look for the partner within this many degrees (azimuth) either side of ``look`` and steer
    #: MVDR there (0: steer at ``look``). Partners stand off the look direction: 30 rather than 0
    #: took partner WER on simulated rooms 64.2% -> 60.5% (5 dB white noise), 55.4% -> 52.3%
    #: (10 dB), 25.7% -> 24.8% (15 dB), 77.6% -> 77.4% in room noise (see the README).
    search_deg: float = 30.0
    #: MVDR's diagonal loading, as a fraction of the noise covariance's mean eigenvalue: more
    #: moves the beam toward delay-and-sum. 0.1 rather than 1e-3: partner WER 79.4% -> 77.5%
    #: (4 mic) and 79.3% -> 76.7% (5 mic) on 12 simulated rooms each, SI-SDR +1.1 dB; 1.0: 81.0%.
    diagonal_loading: float = 0.1
    #: Take the room's late reverberation off every microphone before the beam (online WPE; not
    #: for "mean" and "first"). Whisper base recognises the drier partner better: partner WER
    #: through MVDR on simulated rooms 77.8% -> 64.2% at 5 dB white noise, 31.7% -> 25.7% at 15 dB,
    #: 79.1% -> 77.6% in room noise, for about 0.09 RTF more on 4 microphones (see the README).
    dereverb: bool = True
    #: What happens to the utterances the array labels as each speaker's: "translate" (when a
    #: target is set), "caption" (recognised and shown, never translated or spoken) or "drop"
    #: (not recognised). The wearer is captioned by default; the partner translated.
    partner: str = "translate"
    wearer: str = "caption"
    #: The language the wearer speaks (ISO 639-1), when it is not the partner's (``--from``).
    wearer_language: str = ""
    #: Noise suppression (DeepFilterNet3) after the beam, or on mono input. Off for recognition:
    #: see the README, "The glasses' microphones", for the A/B that decided it.
    denoise: bool = False
    #: How far it may lower the noise, in dB (the input is mixed back in at -this dB; 100 or more:
    #: no limit). A limit keeps the artefacts that cost Whisper accuracy down.
    denoise_limit_db: float = 12.0
    #: Gain before the model, in dB (taken out again after it): DeepFilterNet3 takes speech below
    #: about -45 dBFS for noise, so quiet input needs raising.
    denoise_gain_db: float = 0.0

    def __post_init__(self) -> None:
        _check(self.beamformer in METHODS, f"frontend.beamformer must be one of {', '.join(METHODS)}")
        for who in ("partner", "wearer"):
            action = getattr(self, who)
            _check(action in SPEAKER_ACTIONS, f"frontend.{who} must be one of {', '.join(SPEAKER_ACTIONS)}")
        _check(0.0 <= self.search_deg <= 90.0, "frontend.search_deg must be 0 to 90")
        _check(0.0 <= self.diagonal_loading <= 100.0, "frontend.diagonal_loading must be 0 to 100")
        _check(0.0 <= self.denoise_limit_db <= 100.0, "frontend.denoise_limit_db must be 0 to 100")
        _check(0.0 <= self.denoise_gain_db <= 60.0, "frontend.denoise_gain_db must be 0 to 60")
        code = self.wearer_language
        _check(
            code == "" or (len(code) == 2 and code.isascii() and code.isalpha() and code.islower()),
            "frontend.wearer_language must be an ISO 639-1 code such as en",
        )
        _check(len(self.microphones) != 1, "frontend.microphones: an array needs at least 2 microphones")
        _check(len(self.microphones) <= 16, "frontend.microphones: at most 16 microphones")
        _check(
            not (
                self.dereverb and self.beamformer not in UNFILTERED and len(self.microphones) > MAX_DEREVERB_MICROPHONES
            ),
            f"frontend.dereverb costs too much on more than {MAX_DEREVERB_MICROPHONES} microphones "
            "(about the cube of their number): set dereverb = false",
        )
        for name, point in (
            ("look", self.look),
            ("mouth", self.mouth),
            *(("microphones", p) for p in self.microphones),
        ):
            _check(
                all(abs(v) <= 1.0 for v in point), f"frontend.{name}: positions are in metres, within 1 m of the bridge"
            )
        _check(any(self.look), "frontend.look must not be zero")
        if self.microphones:
            spread = max(
                sum((a - b) ** 2 for a, b in zip(p, q, strict=True)) ** 0.5
                for p in self.microphones
                for q in self.microphones
            )
            _check(spread >= 0.01, "frontend.microphones: the microphones must be at least 1 cm apart somewhere")


@dataclass(frozen=True)
class TranslationConfig:
    """Translating what was recognised."""

    #: Language to translate into (ISO 639-1), or "" for no translation.
    target: str = ""
    #: "auto", "whisper", "apertium" or "ctranslate2".
    backend: str = "auto"
    #: Directory of a converted CTranslate2 translation model (ctranslate2 backend only).
    model: str = ""

    def __post_init__(self) -> None:
        backends = ("auto", "whisper", "apertium", "ctranslate2")
        _check(self.backend in backends, f"translation.backend must be one of {', '.join(backends)}")
        code = self.target == "" or (self.target.isascii() and self.target.isalpha() and self.target.islower())
        _check(code and len(self.target) in (0, 2), "translation.target must be an ISO 639-1 code such as en")


@dataclass(frozen=True)
class SpeechOutputConfig:
    """The chain between the voice and the speaker (``[tts.output]``): a device profile.

    The defaults are for bone-conduction transducers on a glasses frame: they lack bass by
    construction and distort when it is boosted, so bass is cut, never raised; a presence boost
    helps intelligibility. ``configs/headphones.toml`` is the flat profile.
    """

    #: The device's sample rate, in Hz (the speech WAV is written at this rate too).
    sample_rate: int = 48_000
    #: High-pass corner in Hz (Butterworth), 0 for none, and its order.
    highpass_hz: float = 250.0
    highpass_order: int = 2
    #: Presence boost: gain in dB over a band from ``presence_low_hz`` to ``presence_high_hz``
    #: (0 dB: none). Never a bass boost.
    presence_db: float = 4.0
    presence_low_hz: float = 1500.0
    presence_high_hz: float = 4000.0
    #: Each clause's integrated loudness is brought to this, in LUFS (ITU-R BS.1770).
    loudness_lufs: float = -18.0
    #: Most gain the loudness stage gives a quiet clause, in dB.
    max_gain_db: float = 20.0
    #: No sample exceeds this, in dBFS: a look-ahead peak limiter.
    ceiling_dbfs: float = -1.0
    limiter_lookahead_ms: float = 5.0
    limiter_release_ms: float = 50.0

    def __post_init__(self) -> None:
        _check(8_000 <= self.sample_rate <= 192_000, "tts.output.sample_rate must be 8000 to 192000")
        nyquist = self.sample_rate / 2
        _check(
            self.highpass_hz == 0 or 20 <= self.highpass_hz < nyquist, "tts.output.highpass_hz must be 0 or 20 Hz up"
        )
        _check(1 <= self.highpass_order <= 8, "tts.output.highpass_order must be 1 to 8")
        _check(0 <= self.presence_db <= 12, "tts.output.presence_db must be 0 to 12 (a boost, never a cut)")
        _check(
            20 <= self.presence_low_hz < self.presence_high_hz < nyquist,
            "tts.output.presence_low_hz must be below presence_high_hz, both below half the sample rate",
        )
        _check(-40 <= self.loudness_lufs <= -6, "tts.output.loudness_lufs must be -40 to -6")
        _check(0 <= self.max_gain_db <= 40, "tts.output.max_gain_db must be 0 to 40")
        _check(-20 <= self.ceiling_dbfs <= 0, "tts.output.ceiling_dbfs must be -20 to 0")
        _check(0.5 <= self.limiter_lookahead_ms <= 50, "tts.output.limiter_lookahead_ms must be 0.5 to 50")
        _check(1 <= self.limiter_release_ms <= 2000, "tts.output.limiter_release_ms must be 1 to 2000")


@dataclass(frozen=True)
class TtsConfig:
    """Speaking to the wearer: the translation when translating, else the transcript."""

    enabled: bool = False
    #: A voice id from models/registry.toml, or a directory (or .onnx file) of a piper voice.
    voice: str = "piper-joe"
    #: Speech waiting to be heard (queued audio and clauses not yet spoken) beyond this many
    #: seconds is shed: the oldest clauses not yet started are skipped.
    max_backlog_s: float = 6.0
    #: piper's speaking rate: above 1 slower, below 1 faster.
    length_scale: float = 1.0
    #: When more than half of ``max_backlog_s`` waits to be heard, the next clause is spoken at
    #: ``length_scale`` times this (an interpreter falling behind speaks faster); 1 never hurries.
    hurry_length_scale: float = 0.8
    output: SpeechOutputConfig = field(default_factory=SpeechOutputConfig)

    def __post_init__(self) -> None:
        _check(1.0 <= self.max_backlog_s <= 60.0, "tts.max_backlog_s must be 1 to 60")
        _check(0.5 <= self.length_scale <= 2.0, "tts.length_scale must be 0.5 to 2")
        _check(0.5 <= self.hurry_length_scale <= 1.0, "tts.hurry_length_scale must be 0.5 to 1")


@dataclass(frozen=True)
class DisplayConfig:
    """The subtitle display (the default is a 2-line glasses display)."""

    chars_per_line: int = 32
    lines: int = 2
    #: When translating with a text backend, give the top line to the source text (the latest
    #: words heard; the whisper backend decodes the source only once the translation is final).
    show_source: bool = False

    def __post_init__(self) -> None:
        _check(8 <= self.chars_per_line <= 200, "display.chars_per_line must be 8 to 200")
        _check(1 <= self.lines <= 20, "display.lines must be 1 to 20")


OUTPUT_FORMATS = ("srt", "vtt", "json", "txt")


@dataclass(frozen=True)
class OutputConfig:
    """Files written by ``livesub transcribe`` and ``livesub live``, and how far an output may lag."""

    #: Any of srt, vtt, json, txt.
    formats: tuple[str, ...] = OUTPUT_FORMATS
    #: ``livesub transcribe``: who spoke, "auto" (the number of speakers found), a number of
    #: speakers, or "none" (no labels).
    speakers: str = "auto"
    #: Where ``livesub live`` saves the session's transcript; "" saves nothing (the partner's
    #: words reach the disk only when asked: this, or ``--out DIR``).
    live_dir: str = ""
    #: An output (a file writer, JSONL, ...) holding an event longer than this, in seconds, ends
    #: the session with an error naming it, rather than falling behind without bound.
    max_lag_s: float = 30.0
    #: Longest subtitle cue on screen, in seconds, and longest cue text, in characters.
    max_cue_s: float = 7.0
    max_cue_chars: int = 84

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in OUTPUT_FORMATS]
        _check(not unknown, f"unknown output format {', '.join(unknown)} (known: {', '.join(OUTPUT_FORMATS)})")
        _check(bool(self.formats), "output.formats must name at least one format")
        _check(
            self.speakers in ("auto", "none") or (self.speakers.isdigit() and int(self.speakers) >= 1),
            f"output.speakers must be auto, none or a number of speakers, not '{self.speakers}'",
        )
        _check(self.max_cue_s > 0.5, "output.max_cue_s must be above 0.5")
        _check(self.max_cue_chars >= 10, "output.max_cue_chars must be at least 10")
        _check(self.max_lag_s >= 1.0, "output.max_lag_s must be at least 1")


@dataclass(frozen=True)
class ServerConfig:
    """``livesub serve``: where it listens and what it lets clients do (``pipeline/server.py``)."""

    #: Address to listen on. Loopback by default; any other address needs a token (``--token-file``).
    host: str = "127.0.0.1"
    #: TCP port (0: any free port, printed at start).
    port: int = 8765
    #: Live sessions at once; one over the limit is refused at once, never served slowly. 1 on this
    #: 2-core machine: one live session with Whisper base runs its recogniser at a real-time factor
    #: of 0.58 here (21 streams in real time, the commits of session 11; 0.54 before), so a second
    #: would need more than the machine has and both would fall further behind with every utterance.
    max_sessions: int = 1
    #: A session that receives no audio for this long, in seconds, ends (its finals delivered), as a
    #: microphone that stops delivering does.
    idle_timeout_s: float = 30.0
    #: Largest message a client may send, in bytes (a second of 16 kHz audio on 8 channels); a
    #: larger one closes its connection with code 1009.
    max_frame_bytes: int = 262_144
    #: WebSocket connections at once (sessions, displays, clients yet to send their first message);
    #: more are refused with HTTP 503.
    max_connections: int = 16
    #: Audio a client may send per second, in seconds, sustained (a burst of 10 s is allowed): a
    #: client sending faster is sending a recording, not speech, and is closed with an error.
    max_speed: float = 4.0
    #: Browser origins allowed besides http(s)://localhost, 127.0.0.1 and [::1] on any port (and
    #: clients that send no Origin, which are not browsers), e.g. "https://glasses.example:8443".
    origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.host), "server.host must not be empty")
        _check(0 <= self.port <= 65_535, "server.port must be 0 to 65535")
        _check(1 <= self.max_sessions <= 64, "server.max_sessions must be 1 to 64")
        _check(0.1 <= self.idle_timeout_s <= 3600.0, "server.idle_timeout_s must be 0.1 to 3600")
        _check(4096 <= self.max_frame_bytes <= 16 * 2**20, "server.max_frame_bytes must be 4096 to 16777216")
        _check(
            self.max_sessions <= self.max_connections <= 1024,
            "server.max_connections must be at least server.max_sessions and at most 1024",
        )
        _check(1.0 <= self.max_speed <= 1000.0, "server.max_speed must be 1 to 1000")
        for origin in self.origins:
            scheme, _, rest = origin.partition("://")
            _check(
                scheme in ("http", "https") and bool(rest) and "/" not in rest,
                f"server.origins: '{origin}' is not an origin such as https://host:port",
            )


@dataclass(frozen=True)
class Config:
    """The whole pipeline's configuration."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

    @property
    def spoken_languages(self) -> tuple[str, ...]:
        """Every language the configuration says may be spoken ("auto" for none given): the
        model must know each of them."""
        wearer = (self.frontend.wearer_language,) if self.frontend.wearer_language else ()
        return (self.asr.language, *self.asr.languages, *wearer)


def _coerce(value: Any, kind: Any, name: str) -> Any:
    """Checks a TOML value against a field's type; ints are accepted where floats are."""
    if kind is bool:
        _check(isinstance(value, bool), f"{name} must be true or false")
        return value
    if kind is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an integer")
        return value
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _check(ok, f"{name} must be a number")
        return float(value)
    if kind is str:
        _check(isinstance(value, str), f"{name} must be a string")
        return value
    if kind == Point:
        ok = isinstance(value, list) and len(value) == 3
        _check(
            ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value),
            f"{name} must be [x, y, z] in metres",
        )
        return tuple(float(v) for v in value)
    if kind == tuple[Point, ...]:
        _check(isinstance(value, list), f"{name} must be a list of [x, y, z] positions in metres")
        return tuple(_coerce(v, Point, f"{name}[{i}]") for i, v in enumerate(value))
    if typing.get_origin(kind) is tuple:
        _check(isinstance(value, list) and all(isinstance(v, str) for v in value), f"{name} must be a list of strings")
        return tuple(value)
    raise TypeError(f"unsupported config type {kind!r} for {name}")  # a bug here, not user input


def _section(cls: type[Any], values: Mapping[str, Any], base: Any, name: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in values.items():
        _check(key in known, f"unknown setting '{name}.{key}'")
        if dataclasses.is_dataclass(hints[key]):  # a nested table, such as [tts.output]
            _check(isinstance(value, dict), f"'{name}.{key}' must be a table ([{name}.{key}])")
            changes[key] = _section(hints[key], value, getattr(base, key), f"{name}.{key}")
        else:
            changes[key] = _coerce(value, hints[key], f"{name}.{key}")
    return dataclasses.replace(base, **changes)


def merge(config: Config, data: Mapping[str, Any]) -> Config:
    """Returns ``config`` with the settings in ``data`` (a parsed TOML document) applied."""
    hints = typing.get_type_hints(Config)
    changes = {}
    for name, values in data.items():
        _check(name in hints, f"unknown section '{name}'")
        _check(isinstance(values, dict), f"'{name}' must be a table ([{name}])")
        changes[name] = _section(hints[name], values, getattr(config, name), name)
    return dataclasses.replace(config, **changes)


def load_config(paths: Iterable[Path] = (), overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Builds the configuration: defaults, then each TOML file in order, then ``overrides``."""
    config = Config()
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"config file {path}: {e.strerror}") from None
        try:
            config = merge(config, data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    if overrides:
        config = merge(config, {k: v for k, v in overrides.items() if v})
    return config
