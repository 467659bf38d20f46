"""Custom vocabulary: the file, Whisper's prompt, the translators' output, term recall."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.algos.vocab import MAX_PROMPT_CHARS, Term, apply, parse_terms, prompt, read_vocabulary, term_scores
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.errors import ConfigError


def test_terms_and_translations_are_read_from_lines() -> None:
    lines = ["# names", "Kowloon", "", "  Comité Olímpico =  Olympic Committee ", "T-Rex"]
    assert parse_terms(lines) == (
        Term("Kowloon"),
        Term("Comité Olímpico", "Olympic Committee"),
        Term("T-Rex"),
    )


@pytest.mark.parametrize("line", ["= Olympic Committee", "USOC =", "="])
def test_a_malformed_line_is_named(line: str) -> None:
    with pytest.raises(ConfigError, match="vocabulary line 2: expected 'term' or 'term = translation'"):
        parse_terms(["Kowloon", line])


def test_a_vocabulary_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "terms.txt"
    path.write_text("Mashhad\nUSOC = USOC\n", encoding="utf-8")
    assert read_vocabulary(path) == ("Mashhad", "USOC = USOC")
    with pytest.raises(ConfigError, match="vocabulary file not found"):
        read_vocabulary(tmp_path / "missing.txt")
    path.write_bytes(b"\xff\xfe\x00K")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_vocabulary(path)
    path.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no terms"):
        read_vocabulary(path)


def test_whisper_hears_the_terms_or_their_translations() -> None:
    terms = (Term("Kowloon"), Term("Comité Olímpico", "Olympic Committee"))
    assert prompt(terms) == "Kowloon, Comité Olímpico."
    assert prompt(terms, translated=True) == "Kowloon, Olympic Committee."
    assert prompt(()) == ""
    many = [Term(f"Term{i:03d}") for i in range(100)]
    assert len(prompt(many)) <= MAX_PROMPT_CHARS
    assert prompt(many).startswith("Term000, Term001")


def test_terms_a_translator_passed_through_are_replaced() -> None:
    terms = (Term("Mashhad", "Meschhed"), Term("usoc", "USOC"), Term("New York", "Nueva York"), Term("York"))
    assert (
        apply("a runway excursion at mashhad, said the Usoc", terms) == "a runway excursion at Meschhed, said the USOC"
    )
    # Whole words only, the longer term first.
    assert apply("New York and york, not Yorkshire", terms) == "Nueva York and York, not Yorkshire"


def test_term_recall_and_precision() -> None:
    terms = (Term("Kowloon"), Term("T-Rex"))
    pairs = [
        ("ufer von kowloon fahren", "Ufer von Kovloom fahren."),
        ("selbst ein großer dinosaurier wie der t rex", "selbst ein großer Dinosaurier wie der T-Rex"),
        ("nichts davon", "Kowloon"),
    ]
    assert term_scores(pairs, terms, "de") == {"term_occurrences": 2, "term_recall": 0.5, "term_precision": 0.5}
    assert term_scores([("a b", "a b")], terms) == {"term_occurrences": 0, "term_recall": 0.0, "term_precision": 0.0}


def test_the_configuration_checks_the_vocabulary_and_languages() -> None:
    config = load_config([], {"asr": {"vocabulary": ["Kowloon", "USOC = USOC"]}})
    assert config.asr.terms == (Term("Kowloon"), Term("USOC", "USOC"))
    with pytest.raises(ConfigError, match="vocabulary line 1"):
        load_config([], {"asr": {"vocabulary": ["= x"]}})
    assert load_config([], {"asr": {"languages": ["en", "es"]}}).asr.languages == ("en", "es")
    with pytest.raises(ConfigError, match=r"either asr\.language or asr\.languages"):
        load_config([], {"asr": {"languages": ["en", "es"], "language": "en"}})
    with pytest.raises(ConfigError, match="two or more different languages"):
        load_config([], {"asr": {"languages": ["en", "en"]}})


def test_cli_refuses_a_missing_vocabulary_or_a_single_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = Path(__file__).resolve().parent.parent / "audio_fixtures" / "fleurs-fr-004.ogg"
    assert main(["transcribe", str(audio), "--vocab", str(tmp_path / "none.txt"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"livesub: error: vocabulary file not found: {tmp_path / 'none.txt'}"
    assert main(["live", "--input", str(audio), "--languages", "en"]) == 2
    assert "expected two or more different languages" in capsys.readouterr().err
    assert main(["live", "--input", str(audio), "--languages", "en,es", "--to", "es"]) == 2
    assert "translates only into English" in capsys.readouterr().err
    assert main(["live", "--input", str(audio), "--speaker-label", "the wearer"]) == 2
    assert "expected 1 to 32 letters, digits, '-' or '_'" in capsys.readouterr().err
