"""Builds a multi-utterance test stream from single clips, with its reference file for ``livesub bench``.

Clips are joined with pauses between them, as a speaker taking turns would leave. Each clip's
speech span (found by Silero VAD on the clip alone) and reference text (the ``.txt`` beside it)
become one reference utterance; ``--translations`` adds reference translations from a TSV
(``file<TAB>translation``, as ``../shared/audio/translations_en.tsv``).

    .venv/bin/python benchmarks/make_stream.py ../shared/audio/fleurs/fleurs-es-00*.ogg --out out/stream_es.wav

``--level-dbfs`` sets every clip's speech to one level (a quiet stream: -60), and ``--noise FILE
--snr DB`` mixes noise under the whole stream, pauses included, at the given ratio to the
speech's power (set the level too, or one loud clip decides the noise for all).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile

from pipeline.bench import build_stream
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument(
        "--out", type=Path, required=True, help="the stream (.wav); its reference goes beside it as .ref.json"
    )
    parser.add_argument("--pause", type=float, default=1.5, help="silence between clips, in seconds (default 1.5)")
    parser.add_argument(
        "--trim",
        type=float,
        help="keep only each clip's speech and this many seconds either side (quick turns: --trim 0.05 --pause 0.2)",
    )
    parser.add_argument("--lead", type=float, default=1.0, help="silence before the first clip, in seconds")
    parser.add_argument("--language", help="language code for the reference (default: from the first clip's name)")
    parser.add_argument("--translations", type=Path, help="TSV of reference translations by file name")
    parser.add_argument(
        "--level-dbfs", type=float, help="scale each clip so that its speech has this RMS level (quiet: -60)"
    )
    parser.add_argument("--noise", type=Path, help="a noise recording mixed under the whole stream (looped)")
    parser.add_argument("--snr", type=float, default=10.0, help="speech-to-noise ratio for --noise, in dB")
    args = parser.parse_args()

    translations: dict[str, str] = {}
    if args.translations:
        for line in args.translations.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 2:
                translations[Path(parts[0]).name] = parts[-1].strip()
    audio, segments = build_stream(
        args.clips,
        pause_s=args.pause,
        lead_s=args.lead,
        translations=translations,
        level_dbfs=args.level_dbfs,
        trim_s=args.trim,
    )
    if args.noise:
        noise = read_all(args.noise)
        noise = np.tile(noise, len(audio) // len(noise) + 1)[: len(audio)]
        speech = np.concatenate([audio[int(s["start"] * SAMPLE_RATE) : int(s["end"] * SAMPLE_RATE)] for s in segments])
        scale = np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (args.snr / 10))
        audio = audio + np.float32(scale) * noise
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        raise SystemExit(f"the stream would clip (peak {peak:.2f}): use a lower --level-dbfs or a higher --snr")
    language = args.language or args.clips[0].stem.split("-")[1].split("_")[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(args.out), audio, SAMPLE_RATE)
    reference = args.out.with_suffix(".ref.json")
    reference.write_text(json.dumps({"language": language, "segments": segments}, ensure_ascii=False, indent=1) + "\n")
    print(f"{args.out}: {len(audio) / SAMPLE_RATE:.1f} s, {len(segments)} utterances; reference {reference}")


if __name__ == "__main__":
    main()
