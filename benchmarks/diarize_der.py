"""Diarization error rate of livesub's speaker labelling on every shared recording with a speaker reference.

Speech is found with Silero VAD (as ``livesub bench`` finds clip spans: 300 ms of silence ends a
stretch, no padding), cut into windows, embedded with the voice encoder and clustered
(``pipeline/algos/diarize.py``). DER is pyannote.metrics' ``DiarizationErrorRate`` with a 0.25 s
collar, overlapping speech scored; missed speech and false alarm (the VAD's part) are shown apart
from confusion (the clustering's part).

Recordings: the two-speaker conversation (its ``.stm``; ``--rttm`` also scores it against the
``.rttm``, whose turns differ) and the AMI meeting excerpt (``dev00`` in its RTTM). ``--mixes``
adds recordings made from real single-speaker recordings with exact references: 2-4 speakers'
stretches of speech taking turns, and three single speakers whole. ``--sweep`` counts, for each
threshold, in how many recordings the right number of speakers is found, with five ways of finding
speech (the threshold's choice in ``diarize.py``). ``--given`` tells the clustering the number.

    .venv/bin/python benchmarks/diarize_der.py
    .venv/bin/python benchmarks/diarize_der.py --mixes --rttm
    .venv/bin/python benchmarks/diarize_der.py --mixes --sweep
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.algos import diarize
from pipeline.backends.silero import SileroDetector
from pipeline.backends.speakers import SpeakerEncoder
from pipeline.config import VadConfig
from pipeline.events import SAMPLE_RATE, Samples
from pipeline.inputs.audio import read_all

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "audio_fixtures"
SHARED = ROOT.parent / "shared" / "audio"

#: Ways of finding speech: Silero's silence that ends a stretch and padding, in milliseconds.
VADS = {"300ms": (300, 0), "100ms": (100, 0), "300ms+pad": (300, 100), "100ms+pad": (100, 100)}

Reference = list[tuple[float, float, str]]


@dataclass
class Recording:
    name: str
    audio: Samples
    reference: Reference

    @property
    def speakers(self) -> int:
        return len({speaker for _, _, speaker in self.reference})


def speech(audio: Samples, vad: str = "300ms") -> list[diarize.Span]:
    min_silence_ms, pad_ms = VADS[vad]
    detect = SileroDetector(VadConfig(), max_speech_s=30.0, min_silence_ms=min_silence_ms, speech_pad_ms=pad_ms)
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in detect(audio)]


def reference_speech(reference: Reference) -> list[diarize.Span]:
    """The reference's speech, overlaps and gaps under 0.3 s joined: a perfect VAD."""
    joined: list[diarize.Span] = []
    for start, end in sorted((start, end) for start, end, _ in reference):
        if joined and start <= joined[-1][1] + 0.3:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def read_stm(path: Path) -> Reference:
    rows = (line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [(float(f[3]), float(f[4]), f[2]) for f in rows]


def read_rttm(path: Path, uri: str | None = None) -> Reference:
    rows = (line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("SPEAKER"))
    return [(float(f[3]), float(f[3]) + float(f[4]), f[7]) for f in rows if uri is None or f[1] == uri]


def shared_recordings(rttm: bool) -> Iterator[Recording]:
    conversation = FIXTURES / "en_conversation_2spk_30s.wav"
    audio = read_all(conversation)
    yield Recording("conversation (stm)", audio, read_stm(conversation.with_suffix(".stm")))
    if rttm:
        yield Recording("conversation (rttm)", audio, read_rttm(SHARED / "speech" / "en_conversation_2spk_30s.rttm"))
    ami = SHARED / "speech_noref" / "en_ami_meeting_excerpt_30s.wav"
    yield Recording("AMI dev00", read_all(ami), read_rttm(ami.with_suffix(".all_dev.rttm"), "dev00"))


def mix(name: str, voices: dict[str, list[Path]], seed: int) -> Recording:
    """The voices' stretches of speech (Silero, 100 ms) taking turns of one or two stretches each,
    with 0.15-0.9 s of silence between stretches: exact references from real speech."""
    rng = np.random.default_rng(seed)
    left: dict[str, list[Samples]] = {}
    for speaker, paths in voices.items():
        audio = np.concatenate([read_all(path) for path in paths])
        left[speaker] = [audio[round(s * SAMPLE_RATE) : round(e * SAMPLE_RATE)] for s, e in speech(audio, "100ms")]
    parts: list[Samples] = [np.zeros(SAMPLE_RATE // 2, dtype=np.float32)]
    reference: Reference = []
    position = len(parts[0])
    turn = 0
    while any(left.values()):
        speaker = list(voices)[turn % len(voices)]
        turn += 1
        for _ in range(int(rng.integers(1, 3))):
            if not left[speaker]:
                break
            piece = left[speaker].pop(0)
            gap = np.zeros(round(float(rng.uniform(0.15, 0.9)) * SAMPLE_RATE), dtype=np.float32)
            reference.append((position / SAMPLE_RATE, (position + len(piece)) / SAMPLE_RATE, speaker))
            parts += [piece, gap]
            position += len(piece) + len(gap)
    return Recording(name, np.concatenate(parts), reference)


def mixes() -> Iterator[Recording]:
    speech_dir, fleurs = SHARED / "speech", SHARED / "fleurs"
    arctic = {
        "aew": [speech_dir / f"en_arctic_aew_a000{i}.wav" for i in (1, 2, 3)],
        "axb": [speech_dir / f"en_arctic_axb_a000{i}.wav" for i in (4, 5, 6)],
    }
    yield mix("mix: 2 arctic", arctic, 1)
    english = {
        "jfk": [speech_dir / "en_jfk_inaugural_16k.wav"],
        "quilter": [speech_dir / "en_librispeech_1272-128104-0000_mister_quilter.wav"],
        "librivox": [speech_dir / f"en_librivox_sense_sensibility_{n}.wav" for n in ("0870", "0880")],
    }
    yield mix("mix: 3 english", english, 2)
    four = {
        lang: [fleurs / f"fleurs-{lang}-{n}.ogg"]
        for lang, n in (("en", "002"), ("de", "000"), ("fr", "001"), ("es", "001"))
    }
    yield mix("mix: 4 fleurs", four, 3)
    yield mix("mix: 2 fleurs", {lang: [fleurs / f"fleurs-{lang}-000.ogg"] for lang in ("pt", "en")}, 4)
    for name, path in (
        ("one: fleurs fr", fleurs / "fleurs-fr-001.ogg"),
        ("one: jfk", speech_dir / "en_jfk_inaugural_16k.wav"),
        ("one: fleurs es", fleurs / "fleurs-es-001.ogg"),
    ):
        audio = read_all(path)
        yield Recording(name, audio, [(start, end, "one") for start, end in speech(audio, "100ms")])


def label(
    recording: Recording,
    encoder: SpeakerEncoder,
    vad: str = "300ms",
    threshold: float = diarize.THRESHOLD,
    speakers: int | None = None,
) -> list[diarize.Turn]:
    stretches = reference_speech(recording.reference) if vad == "reference" else speech(recording.audio, vad)
    spans = diarize.windows(stretches)
    labels = diarize.diarize(spans, encoder.embed_spans(recording.audio, spans), speakers, threshold=threshold)
    return diarize.turns(spans, labels)


def score(recording: Recording, turns: list[diarize.Turn]) -> dict[str, float]:
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference, hypothesis = Annotation(), Annotation()
    for start, end, speaker in recording.reference:
        reference[Segment(start, end)] = speaker
    for turn in turns:
        hypothesis[Segment(turn.start, turn.end)] = turn.speaker
    metric = DiarizationErrorRate(collar=0.25, skip_overlap=False)
    uem = Timeline([Segment(0.0, len(recording.audio) / SAMPLE_RATE)])
    result: dict[str, float] = metric(reference, hypothesis, uem=uem, detailed=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mixes", action="store_true", help="also mixes of real single-speaker recordings")
    parser.add_argument("--rttm", action="store_true", help="also score the conversation against its RTTM")
    parser.add_argument("--given", action="store_true", help="give the clustering the number of speakers")
    parser.add_argument("--vad", default="300ms", choices=[*VADS, "reference"], help="how speech is found")
    parser.add_argument("--threshold", type=float, default=diarize.THRESHOLD)
    parser.add_argument("--sweep", action="store_true", help="speakers found per threshold, every --vad")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="pyannote")
    encoder = SpeakerEncoder()
    recordings = list(shared_recordings(args.rttm)) + (list(mixes()) if args.mixes else [])
    if args.sweep:
        sweep(recordings, encoder)
        return
    print(f"{'recording':22} {'DER':>6} {'miss':>6} {'FA':>6} {'conf':>6} {'speakers':>9} {'s':>5} {'took s':>6}")
    totals = {"total": 0.0, "missed detection": 0.0, "false alarm": 0.0, "confusion": 0.0}
    for recording in recordings:
        started = time.perf_counter()
        turns = label(recording, encoder, args.vad, args.threshold, recording.speakers if args.given else None)
        took = time.perf_counter() - started
        result = score(recording, turns)
        for key in totals:
            totals[key] += result[key]
        found = len({turn.speaker for turn in turns})
        parts = [result[k] / result["total"] for k in ("missed detection", "false alarm", "confusion")]
        seconds = len(recording.audio) / SAMPLE_RATE
        print(
            f"{recording.name:22} {result['diarization error rate']:6.3f} {parts[0]:6.3f} {parts[1]:6.3f}"
            f" {parts[2]:6.3f} {found:4d} of {recording.speakers:<2d} {seconds:5.1f} {took:6.2f}"
        )
    errors = totals["missed detection"] + totals["false alarm"] + totals["confusion"]
    print(f"{'all (time-weighted)':22} {errors / totals['total']:6.3f}")


def sweep(recordings: list[Recording], encoder: SpeakerEncoder) -> None:
    thresholds = [round(0.30 + 0.01 * i, 2) for i in range(13)]
    print("right number of speakers, of", len(recordings), "recordings, per threshold")
    print(f"{'speech':10} " + " ".join(f"{t:4.2f}" for t in thresholds))
    for vad in [*VADS, "reference"]:
        right = [0] * len(thresholds)
        for recording in recordings:
            stretches = reference_speech(recording.reference) if vad == "reference" else speech(recording.audio, vad)
            spans = diarize.windows(stretches)
            embeddings = encoder.embed_spans(recording.audio, spans)
            for i, threshold in enumerate(thresholds):
                found = len(set(diarize.diarize(spans, embeddings, threshold=threshold)))
                right[i] += found == recording.speakers
        print(f"{vad:10} " + " ".join(f"{r:4d}" for r in right))


if __name__ == "__main__":
    main()
