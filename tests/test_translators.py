"""Text translation backends: CTranslate2 on a tiny model built here, Apertium on fake and real pairs."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.backends.translators import ApertiumTranslator, Ct2Translator, apertium_pairs, iso639_1
from pipeline.errors import ConfigError, ModelError

from .tiny_ct2 import KINDS, build_tiny_model

SOURCE = "hola cómo estás el gato negro duerme"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_ct2")
    return {kind: build_tiny_model(root / kind, kind) for kind in KINDS}


@pytest.fixture(scope="session")
def marian(tiny_models: dict[str, Path]) -> Iterator[Ct2Translator]:
    translator = Ct2Translator(tiny_models["marian"], "es", "en")
    yield translator
    translator.close()


# --- CTranslate2 ------------------------------------------------------------------------------


def test_a_translation_is_text_and_the_same_every_time(tiny_models: dict[str, Path], marian: Ct2Translator) -> None:
    first = marian.translate(SOURCE)
    assert isinstance(first, str) and first == first.strip() and first
    assert marian.translate(SOURCE) == first
    fresh = Ct2Translator(tiny_models["marian"], "es", "en")
    assert fresh.translate(SOURCE) == first
    assert fresh.kind == "marian" and fresh.name == "ctranslate2" and (fresh.source, fresh.target) == ("es", "en")


@pytest.mark.parametrize("kind", ["marian", "m2m100", "nllb"])
@pytest.mark.parametrize(
    "prefix",
    [
        "hello",
        "the black cat",
        "el perro come pan y",
        "über naïve fjörd",  # characters the SentencePiece model never saw: <unk> pieces
    ],
)
def test_the_translation_starts_with_the_prefix_words(tiny_models: dict[str, Path], kind: str, prefix: str) -> None:
    # Random weights like to lengthen the prefix's last word ("cat" + "v"), so most of these cases
    # take the path that picks the best alternative starting a new word.
    translator = Ct2Translator(tiny_models[kind], "es", "en")
    translation = translator.translate(SOURCE, prefix)
    assert translation.startswith(prefix)
    assert translation.split()[: len(prefix.split())] == prefix.split()
    assert translator.translate(SOURCE, prefix) == translation


def test_the_prefix_is_forced_not_appended(marian: Ct2Translator) -> None:
    # Forcing "the" changes what the model says after it, unlike gluing "the" to the free translation.
    free = marian.translate(SOURCE)
    forced = marian.translate(SOURCE, "the")
    assert forced != f"the {free}"


def test_blank_text_translates_to_the_prefix(marian: Ct2Translator) -> None:
    assert marian.translate("") == ""
    assert marian.translate("  \n", "the cat ") == "the cat"


@pytest.mark.parametrize(
    ("kind", "source_token", "target_token"), [("m2m100", "__es__", "__en__"), ("nllb", "spa_Latn", "eng_Latn")]
)
def test_multilingual_models_get_their_language_tokens(
    tiny_models: dict[str, Path], kind: str, source_token: str, target_token: str
) -> None:
    translator = Ct2Translator(tiny_models[kind], "es", "en")
    assert translator.kind == kind
    tokens = translator.source_tokens("hola gato")
    assert tokens[0] == source_token and tokens[-1] == "</s>" and tokens.count(source_token) == 1
    for prefix in ("", "the cat"):
        translation = translator.translate(SOURCE, prefix)
        assert target_token not in translation and source_token not in translation
        assert "</s>" not in translation and "<unk>" not in translation


def test_a_marian_model_has_no_language_tokens(marian: Ct2Translator) -> None:
    tokens = marian.source_tokens("hola gato")
    assert tokens[-1] == "</s>" and "</s>" not in tokens[:-1]
    assert "".join(tokens[:-1]).replace("\u2581", " ").strip() == "hola gato"


def test_a_multi_target_marian_model_gets_the_target_token(tiny_models: dict[str, Path]) -> None:
    translator = Ct2Translator(tiny_models["marian-multi"], "en", "es")
    assert translator.kind == "marian"
    assert translator.source_tokens("hello")[0] == ">>spa<<"
    assert ">>" not in translator.translate("hello the cat")
    with pytest.raises(ConfigError, match="'fr'"):
        Ct2Translator(tiny_models["marian-multi"], "en", "fr")


@pytest.mark.parametrize(
    ("kind", "source", "target", "named"), [("m2m100", "es", "fr", "fr"), ("nllb", "xx", "en", "xx")]
)
def test_a_language_the_model_lacks_is_a_config_error(
    tiny_models: dict[str, Path], kind: str, source: str, target: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=f"does not know the language '{named}'"):
        Ct2Translator(tiny_models[kind], source, target)


def _one_line_model_error(model_dir: Path) -> str:
    with pytest.raises(ModelError) as raised:
        Ct2Translator(model_dir, "es", "en")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"no CTranslate2 translation model in {model_dir}: ")
    return message


def test_a_missing_model_directory_is_a_model_error(tmp_path: Path) -> None:
    assert "model.bin" in _one_line_model_error(tmp_path / "nowhere")


def test_a_model_without_sentencepiece_files_is_a_model_error(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(tiny_models["marian"], tmp_path / "model"))
    (model_dir / "source.spm").unlink()
    (model_dir / "target.spm").unlink()
    assert "SentencePiece" in _one_line_model_error(model_dir)


def test_a_damaged_model_is_a_model_error(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(tiny_models["m2m100"], tmp_path / "model"))
    (model_dir / "model.bin").write_bytes(b"not a model")
    _one_line_model_error(model_dir)


def test_a_closed_model_refuses_to_translate(tiny_models: dict[str, Path]) -> None:
    translator = Ct2Translator(tiny_models["marian"], "es", "en")
    translator.close()
    translator.close()
    with pytest.raises(ModelError, match="closed"):
        translator.translate(SOURCE)


def test_iso639_1_codes() -> None:
    codes = {"spa": "es", "eng": "en", "ES": "es", "cat": "ca", "nob": "nb", "xyz": None}
    assert {code: iso639_1(code) for code in codes} == codes


# --- Apertium, on fake pairs: the request protocol without Apertium's data ---------------------

needs_wblank = pytest.mark.skipif(shutil.which("apertium-wblank-mode") is None, reason="Apertium is not installed")

# Answers each NUL-terminated request with its text upper-cased (a stand-in for a translation).
_UPPER = "while IFS= read -r -d '' line; do printf '%s\\0' \"${line^^}\"; done"
# Answers the start-up request, then hangs / dies.
_HANG = "IFS= read -r -d '' line; printf '\\0'; sleep 30"
_DIE = "IFS= read -r -d '' line; printf '\\0'; IFS= read -r -d '' line; echo 'fake: out of memory' >&2; exit 3"


def _fake_datadir(root: Path, modes: dict[str, str]) -> Path:
    """An Apertium data directory whose modes each run one bash script (given as its body)."""
    (root / "modes").mkdir(parents=True)
    for name, body in modes.items():
        script = root / f"{name}.sh"
        script.write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
        script.chmod(0o755)
        (root / "modes" / f"{name}.mode").write_text(f"{script}\n", encoding="utf-8")
    return root


def test_pairs_are_iso_codes_and_variants_only_stand_in(tmp_path: Path) -> None:
    names = ["spa-eng", "spa-eng_US", "eng-spa", "cat-spa_valencia", "cat-spa_valencia_uni", "xxx-yyy", "spa-spa"]
    datadir = _fake_datadir(tmp_path, dict.fromkeys(names, "cat"))
    (datadir / "modes" / "README").write_text("not a mode", encoding="utf-8")
    assert apertium_pairs(datadir) == [("ca", "es"), ("en", "es"), ("es", "en")]
    assert apertium_pairs(tmp_path / "nowhere") == []


@needs_wblank
def test_one_process_answers_request_after_request(tmp_path: Path) -> None:
    datadir = _fake_datadir(tmp_path, {"spa-eng": _UPPER, "spa-eng_US": "echo US; exit 1"})
    translator = ApertiumTranslator("es", "en", datadir=datadir, timeout=5)
    assert translator.mode == "spa-eng"
    pid = translator._process.pid if translator._process else None
    assert translator.translate("hola") == "HOLA"
    # Stream-format characters are escaped on the way in and unescaped on the way out.
    assert translator.translate("a [b] ^c$ d/e <f> @g {h} \\i *j #k") == "A [B] ^C$ D/E <F> @G {H} \\I *J #K"
    assert translator.translate("uno\ndos\x00tres\t cuatro  ") == "UNO DOS TRES CUATRO"
    assert translator.translate(" \n\x00 ") == ""
    assert translator.translate("hola", prefix="ignored") == "HOLA"
    long_text = "palabra " * 40_000  # more than a pipe holds, both ways
    assert translator.translate(long_text) == long_text.upper().strip()
    assert translator._process is not None and translator._process.pid == pid
    translator.close()
    with pytest.raises(ModelError, match="closed"):
        translator.translate("hola")


@needs_wblank
def test_threads_share_one_pipeline_safely(tmp_path: Path) -> None:
    translator = ApertiumTranslator("es", "en", datadir=_fake_datadir(tmp_path, {"spa-eng": _UPPER}), timeout=5)
    texts = [f"frase {i} " * (1 + i % 7) for i in range(200)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(translator.translate, texts)) == [text.upper().strip() for text in texts]
    translator.close()


@needs_wblank
def test_a_hanging_pipeline_times_out_with_one_error(tmp_path: Path) -> None:
    translator = ApertiumTranslator("es", "en", datadir=_fake_datadir(tmp_path, {"spa-eng": _HANG}), timeout=0.5)
    with pytest.raises(ModelError, match=r"^Apertium spa-eng gave no answer within 0.5 s$"):
        translator.translate("hola")
    with pytest.raises(ModelError, match="no answer"):  # the pipeline is gone, and says why
        translator.translate("hola")
    translator.close()


@needs_wblank
def test_a_pipeline_that_dies_is_one_model_error(tmp_path: Path) -> None:
    translator = ApertiumTranslator("es", "en", datadir=_fake_datadir(tmp_path, {"spa-eng": _DIE}), timeout=5)
    with pytest.raises(ModelError, match=r"^Apertium spa-eng stopped \(exit status 3\)$"):
        translator.translate("hola")
    translator.close()


@needs_wblank
def test_a_pipeline_that_cannot_start_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="stopped"):
        ApertiumTranslator("es", "en", datadir=_fake_datadir(tmp_path, {"spa-eng": "exit 1"}), timeout=5)


@needs_wblank
def test_a_pair_not_installed_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no pair es -> fr installed \(installed: es->en\)"):
        ApertiumTranslator("es", "fr", datadir=_fake_datadir(tmp_path, {"spa-eng": _UPPER}))


# --- Apertium, the real spa-eng pair -----------------------------------------------------------

needs_spa_eng = pytest.mark.skipif(
    ("es", "en") not in apertium_pairs(), reason="Apertium's spa-eng pair is not installed"
)


@pytest.fixture
def spa_eng() -> Iterator[ApertiumTranslator]:
    translator = ApertiumTranslator("es", "en")
    yield translator
    translator.close()


@needs_spa_eng
def test_apertium_translates_spanish(spa_eng: ApertiumTranslator) -> None:
    assert spa_eng.name == "apertium"
    assert "how" in spa_eng.translate("Hola, ¿cómo estás?").lower()
    assert "cat" in spa_eng.translate("El gato negro duerme.").lower()


@needs_spa_eng
def test_apertium_calls_do_not_bleed_into_each_other(spa_eng: ApertiumTranslator) -> None:
    a, b = "Hola, ¿cómo estás?", "El perro come pan en la casa grande"
    first_a, first_b, again_a = spa_eng.translate(a), spa_eng.translate(b), spa_eng.translate(a)
    assert first_a == again_a and first_a != first_b
    fresh = ApertiumTranslator("es", "en")
    try:
        assert (fresh.translate(b), fresh.translate(a)) == (first_b, first_a)
    finally:
        fresh.close()


@needs_spa_eng
def test_apertium_takes_any_text(spa_eng: ApertiumTranslator) -> None:
    assert spa_eng.translate("") == ""
    assert "how" in spa_eng.translate("Hola.\n¿Cómo\x00 estás?").lower()
    assert "[" in spa_eng.translate("el precio [aproximado] es 5 $")
    assert spa_eng.translate("El gato") == spa_eng.translate("El gato", prefix="The")


@needs_spa_eng
def test_apertium_after_close_a_new_translator_works(spa_eng: ApertiumTranslator) -> None:
    expected = spa_eng.translate("Buenos días")
    spa_eng.close()
    with pytest.raises(ModelError, match="closed"):
        spa_eng.translate("Buenos días")
    again = ApertiumTranslator("es", "en")
    try:
        assert again.translate("Buenos días") == expected
    finally:
        again.close()


@needs_spa_eng
def test_apertium_killed_is_one_model_error(spa_eng: ApertiumTranslator) -> None:
    assert spa_eng._process is not None
    os.killpg(spa_eng._process.pid, signal.SIGKILL)  # the pipeline this test started
    with pytest.raises(ModelError, match=r"^Apertium spa-eng stopped") as raised:
        spa_eng.translate("Hola")
    assert "\n" not in str(raised.value)
