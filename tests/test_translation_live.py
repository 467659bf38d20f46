"""Translation with the real models on real speech: Whisper streamed, Apertium, and the CLI."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu

from pipeline.algos.metrics import retractions
from pipeline.algos.wer import wer
from pipeline.backends.translators import apertium_pairs
from pipeline.backends.whisper import WhisperDecoder
from pipeline.config import load_config
from pipeline.events import Transcript, Translation
from pipeline.inputs.sources import FileSource
from pipeline.session import SessionResult, run_live, translation_backend

from .conftest import FIXTURES, reference

pytestmark = pytest.mark.integration

SPANISH = FIXTURES / "fleurs-es-003.ogg"
ENGLISH_REFERENCE = (FIXTURES / "fleurs-es-003.en.txt").read_text(encoding="utf-8").strip()
needs_apertium = pytest.mark.skipif(("es", "en") not in apertium_pairs(), reason="apertium-eng-spa is not installed")


def _translate(decoder: WhisperDecoder, backend: str) -> SessionResult:
    overrides = {"asr": {"language": "es"}, "translation": {"target": "en", "backend": backend}}
    config = load_config([], overrides)
    source = FileSource(SPANISH, realtime=False)
    chosen = translation_backend(config)
    return asyncio.run(run_live(config, decoder, source, backend=chosen, replay=True, record=True))


def _chrf(text: str) -> float:
    return float(sacrebleu.sentence_chrf(text, [ENGLISH_REFERENCE]).score)


def _never_retracted(result: SessionResult) -> None:
    translations = [e.event for e in result.emissions if isinstance(e.event, Translation)]
    assert translations
    for _, group in itertools.groupby(sorted(translations, key=lambda t: t.utterance), key=lambda t: t.utterance):
        committed = [t.committed for t in group]
        assert retractions(committed) == 0
        assert committed  # and exactly one final per utterance, the last event
    finals = [t.utterance for t in translations if t.final]
    assert len(finals) == len(set(finals)) == len({t.utterance for t in translations})


def test_whisper_translates_spanish_speech_as_it_streams(whisper_base: WhisperDecoder) -> None:
    result = _translate(whisper_base, "whisper")
    _never_retracted(result)
    text = " ".join(t.committed for t in result.translations)
    # Whisper base's offline translation of this clip scores chrF 59.8 against the reference
    # ("This seems to have a sense, since in the earth it does not perceive its movement, right?");
    # streamed here, 63.1 ("... since on earth ...").
    assert _chrf(text) >= 55, text
    assert all((t.source_language, t.target_language) == ("es", "en") for t in result.translations)
    # The Spanish text follows each final translation.
    source = " ".join(t.committed for t in result.finals)
    assert wer(reference("fleurs-es-003.ogg"), source) <= 0.25
    events = [e.event for e in result.emissions]
    last_translation = max(i for i, e in enumerate(events) if isinstance(e, Translation) and e.final)
    assert any(isinstance(e, Transcript) and e.final for e in events[last_translation:])


@needs_apertium
def test_apertium_translates_the_recognised_spanish(whisper_base: WhisperDecoder) -> None:
    result = _translate(whisper_base, "apertium")
    _never_retracted(result)
    text = " ".join(t.committed for t in result.translations)
    # Measured 40.5: "This looks to have sense, since in the earth does not perceive his movement True?"
    # In about one run in ten, Whisper gives the Spanish in lower case without punctuation, and
    # the same words score 35.0 ("...sense since ... true?"): decode timing differs from run to run.
    assert _chrf(text) >= 32, text
    # Each translation final comes right after its transcript final.
    events = [e.event for e in result.emissions if isinstance(e.event, Transcript | Translation)]
    for i, event in enumerate(events):
        if isinstance(event, Translation) and event.final:
            before = events[i - 1]
            assert isinstance(before, Transcript) and before.final and before.utterance == event.utterance


def _livesub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.parametrize(("backend", "chrf"), [("whisper", 55), pytest.param("apertium", 35, marks=needs_apertium)])
def test_transcribe_writes_the_translation_beside_the_transcript(backend: str, chrf: float, tmp_path: Path) -> None:
    done = _livesub(
        "transcribe", str(SPANISH), "--from", "es", "--to", "en", "--translator", backend, "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"fleurs-es-003{s}" for s in [".srt", ".vtt", ".txt", ".json", ".en.srt", ".en.vtt", ".en.txt", ".en.json"]
    )
    assert wer(reference("fleurs-es-003.ogg"), (tmp_path / "fleurs-es-003.txt").read_text()) <= 0.25
    assert _chrf((tmp_path / "fleurs-es-003.en.txt").read_text()) >= chrf
    assert "-->" in (tmp_path / "fleurs-es-003.en.srt").read_text()


def test_a_pair_nothing_translates_is_one_line_listing_what_can(tmp_path: Path) -> None:
    done = _livesub("live", "--input", str(SPANISH), "--instant", "--from", "es", "--to", "ja", "--out", str(tmp_path))
    assert done.returncode == 2
    assert (
        done.stderr.count("\n") == 1 and "no backend translates es -> ja; available: whisper (any -> en)" in done.stderr
    )
    done = _livesub("transcribe", str(SPANISH), "--to", "de", "--translator", "whisper", "--out", str(tmp_path))
    assert done.returncode == 2 and "whisper translates only into English" in done.stderr
    done = _livesub("live", "--input", str(SPANISH), "--from", "es", "--to", "en", "--translation-model", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "CTranslate2" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing was written
