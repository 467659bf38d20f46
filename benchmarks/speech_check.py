"""Checks the speech a ``livesub bench --speak-to DIR`` run wrote: heard back by Whisper, is it
what was meant to be said, and is it as loud as the profile asks and never above its ceiling?

For each input of the bench report, ``DIR/<stem>.speech.wav`` is transcribed (faster-whisper's
own ``transcribe()``, Whisper base, beam 5, in the voice's language) and compared with the final
translations (or transcripts) of that input's events; its integrated loudness (pyloudnorm) and
peak are measured.

    .venv/bin/python benchmarks/speech_check.py out/speech/on1.json out/speech/wav1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile
import soxr
from faster_whisper import WhisperModel

from pipeline import models
from pipeline.algos.wer import corpus_wer, wer
from pipeline.config import Config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="the bench's --json report")
    parser.add_argument("speech", type=Path, help="the bench's --speak-to directory")
    parser.add_argument("--language", default="en", help="the language spoken (default en)")
    args = parser.parse_args()
    report = json.loads(args.report.read_text(encoding="utf-8"))
    output = Config().tts.output
    model = WhisperModel(str(models.resolve("whisper-base", "whisper")), device="cpu", compute_type="int8")
    pairs = []
    for name in report["inputs"]:
        said = [
            e["committed"]
            for e in report["events"]
            if e["input"] == name and e["final"] and e["committed"] and e["type"] in ("translation", "transcript")
        ]
        translations = [e for e in report["events"] if e["input"] == name and e["type"] == "translation"]
        if translations:
            said = [e["committed"] for e in translations if e["final"] and e["committed"]]
        wav = args.speech / f"{Path(name).stem}.speech.wav"
        audio, rate = soundfile.read(wav, dtype="float32")
        segments, _ = model.transcribe(soxr.resample(audio, rate, 16_000), language=args.language, beam_size=5)
        heard = " ".join(s.text.strip() for s in segments)
        reference = " ".join(said)
        pairs.append((reference, heard))
        loudness = pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))
        peak = 20 * np.log10(max(float(np.abs(audio).max()), 1e-9))
        print(
            f"{wav.name}: WER {100 * wer(reference, heard, args.language):.1f}% ({len(reference.split())} words), "
            f"loudness {loudness:.2f} LUFS (target {output.loudness_lufs:g}), peak {peak:.2f} dBFS "
            f"(ceiling {output.ceiling_dbfs:g})"
        )
    print(f"all: WER {100 * corpus_wer(pairs, args.language):.1f}%")


if __name__ == "__main__":
    main()
