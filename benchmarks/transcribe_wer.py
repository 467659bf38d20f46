"""Word error rate of ``livesub transcribe`` against faster-whisper's own ``transcribe()``.

Both use the same model directory, compute type and beam size; ``--given-language`` tells both
the language, otherwise both detect it. Recordings come from a manifest in the format of
``../shared/audio/manifest.json`` (entries with ``file``, ``language`` and ``reference_text``).

    .venv/bin/python benchmarks/transcribe_wer.py ../shared/audio/manifest.json --category fleurs
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from pipeline.algos.wer import corpus_wer
from pipeline.backends.whisper import WhisperDecoder
from pipeline.config import load_config
from pipeline.transcribe import transcribe_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--category", action="append", help="only entries of this category (repeatable)")
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--given-language", action="store_true", help="tell both the language instead of detecting it")
    parser.add_argument("--json", type=Path, help="write the per-clip results here")
    parser.add_argument("--config", type=Path, action="append", default=[], help="livesub configuration (TOML)")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    entries = [
        e
        for e in json.loads(args.manifest.read_text())
        if e.get("reference_text") and (not args.category or e.get("category") in args.category)
    ]
    config = load_config(args.config, {"asr": {"model": args.model}})
    decoder = WhisperDecoder(config.asr)
    baseline = WhisperModel(
        str(decoder.path), device="cpu", compute_type=decoder.compute_type, cpu_threads=decoder.threads
    )
    rows = []
    seconds = {"livesub": 0.0, "faster-whisper": 0.0}
    audio_s = 0.0
    for entry in entries:
        path = args.manifest.parent / entry["file"]
        code = re.match(r"[a-z]+", entry["language"])  # "zh (Mandarin)", "en-US" -> zh, en
        language = code.group(0) if code else "en"
        given = language if args.given_language else "auto"
        run_config = load_config(args.config, {"asr": {"model": args.model, "language": given}})
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            try:
                result = transcribe_file(path, run_config, decoder, Path(out))
                ours = (Path(out) / f"{path.stem}.txt").read_text(encoding="utf-8")
                audio_s += result.audio_s
            except Exception as e:  # a clip with no speech found counts as an empty transcript
                print(f"{path.name}: {e}")
                ours = ""
            seconds["livesub"] += time.perf_counter() - started
        started = time.perf_counter()
        segments, _ = baseline.transcribe(
            str(path), language=None if given == "auto" else given, beam_size=config.asr.beam_size
        )
        theirs = " ".join(s.text.strip() for s in segments)
        seconds["faster-whisper"] += time.perf_counter() - started
        rows.append(
            {
                "file": entry["file"],
                "language": language,
                "reference": entry["reference_text"],
                "livesub": ours,
                "faster_whisper": theirs,
            }
        )

    by_language: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_language[row["language"]].append(row)
    print(f"{'language':<9}{'clips':>6}{'livesub':>10}{'faster-whisper':>16}")
    for language, group in sorted(by_language.items()):
        ours_wer = corpus_wer([(r["reference"], r["livesub"]) for r in group], language)
        theirs_wer = corpus_wer([(r["reference"], r["faster_whisper"]) for r in group], language)
        print(f"{language:<9}{len(group):>6}{ours_wer:>10.1%}{theirs_wer:>16.1%}")
    rtf = {name: round(spent / audio_s, 3) for name, spent in seconds.items()}
    print(f"RTF (wall / audio, model loaded once): {rtf}")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
