"""Restaurant babble from real speech: several talkers at once, each a different voice, summed.

The shared noises hold no babble, and babble is what breaks a live recogniser (it sounds like
speech because it is speech). Each talker is one clip or several clips of one voice in a row,
looped from its own random offset and set to one level; all of them are summed. With
``--with FILE`` another noise (dishes, say) is mixed in at the same power as the babble.

    S=../shared/audio
    .venv/bin/python benchmarks/make_babble.py $S/speech/{de_leopard_leichenhalle,es_leopard_arenas}.wav \\
        $S/speech/{fr_leopard_consulat,en_jfk_inaugural_16k,en_librivox_sense_sensibility_0870}.wav \\
        $S/speech_noref/en_ami_meeting_excerpt_30s.wav --seconds 120 \\
        --with $S/noise/noise_doing_the_dishes_95s.wav --out out/noise/babble_dishes.wav

Keep the talkers apart from the clips of the stream it goes under (a stream's own sentences in
its babble would be an echo, not a restaurant).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile

from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all


def _looped(audio: np.ndarray, length: int, offset: int) -> np.ndarray:
    times = length // len(audio) + 2
    return np.tile(audio, times)[offset : offset + length]


def _voiced(audio: np.ndarray, frame: int = 320) -> np.ndarray:
    """The clip without its pauses: 20 ms frames more than 40 dB under its loudest go (a talker
    in babble never stops)."""
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    level = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    kept = frames[level > level.max() * 10 ** (-40 / 20)]
    return kept.reshape(-1) if len(kept) else audio


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("talkers", nargs="+", type=Path, help="one clip per talker (different voices)")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the babble (default 120)")
    parser.add_argument("--with", dest="other", type=Path, help="another noise mixed in at the babble's power")
    parser.add_argument("--seed", type=int, default=1, help="for the talkers' offsets (default 1)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    length = int(args.seconds * SAMPLE_RATE)
    babble = np.zeros(length, dtype=np.float64)
    for clip in args.talkers:
        voice = read_all(clip)
        voice = _voiced(voice)
        babble += _looped(voice, length, int(rng.integers(len(voice)))) / max(_rms(voice), 1e-6)
    babble /= len(args.talkers) ** 0.5  # each talker at unit power; the sum's power ~ the count
    if args.other is not None:
        other = read_all(args.other)
        babble += _looped(other, length, 0) * (_rms(babble) / max(_rms(other), 1e-6))
    babble *= 0.1 / _rms(babble)  # -20 dBFS: make_stream sets the level against the speech anyway
    args.out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(args.out, np.clip(babble, -1.0, 1.0).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    mixed = f" and {args.other.name}" if args.other else ""
    print(f"{args.out}: {args.seconds:g} s of {len(args.talkers)} talkers{mixed}")


if __name__ == "__main__":
    main()
