from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipeline.config import AsrConfig, Config, load_config, merge
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_default_toml_documents_the_defaults_exactly() -> None:
    assert load_config([ROOT / "configs" / "default.toml"]) == Config()


def test_default_toml_names_every_setting() -> None:
    data = tomllib.loads((ROOT / "configs" / "default.toml").read_text())
    for section, values in vars(Config()).items():
        assert set(data[section]) == set(vars(values)), section


def test_nested_table_keeps_what_earlier_files_set(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text("[tts.output]\nhighpass_hz = 300.0\n")
    second.write_text("[tts.output]\npresence_db = 0.0\n")
    output = load_config([first, second]).tts.output
    assert (output.highpass_hz, output.presence_db, output.sample_rate) == (300.0, 0.0, 48_000)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[asr]\nbeem_size = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'asr\.beem_size'"):
        load_config([path])


def test_unknown_section_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown section 'asrr'"):
        merge(Config(), {"asrr": {}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"asr": {"beam_size": "5"}}, "asr.beam_size must be an integer"),
        ({"asr": {"beam_size": True}}, "asr.beam_size must be an integer"),
        ({"vad": {"threshold": "high"}}, "vad.threshold must be a number"),
        ({"tts": {"enabled": 1}}, "tts.enabled must be true or false"),
        ({"tts": {"output": {"presence_db": -3.0}}}, "tts.output.presence_db must be 0 to 12"),
        ({"tts": {"output": 3}}, r"'tts\.output' must be a table"),
        ({"tts": {"output": {"bass_db": 6.0}}}, r"unknown setting 'tts\.output\.bass_db'"),
        ({"output": {"formats": "srt"}}, "output.formats must be a list of strings"),
        ({"asr": {"beam_size": 0}}, "beam_size must be between 1 and 10"),
        ({"output": {"formats": ["srt", "docx"]}}, "unknown output format docx"),
        ({"asr": {"task": "summarise"}}, "asr.task must be transcribe or translate"),
    ],
)
def test_bad_values_are_rejected(data: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        merge(Config(), data)


def test_files_apply_in_order_then_overrides(tmp_path: Path) -> None:
    first = tmp_path / "a.toml"
    first.write_text('[asr]\nbeam_size = 2\nlanguage = "de"\n[vad]\nthreshold = 0.3\n')
    second = tmp_path / "b.toml"
    second.write_text("[asr]\nbeam_size = 3\n")
    config = load_config([first, second], {"asr": {"language": "fr"}})
    assert config.asr == AsrConfig(beam_size=3, language="fr")
    assert config.vad.threshold == pytest.approx(0.3)


def test_int_is_accepted_for_float(tmp_path: Path) -> None:
    assert merge(Config(), {"asr": {"max_gap_s": 1}}).asr.max_gap_s == 1.0


def test_missing_and_invalid_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config([tmp_path / "nope.toml"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[asr\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config([bad])
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[asr]\nlanguage = "fr" # français\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config([latin1])
    with pytest.raises(ConfigError, match=r"config file .*: Is a directory"):
        load_config([tmp_path])


def test_the_headphones_profile_is_flat() -> None:
    output = load_config([ROOT / "configs" / "headphones.toml"]).tts.output
    assert (output.highpass_hz, output.presence_db, output.loudness_lufs) == (0.0, 0.0, -18.0)
