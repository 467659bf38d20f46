"""The front-end on simulated glasses scenes: SI-SDR, own-voice evidence, cost, per method.

For every scene made by ``benchmarks/simulate_glasses.py`` (``scene_NN.wav`` with its
``.partner.wav`` image and ``.ref.json``), each beamformer method runs over the whole mixture in
100 ms blocks, as live does. Reported per method:

- SI-SDR of the output against the partner's reverberant image at microphone 1, over the
  partner's reference utterances (the wearer's turns are not the partner's signal), and its gain
  over microphone 1 alone;
- the own-voice evidence (mouth beam over look beam, dB) averaged over each reference
  utterance's loud frames, and how many utterances the profile's threshold labels right;
- the beamformer's real-time factor on this machine;
- with ``--denoise 6,12``, each method's output through DeepFilterNet at those attenuation
  limits too (``mvdr+df6``...): SI-SDR and the real-time factor of beam and DeepFilterNet.

WER is measured by ``livesub bench`` with a configuration per method (see benchmarks/README.md).

    .venv/bin/python benchmarks/frontend_report.py out/scenes/4mic_partner --profile configs/glasses-4mic.toml
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from pipeline.algos.beamform import METHODS
from pipeline.algos.metrics import si_sdr
from pipeline.backends.deepfilter import DeepFilter
from pipeline.config import load_config
from pipeline.stages.frontend import beamformer, own_voice_db

BLOCK = 1600


def run(mixture: np.ndarray, profile: Path, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The method's output, per frame the mouth and look beams' power (own-voice evidence), and
    compute seconds."""
    # As the live front-end runs it (its own-voice threshold moves the output to the wearer's mouth).
    former = beamformer(dataclasses.replace(load_config([profile]).frontend, beamformer=method))
    started = time.perf_counter()
    outs, mouths, looks = [], [], []
    for i in range(0, len(mixture), BLOCK):
        out, mouth, look = former.process(mixture[i : i + BLOCK])
        outs.append(out)
        mouths.append(mouth)
        looks.append(look)
    outs.append(former.flush())
    seconds = time.perf_counter() - started
    return np.concatenate(outs), np.concatenate(mouths), np.concatenate(looks), seconds


def denoise(output: np.ndarray, limit_db: float) -> tuple[np.ndarray, float]:
    """The output through DeepFilterNet in 100 ms blocks, as live runs it, and compute seconds."""
    started = time.perf_counter()
    with DeepFilter(limit_db) as model:
        blocks = [model.process(output[i : i + BLOCK].astype(np.float32)) for i in range(0, len(output), BLOCK)]
        blocks.append(model.flush())
    return np.concatenate(blocks)[: len(output)], time.perf_counter() - started


def partner_sdr(output: np.ndarray, partner: np.ndarray, segments: list[dict[str, Any]], rate: int) -> float:
    """SI-SDR over the partner's utterances joined."""
    spans = [
        (int(s["start"] * rate), int(s["end"] * rate)) for s in segments if s.get("speaker", "partner") == "partner"
    ]
    estimate = np.concatenate([output[a:b] for a, b in spans])
    reference = np.concatenate([partner[a:b] for a, b in spans])
    return si_sdr(estimate, reference)


def utterance_evidence(
    mouth: np.ndarray, look: np.ndarray, segments: list[dict[str, Any]], hop_s: float
) -> list[tuple[str, float]]:
    """(speaker, own-voice evidence in dB) per reference utterance, as VAD weighs it."""
    evidence = []
    for s in segments:
        a, b = int(s["start"] / hop_s), int(s["end"] / hop_s)
        ratio = (np.sum(mouth[a:b]) + 1e-30) / (np.sum(look[a:b]) + 1e-30)
        evidence.append((s.get("speaker", "partner"), float(10 * np.log10(ratio))))
    return evidence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenes", nargs="+", type=Path, help="directories of scenes (or scene WAV files)")
    parser.add_argument("--profile", type=Path, required=True, help="the device profile the scenes were made for")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: all)")
    parser.add_argument(
        "--denoise",
        default="",
        metavar="LIMITS",
        help="DeepFilterNet attenuation limits in dB, e.g. 6,12 (default: none)",
    )
    parser.add_argument("--json", type=Path, help="write every figure as JSON")
    parser.add_argument(
        "--save",
        type=Path,
        metavar="DIR",
        help="write each method's output as DIR/<scene>.<method>.wav with its reference beside it "
        "(for benchmarks/offline_wer.py: faster-whisper's offline WER per method)",
    )
    args = parser.parse_args()
    files = sorted(
        f for d in args.scenes for f in (d.glob("scene_*.wav") if d.is_dir() else [d]) if f.name.count(".") == 1
    )
    methods = args.methods.split(",")
    limits = [float(v) for v in args.denoise.split(",") if v]
    names = methods + [f"{m}+df{v:g}" for m in methods for v in limits]
    figures: dict[str, dict[str, Any]] = {}
    for path in files:
        mixture, rate = soundfile.read(path)
        partner, _ = soundfile.read(path.with_suffix(".partner.wav"))
        segments = json.loads(path.with_suffix(".ref.json").read_text())["segments"]
        row: dict[str, Any] = {}
        for method in methods:
            output, mouth, look, seconds = run(mixture, args.profile, method)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                name = f"{path.parent.name}.{path.stem}.{method}"
                soundfile.write(args.save / f"{name}.wav", output.astype(np.float32), rate, subtype="FLOAT")
                (args.save / f"{name}.ref.json").write_text(path.with_suffix(".ref.json").read_text())
            row[method] = {
                "si_sdr": round(partner_sdr(output, partner, segments, rate), 2),
                "rtf": seconds / (len(mixture) / rate),
            }
            for limit in limits:
                denoised, extra = denoise(output, limit)
                row[f"{method}+df{limit:g}"] = {
                    "si_sdr": round(partner_sdr(denoised, partner, segments, rate), 2),
                    "rtf": (seconds + extra) / (len(mixture) / rate),
                }
            if method in ("fixed", "mvdr"):
                row[method]["own_voice"] = utterance_evidence(mouth, look, segments, 128 / rate)
        figures[str(path)] = row
        print(path.name, "  ".join(f"{m} {row[m]['si_sdr']:6.2f} dB" for m in names), flush=True)
    print("\nSI-SDR against the partner's image at microphone 1, mean over", len(files), "scenes:")
    base = np.mean([figures[f]["first"]["si_sdr"] for f in figures]) if "first" in methods else None
    for method in names:
        values = [figures[f][method]["si_sdr"] for f in figures]
        gains = (
            [figures[f][method]["si_sdr"] - figures[f]["first"]["si_sdr"] for f in figures] if base is not None else []
        )
        rtf = np.mean([figures[f][method]["rtf"] for f in figures])
        gain = f", over microphone 1 {np.mean(gains):+.2f} dB (min {min(gains):+.2f})" if gains else ""
        print(f"  {method:10s} {np.mean(values):6.2f} dB{gain}, RTF {rtf:.4f}")
    threshold = own_voice_db(load_config([args.profile]).frontend)
    assert threshold is not None, "a device profile names microphones"
    for method in ("fixed", "mvdr"):
        pairs = [e for f in figures for e in figures[f].get(method, {}).get("own_voice", [])]
        if pairs:
            wearer = [v for s, v in pairs if s == "wearer"]
            partner = [v for s, v in pairs if s != "wearer"]
            right = sum((v >= threshold) == (s == "wearer") for s, v in pairs)
            print(f"labels at the profile's threshold {threshold:.2f} dB: {right} of {len(pairs)} right")
            spans = {
                name: f"{min(v):.1f} to {max(v):.1f} dB (n={len(v)})"
                for name, v in (("wearer", wearer), ("partner", partner))
                if v
            }
            print(f"own-voice evidence ({method} run): " + ", ".join(f"{k} {v}" for k, v in spans.items()))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
