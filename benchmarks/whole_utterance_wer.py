"""How much of the streamed WER is the streaming itself: each final of a ``livesub bench`` run
against one whole decode of the same span.

For every final the run emitted, the audio between its start and end is decoded once more in
one piece (``WhisperDecoder.decode_utterance``, beam 5, the language given, no prompt): what
the live path would give if it could wait for the utterance's end and decode it whole. Both are
scored per reference utterance, as ``livesub bench`` matches them (overlapping finals joined).

    .venv/bin/python benchmarks/whole_utterance_wer.py out/held_out.json out/streams/noisy_en.wav --run 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.algos.wer import edit_distance, tokens
from pipeline.backends.whisper import WhisperDecoder
from pipeline.bench import find_reference
from pipeline.config import AsrConfig
from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all


def _finals(bench: dict[str, Any], stream: Path, run: int) -> list[dict[str, Any]]:
    """The transcript finals of one run of ``stream`` (utterance ids start at 0 in each run)."""
    runs: list[list[dict[str, Any]]] = []
    for event in bench["events"]:
        if Path(event["input"]).name == stream.name and event["type"] == "transcript" and event["final"]:
            if event["utterance"] == 0 or not runs:
                runs.append([])
            runs[-1].append(event)
    return runs[run]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", type=Path, help="a livesub bench --json report")
    parser.add_argument("streams", type=Path, nargs="+")
    parser.add_argument("--run", type=int, default=0, help="which run of each stream (default 0)")
    args = parser.parse_args()
    bench = json.loads(args.bench.read_text(encoding="utf-8"))
    decoder = WhisperDecoder(AsrConfig(model="whisper-base"))
    for stream in args.streams:
        reference = find_reference(stream, None)
        language = (reference.language or "en").split("-")[0]
        audio = read_all(stream)
        finals = _finals(bench, stream, args.run)
        whole = {}
        for final in finals:
            span = audio[int(final["start"] * SAMPLE_RATE) : int(final["end"] * SAMPLE_RATE)]
            whole[final["utterance"]] = decoder.decode_utterance(
                span, language=language, task="transcribe", beam_size=5
            ).text
        streamed_errors = whole_errors = words = 0
        for utterance in reference.utterances:
            length = utterance.end - utterance.start
            mine = [
                f
                for f in finals
                if min(f["end"], utterance.end) - max(f["start"], utterance.start)
                > 0.2 * min(f["end"] - f["start"], length)
            ]
            expected = tokens(utterance.text, language)
            streamed_errors += edit_distance(expected, tokens(" ".join(f["committed"] for f in mine), language))
            whole_errors += edit_distance(expected, tokens(" ".join(whole[f["utterance"]] for f in mine), language))
            words += len(expected)
        print(
            f"{stream.stem}: streamed {streamed_errors / words:.1%}, "
            f"the same spans decoded whole {whole_errors / words:.1%} ({words} words)"
        )


if __name__ == "__main__":
    main()
