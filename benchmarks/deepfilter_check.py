"""DeepFilterNet3 (pipeline/backends/deepfilter.py) on this machine: its cost, and what it does to
speech in noise.

Each speech recording is set to a level (RMS over the clip), mixed with each noise at an SNR, and
streamed through the denoiser in 10 ms blocks, as live audio comes. Reported: SI-SDR against the
clean speech before and after, at each attenuation limit, and the real-time factor (CPU seconds
of this process, which the library spends on one core, per second of audio; wall-clock beside).

    S=../shared/audio
    .venv/bin/python benchmarks/deepfilter_check.py $S/fleurs/fleurs-en-00*.ogg \\
        --noise $S/noise/noise_doing_the_dishes_95s.wav $S/noise/noise_exercise_bike_61s.wav
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile
import soxr

from pipeline.algos.metrics import si_sdr
from pipeline.backends.deepfilter import DeepFilter
from pipeline.events import SAMPLE_RATE, Samples

BLOCK = SAMPLE_RATE // 100  # 10 ms, as the microphone delivers


def read_mono(path: Path) -> Samples:
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.asarray(mono, dtype=np.float32)


def denoise(denoiser: DeepFilter, audio: Samples) -> tuple[Samples, float, float]:
    """The output, and the CPU and wall seconds it took."""
    cpu, wall = time.process_time(), time.perf_counter()
    parts = [denoiser.process(audio[i : i + BLOCK]) for i in range(0, len(audio), BLOCK)]
    out = np.concatenate([*parts, denoiser.flush()])
    return out, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("speech", type=Path, nargs="+", help="clean speech recordings")
    parser.add_argument("--noise", type=Path, nargs="+", required=True, help="noise recordings (looped)")
    parser.add_argument("--snr", type=float, default=5.0, help="speech-to-noise ratio in dB (default 5)")
    parser.add_argument("--level-dbfs", type=float, nargs="+", default=[-25.0], help="speech levels, RMS (default -25)")
    parser.add_argument("--limits", type=float, nargs="+", default=[12.0, 100.0], help="attenuation limits, dB")
    parser.add_argument("--input-gain-db", type=float, default=0.0, help="DeepFilter's input gain")
    args = parser.parse_args()

    denoisers = {limit: DeepFilter(limit, input_gain_db=args.input_gain_db) for limit in args.limits}
    seconds = cpu_total = wall_total = 0.0
    frames = 0
    gains: dict[tuple[float, float], list[float]] = {}
    for speech_path in args.speech:
        speech = read_mono(speech_path)
        for noise_path in args.noise:
            noise = np.resize(read_mono(noise_path), len(speech))
            for level in args.level_dbfs:
                clean = speech / np.sqrt(np.mean(speech**2)) * 10 ** (level / 20)
                scale = np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (args.snr / 10))
                noisy = np.asarray(clean + scale * noise, dtype=np.float32)
                before = si_sdr(noisy, clean)
                line = f"{speech_path.name} + {noise_path.stem} at {level:g} dBFS: SI-SDR in {before:5.2f} dB"
                for limit, denoiser in denoisers.items():
                    start = denoiser.frames
                    out, cpu, wall = denoise(denoiser, noisy)
                    assert len(out) == len(noisy)
                    after = si_sdr(out, clean)
                    gains.setdefault((level, limit), []).append(after - before)
                    line += f", out {after:5.2f} dB at {limit:g} dB"
                    seconds += len(noisy) / SAMPLE_RATE
                    cpu_total += cpu
                    wall_total += wall
                    frames += denoiser.frames - start
                print(line)
    for (level, limit), values in sorted(gains.items()):
        print(
            f"mean SI-SDR gain at {level:g} dBFS, limit {limit:g} dB: {np.mean(values):+.2f} dB ({len(values)} mixes)"
        )
    print(
        f"RTF {cpu_total / seconds:.3f} (CPU), {wall_total / seconds:.3f} (wall) over {seconds:.0f} s of audio; "
        f"{1000 * cpu_total / frames:.2f} ms CPU per 10 ms frame"
    )
    for denoiser in denoisers.values():
        denoiser.close()


if __name__ == "__main__":
    main()
