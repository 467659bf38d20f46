"""Speech output: clauses from committed text, the playout queue and its shedding, the speech
branch in whole replayed sessions on fakes, and the speaker device with sounddevice replaced."""

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

from pipeline.algos.clauses import ClauseSplitter
from pipeline.algos.playout import Clause, Playout
from pipeline.config import Config, load_config
from pipeline.errors import AudioError
from pipeline.outputs.speech import SpeakerDevice, SpeechWav
from pipeline.session import Detectors, SessionResult, Speech, run_live

from .test_session import SPEECH, Collect, ScriptedDetectors, TimedSource
from .test_streaming import ScriptedDecoder

# -- clauses -----------------------------------------------------------------------------------


def test_clauses_end_at_sentence_ends_and_at_commas_after_a_few_words() -> None:
    split = ClauseSplitter()
    assert split.feed(1, "So, the dam", False) == []  # "So," alone waits for more
    assert split.feed(1, "So, the dam was built in 1,963, and the", False) == ["So, the dam was built in 1,963,"]
    assert split.feed(1, "So, the dam was built in 1,963, and the river moved. It", False) == ["and the river moved."]
    assert split.feed(1, "So, the dam was built in 1,963, and the river moved. It is 3.5 km", True) == ["It is 3.5 km"]
    assert split.feed(1, "So, the dam was built in 1,963, and the river moved. It is 3.5 km", True) == []


def test_every_committed_word_is_spoken_once_in_order() -> None:
    text = "Well, in particular, it is important: you can see whether someone is lucky. Yes! And then? Fine"
    words = text.split()
    for step in (1, 2, 5):
        split = ClauseSplitter()
        spoken: list[str] = []
        for n in range(step, len(words) + step, step):
            spoken += split.feed(7, " ".join(words[:n]), n >= len(words))
        assert " ".join(spoken) == text
        assert all(any(c.isalnum() for c in clause) for clause in spoken)


def test_utterances_are_independent() -> None:
    split = ClauseSplitter()
    assert split.feed(1, "One two three,", False) == ["One two three,"]
    assert split.feed(2, "Four.", False) == ["Four."]
    assert split.feed(1, "One two three, five", True) == ["five"]
    assert split.feed(2, "Four.", True) == []


# -- playout -----------------------------------------------------------------------------------


def _clause(utterance: int, duration: float) -> Clause[None]:
    return Clause(utterance, f"u{utterance}", None, duration, 0.0)


def test_clauses_play_back_to_back_and_start_when_ready() -> None:
    playout: Playout[None] = Playout(limit_s=10.0)
    first = playout.add(_clause(1, 2.0), now=1.0)
    assert [c.start for c in first] == [1.0]
    assert playout.add(_clause(1, 1.0), now=1.5) == []  # the first still plays
    later = playout.add(_clause(2, 1.0), now=5.0)
    assert [(c.utterance, c.start) for c in later] == [(1, 3.0), (2, 5.0)]  # started at 3.0, though seen at 5.0


def test_a_pile_up_sheds_the_oldest_waiting_clauses_and_keeps_the_newest() -> None:
    playout: Playout[None] = Playout(limit_s=4.0)
    started = playout.add(_clause(1, 3.0), now=0.0)
    for n in range(2, 7):
        started += playout.add(_clause(n, 1.5), now=0.1 * n)
    started += playout.flush()
    # 2.8 s of the first clause still to play when the second comes: only one 1.5 s clause fits
    # under 4 s at a time, and each newer one replaces the one waiting.
    assert [u for u, _ in playout.skipped] == [2, 3, 4, 5]
    assert [c.utterance for c in started] == [1, 6]
    assert all(c.start is not None and c.start - c.ready <= 4.0 for c in started)  # never more than the limit behind


def test_a_clause_longer_than_the_limit_is_still_spoken() -> None:
    playout: Playout[None] = Playout(limit_s=2.0)
    assert [c.start for c in playout.add(_clause(1, 5.0), now=0.0)] == [0.0]
    assert playout.skipped == []


# -- the branch in whole sessions --------------------------------------------------------------


class FakeVoice:
    """A voice that says each clause as a tone, 60 ms a character, optionally slowly or only
    once released."""

    language = "en"
    sample_rate = 16_000

    def __init__(self, delay_s: float = 0.0, release: threading.Event | None = None) -> None:
        self.delay_s = delay_s
        self.release = release
        self.texts: list[str] = []
        self.scales: list[float] = []
        self.released_late: bool | None = None

    def synthesize(self, text: str, length_scale: float = 1.0) -> np.ndarray:
        if self.release is not None and self.released_late is None:
            self.released_late = self.release.wait(timeout=30)
        time.sleep(self.delay_s)
        self.texts.append(text)
        self.scales.append(length_scale)
        t = np.arange(int(0.06 * len(text) * length_scale * self.sample_rate)) / self.sample_rate
        return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _config(**tts: Any) -> Config:
    streaming = {"first_decode_s": 0.5, "commit_margin_s": 0.3, "agree_gap_s": 0.5, "replay_step_s": 0.5}
    return load_config([], {"asr": {"language": "en"}, "streaming": streaming, "tts": {"enabled": True, **tts}})


# One long sentence with commas, inside the scripted voice's first stretch (1.1-4.8 s).
CLAUSES = [
    ("After", 1.2, 1.4),
    ("the", 1.5, 1.6),
    ("long", 1.7, 1.9),
    ("storm,", 2.0, 2.4),
    ("the", 2.5, 2.6),
    ("river", 2.7, 3.0),
    ("rose", 3.1, 3.4),
    ("and", 3.5, 3.6),
    ("flooded", 3.7, 4.0),
    ("the", 4.05, 4.1),
    ("town.", 4.2, 4.6),
]


def _speak(
    voice: FakeVoice,
    *branches: Any,
    wav: SpeechWav | None = None,
    script: list[tuple[str, float, float]] = SPEECH,
    **tts: Any,
) -> SessionResult:
    config = _config(**tts)
    detectors = ScriptedDetectors(config.vad.frame_ms)

    async def run() -> SessionResult:
        return await run_live(
            config,
            ScriptedDecoder(script=script),
            TimedSource(),
            list(branches),
            replay=True,
            detectors=Detectors(detectors.is_speech, detectors.speech_spans),
            speech=Speech(voice, wav=wav),
        )

    return asyncio.run(run())


def test_the_branch_speaks_every_committed_word_once_and_the_wav_holds_it_in_place(tmp_path: Path) -> None:
    voice = FakeVoice()
    wav = SpeechWav(tmp_path / "speech.wav")
    result = _speak(voice, wav=wav)
    assert result.speech is not None
    assert " ".join(voice.texts) == "The quick brown fox jumps. Over the lazy dog. Then it slept."
    spoken = result.speech.spoken
    assert [s.text for s in spoken] == voice.texts
    audio, rate = soundfile.read(tmp_path / "speech.wav", dtype="float32")
    assert rate == 48_000 and len(audio) >= round(spoken[-1].start * rate)
    for clause in spoken:  # each clause sits at its start on the timeline, silence before the first
        begin = round(clause.start * rate)
        assert np.abs(audio[begin : begin + rate // 10]).max() > 0.05
    assert np.abs(audio[: round(spoken[0].start * rate)]).max() == 0.0
    assert np.abs(audio).max() <= 10 ** (-1 / 20) + 1e-4  # the limiter's ceiling (and 16-bit rounding)
    assert result.speech.stats()["skipped_clauses"] == 0


def test_a_committed_clause_is_spoken_before_its_utterance_is_final() -> None:
    voice = FakeVoice()
    result = _speak(voice, script=CLAUSES)
    assert result.speech is not None
    assert voice.texts == ["After the long storm,", "the river rose and flooded the town."]
    first, second = result.speech.spoken
    assert first.start < result.speech.finals[first.utterance] <= second.ready


def test_a_slow_voice_never_delays_subtitles() -> None:
    alone = Collect("events")
    _speak(FakeVoice(), alone)
    release = threading.Event()

    class Watch(Collect):
        async def write(self, emission: Any) -> None:
            await super().write(emission)
            if len([r for r in self.records if r["type"] == "transcript" and r["final"]]) == 3:
                release.set()  # every final is out: only now may the voice say its first clause

    events = Watch("events")
    voice = FakeVoice(delay_s=0.2, release=release)
    _speak(voice, events)
    assert voice.released_late is True  # the voice was held back until the subtitles were done...
    assert events.records == alone.records  # ...which came exactly as without speech
    assert " ".join(voice.texts) == "The quick brown fox jumps. Over the lazy dog. Then it slept."


def test_speech_that_piles_up_is_shed_oldest_first() -> None:
    class LongVoice(FakeVoice):
        def synthesize(self, text: str, length_scale: float = 1.0) -> np.ndarray:
            self.scales.append(length_scale)
            return np.full(5 * self.sample_rate, 0.1, np.float32)  # every clause 5 s long, however fast

    voice = LongVoice()
    result = _speak(voice, max_backlog_s=4.0)
    assert result.speech is not None
    stats = result.speech.stats()
    # The first plays 4.2-9.2 s; the second waits; at 8.9 s the third comes and 10.3 s would be
    # waiting: the second, the oldest not started, is skipped, and the newest starts at 9.2 s.
    assert (stats["clauses"], stats["skipped_clauses"], stats["skipped_utterances"]) == (2, 1, 1)
    assert [s.text for s in result.speech.spoken] == ["The quick brown fox jumps.", "Then it slept."]
    assert [s.start for s in result.speech.spoken] == [4.2, 9.2]
    # More than half the limit was waiting when the second and the third came: both hurried.
    assert voice.scales == [1.0, 0.8, 0.8] and stats["hurried_clauses"] == 2


def test_text_in_another_language_than_the_voice_is_not_spoken() -> None:
    class Spanish(FakeVoice):
        language = "es"

    voice = Spanish()
    result = _speak(voice)
    assert voice.texts == [] and result.speech is not None
    assert result.speech.stats()["unspoken_language"] == 3


# -- the speaker device, with sounddevice replaced ---------------------------------------------


class _Flags:
    def __init__(self, underflow: bool = False) -> None:
        self.output_underflow = underflow


class FakeOutputStream:
    """Asks the callback for audio from its own thread, like a PortAudio output stream."""

    plan: ClassVar[dict[str, Any]] = {}
    played: ClassVar[list[np.ndarray]] = []

    def __init__(self, *, device: Any, channels: int, samplerate: int, dtype: str, callback: Any, **kw: Any) -> None:
        self.rate, self.callback, self.finished = samplerate, callback, kw["finished_callback"]
        self.active = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        block, calls = self.rate // 100, 0
        while self.active:
            out = np.full((block, 1), np.nan, np.float32)
            self.callback(out, block, None, _Flags(underflow=calls in self.plan.get("underflow_at", ())))
            self.played.append(out[:, 0].copy())
            calls += 1
            if calls == self.plan.get("vanish_after", -1):
                self.active = False
                self.finished()
                return
            time.sleep(0.002)

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def abort(self) -> None:
        self.active = False

    def close(self) -> None:
        self._thread.join(timeout=2)


@pytest.fixture
def fake_speaker(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("sounddevice")
    devices: list[dict[str, Any]] = [
        {"name": "Glasses array", "max_input_channels": 4, "max_output_channels": 0, "default_samplerate": 48000.0},
        {"name": "Bone conduction", "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 48000.0},
    ]

    class PortAudioError(Exception):
        pass

    def query_devices(device: Any = None, kind: str | None = None) -> Any:
        if device is None and kind is None:
            return devices
        outputs = [(i, d) for i, d in enumerate(devices) if d["max_output_channels"] > 0]
        if device is None:
            return outputs[0][1]
        for i, d in outputs:
            if device == i or (isinstance(device, str) and device in d["name"]):
                return d
        raise ValueError(f"No output device matching {device!r}")

    module.query_devices = query_devices  # type: ignore[attr-defined]
    module.OutputStream = FakeOutputStream  # type: ignore[attr-defined]
    module.PortAudioError = PortAudioError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    FakeOutputStream.plan, FakeOutputStream.played = {}, []
    return module


def test_the_device_plays_clauses_whole_and_silence_between(fake_speaker: types.ModuleType) -> None:
    FakeOutputStream.plan = {"underflow_at": (3,)}
    device = SpeakerDevice("Bone", 16_000)
    device.start()
    clause = np.linspace(0.1, 0.5, 800).astype(np.float32)
    device.play(clause)
    deadline = time.monotonic() + 5
    while device.queued_s > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    device.close()
    played = np.concatenate(FakeOutputStream.played)
    assert not np.isnan(played).any()  # every frame asked for was filled
    begin = int(np.flatnonzero(played)[0])
    np.testing.assert_array_equal(played[begin : begin + 800], clause)
    assert not played[begin + 800 :].any() and device.underruns == 1


def test_a_vanished_speaker_stops_speech_and_not_the_session(
    fake_speaker: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeOutputStream.plan = {"vanish_after": 5}
    events = Collect("events")
    config = _config()
    detectors = ScriptedDetectors(config.vad.frame_ms)

    async def run() -> SessionResult:
        return await run_live(  # live, not a replay: the device is watched while the session runs
            config,
            ScriptedDecoder(script=SPEECH),
            TimedSource(),
            [events],
            detectors=Detectors(detectors.is_speech, detectors.speech_spans),
            speech=Speech(FakeVoice(), device=SpeakerDevice(None, 48_000)),
        )

    result = asyncio.run(run())
    # Live, how the words fall into utterances depends on the machine's speed; every one is final.
    finals = [r["committed"] for r in events.records if r["type"] == "transcript" and r["final"]]
    assert " ".join(finals) == "The quick brown fox jumps. Over the lazy dog. Then it slept."
    message = "livesub: speaker device 'Bone conduction' vanished; speech output stopped (subtitles go on)"
    assert capsys.readouterr().err.splitlines() == [message]
    assert result.speech is not None and result.speech.stats()["device_lost"] is not None


def test_a_missing_speaker_is_a_one_line_error(fake_speaker: types.ModuleType) -> None:
    with pytest.raises(AudioError, match=r"no output device 'Headset'.*available: 1: Bone conduction"):
        SpeakerDevice("Headset", 48_000)


def test_the_wearer_is_never_spoken_back_to_the_wearer() -> None:
    from pipeline.events import Transcript, Translation
    from pipeline.outputs.speech import SpeechBranch
    from pipeline.runner import Clock, Emission

    voice = FakeVoice()
    branch = SpeechBranch(_config().tts, voice, Clock(replay=True), translating=False)
    for utterance, speaker in enumerate(["wearer", "partner", None]):
        event = Transcript(utterance, "Where is the station?", "", 0.0, 1.0, "en", final=True, speaker=speaker)
        branch.write(Emission(event, 1.0, 1.0))
    assert [u for u, _, _ in branch._pending] == [1, 2]
    translating = SpeechBranch(_config().tts, voice, Clock(replay=True), translating=True)
    for utterance, speaker in enumerate(["wearer", "partner"]):
        translation = Translation(utterance, "Where is it?", "", 0.0, 1.0, "es", "en", final=True, speaker=speaker)
        translating.write(Emission(translation, 1.0, 1.0))
    assert [u for u, _, _ in translating._pending] == [1]


def test_a_clause_the_voice_cannot_say_is_skipped_and_the_rest_is_spoken(capsys: pytest.CaptureFixture[str]) -> None:
    class Stumbles(FakeVoice):
        def synthesize(self, text: str, length_scale: float = 1.0) -> np.ndarray:
            if text.startswith("Over"):
                raise RuntimeError("phonemizer failed")
            return super().synthesize(text, length_scale)

    voice = Stumbles()
    result = _speak(voice)
    assert voice.texts == ["The quick brown fox jumps.", "Then it slept."]
    assert result.speech is not None and result.speech.stats()["failed_clauses"] == 1
    assert capsys.readouterr().err.splitlines() == [
        "livesub: the voice failed on a clause (RuntimeError); it is skipped"
    ]


def test_a_final_that_comes_at_once_is_still_cut_into_clauses() -> None:
    split = ClauseSplitter()
    text = "This may be done in advance, in addition to changes in our organisation. It is the end"
    assert split.feed(3, text, True) == [
        "This may be done in advance,",
        "in addition to changes in our organisation.",
        "It is the end",
    ]
