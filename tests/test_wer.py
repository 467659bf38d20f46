from __future__ import annotations

import pytest

from pipeline.algos.wer import corpus_wer, edit_distance, normalise, wer


def test_normalise_removes_case_and_punctuation() -> None:
    assert normalise("Hello, World! Don't  stop—now.") == "hello world dont stop now"
    assert normalise("¿Cierto?") == "cierto"


def test_edit_distance_counts_each_kind_of_error() -> None:
    assert edit_distance("a b c".split(), "a b c".split()) == 0
    assert edit_distance("a b c".split(), "a x c".split()) == 1  # substitution
    assert edit_distance("a b c".split(), "a c".split()) == 1  # deletion
    assert edit_distance("a b c".split(), "a b b c".split()) == 1  # insertion
    assert edit_distance([], "a b".split()) == 2


def test_wer_worked_example() -> None:
    # 9 reference words; "the" deleted, "sat"->"sit", "mat" inserted twice: 4 errors.
    assert wer("The cat sat on the mat by the door.", "cat sit on the mat mat by the door mat") == pytest.approx(4 / 9)


def test_chinese_is_scored_by_character() -> None:
    assert wer("广州市房地产", "广州市房产", language="zh") == pytest.approx(1 / 6)


def test_corpus_wer_weights_by_reference_length() -> None:
    pairs = [("a b c d", "a b c d"), ("x y", "x")]
    assert corpus_wer(pairs) == pytest.approx(1 / 6)


def test_empty_reference() -> None:
    assert wer("", "") == 0.0
    assert wer("", "something") == 1.0


def test_normalisation_that_jiwer_transforms_would_change() -> None:
    # Case folded, not lowered: "ß" and "SS" are the same word.
    assert wer("STRASSE", "Straße", language="de") == 0.0
    # Punctuation and symbols part words rather than disappear ("e.g." is "e g", not "eg").
    assert normalise("e.g. 3/4 A&B well—no") == "e g 3 4 a b well no"
    # Any Unicode white space separates words.
    assert wer("tab\tseparated\u2028line", "tab separated line") == 0.0


def test_japanese_is_scored_by_character_without_spaces_or_punctuation() -> None:
    assert wer("今日は良い天気ですね。", "今日は いい天気ですね", language="ja") == pytest.approx(1 / 10)
    assert wer("", "今日は", language="ja") == 1.0


def test_corpus_wer_of_nothing() -> None:
    assert corpus_wer([]) == 0.0
    assert corpus_wer([("", "")]) == 0.0
