"""faster-whisper's own offline WER on a bench stream: the yardstick for ``livesub bench``.

The issue's bar is streamed WER against faster-whisper's offline WER "on the same audio with the
same model". This decodes each stream as ``livesub bench`` plays it (noise, gain and pauses
included) with faster-whisper's ``transcribe()``: same model directory, compute type and beam
size, language from the reference; scored against the stream's ``.ref.json`` or ``.stm`` as the
bench scores it.

By default each reference utterance's span is decoded apart, with ``--pad`` seconds either side
(as the clips the stream was built from, but with the stream's noise and gain). ``--whole``
decodes the whole file instead: there faster-whisper carries errors from one clip into the next
through its prompt and its 30 s windows (on the FLEURS streams: en 18.4%, fr 44.8%, pt 38.4%,
against 6.8%, 29.9%, 18.4% clip by clip), which makes a lax yardstick. ``--whole --vad`` is
faster-whisper's own pipeline for long recordings (its Silero VAD filter first): no reference
spans, like the streamed run, but erratic (en 46.6%: two of five sentences lost; de 9.6%).

    .venv/bin/python benchmarks/offline_wer.py out/streams/stream_{en,es,de,fr,pt}.wav
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.algos.wer import corpus_wer, edit_distance, tokens
from pipeline.bench import find_reference
from pipeline.config import load_config
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all
from pipeline.models import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("streams", nargs="+", type=Path)
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--pad", type=float, default=0.5, help="audio kept either side of an utterance, in seconds")
    parser.add_argument("--whole", action="store_true", help="decode the whole file at once")
    parser.add_argument("--vad", action="store_true", help="with --whole: faster-whisper's own VAD filter")
    parser.add_argument("--json", type=Path, help="write the transcripts and WERs here")
    args = parser.parse_args()

    import ctranslate2
    from faster_whisper import WhisperModel

    asr = load_config([], {"asr": {"model": args.model}}).asr
    model = WhisperModel(str(resolve(asr.model, "whisper")), device="cpu", compute_type=asr.compute_type)
    # faster-whisper samples at higher temperatures where a decode fails its checks: seeded, the
    # same command gives the same yardstick every run (unseeded, babble fr gave 67.5% and 64.3%).
    # CTranslate2 seeds a thread's generator once, at its first sample (src/random.cc), so once
    # here is all a seed can do, and a stream's figure still depends on the streams decoded before
    # it (babble fr 64.9% with two others, 66.9% among the 25).
    ctranslate2.set_random_seed(0)
    rows = []
    errors = words = 0
    for stream in args.streams:
        reference = find_reference(stream, None)
        language = (reference.language or "en").split("-")[0]
        pieces: list[Any]
        if args.whole:
            pieces = [str(stream)]
        else:
            audio = read_all(stream)
            pad = int(args.pad * SAMPLE_RATE)
            spans = [(int(u.start * SAMPLE_RATE) - pad, int(u.end * SAMPLE_RATE) + pad) for u in reference.utterances]
            pieces = [audio[max(0, start) : end] for start, end in spans]
        texts = []
        for piece in pieces:
            segments, _ = model.transcribe(piece, language=language, beam_size=asr.beam_size, vad_filter=args.vad)
            texts.append(" ".join(s.text.strip() for s in segments))
        text = " ".join(texts)
        truth = " ".join(u.text for u in reference.utterances)
        wer = corpus_wer([(truth, text)], language)
        size = len(tokens(truth, language))
        errors, words = errors + edit_distance(tokens(truth, language), tokens(text, language)), words + size
        rows.append({"stream": str(stream), "language": language, "wer": wer, "text": text})
        print(f"{stream.name:<32} {language:<4} offline WER {wer:.1%}")
    print(f"all {len(args.streams)} streams: offline WER {errors / words:.1%} ({words} reference words)")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
