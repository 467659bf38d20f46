"""Text-to-text translation backends: Apertium's rule-based pairs and CTranslate2 models.

- :class:`ApertiumTranslator` runs one installed Apertium pair (``/usr/share/apertium/modes``)
  as one long-running pipeline of processes for all calls, in null-flush mode: each request is
  the text followed by a NUL byte, and the translation comes back followed by a NUL byte. Every
  stage keeps its dictionaries loaded, so a partial costs about a millisecond, not a start-up.
- :class:`Ct2Translator` runs a converted OPUS-MT (Marian), NLLB or M2M100 model with
  SentencePiece tokenisation, adding the language tokens the model needs.

Both answer ``translate(text, prefix)``, blocking. ``prefix`` is target text already committed
for the utterance: CTranslate2 forces its tokens as the decoder's ``target_prefix``, so the
translation starts with exactly that string, and with a new word after it (a continuation that
would lengthen the prefix's last word is passed over for the best one that does not). Apertium
cannot be forced and ignores it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import sentencepiece

from pipeline.algos.text import UNSPACED
from pipeline.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

#: ISO 639-1 code -> (ISO 639-3 code as Apertium and OPUS-MT name languages, NLLB-200 code).
LANGUAGES: dict[str, tuple[str, str | None]] = {
    "af": ("afr", "afr_Latn"),
    "an": ("arg", None),
    "ar": ("ara", "arb_Arab"),
    "be": ("bel", "bel_Cyrl"),
    "bg": ("bul", "bul_Cyrl"),
    "bn": ("ben", "ben_Beng"),
    "br": ("bre", None),
    "ca": ("cat", "cat_Latn"),
    "cs": ("ces", "ces_Latn"),
    "cy": ("cym", "cym_Latn"),
    "da": ("dan", "dan_Latn"),
    "de": ("deu", "deu_Latn"),
    "el": ("ell", "ell_Grek"),
    "en": ("eng", "eng_Latn"),
    "eo": ("epo", "epo_Latn"),
    "es": ("spa", "spa_Latn"),
    "et": ("est", "est_Latn"),
    "eu": ("eus", "eus_Latn"),
    "fa": ("fas", "pes_Arab"),
    "fi": ("fin", "fin_Latn"),
    "fr": ("fra", "fra_Latn"),
    "ga": ("gle", "gle_Latn"),
    "gl": ("glg", "glg_Latn"),
    "he": ("heb", "heb_Hebr"),
    "hi": ("hin", "hin_Deva"),
    "hr": ("hrv", "hrv_Latn"),
    "hu": ("hun", "hun_Latn"),
    "hy": ("hye", "hye_Armn"),
    "id": ("ind", "ind_Latn"),
    "is": ("isl", "isl_Latn"),
    "it": ("ita", "ita_Latn"),
    "ja": ("jpn", "jpn_Jpan"),
    "ka": ("kat", "kat_Geor"),
    "kk": ("kaz", "kaz_Cyrl"),
    "ko": ("kor", "kor_Hang"),
    "ky": ("kir", "kir_Cyrl"),
    "lt": ("lit", "lit_Latn"),
    "lv": ("lav", "lvs_Latn"),
    "mk": ("mkd", "mkd_Cyrl"),
    "ms": ("msa", "zsm_Latn"),
    "mt": ("mlt", "mlt_Latn"),
    "nb": ("nob", "nob_Latn"),
    "nl": ("nld", "nld_Latn"),
    "nn": ("nno", "nno_Latn"),
    "oc": ("oci", "oci_Latn"),
    "pl": ("pol", "pol_Latn"),
    "pt": ("por", "por_Latn"),
    "ro": ("ron", "ron_Latn"),
    "ru": ("rus", "rus_Cyrl"),
    "se": ("sme", None),
    "sk": ("slk", "slk_Latn"),
    "sl": ("slv", "slv_Latn"),
    "sr": ("srp", "srp_Cyrl"),
    "sv": ("swe", "swe_Latn"),
    "sw": ("swa", "swh_Latn"),
    "th": ("tha", "tha_Thai"),
    "tr": ("tur", "tur_Latn"),
    "tt": ("tat", "tat_Cyrl"),
    "uk": ("ukr", "ukr_Cyrl"),
    "ur": ("urd", "urd_Arab"),
    "vi": ("vie", "vie_Latn"),
    "zh": ("zho", "zho_Hans"),
}

_ISO1_BY_ISO3 = {iso3: iso1 for iso1, (iso3, _) in LANGUAGES.items()}


def iso639_1(code: str) -> str | None:
    """The ISO 639-1 code for an ISO 639-1 or 639-3 code (``spa`` -> ``es``), or None if unknown."""
    code = code.lower()
    if code in LANGUAGES:
        return code
    return _ISO1_BY_ISO3.get(code)


class TextTranslator(Protocol):
    """Translates text of one language pair. ``translate`` blocks; callers run it on a worker thread."""

    name: str  # "apertium" or "ctranslate2"
    source: str  # ISO 639-1
    target: str

    def translate(self, text: str, prefix: str = "") -> str:
        """The translation of ``text``; a backend that can force ``prefix`` starts it with ``prefix``."""
        ...

    def close(self) -> None: ...


# --- Apertium ---------------------------------------------------------------------------------

#: Seconds a request may take before the Apertium pipeline is taken to hang.
APERTIUM_TIMEOUT = 10.0

# A mode file is named LANG1-LANG2, either side possibly with a variant (spa-eng_US, cat-spa_valencia).
_MODE_NAME = re.compile(r"^([a-z]{2,3})(_\w+)?-([a-z]{2,3})(_\w+)?$")
# Characters Apertium's stream format reserves; apertium-destxt escapes the same ones.
_RESERVED = re.compile(r"([\\\[\]^$/<>@{}])")
# On the way out: an escaped character stands for itself; unescaped brackets delimit blanks we added.
_STREAM_OUT = re.compile(r"\\(.)|[\[\]]", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _apertium_datadir(datadir: str | Path | None) -> Path:
    return Path(datadir or os.environ.get("APERTIUM_DATADIR") or "/usr/share/apertium")


def _apertium_modes(datadir: str | Path | None = None) -> dict[tuple[str, str], Path]:
    """(source, target) -> mode file; a plain pair beats its variants, which are used only without one."""
    if shutil.which("apertium") is None and datadir is None:
        return {}
    modes_dir = _apertium_datadir(datadir) / "modes"
    try:
        mode_files = sorted(modes_dir.glob("*.mode"))
    except OSError:
        return {}
    plain: dict[tuple[str, str], Path] = {}
    variant: dict[tuple[str, str], Path] = {}
    for mode in mode_files:
        match = _MODE_NAME.match(mode.stem)
        if match is None:
            continue
        source, target = iso639_1(match.group(1)), iso639_1(match.group(3))
        if source is None or target is None or source == target:
            continue
        into = variant if match.group(2) or match.group(4) else plain
        into.setdefault((source, target), mode)
    return variant | plain


def apertium_pairs(datadir: str | Path | None = None) -> list[tuple[str, str]]:
    """The installed Apertium pairs as ISO 639-1 (source, target) tuples; [] without Apertium."""
    return sorted(_apertium_modes(datadir))


def _to_stream(text: str) -> bytes:
    """Plain text as one line of Apertium's stream format, ending with a blank and the NUL flush."""
    line = " ".join(_CONTROL.sub(" ", text).split())
    # lt-proc -b (lttoolbox 3.7) waits for a blank after the last word before it answers a NUL
    # flush, so every request ends with an empty superblank, as apertium-destxt's output does.
    return (_RESERVED.sub(r"\\\1", line) + "[]\0").encode("utf-8", errors="replace")


def _from_stream(data: bytes) -> str:
    return _STREAM_OUT.sub(lambda m: m.group(1) or "", data.decode("utf-8", errors="replace")).strip()


class ApertiumTranslator:
    """One installed Apertium pair, kept running as one null-flushing pipeline for every call.

    The ``apertium`` script itself cannot serve requests one by one: its format filters
    (apertium-destxt/retxt) and its gawk wrapper hold text back until more arrives. So the pair's
    mode is run directly, as ``apertium-wblank-mode -z`` writes it, and the text is escaped
    into the stream format here. Unknown words come out unmarked (``apertium -u``).
    """

    name = "apertium"

    def __init__(
        self, source: str, target: str, *, timeout: float = APERTIUM_TIMEOUT, datadir: str | Path | None = None
    ) -> None:
        self.source, self.target = source, target
        self._timeout = timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._failed = ""
        if shutil.which("apertium-wblank-mode") is None:
            raise ModelError("Apertium is not installed: install the Debian packages apertium and apertium-eng-spa")
        modes = _apertium_modes(datadir)
        mode = modes.get((source, target))
        if mode is None:
            pairs = ", ".join(f"{s}->{t}" for s, t in sorted(modes)) or "none"
            raise ConfigError(f"Apertium has no pair {source} -> {target} installed (installed: {pairs})")
        self.mode = mode.stem
        try:
            script = subprocess.run(
                ["apertium-wblank-mode", "-z", str(mode)], capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise ModelError(f"cannot read Apertium mode {mode}: {e}") from None
        started = time.perf_counter()
        # $1 is the generator's option (-n: no unknown-word marks), $2 the tagger's (none).
        # A session of its own lets close() end every process of the pipeline at once.
        try:
            self._process = subprocess.Popen(
                ["bash", "-c", script, "apertium", "-n", ""],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=dict(os.environ, LC_ALL="C.UTF-8"),
                start_new_session=True,
            )
        except OSError as e:
            raise ModelError(f"cannot start Apertium {self.mode}: {e}") from None
        assert self._process.stdin is not None
        os.set_blocking(self._process.stdin.fileno(), False)
        try:
            with self._lock:
                self._exchange(b"\0")  # every stage has loaded its data once this comes back
        except ModelError:
            self.close()
            raise
        log.debug("apertium %s ready in %.0f ms", self.mode, (time.perf_counter() - started) * 1000)

    def translate(self, text: str, prefix: str = "") -> str:
        """The translation of ``text``; ``prefix`` is ignored (a rule-based pair cannot be forced)."""
        request = _to_stream(text)
        if request == b"[]\0":
            return ""
        with self._lock:
            return _from_stream(self._exchange(request))

    def _fail(self, reason: str) -> ModelError:
        """Ends the pipeline (its state is unknown) and the error every later call raises."""
        if not self._failed:
            self._failed = f"Apertium {self.mode} {reason}"
            self._terminate()
        return ModelError(self._failed)

    def _stopped(self, process: subprocess.Popen[bytes]) -> ModelError:
        # Apertium's stderr is left out of the message: its stages may echo the text (privacy).
        return self._fail(f"stopped (exit status {process.wait()})")

    def _exchange(self, request: bytes) -> bytes:
        """Writes one NUL-terminated request and reads its NUL-terminated answer; the lock is held."""
        if self._failed:
            raise ModelError(self._failed)
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise ModelError(f"Apertium {self.mode} translator is closed")
        stdin, stdout = process.stdin.fileno(), process.stdout.fileno()
        deadline = time.monotonic() + self._timeout
        answer = bytearray()
        # Write and read together: a long text's translation may fill the output pipe before the
        # whole text has been written.
        while not answer.endswith(b"\0"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"gave no answer within {self._timeout:g} s")
            readable, writable, _ = select.select([stdout], [stdin] if request else [], [], remaining)
            if writable:
                try:
                    request = request[os.write(stdin, request) :]
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    raise self._stopped(process) from None
            if readable:
                chunk = os.read(stdout, 65536)
                if not chunk:
                    raise self._stopped(process)
                answer += chunk
        return bytes(answer[:-1])

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # a broken pipe, when the pipeline is gone
                process.stdin.close()
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        """Ends the pipeline's processes. Idempotent."""
        with self._lock:
            self._terminate()
            if not self._failed:
                self._failed = f"Apertium {self.mode} translator is closed"


# --- CTranslate2 ------------------------------------------------------------------------------

#: SentencePiece files a converted model directory may carry: OPUS-MT's pair, or one shared model.
_SPM_PAIR = ("source.spm", "target.spm")
_SPM_SHARED = ("sentencepiece.bpe.model", "spm.model", "sentencepiece.model", "spm.128k.model")

_M2M100_TOKEN = re.compile(r"^__[a-z]{2,3}__$")
_NLLB_TOKEN = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_MARIAN_TARGET_TOKEN = re.compile(r"^>>[a-z_A-Z]{2,}<<$")
_WORD_START = "\u2581"  # SentencePiece's mark for a piece that starts a word
_SPECIAL = frozenset({"<s>", "</s>", "<pad>", "<unk>"})


def _read_vocabulary(model_dir: Path, side: str) -> list[str]:
    """A converted model's vocabulary for ``side`` ('source' or 'target'), shared or not, .json or .txt."""
    for name in ("shared", side):
        json_path, txt_path = model_dir / f"{name}_vocabulary.json", model_dir / f"{name}_vocabulary.txt"
        if json_path.is_file():
            tokens = json.loads(json_path.read_text(encoding="utf-8"))
            if not isinstance(tokens, list):
                raise ValueError(f"{json_path.name} is not a list of tokens")
            return [str(token) for token in tokens]
        if txt_path.is_file():
            return txt_path.read_text(encoding="utf-8").splitlines()
    raise ValueError("no vocabulary file")


def _spm_files(model_dir: Path) -> tuple[Path, Path]:
    """The (source, target) SentencePiece models of ``model_dir``."""
    source, target = (model_dir / name for name in _SPM_PAIR)
    if source.is_file() and target.is_file():
        return source, target
    for name in _SPM_SHARED:
        if (model_dir / name).is_file():
            return model_dir / name, model_dir / name
    names = ", ".join((" + ".join(_SPM_PAIR), *_SPM_SHARED))
    raise ValueError(f"no SentencePiece model (one of {names}); convert with --copy_files")


def _compute_type() -> str:
    import ctranslate2

    return "int8" if "int8" in ctranslate2.get_supported_compute_types("cpu") else "default"


class Ct2Translator:
    """A converted CTranslate2 translation model: OPUS-MT (Marian), NLLB-200 or M2M100.

    The kind is read from the vocabulary: M2M100 has ``__en__`` tokens, NLLB ``eng_Latn`` tokens;
    anything else is taken as Marian (multi-target OPUS-MT models have ``>>spa<<`` tokens).
    """

    name = "ctranslate2"

    def __init__(
        self, model_dir: str | Path, source: str, target: str, *, beam_size: int = 4, threads: int = 0
    ) -> None:
        import ctranslate2

        self.source, self.target = source, target
        self.model_dir = Path(model_dir)
        self._beam_size = beam_size
        where = f"no CTranslate2 translation model in {self.model_dir}"
        if not (self.model_dir / "model.bin").is_file():
            raise ModelError(f"{where}: model.bin is missing")
        try:
            source_vocabulary = _read_vocabulary(self.model_dir, "source")
            target_vocabulary = set(_read_vocabulary(self.model_dir, "target"))
            source_spm, target_spm = _spm_files(self.model_dir)
            self._source_spm = sentencepiece.SentencePieceProcessor(model_file=str(source_spm))
            self._target_spm = sentencepiece.SentencePieceProcessor(model_file=str(target_spm))
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelError(f"{where}: {_one_line(e)}") from None

        vocabulary = set(source_vocabulary)
        self._source_start: list[str] = []  # tokens before the source text
        self._target_start: list[str] = []  # tokens the output starts with, before the prefix
        if any(_M2M100_TOKEN.match(token) for token in vocabulary):
            self.kind = "m2m100"
            self._source_start = [self._language_token(source, f"__{source}__", vocabulary)]
            self._target_start = [self._language_token(target, f"__{target}__", target_vocabulary)]
        elif any(_NLLB_TOKEN.match(token) for token in vocabulary):
            self.kind = "nllb"
            self._source_start = [self._language_token(source, LANGUAGES.get(source, ("", None))[1], vocabulary)]
            self._target_start = [self._language_token(target, LANGUAGES.get(target, ("", None))[1], target_vocabulary)]
        else:
            self.kind = "marian"
            if any(_MARIAN_TARGET_TOKEN.match(token) for token in vocabulary):
                # A multi-target OPUS-MT model: the source starts with the target language's token.
                candidates = [f">>{target}<<", f">>{LANGUAGES.get(target, ('', None))[0]}<<"]
                found = next((token for token in candidates if token in vocabulary), None)
                self._source_start = [self._language_token(target, found, vocabulary)]
        # Tokens never shown: specials and any language token the decoder might produce.
        self._hidden = _SPECIAL | {
            token
            for token in vocabulary | target_vocabulary
            if _M2M100_TOKEN.match(token) or _NLLB_TOKEN.match(token) or _MARIAN_TARGET_TOKEN.match(token)
        }

        started = time.perf_counter()
        try:
            self._translator: Any = ctranslate2.Translator(
                str(self.model_dir), device="cpu", compute_type=_compute_type(), intra_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelError(f"{where}: {_one_line(e)}") from None
        log.debug("%s model %s loaded in %.0f ms", self.kind, self.model_dir, (time.perf_counter() - started) * 1000)

    def _language_token(self, language: str, token: str | None, vocabulary: set[str]) -> str:
        if token is None or token not in vocabulary:
            raise ConfigError(f"the translation model in {self.model_dir} does not know the language '{language}'")
        return token

    def source_tokens(self, text: str) -> list[str]:
        """The token sequence the encoder is given for ``text``, language tokens and ``</s>`` included."""
        pieces: list[str] = self._source_spm.encode(text.strip(), out_type=str)
        return [*self._source_start, *pieces, "</s>"]

    def translate(self, text: str, prefix: str = "") -> str:
        """The translation of ``text``, starting with the words of ``prefix`` exactly when one is given."""
        prefix = prefix.strip()
        if not text.strip():
            return prefix
        source = self.source_tokens(text)
        prefix_pieces: list[str] = self._target_spm.encode(prefix, out_type=str) if prefix else []
        forced = [*self._target_start, *prefix_pieces]
        new = self._continuations(source, forced, beam_size=self._beam_size)[0]
        if prefix and self._glues(prefix, new):
            # The best continuation lengthens the prefix's last word, a committed word ("cat" ->
            # "cats"). Take the best of the alternatives at the first free position that does not.
            alternatives = self._continuations(source, forced, num_hypotheses=8, return_alternatives=True)
            new = next((option for option in alternatives if not self._glues(prefix, option)), new)
        if not new:
            return prefix
        rest: str = self._target_spm.decode_pieces(new)
        if not prefix:
            return rest.strip()
        # The caller's prefix is kept verbatim: SentencePiece normalisation or unknown characters
        # could change its decoded form.
        space = " " if new[0].startswith(_WORD_START) or self._glues(prefix, new) else ""
        return f"{prefix}{space}{rest.strip()}"

    def _continuations(self, source: list[str], forced: list[str], **options: Any) -> list[list[str]]:
        """The tokens each hypothesis adds after the ``forced`` ones, specials and language tokens left out."""
        translator = self._translator
        if translator is None:
            raise ModelError(f"the translation model in {self.model_dir} is closed")
        try:
            result = translator.translate_batch(
                [source],
                target_prefix=[forced] if forced else None,
                max_decoding_length=len(forced) + 3 * len(source) + 16,
                **options,
            )[0]
        except RuntimeError as e:
            raise ModelError(f"translation with {self.model_dir} failed: {_one_line(e)}") from None
        # A hypothesis repeats the forced tokens; only what follows them is new.
        return [[token for token in tokens[len(forced) :] if token not in self._hidden] for tokens in result.hypotheses]

    def _glues(self, prefix: str, new: list[str]) -> bool:
        """Whether ``new`` would continue the last word of ``prefix`` rather than start a word."""
        if not new or self.target in UNSPACED or new[0].startswith(_WORD_START):
            return False
        return prefix[-1].isalnum() and new[0][:1].isalnum()

    def close(self) -> None:
        """Releases the model. Idempotent."""
        self._translator = None


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
