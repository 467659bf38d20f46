"""Many recordings at once: `transcribe`/`notes` with --workers and --ray give what a plain run gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.cli import main

from .conftest import FIXTURES

pytestmark = pytest.mark.integration

NAMES = ["fleurs-en-003.ogg", "fleurs-es-003.ogg", "de_leopard_leichenhalle.wav"]


def _inputs(tmp_path: Path) -> list[str]:
    folder = tmp_path / "in"
    folder.mkdir()
    return [str(shutil.copy2(FIXTURES / name, folder / name)) for name in NAMES]


Segments = dict[str, list[tuple[float, float, str, str | None]]]


def _one_thread(tmp_path: Path) -> list[str]:
    """Options giving every model one CPU thread, as a pool worker's share of two cores is. On
    another number of threads CTranslate2 adds in another order: with Intel MKL it moved Whisper's
    word times by a few hundredths of a second (5.02 against 5.04 s), with oneDNN (the tests'
    arithmetic, see conftest) it changed a comma ("Raum wurde" / "Raum, wurde")."""
    path = tmp_path / "one_thread.toml"
    path.write_text("[asr]\nthreads = 1\n", encoding="utf-8")
    return ["--config", str(path)]


def _transcripts(folder: Path) -> Segments:
    """Each transcript's segments: times, text and speaker."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["complete"] is True
        found[path.name] = [(s["start"], s["end"], s["text"], s.get("speaker")) for s in document["segments"]]
    return found


def _same(
    a: dict[str, list[tuple[float, float, str, str | None]]], b: dict[str, list[tuple[float, float, str, str | None]]]
) -> bool:
    """The same files, segments, texts and speakers; times within 0.1 s."""
    if a.keys() != b.keys() or any(len(a[k]) != len(b[k]) for k in a):
        return False
    pairs = [(x, y) for k in a for x, y in zip(a[k], b[k], strict=True)]
    return all(x[2:] == y[2:] and abs(x[0] - y[0]) <= 0.1 and abs(x[1] - y[1]) <= 0.1 for x, y in pairs)


def _notes(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.notes.md"))}


def test_a_process_pool_gives_what_a_plain_run_gives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = [*_inputs(tmp_path), *_one_thread(tmp_path)]
    assert main(["transcribe", *inputs, "--out", str(tmp_path / "plain"), "--formats", "json"]) == 0
    pooled = ["transcribe", *inputs, "--out", str(tmp_path / "pool"), "--formats", "json", "--workers", "2"]
    assert main(pooled) == 0
    assert _same(_transcripts(tmp_path / "plain"), _transcripts(tmp_path / "pool"))
    assert len(_transcripts(tmp_path / "pool")) == 3
    capsys.readouterr()

    # A rerun skips what is done; --force does it again.
    assert main(pooled) == 0
    assert capsys.readouterr().out.count("transcribed before, skipped") == 3
    (tmp_path / "pool" / "fleurs-es-003.json").unlink()
    assert main(pooled) == 0
    out = capsys.readouterr().out
    assert out.count("transcribed before, skipped") == 2 and "fleurs-es-003.ogg: 1 segments" in out
    assert main([*pooled, "--force"]) == 0
    assert "skipped" not in capsys.readouterr().out


def test_three_recordings_through_ray_give_the_notes_a_plain_run_gives(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is the optional 'cluster' extra")
    inputs = [*_inputs(tmp_path), *_one_thread(tmp_path)]
    assert main(["notes", *inputs, "--out", str(tmp_path / "plain")]) == 0
    assert main(["notes", *inputs, "--out", str(tmp_path / "ray"), "--ray", "auto"]) == 0
    assert _same(_transcripts(tmp_path / "plain"), _transcripts(tmp_path / "ray"))
    assert _notes(tmp_path / "plain") == _notes(tmp_path / "ray")
    assert len(_notes(tmp_path / "ray")) == 3


def test_a_failing_file_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = _inputs(tmp_path)
    broken = tmp_path / "in" / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt not really")
    command = ["transcribe", inputs[0], str(broken), inputs[1], "--out", str(tmp_path / "out"), "--workers", "2"]
    assert main([*command, "--formats", "json"]) == 1
    captured = capsys.readouterr()
    assert len(_transcripts(tmp_path / "out")) == 2
    errors = [line for line in captured.err.splitlines() if line.startswith("livesub: ")]
    assert len(errors) == 1 and "broken.wav" in errors[0]
