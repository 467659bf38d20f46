"""The model registry (models/registry.toml) and its resolver.

Model packages are data: their files are found through ``importlib.metadata`` (the installed
distribution's location) and never imported. Models split into parts are joined once into a
cache directory, checked against their checksum and written atomically, so a crash or two
processes at once never leave a half-written model behind. Anywhere a model id is accepted, a
path to the user's own model directory (or piper ``.onnx`` file) is accepted too.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ModelError

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
# Inside an installed wheel the registry is package data; in a source checkout it is models/.
_REGISTRY_PLACES = (_HERE / "data" / "registry.toml", _HERE.parent / "models" / "registry.toml")


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, inside an installed package."""

    package: str
    path: str
    into: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry."""

    id: str
    kind: str
    description: str
    languages: tuple[str, ...]
    licence: str
    origin: str
    files: tuple[ModelFile, ...]
    into_sha256: tuple[tuple[str, str], ...] = ()

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.package for f in self.files))

    @property
    def needs_join(self) -> bool:
        """Whether some file of the model is made of several parts (so lives in the cache)."""
        targets = [f.into for f in self.files]
        return len(targets) != len(set(targets))

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def registry_path() -> Path:
    for place in _REGISTRY_PLACES:
        if place.is_file():
            return place
    raise ModelError("model registry not found (reinstall livesub)")


def load_registry(path: Path | None = None) -> dict[str, ModelSpec]:
    with open(path or registry_path(), "rb") as f:
        data = tomllib.load(f)
    specs = {}
    for model_id, entry in data.items():
        specs[model_id] = ModelSpec(
            id=model_id,
            kind=entry["kind"],
            description=entry.get("description", ""),
            languages=tuple(entry.get("languages", ())),
            licence=entry.get("licence", ""),
            origin=entry.get("origin", ""),
            files=tuple(ModelFile(**f) for f in entry["files"]),
            into_sha256=tuple(sorted(entry.get("into_sha256", {}).items())),
        )
    return specs


def cache_dir() -> Path:
    """Where joined models are kept: $LIVESUB_CACHE, else $XDG_CACHE_HOME/livesub, else ~/.cache/livesub."""
    if os.environ.get("LIVESUB_CACHE"):
        return Path(os.environ["LIVESUB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "livesub"


def _install_hint(spec: ModelSpec, package: str) -> str:
    return f"model '{spec.id}' needs the package {package}: pip install {package}"


def locate(spec: ModelSpec, file: ModelFile) -> Path:
    """The installed path of one model file, found without importing the package."""
    try:
        dist = importlib.metadata.distribution(file.package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(_install_hint(spec, file.package)) from None
    path = Path(str(dist.locate_file(file.path)))
    if not path.is_file():
        raise ModelError(f"{_install_hint(spec, file.package)} (installed, but {file.path} is missing: reinstall it)")
    if file.size is not None and path.stat().st_size != file.size:
        raise ModelError(f"model '{spec.id}': {path} has the wrong size (reinstall {file.package})")
    return path


def sha256(path: Path) -> str:
    """A file's SHA-256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _joined_dir(spec: ModelSpec) -> Path:
    return cache_dir() / spec.id


def _expected_sizes(spec: ModelSpec) -> dict[str, int | None]:
    sizes: dict[str, int | None] = {}
    for f in spec.files:
        known = sizes.get(f.into, 0)
        sizes[f.into] = None if known is None or f.size is None else known + f.size
    return sizes


def _joined_ready(spec: ModelSpec) -> bool:
    target = _joined_dir(spec)
    for name, size in _expected_sizes(spec).items():
        path = target / name
        if not path.is_file() or (size is not None and path.stat().st_size != size):
            return False
    return True


def _join(spec: ModelSpec) -> Path:
    """Writes each of the model's files into its cache directory, joining parts; atomic per file."""
    target = _joined_dir(spec)
    target.mkdir(parents=True, exist_ok=True)
    expected = dict(spec.into_sha256)
    groups: dict[str, list[ModelFile]] = {}
    for f in spec.files:
        groups.setdefault(f.into, []).append(f)
    log.info("preparing model %s in %s", spec.id, target)
    for name, parts in groups.items():
        sources = [locate(spec, part) for part in parts]
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", dir=target)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for part, source in zip(parts, sources, strict=True):
                    part_digest = hashlib.sha256()
                    with open(source, "rb") as part_file:
                        while block := part_file.read(1 << 20):
                            part_digest.update(block)
                            digest.update(block)
                            out.write(block)
                    if part.sha256 and part_digest.hexdigest() != part.sha256:
                        raise ModelError(f"model '{spec.id}': {source} is damaged (checksum); reinstall {part.package}")
                out.flush()
                os.fsync(out.fileno())
            if name in expected and digest.hexdigest() != expected[name]:
                raise ModelError(
                    f"model '{spec.id}': joined {name} fails its checksum; reinstall {', '.join(spec.packages)}"
                )
            os.replace(tmp_name, target / name)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    return target


def model_dir(spec: ModelSpec) -> Path:
    """The directory holding the model's files, ready to load (joining parts on first use)."""
    if spec.needs_join:
        if _joined_ready(spec):
            return _joined_dir(spec)
        try:
            return _join(spec)
        except OSError as e:
            raise ModelError(
                f"model '{spec.id}': cannot write to the cache {cache_dir()} ({e.strerror}); set LIVESUB_CACHE"
            ) from None
    paths = [locate(spec, f) for f in spec.files]
    return paths[0].parent


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.startswith((".", "~")) or text.endswith(".onnx")


def resolve(model: str, kind: str) -> Path:
    """A model id or a user's path, resolved to something the model's library can load.

    For ``whisper`` this is a CTranslate2 model directory; for ``piper`` the voice ``.onnx``
    file; for ``deepfilternet`` the directory with the model archive and runtime.
    """
    if _looks_like_path(model) or Path(model).exists():
        path = Path(model).expanduser()
        if kind == "whisper":
            if not (path / "model.bin").is_file():
                raise ModelError(f"{model}: not a CTranslate2 model directory (no model.bin)")
            if not (path / "tokenizer.json").is_file():  # faster-whisper would fetch one from the hub
                raise ModelError(f"{model}: no tokenizer.json (convert with --copy_files tokenizer.json)")
            return path
        if kind == "piper":
            onnx = path if path.suffix == ".onnx" else next(iter(sorted(path.glob("*.onnx"))), path / "voice.onnx")
            if not onnx.is_file() or not Path(f"{onnx}.json").is_file():
                raise ModelError(f"{model}: not a piper voice (need VOICE.onnx and VOICE.onnx.json)")
            return onnx
        if not path.exists():
            raise ModelError(f"{model}: no such model directory")
        return path
    specs = load_registry()
    spec = specs.get(model)
    if spec is None:
        known = ", ".join(sorted(s.id for s in specs.values() if s.kind == kind))
        raise ModelError(f"unknown model '{model}' (known {kind} models: {known}; or give a path)")
    if spec.kind != kind:
        raise ModelError(f"model '{model}' is a {spec.kind} model, not {kind}")
    directory = model_dir(spec)
    if kind == "piper":
        return directory / next(f.into for f in spec.files if f.into.endswith(".onnx"))
    return directory


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    ready: bool
    detail: str


def status(spec: ModelSpec) -> ModelStatus:
    """A quick check (presence and sizes, no checksums) for ``livesub models list``."""
    try:
        for f in spec.files:
            locate(spec, f)
    except ModelError as e:
        return ModelStatus(spec, False, str(e))
    if spec.needs_join and not _joined_ready(spec):
        return ModelStatus(spec, True, "installed; joined into the cache on first use")
    return ModelStatus(spec, True, "ready")


def verify(spec: ModelSpec) -> list[str]:
    """Checks every file against its checksum (and the joined result); returns the problems."""
    problems = []
    for f in spec.files:
        try:
            path = locate(spec, f)
        except ModelError as e:
            problems.append(str(e))
            continue
        if f.sha256 and sha256(path) != f.sha256:
            problems.append(f"model '{spec.id}': {path} fails its checksum; reinstall {f.package}")
    if not problems and spec.needs_join:
        try:
            directory = model_dir(spec)
            for name, digest in spec.into_sha256:
                if sha256(directory / name) != digest:
                    problems.append(f"model '{spec.id}': {directory / name} fails its checksum; delete it to rebuild")
        except ModelError as e:
            problems.append(str(e))
    return problems


def whisper_multilingual(model: str) -> bool:
    """Whether a Whisper model (an id or a directory) knows more than English, known before it
    loads: from its registry entry, else from its tokenizer's language tokens."""
    spec = load_registry().get(model)
    if spec is not None:
        return spec.languages != ("en",)
    try:
        return '"<|de|>"' in (Path(model) / "tokenizer.json").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True  # unreadable: loading it will say what is wrong
