"""`livesub transcribe` with the real Whisper base model on real recordings (integration)."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
import soundfile
import srt
import webvtt

from pipeline.algos.wer import wer
from pipeline.backends.whisper import WhisperDecoder
from pipeline.bench import build_stream, find_reference, sentence_check
from pipeline.config import Config, load_config
from pipeline.errors import AudioError
from pipeline.events import SAMPLE_RATE
from pipeline.transcribe import transcribe_file

from .conftest import FIXTURES, reference

pytestmark = pytest.mark.integration

# Bounds sit a little above what faster-whisper's own transcribe() scores on the same clip with
# the same model and beam size (measured; see README "Accuracy"), so a regression fails here.
CASES = [
    ("en_jfk_inaugural_44k_stereo.flac", "en", 0.05),  # 44.1 kHz, 24-bit, stereo
    ("en_conversation_2spk_30s.wav", "en", 0.25),  # two speakers, telephone quality
    ("fleurs-en-004.ogg", "en", 0.10),  # Opus, about -67 dBFS: very quiet
    ("fleurs-es-003.ogg", "es", 0.10),
    ("de_leopard_leichenhalle.wav", "de", 0.40),  # 10 words: each error is 0.1
    ("fleurs-fr-000.ogg", "fr", 0.35),  # about -62 dBFS
]


# Five FLEURS sentences read one after another with 1.5 s pauses, at the readers' own levels
# (one near -62 dBFS). With the previous chunk's text as its prompt, Whisper skipped the fourth
# French sentence in its 21 s chunk, and invented "Ich wünsche Ihnen einen schönen Abend." in the
# silence after the last German one. Bounds: measured 29.9% and 14.9% (faster-whisper's own
# transcribe() on the same files: 42.2% and 13.2%). French moves with the CPU's arithmetic, pinned
# as it is: 37.0% on an AMD EPYC in session 20, every sentence there and none invented, its
# errors Whisper base's own ("un 110 malveillant" for "un incendie malveillant").
MULTI_SENTENCE = [("fr", 0.40), ("de", 0.20)]


def _config(language: str = "auto") -> Config:
    return load_config([], {"asr": {"language": language}})


@pytest.mark.parametrize(("name", "language", "bound"), CASES)
def test_transcripts_are_accurate(
    whisper_base: WhisperDecoder, tmp_path: Path, name: str, language: str, bound: float
) -> None:
    result = transcribe_file(FIXTURES / name, _config(), whisper_base, tmp_path)
    assert result.language == language  # detected, not given
    document = json.loads((tmp_path / Path(name).with_suffix(".json").name).read_text(encoding="utf-8"))
    text = " ".join(s["text"] for s in document["segments"])  # the text files name speakers
    assert wer(reference(name), text, language) <= bound


def test_all_outputs_are_valid_and_consistent(whisper_base: WhisperDecoder, tmp_path: Path) -> None:
    name = "en_conversation_2spk_30s.wav"
    result = transcribe_file(FIXTURES / name, _config("en"), whisper_base, tmp_path)
    stem = tmp_path / "en_conversation_2spk_30s"
    assert sorted(p.name for p in result.outputs) == sorted(f"{stem.name}.{f}" for f in ("srt", "vtt", "json", "txt"))

    captions = list(srt.parse(stem.with_suffix(".srt").read_text(encoding="utf-8")))
    vtt = webvtt.read(str(stem.with_suffix(".vtt")))
    assert len(captions) == len(vtt.captions) > 3
    assert all(a.start <= a.end <= b.start for a, b in pairwise(captions))
    # Speech starts at 6.7 s (the .stm says 6.68): the first cue must not start in the silence.
    assert 5.5 < captions[0].start.total_seconds() < 7.5
    assert captions[-1].end.total_seconds() <= 30.0

    document = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    assert document["complete"] is True
    assert document["language"] == "en"
    assert document["model"]["id"] == "whisper-base"
    assert document["duration_s"] == pytest.approx(30.0, abs=0.01)
    assert set(document["timings"]) >= {"model_load_s", "asr_s", "wall_s", "rtf"}
    words = [w for s in document["segments"] for w in s["words"]]
    assert len(words) > 50
    assert all(0 <= w["start"] <= w["end"] <= 30.0 for w in words)
    lines = stem.with_suffix(".txt").read_text(encoding="utf-8").splitlines()
    assert lines == [f"[{s['speaker']}] {s['text']}" for s in document["segments"]]  # two speakers: named


def test_translate_task_gives_english(whisper_base: WhisperDecoder, tmp_path: Path) -> None:
    config = load_config([], {"asr": {"language": "es", "task": "translate"}})
    transcribe_file(FIXTURES / "fleurs-es-003.ogg", config, whisper_base, tmp_path)
    text = (tmp_path / "fleurs-es-003.txt").read_text(encoding="utf-8").lower()
    # "esto parece tener sentido ya que en la tierra no se percibe su movimiento ¿cierto?"
    assert "sense" in text and "earth" in text and "movement" in text


def test_a_file_damaged_part_way_keeps_the_transcript_before_the_damage(
    whisper_base: WhisperDecoder, tmp_path: Path
) -> None:
    audio, rate = soundfile.read(str(FIXTURES / "es_fleurs_3sentences.wav"), dtype="float32")
    path = tmp_path / "cut.flac"
    soundfile.write(str(path), audio, rate)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])  # the third sentence's end is gone
    with pytest.raises(AudioError, match=r"decoding failed after .* the transcript of the .* is saved"):
        transcribe_file(path, _config("es"), whisper_base, tmp_path)
    document = json.loads((tmp_path / "cut.json").read_text(encoding="utf-8"))
    assert document["complete"] is False
    assert 20.0 < document["duration_s"] < 32.0
    text = " ".join(segment["text"] for segment in document["segments"]).lower()
    assert "viajeros" in text and "funeral" in text  # the first two sentences are there


@pytest.mark.parametrize(("language", "bound"), MULTI_SENTENCE)
def test_no_sentence_is_lost_or_invented(
    whisper_base: WhisperDecoder, tmp_path: Path, language: str, bound: float
) -> None:
    audio, segments = build_stream(sorted(FIXTURES.glob(f"fleurs-{language}-00[0-4].ogg")))
    assert len(segments) == 5
    path = tmp_path / "sentences.wav"
    soundfile.write(path, audio, SAMPLE_RATE)
    path.with_suffix(".ref.json").write_text(json.dumps({"language": language, "segments": segments}))

    result = transcribe_file(path, _config(language), whisper_base, tmp_path)

    document = json.loads((tmp_path / "sentences.json").read_text())
    words = [(w["word"], w["start"], w["end"]) for s in document["segments"] for w in s["words"]]
    reference = find_reference(path, None)
    assert sentence_check(reference, words, language) == ([], [])
    truth = " ".join(u.text for u in reference.utterances)
    assert wer(truth, " ".join(s["text"] for s in document["segments"]), language) <= bound
    assert document["speech_check"]["unrecognised"] == []
    assert result.unrecognised == 0


# Names Whisper base misspells on these clips ("machade", "Kovloom"): with the vocabulary, it
# spells them as given. German also shows why the speech check looks inside stretches: prompted
# with the terms, Whisper stopped after "und zum" with 4 s of the sentence to go, and the rest was
# decoded again on its own.
VOCABULARY = [("fleurs-fr-004.ogg", "fr", "Mashhad"), ("fleurs-de-000.ogg", "de", "Kowloon")]


@pytest.mark.parametrize(("name", "language", "term"), VOCABULARY)
def test_the_vocabulary_spells_its_terms(
    whisper_base: WhisperDecoder, tmp_path: Path, name: str, language: str, term: str
) -> None:
    texts = {}
    for vocabulary in ([], ["Kowloon", "Mashhad", "T-Rex", "USOC"]):
        config = load_config([], {"asr": {"language": language, "vocabulary": vocabulary}})
        transcribe_file(FIXTURES / name, config, whisper_base, tmp_path)
        texts[bool(vocabulary)] = (tmp_path / Path(name).with_suffix(".txt").name).read_text(encoding="utf-8")
    assert term not in texts[False]
    assert term in texts[True]
    assert wer(reference(name), texts[True], language) <= wer(reference(name), texts[False], language) + 0.05


def test_a_conversation_in_three_languages(whisper_base: WhisperDecoder, tmp_path: Path) -> None:
    # German, Spanish and English sentences with 0.8 s pauses. The English one after the second
    # Spanish one is quiet (-62 dBFS): Silero, coming from louder speech, missed its first 7 s
    # until silences are searched again on their own.
    names = ["fleurs-de-000.ogg", "fleurs-es-002.ogg", "fleurs-en-002.ogg", "fleurs-es-003.ogg", "fleurs-en-001.ogg"]
    audio, segments = build_stream([FIXTURES / n for n in names], pause_s=0.8)
    assert [s["language"] for s in segments] == ["de", "es", "en", "es", "en"]
    path = tmp_path / "conversation.wav"
    soundfile.write(path, audio, SAMPLE_RATE)
    path.with_suffix(".ref.json").write_text(json.dumps({"segments": segments}))

    config = load_config([], {"asr": {"languages": ["en", "es", "de"]}})
    transcribe_file(path, config, whisper_base, tmp_path)

    document = json.loads((tmp_path / "conversation.json").read_text())
    assert set(document["languages"]) == {"de", "es", "en"}  # chunks heard in each
    reference = find_reference(path, None)
    for utterance in reference.utterances:
        heard = [s for s in document["segments"] if utterance.start - 1 <= s["start"] <= utterance.end]
        assert heard and all(s["language"] == utterance.language for s in heard), utterance
        text = " ".join(s["text"] for s in heard)
        assert wer(utterance.text, text, utterance.language) <= 0.35, (utterance.text, text)
    words = [(w["word"], w["start"], w["end"]) for s in document["segments"] for w in s["words"]]
    assert sentence_check(reference, words, "en") == ([], [])


def test_who_spoke_is_labelled(whisper_base: WhisperDecoder, tmp_path: Path) -> None:
    # Two women on a telephone line (Diane and Sheila, the .stm says who said what).
    name = "en_conversation_2spk_30s.wav"
    result = transcribe_file(FIXTURES / name, _config("en"), whisper_base, tmp_path)

    assert list(result.speakers) == ["S1", "S2"]
    document = json.loads((tmp_path / "en_conversation_2spk_30s.json").read_text())
    assert document["speakers"] == result.speakers
    assert 8.0 <= result.speakers["S1"] <= 14.0 and 8.0 <= result.speakers["S2"] <= 14.0  # 12 s and 11 s said
    segments = document["segments"]
    assert all(s["speaker"] in ("S1", "S2") for s in segments)
    # Each reference line's speaker, by the segment that overlaps it most, under the best naming
    # of S1 and S2: measured 9 of 13 right (short turns of a word or two go to the other voice).
    lines = [line.split() for line in (FIXTURES / name).with_suffix(".stm").read_text().splitlines()]
    heard = []
    for line in lines:
        start, end = float(line[3]), float(line[4])
        best = max(segments, key=lambda s: min(end, s["end"]) - max(start, s["start"]))
        heard.append((line[2], best["speaker"]))
    right = max(
        sum((said, label) in naming for said, label in heard)
        for naming in ({("Diane", "S1"), ("Sheila", "S2")}, {("Diane", "S2"), ("Sheila", "S1")})
    )
    assert right >= 8
    srt_text = (tmp_path / "en_conversation_2spk_30s.srt").read_text()
    assert srt_text.count("[S1] ") + srt_text.count("[S2] ") == len(list(srt.parse(srt_text)))
    assert all(
        line.startswith(("[S1] ", "[S2] ")) for line in (tmp_path / f"{Path(name).stem}.txt").read_text().splitlines()
    )


def test_one_speaker_gets_no_labels_in_the_text_files(whisper_base: WhisperDecoder, tmp_path: Path) -> None:
    result = transcribe_file(FIXTURES / "en_jfk_inaugural_44k_stereo.flac", _config("en"), whisper_base, tmp_path)
    assert list(result.speakers) == ["S1"]
    assert "[S1]" not in (tmp_path / "en_jfk_inaugural_44k_stereo.srt").read_text()
    document = json.loads((tmp_path / "en_jfk_inaugural_44k_stereo.json").read_text())
    assert {s["speaker"] for s in document["segments"]} == {"S1"}
    # And none at all when asked for none.
    config = load_config([], {"asr": {"language": "en"}, "output": {"speakers": "none"}})
    result = transcribe_file(FIXTURES / "en_jfk_inaugural_44k_stereo.flac", config, whisper_base, tmp_path)
    assert result.speakers == {}
    assert "speaker" not in json.loads((tmp_path / "en_jfk_inaugural_44k_stereo.json").read_text())["segments"][0]
