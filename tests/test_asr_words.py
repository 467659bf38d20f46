from __future__ import annotations

import numpy as np
import pytest

from pipeline.backends.whisper import PEAK_DBFS, QUIET_DBFS, audible, compression_ratio, words_from_alignment


def _texts(pieces: list[tuple[str, float, float, float]], language: str) -> list[str]:
    return [w.text for w in words_from_alignment(pieces, language)]


def test_pieces_without_a_space_continue_the_word() -> None:
    pieces = [
        (" L", 0.0, 0.1, 0.9),
        ("'accident", 0.1, 0.6, 0.8),
        (" des", 0.7, 0.9, 0.9),
        (" États", 1.0, 1.3, 0.9),
        ("-Unis", 1.3, 1.6, 0.7),
        (".", 1.6, 1.6, 0.9),
    ]
    words = words_from_alignment(pieces, "fr")
    assert [w.text for w in words] == ["L'accident", "des", "États-Unis."]
    assert (words[0].start, words[0].end, words[0].probability) == (0.0, 0.6, 0.8)
    assert (words[2].start, words[2].end) == (1.0, 1.6)


def test_opening_marks_join_the_next_word() -> None:
    pieces = [
        (" ¿", 0.0, 0.0, 1.0),
        ("Cierto", 0.0, 0.4, 0.9),
        ("?", 0.4, 0.4, 0.9),
        (" «", 0.5, 0.5, 1.0),
        (" Oui", 0.5, 0.8, 0.9),
    ]
    assert _texts(pieces, "es") == ["¿Cierto?", "«Oui"]


def test_unspaced_languages_keep_each_piece() -> None:
    pieces = [("广州", 0.0, 0.4, 0.9), ("市", 0.4, 0.6, 0.9), ("。", 0.6, 0.6, 0.9)]
    assert _texts(pieces, "zh") == ["广州", "市", "。"]


def test_compression_ratio_flags_loops() -> None:
    assert compression_ratio("thank you " * 30) > 2.4
    assert compression_ratio("The quick brown fox jumps over the lazy dog.") < 2.4
    assert compression_ratio("") == 0.0


def test_quiet_audio_is_raised_for_whisper_and_loud_audio_is_left() -> None:
    rng = np.random.default_rng(0)
    quiet = rng.normal(0, 0.001, 16000).astype(np.float32)  # -60 dBFS
    raised = audible(quiet)
    assert 20 * np.log10(np.sqrt(np.mean(raised**2))) == pytest.approx(QUIET_DBFS, abs=0.01)
    loud = rng.normal(0, 0.05, 16000).astype(np.float32)  # -26 dBFS
    assert audible(loud) is loud
    # A click in quiet audio bounds the gain: nothing is pushed past PEAK_DBFS.
    clicked = quiet.copy()
    clicked[100] = 0.5
    assert np.max(np.abs(audible(clicked))) == pytest.approx(10 ** (PEAK_DBFS / 20), rel=1e-5)
    silence = np.zeros(1600, dtype=np.float32)
    assert audible(silence) is silence
