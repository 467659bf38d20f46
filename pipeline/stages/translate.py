"""Translation: which backend translates, and the stage that translates recognised text as it grows.

Three backends (no neural text-translation model can be installed from a package registry, so
these are what is real; README, "Translation"):

- **whisper**: Whisper's own speech-to-English translation. It is not a stage of its own: the
  streaming recogniser decodes with ``task="translate"`` and emits Translation events directly
  (``pipeline.stages.streaming``), with the same commit policy as recognition.
- **apertium**: Debian's rule-based pairs, text to text (``pipeline.backends.translators``).
- **ctranslate2**: a converted OPUS-MT / NLLB / M2M100 model the user brings, text to text,
  with the committed translation forced as the target prefix.

The two text backends run in :class:`TranslationStage` after recognition. Policy: only
committed source text is translated, when it reaches a clause or sentence end (or has grown by
``MAX_UNTRANSLATED_WORDS`` without one), and once more when the utterance is final; translated
words are committed by agreement between consecutive translations (``algos.incremental``), so a
translated partial never retracts its committed words, and the translation's final follows the
source's final.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from pipeline.algos.incremental import TargetAgreement, at_boundary
from pipeline.algos.vocab import Term, apply
from pipeline.backends.translators import ApertiumTranslator, Ct2Translator, TextTranslator, apertium_pairs
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.events import Transcript, Translation
from pipeline.runner import Clock

#: Committed source words that are translated even without a clause end after them.
MAX_UNTRANSLATED_WORDS = 8


def available() -> str:
    """What can translate here, for error messages."""
    pairs = ", ".join(f"{s}->{t}" for s, t in apertium_pairs()) or "no pairs installed"
    return f"whisper (any -> en), apertium ({pairs}), ctranslate2 (your model: --translation-model DIR)"


def choose_backend(config: Config, *, multilingual: bool = True) -> str:
    """The backend that will translate ('' for none), or ConfigError naming what is available."""
    source, target = config.asr.language, config.translation.target
    backend = config.translation.backend
    if not target:
        return ""
    if config.asr.task == "translate":
        raise ConfigError("asr.task = translate (--task translate) already gives English: use --to instead")
    if source == target:
        raise ConfigError(f"nothing to translate: the speech is already in '{target}'")
    if config.asr.languages and (target != "en" or backend not in ("auto", "whisper")):
        # A text translator is built for one source language; Whisper hears each utterance's own.
        raise ConfigError("a conversation in several languages (--languages) translates only into English, by whisper")
    if backend == "auto":
        if config.translation.model and not config.asr.languages:
            backend = "ctranslate2"
        elif target == "en" and multilingual:
            backend = "whisper"
        elif (source, target) in apertium_pairs():
            backend = "apertium"
        elif source == "auto":
            raise ConfigError(f"to translate into '{target}', give the spoken language with --from")
        elif target == "en":
            backend = "whisper"  # refused below: this model is English-only
        else:
            raise ConfigError(f"no backend translates {source} -> {target}; available: {available()}")
    if backend == "whisper":
        if target != "en":
            raise ConfigError(f"whisper translates only into English, not '{target}'; available: {available()}")
        if not multilingual:
            raise ConfigError("this Whisper model is English-only and cannot translate; use whisper-base")
    elif backend == "apertium":
        if source == "auto":
            raise ConfigError("apertium needs the spoken language: give --from")
        if (source, target) not in apertium_pairs():
            raise ConfigError(f"apertium has no pair {source} -> {target}; available: {available()}")
    elif backend == "ctranslate2":
        if not config.translation.model:
            raise ConfigError("the ctranslate2 backend needs a model directory: give --translation-model DIR")
        if source == "auto":
            raise ConfigError("ctranslate2 needs the spoken language: give --from")
    return backend


def text_translator(config: Config, backend: str) -> TextTranslator:
    """Loads the text backend ``backend`` ('apertium' or 'ctranslate2') for the configured pair."""
    source, target = config.asr.language, config.translation.target
    if backend == "apertium":
        return ApertiumTranslator(source, target)
    return Ct2Translator(config.translation.model, source, target)


@dataclass
class _Open:
    """An utterance being translated."""

    agreement: TargetAgreement = field(default_factory=TargetAgreement)
    translated: str = ""  # the source text last translated
    translation: str = ""  # and its translation
    emitted: tuple[str, str] | None = None


class TranslationStage:
    """Transcript -> Translation partials and finals of its utterance."""

    name = "translate"
    publishes = True

    def __init__(
        self,
        translator: TextTranslator,
        clock: Clock | None = None,
        terms: Sequence[Term] = (),
        untranslated: Collection[str] = (),
    ) -> None:
        self._translator = translator
        self._untranslated = frozenset(untranslated)  # speakers only captioned, never translated
        self._terms = tuple(terms)  # the vocabulary: its terms' translations replace them in the output
        self._clock = clock or Clock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="translate")
        self.compute_seconds = 0.0

    def stats(self) -> dict[str, float | int | None]:
        return {"compute_s": round(self.compute_seconds, 3)}

    def _translate(self, text: str, prefix: str) -> str:
        started = time.perf_counter()
        try:
            return apply(self._translator.translate(text, prefix), self._terms)
        finally:
            self.compute_seconds += time.perf_counter() - started

    def _due(self, state: _Open, transcript: Transcript) -> bool:
        source = transcript.committed
        if transcript.final:
            return True
        if not source or source == state.translated:
            return False
        grown = len(source.split()) - len(state.translated.split())
        return at_boundary(source) or grown >= MAX_UNTRANSLATED_WORDS

    def _event(self, state: _Open, transcript: Transcript) -> Translation | None:
        committed, tentative = state.agreement.prefix, " ".join(state.agreement.tentative)
        if (committed, tentative) == (state.emitted or ("", "")) and not (transcript.final and state.emitted):
            return None
        state.emitted = (committed, tentative)
        return Translation(
            transcript.utterance,
            committed,
            tentative,
            transcript.start,
            transcript.end,
            transcript.language,
            self._translator.target,
            final=transcript.final,
            speaker=transcript.speaker,
        )

    async def run(self, inputs: AsyncIterator[Transcript]) -> AsyncGenerator[Translation, None]:
        open_: dict[int, _Open] = {}
        try:
            async for transcript in inputs:
                if transcript.speaker in self._untranslated:
                    continue
                state = open_.setdefault(transcript.utterance, _Open())
                if self._due(state, transcript):
                    text = transcript.committed
                    if text == state.translated:  # a final with nothing new: its translation is there
                        translation = state.translation
                    elif text:
                        translation = await self._clock.compute(
                            self._executor, self._translate, text, state.agreement.prefix
                        )
                    else:
                        translation = ""
                    state.translated, state.translation = text, translation
                    if transcript.final:
                        state.agreement.finish(translation)
                    else:
                        state.agreement.update(translation)
                    event = self._event(state, transcript)
                    if event is not None:
                        yield event
                if transcript.final:
                    del open_[transcript.utterance]
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Releases the translator (whoever made the stage calls this)."""
        self._translator.close()


class NoteTranslator:
    """Translates the notes' texts one by one with a text backend (vocabulary applied)."""

    def __init__(self, translator: TextTranslator, terms: Sequence[Term] = ()) -> None:
        self._translator = translator
        self._terms = tuple(terms)

    def __call__(self, text: str) -> str:
        return apply(self._translator.translate(text), self._terms) if text.strip() else text

    def close(self) -> None:
        self._translator.close()


def note_translator(config: Config, source: str, target: str) -> NoteTranslator:
    """A text translator for notes in ``source`` into ``target``, or ConfigError naming what can."""
    if source == target:
        raise ConfigError(f"nothing to translate: the notes are already in '{target}'")
    backend = config.translation.backend
    if backend == "whisper":
        raise ConfigError("whisper translates speech, not notes: use apertium or --translation-model DIR")
    if backend == "auto":
        backend = "ctranslate2" if config.translation.model else "apertium"
    if backend == "apertium" and (source, target) not in apertium_pairs():
        pairs = ", ".join(f"{s}->{t}" for s, t in apertium_pairs()) or "no pairs installed"
        raise ConfigError(
            f"no backend translates notes {source} -> {target}; available: apertium ({pairs}), "
            "ctranslate2 (your model: --translation-model DIR)"
        )
    pair = replace(
        config,
        asr=replace(config.asr, language=source, languages=()),
        translation=replace(config.translation, target=target),
    )
    return NoteTranslator(text_translator(pair, backend), config.asr.terms)
