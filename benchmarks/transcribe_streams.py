"""``livesub transcribe`` against faster-whisper's own ``transcribe()`` on multi-sentence streams.

The streams are ``make_stream.py``'s (several sentences with pauses, each sentence's span and text
in ``<stream>.ref.json``). Both decoders use the same model directory, compute type and beam size,
the language given; faster-whisper runs with its defaults otherwise, on the whole file. Besides
the WER, each reference sentence is checked for being **lost** (fewer than half of its words found
among the words decoded over its span) and each decoded word for being **invented** (its middle
more than a second away from every reference sentence's span).

    .venv/bin/python benchmarks/transcribe_streams.py out/streams/stream_{en,es,de,fr,pt}.wav \
        --baseline-cache out/fw_whole.json

``--config`` passes livesub settings (TOML) to try a variant (a vocabulary, for one), ``--terms``
scores a vocabulary file's terms (recall, precision) in both transcripts; ``--baseline-cache`` keeps
faster-whisper's transcripts so that variants are compared without decoding them again.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from pipeline.algos.vocab import Term, parse_terms, read_vocabulary, term_scores
from pipeline.algos.wer import edit_distance, tokens
from pipeline.backends.whisper import WhisperDecoder
from pipeline.bench import find_reference, sentence_check
from pipeline.config import load_config
from pipeline.transcribe import transcribe_file


def score(
    reference: Any, text: str, words: list[tuple[str, float, float]], language: str, terms: tuple[Term, ...] = ()
) -> dict[str, Any]:
    """WER of ``text``; lost sentences and invented words of its timed ``words`` (Whisper's word
    pieces), as ``livesub.bench.sentence_check`` finds them."""
    truth = tokens(" ".join(u.text for u in reference.utterances), language)
    errors = edit_distance(truth, tokens(text, language))
    lost, invented = sentence_check(reference, words, language)
    return {
        "errors": errors,
        "words": len(truth),
        "wer": round(errors / max(1, len(truth)), 4),
        "lost": lost,
        "invented": invented,
        **(term_scores([(" ".join(u.text for u in reference.utterances), text)], terms, language) if terms else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("streams", nargs="+", type=Path)
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--config", type=Path, action="append", default=[], help="livesub configuration (TOML)")
    parser.add_argument("--baseline-cache", type=Path, help="faster-whisper's transcripts, kept between runs")
    parser.add_argument("--json", type=Path, help="write the per-stream results here")
    parser.add_argument("--terms", type=Path, help="a vocabulary file whose terms are scored (recall, precision)")
    args = parser.parse_args()

    config = load_config(args.config, {"asr": {"model": args.model}})
    terms = parse_terms(read_vocabulary(args.terms)) if args.terms else ()
    decoder = WhisperDecoder(config.asr)
    cache: dict[str, Any] = {}
    if args.baseline_cache and args.baseline_cache.exists():
        cache = json.loads(args.baseline_cache.read_text())
    baseline = None
    rows = []
    totals = {"livesub": [0, 0, 0, 0], "faster-whisper": [0, 0, 0, 0]}  # errors, words, lost, invented
    term_totals = {"livesub": [0.0, 0], "faster-whisper": [0.0, 0]}  # terms found, term occurrences
    for stream in args.streams:
        reference = find_reference(stream, None)
        language = (reference.language or "en").split("-")[0]
        # A conversation in several languages (asr.languages): neither is told one; faster-whisper
        # detects it segment by segment (its multilingual mode).
        several = bool(config.asr.languages)
        given = {} if several else {"language": language}
        run_config = load_config(args.config, {"asr": {"model": args.model, **given}})
        with tempfile.TemporaryDirectory() as out:
            transcribe_file(stream, run_config, decoder, Path(out))
            document = json.loads((Path(out) / f"{stream.stem}.json").read_text())
        ours: dict[str, Any] = {
            "text": " ".join(s["text"] for s in document["segments"]),
            "words": [(w["word"], w["start"], w["end"]) for s in document["segments"] for w in s.get("words", [])],
        }
        check = document["speech_check"]
        key = f"{stream.resolve()}:{config.asr.model}:{config.asr.beam_size}{':multilingual' if several else ''}"
        if key not in cache:
            if baseline is None:
                from faster_whisper import WhisperModel

                baseline = WhisperModel(
                    str(decoder.path), device="cpu", compute_type=decoder.compute_type, cpu_threads=decoder.threads
                )
            import ctranslate2

            ctranslate2.set_random_seed(0)  # its temperature fallback samples: the same text every run
            segments, _ = baseline.transcribe(
                str(stream),
                language=None if several else language,
                multilingual=several,
                beam_size=config.asr.beam_size,
                word_timestamps=True,
            )
            segments = list(segments)
            cache[key] = {
                "text": " ".join(s.text.strip() for s in segments),
                "words": [(w.word.strip(), w.start, w.end) for s in segments for w in (s.words or [])],
            }
        row: dict[str, Any] = {"stream": str(stream), "language": language}
        for name, decoded in (("livesub", ours), ("faster-whisper", cache[key])):
            result = score(reference, decoded["text"], decoded["words"], language, terms)
            row[name] = result
            total = totals[name]
            total[0] += result["errors"]
            total[1] += result["words"]
            total[2] += len(result["lost"])
            total[3] += len(result["invented"])
            if terms:
                term_totals[name][0] += result["term_occurrences"] * result["term_recall"]
                term_totals[name][1] += result["term_occurrences"]
        rows.append(row)
        mine, theirs = row["livesub"], row["faster-whisper"]
        print(
            f"{stream.name:<20} {language:<3} livesub {mine['wer']:6.1%} lost {mine['lost']} invented "
            f"{len(mine['invented'])} | faster-whisper {theirs['wer']:6.1%} lost {theirs['lost']} "
            f"invented {len(theirs['invented'])} | recovered {check['recovered']} dropped {check['dropped']} "
            f"repeated {check['repeated']} "
            f"unrecognised {len(check['unrecognised'])}",
            flush=True,
        )
    for name, (errors, words, lost, invented) in totals.items():
        found, expected = term_totals[name]
        recall = f", term recall {found / expected:.1%} ({expected} occurrences)" if expected else ""
        wer = errors / max(1, words)
        print(f"{name:<15} WER {wer:.1%} ({words} words), lost {lost}, invented words {invented}{recall}")
    if args.baseline_cache:
        args.baseline_cache.write_text(json.dumps(cache, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
