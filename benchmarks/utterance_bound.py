"""What a live path could reach at best by decoding each utterance alone: every reference
utterance decoded in one piece at its own boundaries (an endpointer that is never wrong, no
streaming, no commits), per stream against faster-whisper's offline ``transcribe()`` of the whole
stream (``offline_wer.py --whole --json``).

Each utterance is decoded as the live path decodes a final (``WhisperDecoder.decode_utterance``,
beam 5, the language given, no prompt; Whisper's text, before the live path's guards), from 0.3 s
before its speech to 0.5 s after it. With ``--shift``, every start moves by that many
milliseconds, once per value: how much a stream's WER depends on where an utterance happens to
begin, which an endpointer decides to within tens of milliseconds. The last line says how many
streams are above ``--ratio`` times offline in each run.

With ``--to en`` each utterance is translated instead (Whisper's translate task), scored with chrF
over the reference utterances as ``livesub bench`` scores it, against ``translate_offline.py
--json`` of the same streams; the last line counts streams more than ``--margin`` chrF below it.

    .venv/bin/python benchmarks/offline_wer.py --whole out/streams/*.wav --json out/offline.json
    .venv/bin/python benchmarks/utterance_bound.py out/streams/{babble,noisy,stream,quiet,turns}_*.wav \\
        --offline out/offline.json --shift 0 10 20 -10 -20
    .venv/bin/python benchmarks/translate_offline.py out/streams/stream_{es,de,fr,pt}.wav --json out/offline_en.json
    .venv/bin/python benchmarks/utterance_bound.py out/streams/stream_{es,de,fr,pt}.wav --to en \\
        --offline out/offline_en.json --shift 0 10 20 -10 -20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import sacrebleu

from pipeline.algos.wer import edit_distance, tokens
from pipeline.backends.whisper import WhisperDecoder
from pipeline.bench import find_reference
from pipeline.config import AsrConfig
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all

BEFORE_S = 0.3  # audio kept before the speech, about what VAD keeps
AFTER_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("streams", type=Path, nargs="+", help="streams with references (make_stream.py)")
    parser.add_argument("--offline", type=Path, help="offline_wer.py --whole --json output, to compare per stream")
    parser.add_argument("--to", choices=["en"], help="translate into English and score chrF")
    parser.add_argument("--shift", type=float, nargs="+", default=[0.0], help="start shifts in milliseconds")
    parser.add_argument("--ratio", type=float, default=1.1, help="count streams above this times offline")
    parser.add_argument("--margin", type=float, default=2.0, help="with --to: count streams this far below offline")
    args = parser.parse_args()
    offline: dict[str, float] = {}
    if args.offline and args.to:
        scores = json.loads(args.offline.read_text("utf-8"))["scores"]
        offline = {Path(stream).name: figures["chrf"] for stream, figures in scores.items()}
    elif args.offline:
        offline = {Path(row["stream"]).name: row["wer"] for row in json.loads(args.offline.read_text("utf-8"))}
    decoder = WhisperDecoder(AsrConfig(model="whisper-base"))
    task = "translate" if args.to else "transcribe"
    worse = [0] * len(args.shift)  # per shift: streams past the yardstick
    totals = [[0, 0] for _ in args.shift]  # per shift: word errors, reference words
    for stream in args.streams:
        reference = find_reference(stream, None)
        needed = "translation" if args.to else "text"
        if not all(getattr(u, needed) for u in reference.utterances):
            raise SystemExit(f"{stream}: its reference lacks a {needed} for some utterance")
        language = (reference.language or "en").split("-")[0]
        audio = read_all(stream)
        yardstick = offline.get(stream.name)
        cells = []
        for run, shift_ms in enumerate(args.shift):
            texts = []
            for utterance in reference.utterances:
                start = max(0, int((utterance.start - BEFORE_S + shift_ms / 1000) * SAMPLE_RATE))
                span = audio[start : int((utterance.end + AFTER_S) * SAMPLE_RATE)]
                texts.append(decoder.decode_utterance(span, language=language, task=task, beam_size=5).text)
            if args.to:
                chrf = sacrebleu.corpus_chrf(texts, [[u.translation for u in reference.utterances]]).score
                worse[run] += yardstick is not None and chrf < yardstick - args.margin
                cells.append(f"{chrf:6.1f}")
                continue
            errors = words = 0
            for utterance, text in zip(reference.utterances, texts, strict=True):
                expected = tokens(utterance.text, language)
                errors += edit_distance(expected, tokens(text, language))
                words += len(expected)
            totals[run][0] += errors
            totals[run][1] += words
            worse[run] += yardstick is not None and errors / words > args.ratio * yardstick
            cells.append(f"{errors / words:6.1%}")
        shown = ""
        if yardstick is not None:
            shown = f"offline {yardstick:5.1f} | " if args.to else f"offline {yardstick:6.1%} | "
        print(f"{stream.stem:<28} {shown}" + " ".join(cells), flush=True)
    if not args.to:
        print(f"{'all':<28} " + " ".join(f"{e / max(w, 1):6.1%}" for e, w in totals))
    if offline:
        past = f"more than {args.margin:g} chrF below" if args.to else f"above {args.ratio:g}x"
        print(f"streams {past} offline, per shift {args.shift}: {worse}")


if __name__ == "__main__":
    main()
