"""What taking the noise down by a given number of dB, and nothing else, would do to WER.

For every scene made by ``benchmarks/simulate_glasses.py`` (``scene_NN.wav`` with its
``.partner.wav`` image and ``.ref.json``), this writes microphone 1 with everything but the
partner (the noise and the side talker: microphone 1 less the partner's image there) lowered by
``--reduce-db``: a mono stream with the partner's reverberant image untouched, as an ideal
front-end with that much noise reduction and no artefacts would hand it to recognition. Its
reference is copied beside it, so ``livesub bench`` and ``offline_wer.py`` score it as they
score the scene.

With the noise each microphone's own (``--noise-field sensor``), no linear beam of M microphones
takes more than 10 log10(M) dB off it (6 dB for four): streams at 6 dB are the most any beam of
the 4-microphone profile could hand over, streams at 10 dB what a beam with post-filter would need
to give without artefacts to reach a WER bound (benchmarks/README.md, session 33).

    .venv/bin/python benchmarks/noise_bound.py out/scenes/4mic_w5s --reduce-db 6 --out out/bound/w5s_6db
    .venv/bin/livesub bench out/bound/w5s_6db/scene_0?.wav --mode instant
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import soundfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenes", type=Path, help="a directory of simulate_glasses.py scenes")
    parser.add_argument("--reduce-db", type=float, required=True, help="how much to lower all but the partner")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    scenes = sorted(p for p in args.scenes.glob("scene_*.wav") if p.name.count(".") == 1)
    if not scenes:
        parser.error(f"no scene_*.wav in {args.scenes}")
    args.out.mkdir(parents=True, exist_ok=True)
    scale = 10.0 ** (-args.reduce_db / 20.0)
    for scene in scenes:
        mixture, rate = soundfile.read(scene, dtype="float64", always_2d=True)
        partner, _ = soundfile.read(scene.with_suffix(".partner.wav"), dtype="float64", always_2d=True)
        mic1, image = mixture[:, 0], partner[: len(mixture), 0]
        image = np.pad(image, (0, len(mic1) - len(image)))
        soundfile.write(args.out / scene.name, image + scale * (mic1 - image), rate, subtype="FLOAT")
        shutil.copy(scene.with_suffix(".ref.json"), args.out / f"{scene.stem}.ref.json")
    print(f"{len(scenes)} streams in {args.out}, all but the partner {args.reduce_db:g} dB down")


if __name__ == "__main__":
    main()
