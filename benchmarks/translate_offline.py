"""Whisper's offline speech-to-English translation: the yardstick for streamed translation.

faster-whisper's own ``transcribe(task="translate")`` (same model directory, compute type and
beam size as livesub) on each clip of a reference TSV (``clip<TAB>english``, as
``../shared/audio/translations_en.tsv``), scored with sacrebleu per source language.

    .venv/bin/python benchmarks/translate_offline.py ../shared/audio/translations_en.tsv
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import sacrebleu

from pipeline.backends.whisper import WhisperDecoder
from pipeline.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tsv", type=Path)
    parser.add_argument("--prefix", default="fleurs/", help="only clips whose name starts with this")
    parser.add_argument("--json", type=Path, help="write per-clip translations and the scores here")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    config = load_config()
    decoder = WhisperDecoder(config.asr)
    model = WhisperModel(
        str(decoder.path), device="cpu", compute_type=decoder.compute_type, cpu_threads=decoder.threads
    )
    by_language: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for line in args.tsv.read_text(encoding="utf-8").splitlines()[1:]:
        clip, reference = line.split("\t")[0], line.split("\t")[-1].strip()
        if not clip.startswith(args.prefix):
            continue
        audio = next(p for p in args.tsv.parent.glob(clip + ".*") if p.suffix not in (".txt", ".json"))
        language = Path(clip).name.split("-")[1].split("_")[0]
        started = time.perf_counter()
        segments, _ = model.transcribe(
            str(audio), language=language, task="translate", beam_size=config.asr.beam_size, vad_filter=False
        )
        hypothesis = " ".join(s.text.strip() for s in segments)
        print(f"{clip}: {time.perf_counter() - started:.1f} s")
        by_language[language].append((clip, hypothesis, reference))
    scores = {}
    for language, rows in sorted(by_language.items()):
        hypotheses, references = [h for _, h, _ in rows], [[r for _, _, r in rows]]
        bleu = sacrebleu.corpus_bleu(hypotheses, references).score
        chrf = sacrebleu.corpus_chrf(hypotheses, references).score
        scores[language] = {"clips": len(rows), "bleu": round(bleu, 2), "chrf": round(chrf, 2)}
        print(f"{language}: {len(rows)} clips, BLEU {bleu:.1f}, chrF {chrf:.1f}")
    if args.json:
        clips = [{"clip": c, "hypothesis": h, "reference": r} for rows in by_language.values() for c, h, r in rows]
        args.json.write_text(json.dumps({"scores": scores, "clips": clips}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
