"""Simulated glasses scenes for the front-end benchmark: a partner ahead, a side talker, diffuse noise.

Each scene is a shoebox room (pyroomacoustics, image source method) with the wearer's glasses
array (the device profile's ``[frontend]`` microphones, turned by the head's yaw) at a random
place and heading, and:

- the partner, 1.0-1.5 m ahead within +-20 degrees of the look direction, reading FLEURS clips
  of one language with 1-2 s pauses;
- with ``--kind conversation``, the wearer (a source at the profile's mouth, in the near field)
  answering in another language between the partner's clips, never overlapping them; the
  wearer's source is given the partner's source power (speech RMS of the dry clips), so it is
  much louder at the microphones, as one's own voice is;
- a side talker, 1.5-3 m away at 60-150 degrees from the look direction (either side), talking
  throughout (other recordings from ``speech/`` and ``speech_noref/``), 0-6 dB under the partner
  at microphone 1 (its image power over the whole scene against the partner's during speech);
- diffuse noise: one noise recording looped from a different offset in each of 8 sources spread
  around the room, away from the head.

SNR (``--snr-range``, drawn uniformly per scene): the partner's reverberant image power at
microphone 1 during the partner's speech (the reference segments' spans) over the noise sources'
summed image power at microphone 1 over the whole scene. The side talker is not counted as noise.

Room: 4-8 x 3-6 x 2.6-3.2 m, RT60 drawn from ``--rt60-range`` (default 0.3-0.7 s) and turned into
one wall absorption by ``pra.inverse_sabine``; the image order is inverse_sabine's, capped at
``MAX_ORDER`` (60: above it the measured decay of the partner's impulse response no longer
changes in these rooms, and a scene takes a few seconds on 2 cores). No air absorption, no
randomised image sources, no head model (the array is in free field). The partner's response
at microphone 1 is measured (T20, extrapolated to 60 dB) and recorded as ``rt60_measured``:
pyroomacoustics' shoebox decays somewhat slower than Sabine's formula in large rooms.

Everything about scene k is drawn from ``numpy.random.default_rng([seed, k])``. The reference
segments' times are those of the dry clips in the scene (the images arrive a few ms later).

Outputs in ``--out`` for each scene (``--name``, default ``scene_NN``):

- ``NAME.wav``: the mixture, one channel per microphone, PCM_16, peak at -3 dBFS;
- ``NAME.partner.wav``, ``NAME.wearer.wav`` (conversation), ``NAME.side.wav``, ``NAME.noise.wav``:
  each source's reverberant image at microphone 1, float32, scaled as the mixture (they sum to
  its channel 1), the references for SI-SDR;
- ``NAME.ref.json``: the partner's and wearer's utterances (speech span in the scene, FLEURS
  transcript, English reference translation when ``translations_en.tsv`` has one, language,
  speaker) for ``livesub bench``; the side talker is interference and not in it;
- ``NAME.json``: the scene's parameters (room, RT60, positions, yaw, SNR, clips, the partner's
  true direction in the frame's axes, ...).

With ``--format flac`` the mixture and references are FLAC PCM_16; ``--references partner`` keeps
only the partner's. ``--list`` prints the scenes' one-line summaries without simulating them.

The project's scenes were made with (from the repository's root):

    P=.venv/bin/python; S=benchmarks/simulate_glasses.py
    $P $S --profile configs/glasses-4mic.toml --scenes 10 --seed 1 --kind partner --out out/scenes/4mic_partner
    $P $S --profile configs/glasses-5mic.toml --scenes 10 --seed 2 --kind partner --out out/scenes/5mic_partner
    $P $S --profile configs/glasses-4mic.toml --scenes 6 --seed 3 --kind conversation \\
        --out out/scenes/4mic_conversation
    $P $S --profile configs/glasses-5mic.toml --scenes 4 --seed 4 --kind conversation \\
        --out out/scenes/5mic_conversation

and the integration test's scene (``audio_fixtures/glasses_4mic_scene.*``) with:

    F=../shared/audio/fleurs
    $P $S --profile configs/glasses-4mic.toml --scenes 1 --seed 5 --kind conversation \\
        --partner-clips $F/fleurs-es-002.ogg $F/fleurs-es-003.ogg --wearer-clips $F/fleurs-en-004.ogg \\
        --snr-range 5 5 --rt60-range 0.5 0.5 --noise ../shared/audio/noise/noise_doing_the_dishes_95s.wav \\
        --format flac --references partner --name glasses_4mic_scene --out audio_fixtures
"""

from __future__ import annotations

import argparse
import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyroomacoustics as pra  # type: ignore[import-untyped,import-not-found,unused-ignore]
import soundfile

from pipeline.events import SAMPLE_RATE
from pipeline.inputs.audio import read_all

Array = npt.NDArray[np.float64]

#: The shared recordings (../shared/audio beside the repository).
AUDIO = Path(__file__).resolve().parents[2] / "shared" / "audio"
#: The image order's cap (see the module's docstring).
MAX_ORDER = 60
#: Every dry clip's speech is set to this RMS level before simulation (the level is arbitrary:
#: the scene is scaled to its peak at the end), so all talkers have one source power.
SPEECH_DBFS = -26.0
#: The mixture's peak after scaling, in dBFS.
PEAK_DBFS = -3.0
NOISE_SOURCES = 8
#: No scene is longer than this, in s.
MAX_SECONDS = 70.0
#: Kept clear of the walls by the partner, the side talker and the noise sources, in m.
WALL_MARGIN = 0.4
#: Recordings of more than one voice, left out of the side talker's speech.
NOT_ONE_TALKER = {"en_conversation_2spk_30s", "en_stereo_two_speakers_overlap", "en_ami_meeting_excerpt_30s"}
#: Long enough to loop under a whole scene from 8 offsets.
NOISES = ("noise_doing_the_dishes_95s.wav", "noise_exercise_bike_61s.wav")


@dataclass
class Clip:
    """A dry recording set to ``SPEECH_DBFS`` over its speech span, with its reference."""

    path: Path
    audio: Array
    speech: tuple[int, int]  # first and last speech sample (Silero)
    text: str
    language: str
    translation: str | None


@dataclass
class Turn:
    clip: Clip
    speaker: str  # "partner" or "wearer"
    start: int  # where the clip begins in the scene, in samples


@dataclass
class Profile:
    path: Path
    microphones: Array  # (M, 3), frame axes
    look: Array
    mouth: Array


@dataclass
class Plan:
    """Everything drawn for one scene, before simulation."""

    index: int
    name: str
    language: str
    wearer_language: str | None
    turns: list[Turn]
    length: int
    dims: Array
    rt60: float
    head: Array
    yaw: float  # radians, from the room's x axis toward its y axis
    partner: Array
    side: Array
    noise_sources: Array  # (NOISE_SOURCES, 3)
    snr_db: float
    side_below_db: float
    side_clips: list[str]
    side_signal: Array
    noise_name: str
    noise_offsets: list[int]
    noise_signals: list[Array] = field(default_factory=list)


def rotation(yaw: float) -> Array:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def read_profile(path: Path) -> Profile:
    with path.open("rb") as file:
        frontend = tomllib.load(file)["frontend"]
    look = np.asarray(frontend["look"], dtype=np.float64)
    return Profile(
        path=path,
        microphones=np.asarray(frontend["microphones"], dtype=np.float64),
        look=look / np.linalg.norm(look),
        mouth=np.asarray(frontend["mouth"], dtype=np.float64),
    )


@cache
def _detector() -> Any:
    from pipeline.backends.silero import SileroDetector
    from pipeline.config import VadConfig

    # As pipeline.bench.build_stream (benchmarks/make_stream.py) finds a clip's speech span.
    return SileroDetector(VadConfig(), max_speech_s=30.0, min_silence_ms=300, speech_pad_ms=0)


def _speech_regions(audio: Array, path: Path) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = _detector()(audio.astype(np.float32))
    if not regions:
        raise SystemExit(f"{path}: no speech found")
    return regions


@cache
def translations(path: Path) -> dict[str, str]:
    """English references by clip stem (``fleurs-es-000``), as make_stream.py reads them."""
    found: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 2:
                found[Path(parts[0]).name] = parts[-1].strip()
    return found


@cache
def load_clip(path: Path, translations_path: Path) -> Clip:
    audio = read_all(path).astype(np.float64)
    regions = _speech_regions(audio, path)
    start, end = regions[0][0], regions[-1][1]
    speech = audio[start:end]
    audio = audio * (10 ** (SPEECH_DBFS / 20) / np.sqrt(np.mean(speech**2)))
    language = path.stem.split("-")[1] if path.stem.startswith("fleurs-") else path.stem.split("_")[0]
    meta = path.with_suffix(".meta.json")
    if meta.is_file():
        stated = json.loads(meta.read_text(encoding="utf-8")).get("language")
        if stated:
            language = stated.split("-")[0].split(" ")[0]
    text = path.with_suffix(".txt")
    return Clip(
        path=path,
        audio=audio,
        speech=(start, end),
        text=text.read_text(encoding="utf-8").strip() if text.is_file() else "",
        language=language,
        translation=translations(translations_path).get(path.stem),
    )


@cache
def load_talker(path: Path) -> Array:
    """A side talker's recording, its speech set to ``SPEECH_DBFS``."""
    audio = read_all(path).astype(np.float64)
    regions = _speech_regions(audio, path)
    speech = np.concatenate([audio[s:e] for s, e in regions])
    gain = 10 ** (SPEECH_DBFS / 20) / math.sqrt(_power(speech))
    return audio * gain


def fleurs_clips(audio_dir: Path, language: str) -> list[Path]:
    clips = sorted((audio_dir / "fleurs").glob(f"fleurs-{language}-*.ogg"))
    if not clips:
        raise SystemExit(f"no FLEURS clips for {language!r} in {audio_dir / 'fleurs'}")
    return clips


def side_talker_files(audio_dir: Path) -> list[Path]:
    files = sorted((audio_dir / "speech").glob("*.wav")) + sorted((audio_dir / "speech_noref").glob("*.wav"))
    return [f for f in files if f.stem not in NOT_ONE_TALKER]


def _inside(point: Array, dims: Array, margin: float) -> bool:
    return bool(np.all(point >= margin) and np.all(point <= dims - margin))


def _place(
    rng: np.random.Generator,
    dims: Array,
    head: Array,
    heading: float,
    distance: tuple[float, float],
    angle: tuple[float, float],
    height: tuple[float, float],
    either_side: bool,
) -> Array | None:
    """A talker's mouth at a horizontal distance and an angle from the ``heading`` (the look
    direction's azimuth in the room), or None when 200 draws all fall outside the room."""
    for _ in range(200):
        offset = math.radians(rng.uniform(*angle)) * (rng.choice([-1.0, 1.0]) if either_side else 1.0)
        r = rng.uniform(*distance)
        point = np.array(
            [head[0] + r * math.cos(heading + offset), head[1] + r * math.sin(heading + offset), rng.uniform(*height)]
        )
        if _inside(point, dims, WALL_MARGIN):
            return point
    return None


def _noise_positions(rng: np.random.Generator, dims: Array, head: Array) -> Array:
    """One source per 45-degree sector around the head, as far from it as the draws allow
    (at least 1.5 m when possible), anywhere in height."""
    points = []
    for k in range(NOISE_SOURCES):
        best: Array | None = None
        for _ in range(300):
            point = rng.uniform(WALL_MARGIN, dims - WALL_MARGIN)
            bearing = math.atan2(point[1] - head[1], point[0] - head[0]) % (2 * math.pi)
            if int(bearing // (math.pi / 4)) != k:
                continue
            if best is None or np.linalg.norm(point - head) > np.linalg.norm(best - head):
                best = point
            if np.linalg.norm(point - head) >= 1.5:
                break
        if best is None:  # the sector holds no room at all (cannot happen 1 m from the walls)
            best = rng.uniform(WALL_MARGIN, dims - WALL_MARGIN)
        points.append(best)
    return np.array(points)


def _looped(audio: Array, length: int, offset: int) -> Array:
    return np.tile(audio, length // len(audio) + 2)[offset : offset + length]


def plan_scene(args: argparse.Namespace, profile: Profile, index: int) -> Plan:
    rng = np.random.default_rng([args.seed, index])
    conversation = args.kind == "conversation"
    tsv = args.translations
    # Who says what.
    if args.partner_clips:
        partner_paths = list(args.partner_clips)
        language = load_clip(partner_paths[0], tsv).language
    else:
        language = args.languages[index % len(args.languages)]
        available = fleurs_clips(args.audio, language)
        partner_paths = [available[i] for i in rng.permutation(len(available))]
    wearer_language: str | None = None
    wearer_paths: list[Path] = []
    if conversation:
        if args.wearer_clips:
            wearer_paths = list(args.wearer_clips)
            wearer_language = load_clip(wearer_paths[0], tsv).language
        else:
            wearer_language = args.wearer_language
            if wearer_language == language:
                wearer_language = "es" if language == "en" else "en"
            available = fleurs_clips(args.audio, wearer_language)
            wearer_paths = [available[i] for i in rng.permutation(len(available))]
    fixed = bool(args.partner_clips)
    target = rng.uniform(*args.duration_range)
    lead = rng.uniform(0.8, 1.5)
    position = lead  # where the next clip may begin, in s
    end = 0  # where the last clip ends, in samples
    turns: list[Turn] = []
    queue: list[tuple[str, Path]] = []
    for k in range(max(len(partner_paths), len(wearer_paths))):
        if k < len(partner_paths):
            queue.append(("partner", partner_paths[k]))
        if k < len(wearer_paths):
            queue.append(("wearer", wearer_paths[k]))
    for speaker, path in queue:
        clip = load_clip(path, tsv)
        seconds = len(clip.audio) / SAMPLE_RATE
        if not fixed and turns and position + seconds + 1.5 > MAX_SECONDS:
            continue
        turns.append(Turn(clip=clip, speaker=speaker, start=round(position * SAMPLE_RATE)))
        end = turns[-1].start + len(clip.audio)
        position += seconds + rng.uniform(1.0, 2.0)
        if not fixed and position >= target and (not conversation or speaker == "wearer"):
            break
    length = end + round(rng.uniform(1.0, 1.5) * SAMPLE_RATE)  # after the last clip, 1-1.5 s
    # Where.
    dims = np.array([rng.uniform(4.0, 8.0), rng.uniform(3.0, 6.0), rng.uniform(2.6, 3.2)])
    rt60 = float(rng.uniform(*args.rt60_range))
    look = math.atan2(profile.look[1], profile.look[0])  # the look direction's azimuth in the frame
    for _ in range(1000):
        head = np.array([rng.uniform(1.0, dims[0] - 1.0), rng.uniform(1.0, dims[1] - 1.0), rng.uniform(1.6, 1.7)])
        yaw = float(rng.uniform(0.0, 2 * math.pi))
        partner = _place(rng, dims, head, yaw + look, (1.0, 1.5), (-20.0, 20.0), (1.5, 1.75), either_side=False)
        side = _place(rng, dims, head, yaw + look, (1.5, 3.0), (60.0, 150.0), (1.5, 1.75), either_side=True)
        if partner is not None and side is not None:
            break
    else:
        raise SystemExit(f"scene {index}: no place for the talkers in a {dims} m room")
    assert partner is not None and side is not None
    noise_sources = _noise_positions(rng, dims, head)
    # The side talker: its recordings in a random order, back to back with short gaps, looped.
    files = side_talker_files(args.audio)
    order = [files[i] for i in rng.permutation(len(files))]
    pieces: list[Array] = []
    for path in order:
        pieces += [load_talker(path), np.zeros(round(rng.uniform(0.2, 0.6) * SAMPLE_RATE))]
    talk = np.concatenate(pieces)
    side_offset = int(rng.integers(0, len(talk)))
    side_signal = _looped(talk, length, side_offset)
    # The recordings heard in the scene, in order (for their licences).
    side_clips: list[str] = []
    starts = np.cumsum([0] + [len(piece) for piece in pieces])
    for lap in range((side_offset + length) // len(talk) + 1):
        for k, path in enumerate(order):
            begin, finish = lap * len(talk) + starts[2 * k], lap * len(talk) + starts[2 * k + 1]
            if begin < side_offset + length and finish > side_offset:
                side_clips.append(path.name)
    # The noise.
    noise_path = args.noise or args.audio / "noise" / NOISES[int(rng.integers(len(NOISES)))]
    noise = read_all(noise_path).astype(np.float64)
    offsets = [int(o) for o in rng.integers(0, len(noise), NOISE_SOURCES)]
    return Plan(
        index=index,
        name=args.name.format(index=index),
        language=language,
        wearer_language=wearer_language,
        turns=turns,
        length=length,
        dims=dims,
        rt60=rt60,
        head=head,
        yaw=yaw,
        partner=partner,
        side=side,
        noise_sources=noise_sources,
        snr_db=float(rng.uniform(*args.snr_range)),
        side_below_db=float(rng.uniform(*args.side_below_range)),
        side_clips=side_clips,
        side_signal=side_signal,
        noise_name=noise_path.name,
        noise_offsets=offsets,
        noise_signals=[_looped(noise, length, o) for o in offsets],
    )


def partner_frame(plan: Plan) -> tuple[Array, float, float, float]:
    """The partner's direction in the frame's axes (unit vector), distance, azimuth and elevation (degrees)."""
    relative = rotation(plan.yaw).T @ (plan.partner - plan.head)
    distance = float(np.linalg.norm(relative))
    direction = relative / distance
    azimuth = math.degrees(math.atan2(direction[1], direction[0]))
    elevation = math.degrees(math.asin(direction[2]))
    return direction, distance, azimuth, elevation


def summary(plan: Plan) -> str:
    _, distance, azimuth, _ = partner_frame(plan)
    speakers = f"{plan.language}" + (f"+{plan.wearer_language} wearer" if plan.wearer_language else "")
    return (
        f"{plan.name}: {speakers}, {len(plan.turns)} clips, {plan.length / SAMPLE_RATE:.1f} s, "
        f"room {plan.dims[0]:.1f}x{plan.dims[1]:.1f}x{plan.dims[2]:.1f} m, RT60 {plan.rt60:.2f} s, "
        f"SNR {plan.snr_db:+.1f} dB, side -{plan.side_below_db:.1f} dB, "
        f"partner {distance:.2f} m at {azimuth:+.0f} deg"
    )


def _track(plan: Plan, speaker: str) -> Array:
    """One talker's clips at their places in the scene."""
    track = np.zeros(plan.length)
    for turn in plan.turns:
        if turn.speaker == speaker:
            audio = turn.clip.audio[: plan.length - turn.start]
            track[turn.start : turn.start + len(audio)] += audio
    return track


def simulate(plan: Plan, profile: Profile) -> tuple[dict[str, Array], float]:
    """Each source group's image at every microphone (``{group: (M, n)}``), unscaled, and the
    partner's measured RT60 at microphone 1."""
    e_abs, sabine_order = pra.inverse_sabine(plan.rt60, plan.dims)
    room = pra.ShoeBox(
        plan.dims, fs=SAMPLE_RATE, materials=pra.Material(e_abs), max_order=min(int(sabine_order), MAX_ORDER)
    )
    turn = rotation(plan.yaw)
    room.add_microphone_array((plan.head + profile.microphones @ turn.T).T)
    groups = ["partner"]
    room.add_source(plan.partner, signal=_track(plan, "partner"))
    if any(t.speaker == "wearer" for t in plan.turns):
        groups.append("wearer")
        room.add_source(plan.head + turn @ profile.mouth, signal=_track(plan, "wearer"))
    groups.append("side")
    room.add_source(plan.side, signal=plan.side_signal)
    for position, signal in zip(plan.noise_sources, plan.noise_signals, strict=True):
        groups.append("noise")
        room.add_source(position, signal=signal)
    premix = room.simulate(return_premix=True)[:, :, : plan.length]
    images: dict[str, Array] = {}
    for group, image in zip(groups, premix, strict=True):
        images[group] = images[group] + image if group in images else np.array(image)
    rt60 = float(pra.experimental.measure_rt60(room.rir[0][0], SAMPLE_RATE, decay_db=20))
    return images, rt60


def segments(plan: Plan) -> list[dict[str, Any]]:
    found = []
    for turn in plan.turns:
        clip = turn.clip
        segment: dict[str, Any] = {
            "start": round((turn.start + clip.speech[0]) / SAMPLE_RATE, 3),
            "end": round((turn.start + clip.speech[1]) / SAMPLE_RATE, 3),
            "ref": clip.text,
            "source": clip.path.name,
        }
        if clip.translation:
            segment["translation"] = clip.translation
        segment["language"] = clip.language
        segment["speaker"] = turn.speaker
        found.append(segment)
    return found


def _power(x: Array) -> float:
    return float(np.mean(x**2))


def _db(x: float) -> float:
    return 10 * math.log10(x) if x > 0 else -math.inf


def _vector(x: Array) -> list[float]:
    return [round(float(v), 4) for v in x]


def make_scene(plan: Plan, profile: Profile, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    images, rt60_measured = simulate(plan, profile)
    spans = [(round(s["start"] * SAMPLE_RATE), round(s["end"] * SAMPLE_RATE)) for s in segments(plan)]
    speakers = [t.speaker for t in plan.turns]
    partner_speech = np.concatenate(
        [images["partner"][0, s:e] for (s, e), who in zip(spans, speakers, strict=True) if who == "partner"]
    )
    partner_power = _power(partner_speech)
    if args.noise_field == "sensor":  # each microphone its own stretch of the noise: uncorrelated
        images["noise"] = np.stack([plan.noise_signals[k] for k in range(len(profile.microphones))])
    images["side"] *= math.sqrt(partner_power * 10 ** (-plan.side_below_db / 10) / _power(images["side"][0]))
    images["noise"] *= math.sqrt(partner_power * 10 ** (-plan.snr_db / 10) / _power(images["noise"][0]))
    mixture = np.sum(list(images.values()), axis=0)
    scale = 10 ** (PEAK_DBFS / 20) / float(np.max(np.abs(mixture)))
    mixture *= scale
    for image in images.values():
        image *= scale
    args.out.mkdir(parents=True, exist_ok=True)
    flac = args.format == "flac"
    suffix, subtype = (".flac", "PCM_16") if flac else (".wav", "PCM_16")
    soundfile.write(str(args.out / f"{plan.name}{suffix}"), mixture.T, SAMPLE_RATE, subtype=subtype)
    written = [group for group in images if args.references == "all" or group == "partner"]
    for group in written:
        soundfile.write(
            str(args.out / f"{plan.name}.{group}{suffix}"),
            images[group][0].astype(np.float32),
            SAMPLE_RATE,
            subtype="PCM_16" if flac else "FLOAT",
        )
    reference = {"language": plan.language, "segments": segments(plan)}
    (args.out / f"{plan.name}.ref.json").write_text(json.dumps(reference, ensure_ascii=False, indent=1) + "\n")
    direction, distance, azimuth, elevation = partner_frame(plan)
    turn = rotation(plan.yaw)
    side_relative = turn.T @ (plan.side - plan.head)
    levels = {group: round(_db(_power(image[0])), 2) for group, image in images.items()}
    parameters: dict[str, Any] = {
        "name": plan.name,
        "kind": args.kind,
        "profile": str(profile.path),
        "seed": args.seed,
        "index": plan.index,
        "sample_rate": SAMPLE_RATE,
        "duration_s": round(plan.length / SAMPLE_RATE, 3),
        "channels": len(profile.microphones),
        "room_dims": _vector(plan.dims),
        "rt60": round(plan.rt60, 3),
        "rt60_measured": round(rt60_measured, 3),
        "max_order": min(int(pra.inverse_sabine(plan.rt60, plan.dims)[1]), MAX_ORDER),
        "wall_absorption": round(float(pra.inverse_sabine(plan.rt60, plan.dims)[0]), 4),
        "head": _vector(plan.head),
        "yaw_deg": round(math.degrees(plan.yaw), 2),
        "microphones": [_vector(plan.head + rotation(plan.yaw) @ m) for m in profile.microphones],
        "mouth": _vector(plan.head + turn @ profile.mouth),
        "partner": _vector(plan.partner),
        "partner_direction_frame": _vector(direction),
        "partner_distance_m": round(distance, 3),
        "partner_azimuth_deg": round(azimuth, 2),
        "partner_elevation_deg": round(elevation, 2),
        "look_frame": _vector(profile.look),
        "side": _vector(plan.side),
        "side_direction_frame": _vector(side_relative / np.linalg.norm(side_relative)),
        "side_distance_m": round(float(np.linalg.norm(side_relative)), 3),
        "noise_sources": [_vector(p) for p in plan.noise_sources],
        "snr_db": round(plan.snr_db, 2),
        "noise_field": args.noise_field,
        "snr_definition": "partner image power at microphone 1 during its speech / noise image power at microphone 1",
        "side_below_partner_db": round(plan.side_below_db, 2),
        "language": plan.language,
        "wearer_language": plan.wearer_language,
        "turns": [
            {"speaker": t.speaker, "clip": t.clip.path.name, "start_s": round(t.start / SAMPLE_RATE, 3)}
            for t in plan.turns
        ],
        "side_clips": plan.side_clips,
        "noise": plan.noise_name,
        "noise_offsets_s": [round(o / SAMPLE_RATE, 3) for o in plan.noise_offsets],
        "scale": scale,
        "levels_mic1_dbfs": levels,
        "references": {group: f"{plan.name}.{group}{suffix}" for group in written},
        "simulation_s": round(time.monotonic() - started, 1),
    }
    (args.out / f"{plan.name}.json").write_text(json.dumps(parameters, ensure_ascii=False, indent=1) + "\n")
    return parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, required=True, help="a device profile with a [frontend] table")
    parser.add_argument("--scenes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kind", choices=["partner", "conversation"], default="partner")
    parser.add_argument("--snr-range", type=float, nargs=2, default=[-5.0, 15.0], metavar=("LOW", "HIGH"))
    parser.add_argument(
        "--side-below-range",
        type=float,
        nargs=2,
        default=[0.0, 6.0],
        metavar=("LOW", "HIGH"),
        help="how far below the partner the side talker is at microphone 1, in dB (default 0 6)",
    )
    parser.add_argument("--rt60-range", type=float, nargs=2, default=[0.3, 0.7], metavar=("LOW", "HIGH"))
    parser.add_argument(
        "--duration-range", type=float, nargs=2, default=[35.0, 60.0], metavar=("LOW", "HIGH"), help="target, in s"
    )
    parser.add_argument(
        "--languages",
        help="the partners' languages, one per scene in turn (default en,es,de,fr,pt; conversation: es,de,fr,pt,en)",
    )
    parser.add_argument("--wearer-language", default="en", help="(conversation; es when the partner speaks it)")
    parser.add_argument("--partner-clips", type=Path, nargs="+", help="the partner's clips, in order (all scenes)")
    parser.add_argument("--wearer-clips", type=Path, nargs="+", help="the wearer's clips, in order (all scenes)")
    parser.add_argument("--noise", type=Path, help="the noise recording (default: one of the long shared noises)")
    parser.add_argument(
        "--noise-field",
        choices=["room", "sensor"],
        default="room",
        help="room: the noise played from 8 places in the room (diffuse); sensor: a different stretch of it at "
        "each microphone, uncorrelated between them (default room)",
    )
    parser.add_argument("--audio", type=Path, default=AUDIO, help="the shared recordings (default ../shared/audio)")
    parser.add_argument("--translations", type=Path, help="reference translations (default AUDIO/translations_en.tsv)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="scene_{index:02d}", help="file name pattern (default scene_{index:02d})")
    parser.add_argument("--format", choices=["wav", "flac"], default="wav")
    parser.add_argument("--references", choices=["all", "partner"], default="all")
    parser.add_argument("--list", action="store_true", help="print the scenes' summaries only")
    args = parser.parse_args()
    default_languages = "es,de,fr,pt,en" if args.kind == "conversation" else "en,es,de,fr,pt"
    args.languages = (args.languages or default_languages).split(",")
    args.translations = args.translations or args.audio / "translations_en.tsv"
    if args.wearer_clips and args.kind != "conversation":
        parser.error("--wearer-clips needs --kind conversation")
    profile = read_profile(args.profile)
    for index in range(args.scenes):
        plan = plan_scene(args, profile, index)
        if args.list:
            print(summary(plan))
            continue
        parameters = make_scene(plan, profile, args)
        print(f"{summary(plan)}, measured RT60 {parameters['rt60_measured']:.2f} s, {parameters['simulation_s']} s")


if __name__ == "__main__":
    main()
