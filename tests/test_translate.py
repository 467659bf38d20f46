"""Translation policy: the text-backend stage with scripted translators, and backend choice."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline.algos.metrics import retractions
from pipeline.backends.translators import apertium_pairs
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError
from pipeline.events import Transcript, Translation
from pipeline.stages.translate import TranslationStage, choose_backend

WORDS = {"hola": "hello", "amigo": "friend", "cómo": "how", "estás": "are you", "bien": "well", "y": "and", "tú": "you"}


class DictionaryTranslator:
    """Word by word, like a very plain rule-based system. ``unstable`` changes the last word of
    every other translation, as a neural model revising its ending would."""

    name = "scripted"
    source, target = "es", "en"

    def __init__(self, unstable: bool = False) -> None:
        self.unstable = unstable
        self.calls: list[tuple[str, str]] = []

    def translate(self, text: str, prefix: str = "") -> str:
        self.calls.append((text, prefix))
        words = [WORDS.get(w.strip(",.?¿!").lower(), w) for w in text.split()]
        if self.unstable and len(self.calls) % 2 and words:
            words[-1] = words[-1].upper()
        return " ".join(words)

    def close(self) -> None:
        pass


def _transcripts(*utterances: list[str]) -> list[Transcript]:
    """Each utterance's committed text growing word by word (with one repeat), then its final."""
    events = []
    for utterance, words in enumerate(utterances):
        for n in [1, *range(1, len(words) + 1)]:
            events.append(Transcript(utterance, " ".join(words[:n]), "x", 0.0, n * 0.5, "es"))
        events.append(Transcript(utterance, " ".join(words), "", 0.0, len(words) * 0.5, "es", final=True))
    return events


async def _run(stage: TranslationStage, transcripts: list[Transcript]) -> list[Transcript | Translation]:
    """The stage's translations, each after the transcript it had just taken when it emitted it."""
    taken: list[Transcript] = []

    async def inputs() -> AsyncIterator[Transcript]:
        for t in transcripts:
            taken.append(t)
            yield t

    events: list[Transcript | Translation] = []
    async for translation in stage.run(inputs()):
        events += [*taken, translation]
        taken.clear()
    return events + taken


SPEECH = (["Hola,", "amigo.", "¿Cómo", "estás?"], ["Bien,", "y", "tú?"])


@pytest.mark.parametrize("unstable", [False, True])
def test_committed_translation_never_retracts_and_each_final_follows_its_source_final(unstable: bool) -> None:
    translator = DictionaryTranslator(unstable)
    events = asyncio.run(_run(TranslationStage(translator), _transcripts(*SPEECH)))
    # Every transcript was taken, in order.
    assert [e for e in events if isinstance(e, Transcript)] == _transcripts(*SPEECH)
    translations = [e for e in events if isinstance(e, Translation)]
    for _, group in itertools.groupby(translations, key=lambda t: t.utterance):
        committed = [t.committed for t in group]
        assert retractions(committed) == 0
    finals = [e for e in events if isinstance(e, Translation) and e.final]
    assert [f.committed.lower() for f in finals] == ["hello friend how are you", "well and you"]
    assert all((f.source_language, f.target_language) == ("es", "en") for f in finals)
    for final in finals:  # right after the source's final
        before = events[events.index(final) - 1]
        assert isinstance(before, Transcript) and before.final and before.utterance == final.utterance


def test_only_committed_text_at_a_clause_end_is_translated() -> None:
    translator = DictionaryTranslator()
    asyncio.run(_run(TranslationStage(translator), _transcripts(*SPEECH)))
    texts = [text for text, _ in translator.calls]
    # Not "Hola, amigo. ¿Cómo"; and not again for a final that adds nothing.
    assert texts == ["Hola,", "Hola, amigo.", "Hola, amigo. ¿Cómo estás?", "Bien,", "Bien, y tú?"]
    assert all(not text.endswith("¿Cómo") for text in texts)


def test_the_committed_translation_is_offered_as_the_prefix() -> None:
    translator = DictionaryTranslator()
    asyncio.run(_run(TranslationStage(translator), _transcripts(*SPEECH)))
    prefixes = [prefix for _, prefix in translator.calls]
    assert prefixes[:3] == ["", "", "hello"]  # "hello" agreed between the first two translations


def test_an_utterance_with_no_words_ends_without_a_translation() -> None:
    silent = [Transcript(0, "", "", 0.0, 1.0, "es", final=True)]
    events = asyncio.run(_run(TranslationStage(DictionaryTranslator()), silent))
    assert events == silent


def _config(**translation: str) -> Config:
    language = translation.pop("source", "es")
    return load_config([], {"asr": {"language": language}, "translation": translation})


def test_the_backend_is_chosen_by_the_pair() -> None:
    assert choose_backend(_config()) == ""
    assert choose_backend(_config(target="en")) == "whisper"
    assert choose_backend(_config(target="en", model="/some/model")) == "ctranslate2"
    with pytest.raises(ConfigError, match="already in 'en'"):
        choose_backend(_config(source="en", target="en"))
    with pytest.raises(ConfigError, match="only into English"):
        choose_backend(_config(target="de", backend="whisper"))
    with pytest.raises(ConfigError, match="English-only"):
        choose_backend(_config(target="en", backend="whisper"), multilingual=False)
    with pytest.raises(ConfigError, match="no backend translates es -> ja; available: whisper"):
        choose_backend(_config(target="ja"))
    with pytest.raises(ConfigError, match="--translation-model"):
        choose_backend(_config(target="de", backend="ctranslate2"))
    with pytest.raises(ConfigError, match="give --from"):
        choose_backend(_config(source="auto", target="es", backend="apertium"))


@pytest.mark.skipif(("en", "es") not in apertium_pairs(), reason="Apertium's eng-spa pair is not installed")
def test_apertium_is_chosen_where_its_pair_is_installed() -> None:
    assert choose_backend(_config(source="en", target="es")) == "apertium"
    assert choose_backend(_config(target="en", backend="apertium")) == "apertium"


def test_a_real_ctranslate2_model_in_the_stage_never_retracts(tmp_path: Path) -> None:
    """The tiny random-weight model (tests/tiny_ct2.py) through the stage: its output is nonsense,
    but decoding with the committed words forced as the target prefix is real."""
    from pipeline.backends.translators import Ct2Translator

    from .tiny_ct2 import build_tiny_model

    translator = Ct2Translator(build_tiny_model(tmp_path / "m2m100", "m2m100"), "es", "en")
    transcripts = _transcripts(*SPEECH)
    events = asyncio.run(_run(TranslationStage(translator), transcripts))
    translations = [e for e in events if isinstance(e, Translation)]
    assert translations and [t.utterance for t in translations if t.final] == [0, 1]
    for _, group in itertools.groupby(translations, key=lambda t: t.utterance):
        committed = [t.committed for t in group]
        assert retractions(committed) == 0
    assert any(t.committed for t in translations if not t.final)  # words were committed before the finals


def test_a_translation_that_rewords_the_committed_words_neither_repeats_nor_skips_them() -> None:
    from pipeline.algos.incremental import TargetAgreement

    agreement = TargetAgreement()
    agreement.update("the house")
    agreement.update("the house is")
    assert agreement.committed == ["the", "house"]
    assert agreement.update("the red house is big") == []  # re-worded: nothing more is committed
    assert agreement.finish("the red house is big ,") == ["is", "big", ","]
    assert agreement.committed == ["the", "house", "is", "big", ","]


def test_the_target_must_be_a_language_code() -> None:
    for bad in ("EN", "eng", "english", "e1"):
        with pytest.raises(ConfigError, match="ISO 639-1"):
            _config(target=bad)
    assert choose_backend(_config(target="en")) == "whisper"
