"""`livesub notes`: from a transcript or a recording to `<stem>.notes.md` (integration)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pipeline.backends.translators import apertium_pairs
from pipeline.cli import main

from .conftest import FIXTURES


def _segment(start: float, text: str, speaker: str, seconds_a_word: float = 0.4) -> dict[str, object]:
    words = []
    for i, word in enumerate(text.split()):
        words.append({"word": word, "start": start + i * seconds_a_word, "end": start + (i + 1) * seconds_a_word})
    end = start + len(words) * seconds_a_word
    return {"start": start, "end": end, "text": text, "language": "en", "speaker": speaker, "words": words}


def _meeting(path: Path) -> Path:
    """A scripted two-person meeting: a budget, then a trip; a decision and a planted commitment."""
    said = [
        (0.0, "Let's look at the budget for the new office first.", "S1"),
        (5.0, "The budget for the office furniture is too high this quarter.", "S2"),
        (11.0, "We could cut the furniture budget by a fifth and keep the office plan.", "S1"),
        (17.0, "We decided to keep the office budget as it is.", "S1"),
        (22.0, "I'll send the report on Friday.", "S2"),
        (26.0, "Now the trip to the customer in Lisbon next month.", "S1"),
        (31.0, "The flights to Lisbon are cheaper on Tuesday mornings.", "S2"),
        (36.0, "Maria will book the hotel in Lisbon by Monday.", "S1"),
    ]
    document = {
        "file": "meeting.wav",
        "language": "en",
        "duration_s": 41.0,
        "speakers": {"S1": 22.5, "S2": 13.0},
        "segments": [_segment(start, text, who) for start, text, who in said],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_notes_from_a_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transcript = _meeting(tmp_path / "meeting.json")
    assert main(["notes", str(transcript)]) == 0
    assert "1 decisions, 3 action items" in capsys.readouterr().out  # "Let's look at ..." is one
    notes = (tmp_path / "meeting.notes.md").read_text(encoding="utf-8")

    assert notes.startswith("# Notes: meeting.wav\n")
    assert "- Duration: 00:41" in notes
    assert "- Language: en" in notes
    assert "- Speakers: S1 00:22 (63%), S2 00:13 (37%)" in notes
    sections = re.split(r"^## ", notes, flags=re.MULTILINE)
    assert [s.splitlines()[0] for s in sections[1:]] == ["Summary", "Topics", "Decisions", "Action items"]
    # Every summary line is a sentence of the transcript, at its time.
    document = json.loads(transcript.read_text())
    starts = {s["text"]: s["start"] for s in document["segments"]}
    for line in sections[1].splitlines()[2:]:
        if line.startswith("- "):
            stamp, text = re.fullmatch(r"- \[(\d\d:\d\d)\] (?:\*\*S\d\*\*: )?(.*)", line).groups()  # type: ignore[union-attr]
            assert text in starts
            assert stamp == f"00:{int(starts[text]):02d}"
    # Topics with their times and keywords (eight sentences are too few to split: one topic).
    topics = [line for line in sections[2].splitlines() if line.startswith("- ")]
    assert topics[0].startswith("- [00:00]–00:") and "budget" in topics[0]
    assert "- [00:17] **S1**: We decided to keep the office budget as it is." in sections[3]
    assert "- [00:22] **S2**: I'll send the report on Friday. (owner: S2; due: on Friday)" in sections[4]
    assert "(owner: Maria; due: by Monday)" in sections[4]


def test_notes_from_a_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = shutil.copy(FIXTURES / "en_conversation_2spk_30s.wav", tmp_path / "call.wav")
    assert main(["notes", str(recording), "--language", "en"]) == 0
    assert (tmp_path / "call.json").is_file()  # the transcript is written too
    notes = (tmp_path / "call.notes.md").read_text(encoding="utf-8")
    assert "- Speakers: S1" in notes and ", S2 " in notes
    assert "(from the file time of call.wav)" in notes
    # Times link into the recording.
    assert re.search(r"\[00:\d\d\]\(call\.wav#t=\d+\)", notes)


@pytest.mark.skipif(("en", "es") not in apertium_pairs(), reason="Apertium en-es is not installed")
def test_notes_translated(tmp_path: Path) -> None:
    transcript = _meeting(tmp_path / "meeting.json")
    assert main(["notes", str(transcript), "--to", "es", "--out", str(tmp_path / "es")]) == 0
    notes = (tmp_path / "es" / "meeting.notes.md").read_text(encoding="utf-8")
    assert "presupuesto" in notes  # "budget"
    assert "## Action items" in notes  # the headings stay


def test_notes_refuse_a_pair_nothing_translates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transcript = _meeting(tmp_path / "meeting.json")
    assert main(["notes", str(transcript), "--to", "fi"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("livesub: no backend translates notes en -> fi; available: apertium (")
    assert "\n" not in error


@pytest.mark.parametrize(
    ("segment", "problem"),
    [
        ({"start": 0.0, "end": 1.0, "text": "Hi.", "words": "x"}, "'words' must be a list"),
        ({"start": "a", "end": None, "text": 5}, "'start' and 'end' must be seconds"),
        ({"start": 2.0, "end": 1.0, "text": "Hi."}, "'start' and 'end' must be seconds"),
        ({"start": 0.0, "end": 1.0, "text": 5}, "'text' must be a string"),
        ({"start": 0.0, "end": 1.0, "text": "Hi.", "speaker": 3}, "'speaker' must be a string"),
        ("Hi.", "not an object"),
    ],
)
def test_notes_refuse_a_transcript_with_a_malformed_segment(
    segment: object, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"segments": [segment]}), encoding="utf-8")
    assert main(["notes", str(bad)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"livesub: {bad}: not a livesub transcript (segment 0: {problem}") and "\n" not in error
    assert not (tmp_path / "bad.notes.md").exists()


def test_notes_refuse_what_is_not_a_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "other.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    assert main(["notes", str(bad)]) == 1
    assert capsys.readouterr().err.strip() == f"livesub: {bad}: not a livesub transcript (no segments)"
    assert not (tmp_path / "other.notes.md").exists()
