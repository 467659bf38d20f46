"""Bench pieces that need no model: reference files, the report table, the event records."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipeline.algos.metrics import RefUtterance, utterance_timings
from pipeline.bench import (
    Reference,
    Run,
    _first_texts,
    _timed,
    load_reference,
    speaker_figures,
    table,
    translated_utterances,
    translation_figures,
)
from pipeline.errors import ConfigError
from pipeline.events import Subtitle, Transcript, Translation, Word
from pipeline.outputs.view import TerminalView, event_record
from pipeline.runner import Emission
from pipeline.session import SessionResult

from .conftest import FIXTURES


def test_stm_reference() -> None:
    reference = load_reference(FIXTURES / "en_conversation_2spk_30s.stm")
    assert len(reference.utterances) == 13
    assert reference.utterances[0].start == 6.68 and reference.utterances[0].text == "Hello?"
    assert reference.has_text


def test_json_reference_and_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "r.json"
    good.write_text(
        json.dumps({"language": "es", "segments": [{"start": 1, "end": 2.5, "ref": "hola", "translation": "hello"}]})
    )
    reference = load_reference(good)
    assert reference.language == "es" and reference.utterances[0].translation == "hello"
    bad = tmp_path / "bad.json"
    bad.write_text('{"segments": [{"begin": 1}]}')
    with pytest.raises(ConfigError, match="not a reference file"):
        load_reference(bad)
    with pytest.raises(ConfigError, match="cannot read reference"):
        load_reference(tmp_path / "missing.json")
    stm = tmp_path / "bad.stm"
    stm.write_text("talk 1 A 0.0 1.5 hello there\nsecret words\n")
    with pytest.raises(ConfigError, match=r"bad.stm: not a reference file \(line 2 is not an STM line") as caught:
        load_reference(stm)
    assert "secret" not in str(caught.value)  # reference text stays out of messages
    latin1 = tmp_path / "latin1.stm"
    latin1.write_bytes("talk 1 A 0.0 1.5 façade\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_reference(latin1)


def test_table_shows_ratios_to_the_first_configuration() -> None:
    base = {
        "audio_s": 10.0,
        "wer": 0.1,
        "latency": {"final_p50": 0.5},
        "utterances": {"reference": 3},
        "stages": {"asr": {"rtf": 0.4}},
    }
    other = {
        "audio_s": 10.0,
        "wer": 0.2,
        "latency": {"final_p50": 1.0},
        "utterances": {"reference": 3},
        "stages": {"asr": {"rtf": 0.2}},
    }
    text = table([("a", base), ("b", other)])
    wer_row = next(line for line in text.splitlines() if line.startswith("WER"))
    assert wer_row.split() == ["WER", "0.100", "0.200", "2.00x"]
    assert next(line for line in text.splitlines() if line.startswith("asr rtf")).split()[-1] == "0.50x"


def test_event_records() -> None:
    transcript = Transcript(2, "hello", "there", 1.0, 2.0, "en")
    record = event_record(Emission(transcript, 2.31, 2.3))
    assert record == {
        "type": "transcript",
        "utterance": 2,
        "final": False,
        "start": 1.0,
        "end": 2.0,
        "committed": "hello",
        "tentative": "there",
        "language": "en",
        "words": [],
        "speaker": None,  # who spoke, where known
        "emitted": 2.31,
        "stream": 2.3,
    }
    subtitle = event_record(Emission(Subtitle(2, ("hello there",), 1.0, 2.0), 2.31, 2.3))
    assert subtitle["type"] == "subtitle" and subtitle["lines"] == ["hello there"]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_view_redraws_the_display_in_place_and_keeps_finals() -> None:
    stream = _Tty()
    view = TerminalView(stream)
    view.write(Emission(Subtitle(0, ("hello",), 0.0, 1.0), 1.0, 1.0))
    view.write(Emission(Subtitle(0, ("hello there",), 0.0, 1.5), 1.5, 1.5))
    view.write(Emission(Transcript(0, "Hello there.", "", 0.0, 2.0, "en", final=True), 2.0, 2.0))
    out = stream.getvalue()
    assert out.count("\x1b[1F\x1b[J") == 2  # the live line was cleared before each redraw and before the final
    assert out.endswith("[00:00.0] Hello there.\n")
    plain = io.StringIO()
    view = TerminalView(plain)
    view.write(Emission(Subtitle(0, ("hello",), 0.0, 1.0), 1.0, 1.0))
    view.write(Emission(Transcript(0, "Hello.", "", 0.0, 2.0, "en", final=True), 2.0, 2.0))
    assert plain.getvalue() == "[00:00.0] Hello.\n"  # no escape codes when not a terminal


def test_translation_figures_on_a_hand_made_timeline() -> None:
    # Two reference utterances; the pipeline translated the first in two events and the second in
    # one; a third utterance of ours (no overlap with either) is ignored.
    references = (
        RefUtterance(1.0, 3.0, "hola amigo", "hello friend"),
        RefUtterance(5.0, 7.0, "adiós", "goodbye"),
    )
    emissions = [
        Emission(Translation(0, "hello", "frend", 1.0, 2.5, "es", "en"), 2.8, 2.8),
        Emission(Translation(0, "hello friend", "", 1.0, 3.2, "es", "en", final=True), 3.6, 3.6),
        Emission(Translation(1, "goodbye", "", 5.0, 7.1, "es", "en", final=True), 7.5, 7.5),
        Emission(Translation(2, "noise", "", 9.0, 9.5, "es", "en", final=True), 9.9, 9.9),
    ]
    run = Run(Path("x.wav"), Reference("es", references, True, "test"), SessionResult(emissions), 0.0)
    translated = translated_utterances(run, realtime=True)
    assert [(t.text, t.word_times, t.final) for t in translated] == [
        ("hello friend", [2.8, 3.6], 3.6),
        ("goodbye", [7.5], 7.5),
    ]
    figures = translation_figures([run], realtime=True)
    assert figures["chrf"] == 100.0 and figures["dropped"] == 0 and figures["retractions"] == 0
    assert figures["final_p50"] == pytest.approx(0.55)  # (0.6 + 0.5) / 2
    # AL: utterance 1: delays 1.8, 2.6 over 2 s for 2 words (gamma 1): (1.8 - 0 + 2.6 - 1) / 2 = 1.7;
    # utterance 2: delay 2.5 >= its length 2 s: AL = 2.5. The mean: 2.1.
    assert figures["al"] == pytest.approx(2.1)


def test_first_text_of_a_translated_utterance_is_its_translation_the_wearer_saw() -> None:
    # Whisper translates: the English shows while the partner speaks, the Spanish source text
    # only after the final. The wearer's first text is the first English with a word the final
    # keeps ("hello"; "Close the door." shares nothing with it). The second reference utterance
    # was only transcribed (the wearer's own words, captioned): its transcript counts. The third
    # was translated, but nothing shown of it stayed: its source text, never shown, does not count.
    references = (
        RefUtterance(1.0, 3.0, "hola amigo", "hello friend"),
        RefUtterance(5.0, 6.0, "good night"),
        RefUtterance(8.0, 9.0, "adiós", "goodbye"),
    )
    hola, good, adios = Word("hola", 1.0, 2.0), Word("good", 5.0, 5.5), Word("adiós", 8.0, 8.8)
    emissions = [
        Emission(Translation(0, "", "Close the door.", 1.0, 1.5, "es", "en"), 1.6, 1.6),
        Emission(Translation(0, "", "hello frend", 1.0, 2.5, "es", "en"), 2.6, 2.6),
        Emission(Translation(0, "hello friend", "", 1.0, 3.2, "es", "en", final=True), 3.6, 3.6),
        Emission(Transcript(0, "hola amigo", "", 1.0, 3.2, "es", final=True, words=(hola,)), 3.9, 3.9),
        Emission(Transcript(1, "", "good", 5.0, 5.4, "en"), 5.5, 5.5),
        Emission(Transcript(1, "good night", "", 5.0, 6.0, "en", final=True, words=(good,)), 6.4, 6.4),
        Emission(Translation(2, "", "by", 8.0, 8.5, "es", "en"), 8.6, 8.6),
        Emission(Translation(2, "", "", 8.0, 9.0, "es", "en", final=True), 9.3, 9.3),
        Emission(Transcript(2, "adiós", "", 8.0, 9.0, "es", final=True, words=(adios,)), 9.5, 9.5),
    ]
    run = Run(Path("x.wav"), Reference("es", references, True, "test"), SessionResult(emissions), 0.0)
    assert _first_texts(run, realtime=True) == [pytest.approx(1.6), pytest.approx(0.5), None]


def test_translation_figures_are_null_without_reference_translations() -> None:
    references = (RefUtterance(1.0, 3.0, "hola amigo"),)
    emissions = [Emission(Translation(0, "hello friend", "", 1.0, 3.2, "es", "en", final=True), 3.6, 3.6)]
    run = Run(Path("x.wav"), Reference("es", references, True, "test"), SessionResult(emissions), 0.0)
    assert translation_figures([run], realtime=True)["chrf"] is None
    # Reference translations, but the pipeline was not translating: no figures, rather than zeros.
    transcribed = SessionResult([Emission(Transcript(0, "hola amigo", "", 1.0, 3.2, "es", final=True), 3.6, 3.6)])
    references = (RefUtterance(1.0, 3.0, "hola amigo", "hello friend"),)
    run = Run(Path("x.wav"), Reference("es", references, True, "test"), transcribed, 0.0)
    assert translation_figures([run], realtime=True)["chrf"] is None


def test_speaker_figures_score_each_speaker_and_the_labels_on_a_hand_made_timeline() -> None:
    # The partner speaks Spanish, the wearer answers in English. The pipeline hears the partner
    # right and labels it so; it labels the wearer's answer "partner" and translates it: one
    # wearer utterance labelled wrong and translated as another speaker's.
    references = (
        RefUtterance(1.0, 3.0, "hola amigo", "hello friend", "es", "partner"),
        RefUtterance(4.0, 6.0, "good morning", "", "en", "wearer"),
    )

    def words(text: str, start: float) -> tuple[Word, ...]:
        return tuple(Word(w, start + i * 0.5, start + i * 0.5 + 0.4) for i, w in enumerate(text.split()))

    emissions = [
        Emission(Transcript(0, "hola amigo", "", 1.0, 3.0, "es", True, words("hola amigo", 1.2), "partner"), 3.5, 3.5),
        Emission(Translation(0, "hello friend", "", 1.0, 3.0, "es", "en", final=True, speaker="partner"), 3.6, 3.6),
        Emission(
            Transcript(1, "good morning", "", 4.0, 6.0, "en", True, words("good evening", 4.2), "partner"), 6.8, 6.8
        ),
        Emission(Translation(1, "good evening", "", 4.0, 6.0, "en", "en", final=True, speaker="partner"), 6.9, 6.9),
    ]
    run = Run(Path("x.wav"), Reference("es", references, True, "test"), SessionResult(emissions), 0.0)
    run.timings = utterance_timings(references, _timed(run.result, realtime=True))
    figures = speaker_figures([run])
    assert figures is not None
    assert figures["partner"] == {
        "wer": 0.0,
        "final_p50": pytest.approx(0.5),
        "final_p95": pytest.approx(0.5),
        "utterances": 1,
        "labelled": 1,
        "labelled_right": 1,
    }
    assert figures["wearer"]["wer"] == 0.5 and figures["wearer"]["labelled_right"] == 0
    assert figures["wearer"]["translated_as_other"] == 1
    # References that name no speaker give none.
    plain = Run(Path("x.wav"), Reference("es", (RefUtterance(1.0, 3.0, "hola"),), True, "t"), SessionResult(), 0.0)
    assert speaker_figures([plain]) is None
