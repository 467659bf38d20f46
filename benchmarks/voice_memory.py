"""The process's memory while the voice and the output chain speak many clauses of random length
(every clause a new input shape for ONNX Runtime), printed every 50 clauses.

    .venv/bin/python benchmarks/voice_memory.py 400
"""

from __future__ import annotations

import argparse
import random
import time

from pipeline.algos.output_chain import OutputChain
from pipeline.backends.voice import PiperVoice, check_voice
from pipeline.config import SpeechOutputConfig

WORDS = "the river rose quickly and flooded the old town after the long storm while people watched".split()


def rss_mb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clauses", type=int, nargs="?", default=400)
    args = parser.parse_args()
    voice = PiperVoice(check_voice("piper-joe", "en"))
    chain = OutputChain(SpeechOutputConfig(), voice.sample_rate)
    rng = random.Random(0)
    speech_s = compute_s = 0.0
    for i in range(args.clauses):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30))) + "."
        started = time.perf_counter()
        audio = chain.process(voice.synthesize(text))
        compute_s += time.perf_counter() - started
        speech_s += len(audio) / chain.output_rate
        if i % 50 == 0:
            print(f"clause {i}: {rss_mb()} MB", flush=True)
    print(f"after {args.clauses} clauses: {rss_mb()} MB; RTF {compute_s / speech_s:.3f}")


if __name__ == "__main__":
    main()
