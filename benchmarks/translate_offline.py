"""Whisper's offline speech-to-English translation: the yardstick for streamed translation.

faster-whisper's own ``transcribe(task="translate")`` (same model directory, compute type and
beam size as livesub), scored with sacrebleu per source language, on either

- each clip of a reference TSV (``clip<TAB>english``, as ``../shared/audio/translations_en.tsv``),
  decoded clip by clip; or
- bench streams (audio with a ``.ref.json`` holding each utterance's ``translation``), each decoded
  whole, as issue 19 defines "offline". Each of Whisper's segments goes to the reference utterance
  it overlaps most, as ``livesub bench`` assigns its finals, and chrF is given both over those
  utterances (comparable with the bench's figure) and over the stream as one document (free of
  that assignment). ``--bench FILE`` adds the document chrF of a bench run's finals, once for
  each time it played the stream.

    .venv/bin/python benchmarks/translate_offline.py ../shared/audio/translations_en.tsv
    .venv/bin/python benchmarks/translate_offline.py out/streams/stream_{es,de,fr,pt}.wav --bench out/translate.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sacrebleu

from pipeline.algos.metrics import overlapped_most
from pipeline.backends.whisper import WhisperDecoder
from pipeline.bench import find_reference
from pipeline.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", type=Path, help="a reference TSV of clips, or bench streams")
    parser.add_argument("--prefix", default="fleurs/", help="only clips whose name starts with this")
    parser.add_argument("--bench", type=Path, help="a bench --json run of the same streams, to compare")
    parser.add_argument("--json", type=Path, help="write the translations and the scores here")
    args = parser.parse_args()

    import ctranslate2
    from faster_whisper import WhisperModel

    config = load_config()
    decoder = WhisperDecoder(config.asr)
    model = WhisperModel(
        str(decoder.path), device="cpu", compute_type=decoder.compute_type, cpu_threads=decoder.threads
    )

    # Whisper's fallback samples: the same command, the same yardstick (CTranslate2 seeds a
    # thread's generator once, at its first sample, so once here is all a seed can do).
    ctranslate2.set_random_seed(0)

    def translate(audio: str, language: str) -> list[tuple[float, float, str]]:
        segments, _ = model.transcribe(
            audio, language=language, task="translate", beam_size=config.asr.beam_size, vad_filter=False
        )
        return [(s.start, s.end, s.text.strip()) for s in segments]

    if args.sources[0].suffix == ".tsv":
        rows, scores = _clips(args.sources[0], args.prefix, translate)
    else:
        rows, scores = _streams(args.sources, translate, json.loads(args.bench.read_text()) if args.bench else None)
    if args.json:
        args.json.write_text(json.dumps({"scores": scores, "rows": rows}, ensure_ascii=False, indent=1) + "\n")


Translate = Callable[[str, str], list[tuple[float, float, str]]]


def _clips(tsv: Path, prefix: str, translate: Translate) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Each clip of the TSV translated apart, scored per source language."""
    by_language: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for line in tsv.read_text(encoding="utf-8").splitlines()[1:]:
        clip, reference = line.split("\t")[0], line.split("\t")[-1].strip()
        if not clip.startswith(prefix):
            continue
        audio = next(p for p in tsv.parent.glob(clip + ".*") if p.suffix not in (".txt", ".json"))
        language = Path(clip).name.split("-")[1].split("_")[0]
        started = time.perf_counter()
        hypothesis = " ".join(text for _, _, text in translate(str(audio), language))
        print(f"{clip}: {time.perf_counter() - started:.1f} s")
        by_language[language].append((clip, hypothesis, reference))
    scores = {}
    for language, rows in sorted(by_language.items()):
        hypotheses, references = [h for _, h, _ in rows], [[r for _, _, r in rows]]
        bleu = sacrebleu.corpus_bleu(hypotheses, references).score
        chrf = sacrebleu.corpus_chrf(hypotheses, references).score
        scores[language] = {"clips": len(rows), "bleu": round(bleu, 2), "chrf": round(chrf, 2)}
        print(f"{language}: {len(rows)} clips, BLEU {bleu:.1f}, chrF {chrf:.1f}")
    clips = [{"clip": c, "hypothesis": h, "reference": r} for rows in by_language.values() for c, h, r in rows]
    return clips, scores


def _streams(
    streams: list[Path], translate: Translate, bench: dict[str, Any] | None
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Each stream translated whole, scored over its reference utterances and as one document."""
    rows, scores = [], {}
    for stream in streams:
        reference = find_reference(stream, None)
        utterances = [u for u in reference.utterances if u.translation]
        if not utterances:
            raise SystemExit(f"{stream}: its reference holds no translations")
        owned: list[list[str]] = [[] for _ in utterances]
        segments = translate(str(stream), (reference.language or "en").split("-")[0])
        for start, end, text in segments:
            if (index := overlapped_most(utterances, start, end)) is not None:
                owned[index].append(text)
        hypotheses = [" ".join(texts) for texts in owned]
        truths = [u.translation for u in utterances]
        document = " ".join(text for _, _, text in segments)
        figures: dict[str, Any] = {
            "chrf": round(sacrebleu.corpus_chrf(hypotheses, [truths]).score, 2),
            "chrf_document": round(sacrebleu.corpus_chrf([document], [[" ".join(truths)]]).score, 2),
        }
        line = f"{stream.name}: offline chrF {figures['chrf']:.1f} (as one document {figures['chrf_document']:.1f})"
        if bench is not None:
            streamed = [
                round(sacrebleu.corpus_chrf([" ".join(finals)], [[" ".join(truths)]]).score, 2)
                for finals in _finals_per_run(bench, stream)
            ]
            figures["streamed_chrf_document"] = streamed
            line += f"; streamed as one document {' / '.join(f'{c:.1f}' for c in streamed)}"
        print(line)
        scores[str(stream)] = figures
        rows.append({"stream": str(stream), "hypothesis": document, "reference": " ".join(truths)})
    return rows, scores


def _finals_per_run(bench: dict[str, Any], stream: Path) -> list[list[str]]:
    """A bench run's final translations of ``stream``, one list per time it was played (with
    ``--repeat``, a new play starts where the stream clock goes back)."""
    runs: list[list[str]] = []
    clock = float("inf")
    for event in bench["events"]:
        if Path(event["input"]) != stream:
            continue
        if event["stream"] < clock:
            runs.append([])
        clock = event["stream"]
        if event["type"] == "translation" and event["final"]:
            runs[-1].append(event["committed"])
    return runs


if __name__ == "__main__":
    main()
