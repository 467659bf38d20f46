from __future__ import annotations

import json
import stat
from itertools import pairwise
from pathlib import Path

import pytest
import srt
import webvtt

from pipeline.algos.cues import cues_for, wrap_lines
from pipeline.events import Transcript, Word
from pipeline.outputs.formats import TranscriptWriter, timestamp


def _segment(text: str, start: float, seconds_per_word: float = 0.4, utterance: int = 0) -> Transcript:
    words = []
    t = start
    for token in text.split():
        words.append(Word(token, round(t, 3), round(t + seconds_per_word * 0.9, 3)))
        t += seconds_per_word
    return Transcript(utterance, text, "", start, round(t, 3), "en", final=True, words=tuple(words))


def test_timestamps() -> None:
    assert timestamp(0, ",") == "00:00:00,000"
    assert timestamp(3661.5, ",") == "01:01:01,500"
    assert timestamp(59.9996, ".") == "00:01:00.000"
    assert timestamp(-0.2, ".") == "00:00:00.000"
    assert timestamp(36000.0, ".") == "10:00:00.000"


def test_short_segment_is_one_cue() -> None:
    cues = cues_for(_segment("Hello there.", 1.0))
    assert [(c.start, c.end, c.text) for c in cues] == [(1.0, 1.8, "Hello there.")]


def test_long_segment_is_split_at_sentence_end_within_limits() -> None:
    text = (
        "This is the first sentence of a long answer. "
        "And here the speaker goes on and on about something else entirely without stopping"
    )
    cues = cues_for(_segment(text, 10.0), max_chars=84, max_seconds=7.0)
    assert len(cues) >= 2
    assert cues[0].text.endswith("answer.")
    assert all(len(c.text) <= 84 for c in cues)
    assert all(c.end - c.start <= 7.0 + 0.4 for c in cues)
    assert " ".join(c.text for c in cues) == text
    assert all(a.end <= b.start for a, b in pairwise(cues))


def test_wrap_lines_balances_two_lines() -> None:
    assert wrap_lines("short", 84) == ["short"]
    lines = wrap_lines("one two three four five six seven eight nine ten eleven twelve", 84)
    assert len(lines) == 2
    assert abs(len(lines[0]) - len(lines[1])) <= 8


def test_files_validate_and_agree(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, "talk", ("srt", "vtt", "json", "txt"))
    segments = [
        _segment("Tom & Jerry <live> --> now.", 0.5),
        _segment(
            "A second segment that is long enough to need more than one cue on a small screen, surely.",
            3.0,
            utterance=1,
        ),
    ]
    for s in segments:
        writer.add(s)
    writer.write_json({"language": "en", "complete": True})
    writer.close()

    parsed_srt = list(srt.parse((tmp_path / "talk.srt").read_text(encoding="utf-8")))
    parsed_vtt = webvtt.read(str(tmp_path / "talk.vtt"))
    assert len(parsed_srt) == len(parsed_vtt.captions) >= 3
    assert [c.index for c in parsed_srt] == list(range(1, len(parsed_srt) + 1))
    assert parsed_srt[0].start.total_seconds() == 0.5
    assert parsed_vtt.captions[0].start == "00:00:00.500"
    assert "&amp;" in (tmp_path / "talk.vtt").read_text() and "&lt;live&gt;" in (tmp_path / "talk.vtt").read_text()
    assert "-->" not in parsed_srt[0].content
    for caption in parsed_srt:
        assert all(len(line) <= 42 + 10 for line in caption.content.splitlines())
        assert len(caption.content.splitlines()) <= 2

    assert (tmp_path / "talk.txt").read_text(encoding="utf-8").splitlines() == [s.text for s in segments]
    document = json.loads((tmp_path / "talk.json").read_text(encoding="utf-8"))
    assert document["complete"] is True
    assert [s["text"] for s in document["segments"]] == [s.text for s in segments]
    assert document["segments"][1]["words"][0] == {"word": "A", "start": 3.0, "end": 3.36, "probability": 1.0}


def test_every_file_gets_the_same_permissions_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, "talk", ("srt", "vtt", "json", "txt"))
    writer.add(_segment("One sentence.", 0.5))
    writer.write_json({"complete": False})
    writer.write_json({"complete": True})  # written again over the first, as a live session's end does
    writer.close()
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
    assert sorted(modes) == ["talk.json", "talk.srt", "talk.txt", "talk.vtt"]
    assert len(set(modes.values())) == 1  # the umask decides for all alike
    assert json.loads((tmp_path / "talk.json").read_text(encoding="utf-8"))["complete"] is True


def test_no_segments_means_no_files(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, "silence", ("srt", "vtt", "json", "txt"))
    writer.write_json({"complete": True})
    writer.close()
    assert list(tmp_path.iterdir()) == []
    assert writer.written == []


def test_a_long_segment_without_word_times_is_split_too() -> None:
    text = (
        "This is the first sentence of a long translation. "
        "And here the speaker goes on and on about something else entirely without stopping"
    )
    segment = Transcript(0, text, "", 10.0, 24.0, "en", final=True)  # a translation: no words
    cues = cues_for(segment, max_chars=84, max_seconds=7.0)
    assert len(cues) >= 2 and cues[0].text.endswith("translation.")
    assert " ".join(c.text for c in cues) == text
    assert cues[0].start == 10.0 and cues[-1].end == pytest.approx(24.0, abs=0.3)
    assert all(a.end <= b.start for a, b in pairwise(cues))


def test_a_cue_does_not_break_after_a_title() -> None:
    text = "When the rain stopped we all walked home, and Mr. Dashwood showed us the way past the old mill"
    cues = cues_for(_segment(text, 0.0), max_chars=84, max_seconds=30.0)
    # No sentence or clause ends in the second half of the first cue's words: it is cut where it is full.
    assert [c.text for c in cues] == [text.removesuffix(" the old mill"), "the old mill"]


def test_srt_is_what_srt_composes_and_blank_lines_do_not_split_a_cue(tmp_path: Path) -> None:
    writer = TranscriptWriter(tmp_path, "gap", ("srt", "vtt"))
    writer.add(Transcript(0, "first line\n\nsecond line", "", 59.9996, 61.2345, "en", final=True))
    writer.add(_segment("And then more.", 62.0, utterance=1))
    writer.close()

    text = (tmp_path / "gap.srt").read_text(encoding="utf-8")
    parsed_srt = list(srt.parse(text))
    assert srt.compose(parsed_srt) == text
    assert [c.content for c in parsed_srt] == ["first line\nsecond line", "And then more."]
    assert text.startswith("1\n00:01:00,000 --> 00:01:01,234\n")  # rounded to the millisecond, as WebVTT
    parsed_vtt = webvtt.read(str(tmp_path / "gap.vtt"))
    assert [c.text for c in parsed_vtt.captions] == ["first line\nsecond line", "And then more."]
    assert parsed_vtt.captions[0].start == "00:01:00.000"
