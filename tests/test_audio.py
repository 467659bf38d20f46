"""Reading recordings: formats, rates, channel counts, and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from pipeline.errors import AudioError
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import AudioReader, read_all

from .conftest import FIXTURES


def _tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono * (0.5 + 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize(
    ("suffix", "subtype"),
    [(".wav", "PCM_16"), (".flac", "PCM_24"), (".ogg", "VORBIS"), (".ogg", "OPUS"), (".mp3", "MPEG_LAYER_III")],
)
@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 2), (48000, 6)])
def test_formats_rates_and_channels(tmp_path: Path, suffix: str, subtype: str, rate: int, channels: int) -> None:
    if subtype == "OPUS" and rate not in (8000, 48000):
        pytest.skip("Opus supports 8/12/16/24/48 kHz only")
    if subtype == "MPEG_LAYER_III" and channels > 2:
        pytest.skip("MP3 holds at most two channels")
    path = tmp_path / f"tone{suffix}"
    soundfile.write(str(path), _tone(rate, 2.5, channels), rate, subtype=subtype)
    with AudioReader(path, block_ms=300) as reader:
        chunks = list(reader.chunks())
    assert all(c.sample_rate == SAMPLE_RATE and c.channels == channels for c in chunks)
    # Positions are contiguous sample counts at 16 kHz.
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.frames for c in chunks[:-1]]))
    total = sum(c.frames for c in chunks)
    assert abs(total - 2.5 * SAMPLE_RATE) <= 0.06 * SAMPLE_RATE  # MP3/Opus pad a little
    # The tone survives resampling: its level and pitch are kept.
    mono = np.concatenate([c.mono() for c in chunks])[4000:-4000]
    spectrum = np.abs(np.fft.rfft(mono))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(mono) - 440) < 5


def test_container_libsndfile_cannot_read_goes_through_ffmpeg(tmp_path: Path) -> None:
    import av

    path = tmp_path / "voice.m4a"
    tone = _tone(22050, 1.0, 1)[:, 0]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=22050)
        frame = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
        frame.sample_rate = 22050
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    audio = read_all(path)
    assert abs(len(audio) - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert 0.1 < np.abs(audio).max() < 0.5


def test_resampled_speech_matches_the_16k_original() -> None:
    stereo_44k = read_all(FIXTURES / "en_jfk_inaugural_44k_stereo.flac")
    assert len(stereo_44k) == 11 * SAMPLE_RATE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"this is a text file, not audio\n" * 20, "not a recognised audio file"),
        (b"RIFF\x00\x01\x00\x00WAVEfmt garbage" * 3, "not a recognised audio file"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as caught:
        AudioReader(path)
    assert "\n" not in str(caught.value)


def test_header_only_wav_has_no_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="contains no audio"), AudioReader(path) as reader:
        list(reader.chunks())


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        AudioReader(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a directory"):
        AudioReader(tmp_path)


def test_truncated_file_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.flac"
    soundfile.write(str(path), _tone(16000, 20.0, 1), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    got = 0.0
    with AudioReader(path) as reader:
        for chunk in reader.chunks():
            got = chunk.end_s
    assert got > 5.0
    assert reader.damage is not None and "decoding failed after" in reader.damage
    with pytest.raises(AudioError, match="decoding failed after"):
        read_all(path)  # whole clips only: a part is an error


def test_non_finite_samples_are_cleaned(tmp_path: Path) -> None:
    audio = _tone(16000, 1.0, 1)
    audio[100:200] = np.nan
    audio[300] = np.inf
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), audio, 16000, subtype="FLOAT")
    assert np.isfinite(read_all(path)).all()
