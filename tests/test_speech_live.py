"""Speech output on the real models: a Spanish recording translated into English by Whisper,
spoken by piper through the bone-conduction chain into a WAV, and heard back by Whisper; and
the command line's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile

from pipeline import cli
from pipeline.algos.wer import wer

from .conftest import FIXTURES

pytestmark = pytest.mark.integration
DEMO = FIXTURES / "es_fleurs_3sentences.wav"


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    """The demo recording replayed with English speech written to a WAV, and its events."""
    out = tmp_path_factory.mktemp("speech")
    wav, events = out / "speech.wav", out / "events.jsonl"
    replay = ["live", "--input", str(DEMO), "--instant", "--language", "es", "--to", "en"]
    code = cli.main([*replay, "--speak-to", str(wav), "--events", str(events)])
    assert code == 0
    return wav, [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]


def test_the_spoken_translation_is_heard_back_as_it_was_written(
    spoken: tuple[Path, list[dict[str, object]]], tmp_path: Path
) -> None:
    wav, events = spoken
    translated = " ".join(
        str(e["committed"]) for e in events if e["type"] == "translation" and e["final"] and e["committed"]
    )
    assert soundfile.info(str(wav)).samplerate == 48_000
    code = cli.main(["transcribe", str(wav), "--language", "en", "--speakers", "none", "--formats", "txt"])
    assert code == 0
    heard = wav.with_suffix(".txt").read_text(encoding="utf-8")
    assert len(translated.split()) > 40
    assert wer(translated, heard) <= 0.10, (translated, heard)


def test_the_speech_is_at_the_target_loudness_and_never_above_the_ceiling(
    spoken: tuple[Path, list[dict[str, object]]],
) -> None:
    audio, rate = soundfile.read(spoken[0], dtype="float32")
    assert len(audio) >= 35.7 * rate  # on the input's timeline, as long as the input at least
    loudness = pyloudnorm.Meter(rate).integrated_loudness(audio)
    assert abs(loudness - -18.0) <= 1.0, loudness
    assert np.abs(audio).max() <= 10 ** (-1 / 20) + 1 / 32768  # the ceiling, and 16-bit rounding


def test_a_language_without_a_voice_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["live", "--input", str(DEMO), "--instant", "--language", "es", "--speak-to", str(tmp_path / "s.wav")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("livesub: error: no voice for 'es'") and "piper-joe (en)" in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "s.wav").exists()


def test_an_instant_replay_is_not_played_on_a_speaker(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["live", "--input", str(DEMO), "--instant", "--language", "es", "--to", "en", "--speak"]) == 2
    assert "give --speak-to FILE instead" in capsys.readouterr().err


def test_a_voice_directory_that_is_not_a_voice_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["live", "--input", str(DEMO), "--instant", "--to", "en", "--voice", str(tmp_path)]
    assert cli.main([*args, "--language", "es", "--speak-to", str(tmp_path / "s.wav")]) == 2
    assert "not a piper voice" in capsys.readouterr().err


def test_bench_measures_the_speech(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    args = [
        "bench",
        str(DEMO),
        "--mode",
        "instant",
        "--to",
        "en",
        "--speak-to",
        str(tmp_path),
        "--json",
        str(report_path),
    ]
    assert cli.main(args) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))
    speech = report["speech"]
    assert speech["clauses"] >= 3 and speech["skipped_clauses"] == 0 and 0 < speech["rtf"] < 1
    # Three sentences, each spoken: in a replay synthesis counts as instant, so the speech starts
    # when the first clause is committed, before or soon after the speaker stops.
    assert len(speech["per_utterance"]) == 3
    assert all(-10 < u["first_audio"] < 3 for u in speech["per_utterance"])
    assert report["latency"]["tts_first_audio_p50"] == speech["first_audio_p50"]
    assert 0.0 <= speech["started_before_final"] <= 1.0
    assert (tmp_path / "es_fleurs_3sentences.speech.wav").is_file()
