"""A two-way conversation through ``livesub serve``, played in real time: how late each side's
finals come when the partner's and the wearer's voices are two sessions on one server.

Clips of the partner (Spanish) and of the wearer (English) take turns with pauses between them.
Each side is its own stream, silent while the other side speaks, sent in real time to a server
on loopback (the real Whisper, shared by the sessions): the partner's session translated into
English by Whisper, the wearer's (labelled ``"wearer"``) into Spanish by Apertium, as the
partner's view is fed. ``--alone`` plays the partner's side only, in one session, for comparison.

    .venv/bin/python benchmarks/serve_conversation.py ../shared/audio/fleurs/fleurs-{es,en}-00*.ogg --json out/conv.json

Reported per side: each turn's translation final, from the end of the turn's speech (Silero on
the clip alone) to the final's arrival at the client (p50, p95, max), finals per turn, and chrF
of the finals against the reference translations (``translations_en.tsv`` for the partner;
Apertium's translation of the reference transcript for the wearer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pipeline.backends.translators import ApertiumTranslator
from pipeline.backends.whisper import WhisperDecoder
from pipeline.bench import build_stream
from pipeline.config import load_config
from pipeline.events import SAMPLE_RATE
from pipeline.server import Server

SIDES = {
    "partner": {"language": "es", "target": "en", "translator": "whisper", "speaker": "partner"},
    "wearer": {"language": "en", "target": "es", "translator": "apertium", "speaker": "wearer"},
}


def _sides(clips: list[Path], pause_s: float) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """One stream of alternating turns, split into each side's own: a clip's audio (from the
    middle of the pause before it to the middle of the pause after) goes to its speaker's side."""
    spanish = sorted(c for c in clips if c.name.split("-")[1] == "es")
    english = sorted(c for c in clips if c.name.split("-")[1] == "en")
    turns = [clip for pair in zip(spanish, english, strict=False) for clip in pair]
    audio, segments = build_stream(turns, pause_s=pause_s)
    sides = {side: np.zeros_like(audio) for side in SIDES}
    middles = [int((before["end"] + after["start"]) / 2 * SAMPLE_RATE) for before, after in pairwise(segments)]
    bounds = [0, *middles, len(audio)]
    for segment, (begin, end) in zip(segments, pairwise(bounds), strict=True):
        segment["side"] = "partner" if segment["source"].split("-")[1] == "es" else "wearer"
        sides[segment["side"]][begin:end] = audio[begin:end]
    return sides, segments


async def _client(url: str, side: str, audio: np.ndarray, began: float) -> list[dict[str, Any]]:
    """Streams one side in real time (100 ms messages on the shared schedule); every record it
    gets back, with its arrival in stream seconds."""
    loop = asyncio.get_running_loop()
    records: list[dict[str, Any]] = []
    async with connect(f"{url}/session", max_size=None) as connection:
        await connection.send(json.dumps({"type": "start", "rate": SAMPLE_RATE, **SIDES[side]}))
        ready = json.loads(await connection.recv())
        if ready["type"] != "ready":
            raise SystemExit(f"{side}: {ready}")

        async def receive() -> None:
            try:
                async for message in connection:
                    records.append(json.loads(message) | {"arrived": loop.time() - began})
            except ConnectionClosed:
                pass

        receiver = asyncio.create_task(receive())
        pcm = (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2")
        block = SAMPLE_RATE // 10
        for at in range(0, len(pcm), block):
            await asyncio.sleep(max(0.0, began + at / SAMPLE_RATE - loop.time()))
            await connection.send(pcm[at : at + block].tobytes())
        await connection.send(json.dumps({"type": "stop"}))
        await receiver
    return records


def _report(
    side: str, records: list[dict[str, Any]], segments: list[dict[str, Any]], meant: list[str]
) -> dict[str, Any]:
    """One side's figures. A turn is translated when its last final (the one overlapping it
    most) arrives: its latency is that arrival after the end of the turn's speech."""
    turns = [s for s in segments if s["side"] == side]
    finals = [r for r in records if r["type"] == "translation" and r["final"]]
    texts: list[list[str]] = [[] for _ in turns]
    done: dict[int, float] = {}
    for final in finals:
        turn = int(np.argmax([min(final["end"], t["end"]) - max(final["start"], t["start"]) for t in turns]))
        texts[turn].append(final["committed"])
        done[turn] = final["arrived"] - turns[turn]["end"]
    lateness = sorted(done.values())
    summary = records[-1] if records and records[-1]["type"] == "session" else {}
    return {
        "turns": len(turns),
        "turns_translated": len(done),
        "finals": len(finals),
        "turn_final_p50": round(statistics.median(lateness), 2) if lateness else None,
        "turn_final_p95": round(float(np.percentile(lateness, 95)), 2) if lateness else None,
        "turn_final_max": round(max(lateness), 2) if lateness else None,
        "chrf": round(sacrebleu.corpus_chrf([" ".join(t) for t in texts], [meant]).score, 1),
        "overflows": summary.get("overflows"),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    sides, segments = _sides(args.clips, args.pause)
    translations = {}
    for line in args.translations.read_text(encoding="utf-8").splitlines()[1:]:
        clip, _, text = line.partition("\t")
        translations[Path(clip).name] = text.strip()
    apertium = ApertiumTranslator("en", "es")
    try:
        meant = {
            "partner": [translations[Path(s["source"]).stem] for s in segments if s["side"] == "partner"],
            "wearer": [apertium.translate(s["ref"]) for s in segments if s["side"] == "wearer"],
        }
    finally:
        apertium.close()
    playing = ["partner"] if args.alone else list(SIDES)
    config = load_config([], {"server": {"port": 0, "max_sessions": len(playing)}, "asr": {"model": args.model}})
    server = Server(config, decoder=WhisperDecoder(config.asr))
    async with server:
        began = asyncio.get_running_loop().time() + 0.5
        results = await asyncio.gather(*(_client(server.url, side, sides[side], began) for side in playing))
    report = {
        "audio_s": round(len(sides["partner"]) / SAMPLE_RATE, 1),
        "sessions": len(playing),
        **{side: _report(side, records, segments, meant[side]) for side, records in zip(playing, results, strict=True)},
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", type=Path, help="fleurs-es-* (the partner) and fleurs-en-* (the wearer)")
    parser.add_argument("--pause", type=float, default=1.0, help="silence between turns, in seconds (default 1.0)")
    parser.add_argument("--model", default="whisper-base", help="Whisper model (default whisper-base)")
    parser.add_argument(
        "--translations",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/audio/translations_en.tsv",
        help="reference English translations of the partner's clips (TSV: clip, translation)",
    )
    parser.add_argument("--alone", action="store_true", help="the partner's side only, one session")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = asyncio.run(_run(args))
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
