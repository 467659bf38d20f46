"""``livesub bench``: recordings replayed through the live pipeline, latency and quality measured.

``realtime`` feeds audio at the speed it was recorded and measures on the wall clock, so compute
counts as it would live; ``instant`` replays paced by the stream clock (the next block once the
trunk has caught up, a decode every ``streaming.replay_step_s``) and measures on it (the audio
delivered when an event left), so compute does not count and every run gives the same events.
Reference timing and text come from ``--ref`` (JSON or .stm), else from a file beside the
recording (``<stem>.ref.json`` or ``<stem>.stm``), else from an offline Silero VAD pass (then
quality figures are null).
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.algos.metrics import (
    RefUtterance,
    ShownText,
    TimedTranscript,
    UtteranceTiming,
    average_lagging,
    first_kept,
    first_text,
    main_owner,
    overlapped_most,
    owner,
    percentile,
    retractions,
    utterance_timings,
    word_emissions,
)
from pipeline.algos.vocab import Term, term_scores
from pipeline.algos.wer import corpus_wer, edit_distance, tokens
from pipeline.backends.voice import Voice
from pipeline.backends.whisper import WhisperDecoder, check_languages
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.events import SAMPLE_RATE, Samples, Transcript, Translation
from pipeline.inputs.audio import read_all
from pipeline.inputs.sources import FileSource
from pipeline.outputs.speech import SpeechWav
from pipeline.session import SessionResult, Speech, run_live, translation_backend


@dataclass(frozen=True)
class Reference:
    language: str | None
    utterances: tuple[RefUtterance, ...]
    has_text: bool
    origin: str


def _parse_stm(text: str) -> list[RefUtterance]:
    utterances = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";;"):
            continue
        parts = line.split(maxsplit=5)  # file channel speaker start end [<label>] text
        if len(parts) < 5:
            raise ValueError(f"line {number} is not an STM line (file channel speaker start end text)")
        words = parts[5] if len(parts) > 5 else ""
        if words.startswith("<"):
            words = words.split(">", 1)[1] if ">" in words else ""
        utterances.append(RefUtterance(float(parts[3]), float(parts[4]), words.strip()))
    return utterances


def load_reference(path: Path) -> Reference:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read reference {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a reference file (not UTF-8 text)") from None
    try:
        if path.suffix == ".stm":
            utterances = _parse_stm(text)
            return Reference(None, tuple(utterances), any(u.text for u in utterances), str(path))
        data = json.loads(text)
        utterances = [
            RefUtterance(
                float(s["start"]),
                float(s["end"]),
                s.get("ref", ""),
                s.get("translation", ""),
                s.get("language", ""),
                s.get("speaker", ""),
            )
            for s in data["segments"]
        ]
    except (ValueError, KeyError, TypeError) as e:
        why = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        raise ConfigError(f"{path}: not a reference file ({why})") from None
    return Reference(data.get("language"), tuple(utterances), any(u.text for u in utterances), str(path))


def build_stream(
    clips: list[Path],
    *,
    pause_s: float = 1.5,
    lead_s: float = 1.0,
    translations: dict[str, str] | None = None,
    level_dbfs: float | None = None,
    trim_s: float | None = None,
) -> tuple[Samples, list[dict[str, Any]]]:
    """Single clips joined into one multi-utterance stream, with pauses, and its reference
    segments: each clip's speech span (Silero on the clip alone), text (the .txt beside it) and
    language (the .meta.json beside it, when it has one).
    With ``level_dbfs``, each clip is scaled so that its speech span has that RMS level. With
    ``trim_s``, each clip keeps only its speech span and that many seconds either side, so that
    ``pause_s`` is the whole gap between one clip's speech and the next (quick turn-taking)."""
    from pipeline.backends.silero import SileroDetector
    from pipeline.config import VadConfig

    detect = SileroDetector(VadConfig(), max_speech_s=30.0, min_silence_ms=300, speech_pad_ms=0)
    pieces = [np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.float32)]
    segments: list[dict[str, Any]] = []
    position = lead_s
    for clip in clips:
        audio = read_all(clip)
        regions = detect(audio)
        if not regions:
            raise ConfigError(f"{clip}: no speech found")
        if trim_s is not None:
            margin = int(trim_s * SAMPLE_RATE)
            first, last = max(0, regions[0][0] - margin), min(len(audio), regions[-1][1] + margin)
            audio, regions = audio[first:last], [(s - first, e - first) for s, e in regions]
        segment: dict[str, Any] = {
            "start": round(position + regions[0][0] / SAMPLE_RATE, 3),
            "end": round(position + regions[-1][1] / SAMPLE_RATE, 3),
            "ref": clip.with_suffix(".txt").read_text(encoding="utf-8").strip(),
            "source": clip.name,
        }
        if level_dbfs is not None:
            speech = audio[regions[0][0] : regions[-1][1]]
            audio = audio * np.float32(10 ** (level_dbfs / 20) / np.sqrt(np.mean(speech * speech)))
        if translations and clip.stem in translations:
            segment["translation"] = translations[clip.stem]
        meta = clip.with_suffix(".meta.json")
        if meta.is_file():  # the shared recordings' origin records state their language
            language = json.loads(meta.read_text(encoding="utf-8")).get("language")
            if language:
                segment["language"] = language.split("-")[0].split(" ")[0]
        segments.append(segment)
        pieces += [audio, np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.float32)]
        position += len(audio) / SAMPLE_RATE + pause_s
    return np.concatenate(pieces), segments


#: A decoded word whose middle lies further than this from every reference utterance is invented, in s.
INVENTED_AFTER_S = 1.0


def sentence_check(
    reference: Reference, words: list[tuple[str, float, float]], language: str
) -> tuple[list[int], list[str]]:
    """The reference utterances a transcript lost (numbered from 1: fewer than half of their words
    found among the ``words``, timed in stream seconds, decoded over their span) and the words
    it invented (their middle more than ``INVENTED_AFTER_S`` from every reference utterance)."""
    lost = []
    for number, utterance in enumerate(reference.utterances, 1):
        truth = tokens(utterance.text, language)
        near = " ".join(w for w, s, e in words if utterance.start - 0.5 <= (s + e) / 2 <= utterance.end + 0.5)
        found = tokens(near, language)
        if len(truth) - edit_distance(truth, found) < len(truth) / 2 and len(found) < len(truth) / 2:
            lost.append(number)
    invented = [
        w
        for w, s, e in words
        if all(
            (s + e) / 2 < u.start - INVENTED_AFTER_S or (s + e) / 2 > u.end + INVENTED_AFTER_S
            for u in reference.utterances
        )
    ]
    return lost, invented


def find_reference(audio: Path, given: Path | None) -> Reference:
    if given is not None:
        return load_reference(given)
    for candidate in (audio.with_suffix(".ref.json"), audio.with_suffix(".stm")):
        if candidate.is_file():
            return load_reference(candidate)
    from pipeline.backends.silero import SileroDetector
    from pipeline.config import VadConfig

    regions = SileroDetector(VadConfig(), 30.0, 500, 0)(read_all(audio))
    utterances = tuple(RefUtterance(s / 16000, e / 16000) for s, e in regions)
    return Reference(None, utterances, False, "offline VAD (Silero)")


@dataclass
class Run:
    """One input played once under one configuration."""

    input: Path
    reference: Reference
    result: SessionResult
    cpu_s: float
    timings: list[UtteranceTiming] = field(default_factory=list)


def _timed(result: SessionResult, realtime: bool) -> list[TimedTranscript]:
    events = []
    for emission in result.emissions:
        event = emission.event
        if isinstance(event, Transcript):
            words = tuple((w.start, w.end) for w in event.words)
            events.append(TimedTranscript(emission.wall if realtime else emission.stream, event.final, words))
    return events


def _shown(result: SessionResult, realtime: bool) -> list[ShownText]:
    return [
        ShownText(
            e.wall if realtime else e.stream,
            e.event.utterance,
            e.event.text,
            e.event.final,
            tuple((w.start, w.end) for w in e.event.words),
        )
        for e in result.emissions
        if isinstance(e.event, Transcript)
    ]


def play(
    config: Config,
    decoder: WhisperDecoder,
    path: Path,
    reference: Reference,
    realtime: bool,
    voice: Voice | None = None,
    speak_to: Path | None = None,
    save_frontend: Path | None = None,
) -> Run:
    if reference.language and config.asr.language == "auto" and not config.asr.languages:
        from pipeline.config import merge

        config = merge(config, {"asr": {"language": reference.language.split("-")[0]}})
    source = FileSource(path, realtime=realtime, block_ms=config.audio.block_ms)
    backend = translation_backend(config)
    check_languages(decoder, config.spoken_languages)
    before = resource.getrusage(resource.RUSAGE_SELF)
    speech = None
    if voice is not None:
        speech = Speech(voice, wav=SpeechWav(speak_to / f"{path.stem}.speech.wav") if speak_to else None)
    result = asyncio.run(
        run_live(
            config,
            decoder,
            source,
            backend=backend,
            replay=not realtime,
            record=True,
            speech=speech,
            save_frontend=save_frontend,
        )
    )
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run = Run(path, reference, result, cpu)
    run.timings = utterance_timings(reference.utterances, _timed(result, realtime))
    return run


@dataclass(frozen=True)
class TranslatedUtterance:
    """What the pipeline translated of one reference utterance."""

    reference: RefUtterance
    text: str  # its final translations joined
    word_times: list[float]  # when each translated word was committed (measuring clock)
    final: float | None  # when its last final translation was emitted (measuring clock)
    first_shown: float | None  # when the wearer first saw a translated word its final keeps (measuring clock)


def _first_texts(run: Run, realtime: bool) -> list[float | None]:
    """Per reference utterance, speech onset to the first text the wearer saw of it that stays:
    its translation where it was translated (the glasses show that, not the source text, which
    Whisper translating gives only after the final), else its transcript (the wearer's own words,
    captioned)."""
    translated_ids = {e.event.utterance for e in run.result.emissions if isinstance(e.event, Translation)}
    shown = [s for s in _shown(run.result, realtime) if s.utterance not in translated_ids]
    transcribed = first_text(run.reference.utterances, shown, _language(run))
    if not translated_ids:
        return transcribed
    translated = translated_utterances(run, realtime)
    return [
        round(t.first_shown - t.reference.start, 4) if t.first_shown is not None else seen
        for t, seen in zip(translated, transcribed, strict=True)
    ]


def translated_utterances(run: Run, realtime: bool) -> list[TranslatedUtterance]:
    """Each reference utterance with the translations of the pipeline's utterances it overlaps most."""
    by_utterance: dict[int, list[tuple[float, Translation]]] = {}
    for emission in run.result.emissions:
        if isinstance(emission.event, Translation):
            time_ = emission.wall if realtime else emission.stream
            by_utterance.setdefault(emission.event.utterance, []).append((time_, emission.event))
    references = run.reference.utterances
    owned: list[list[int]] = [[] for _ in references]
    for utterance, timed in sorted(by_utterance.items()):
        last = timed[-1][1]
        if (index := overlapped_most(references, last.start, last.end)) is not None:
            owned[index].append(utterance)
    result = []
    for reference, utterances in zip(references, owned, strict=True):
        finals = [(t, e) for u in utterances for t, e in by_utterance[u] if e.final]
        times = [t for u in utterances for t in word_emissions([(t, e.committed) for t, e in by_utterance[u]])]
        text = " ".join(e.committed for _, e in finals if e.committed)
        first = min((t for u in utterances if (t := _first_kept(by_utterance[u])) is not None), default=None)
        result.append(TranslatedUtterance(reference, text, times, max((t for t, _ in finals), default=None), first))
    return result


def _first_kept(timed: list[tuple[float, Translation]]) -> float | None:
    """When one utterance's translation first showed a word (committed or tentative) that its
    final keeps, as ``first_text`` counts a transcript's."""
    final = next((e for _, e in reversed(timed) if e.final), None)
    if final is None:
        return None
    shown = ((t, f"{e.committed} {e.tentative}") for t, e in timed)
    return first_kept(shown, final.committed, final.target_language)


def translation_figures(runs: list[Run], realtime: bool) -> dict[str, Any]:
    """BLEU, chrF, AL, LAAL, final latency and retractions of the translations, over every
    reference utterance that has a reference translation; all None when none has, or when
    nothing was translated."""
    translating = any(isinstance(e.event, Translation) for r in runs for e in r.result.emissions)
    translated = [t for r in runs for t in translated_utterances(r, realtime) if t.reference.translation]
    if not translating or not translated:
        return {"bleu": None, "chrf": None, "al": None, "laal": None, "final_p50": None, "final_p95": None}
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError("translation quality needs sacrebleu: pip install 'livesub[bench]'") from None
    hypotheses = [t.text for t in translated]
    references = [[t.reference.translation for t in translated]]
    lagging, length_adaptive = [], []
    for t in translated:
        duration = t.reference.end - t.reference.start
        delays = [time - t.reference.start for time in t.word_times]
        size = len(t.reference.translation.split())
        if (al := average_lagging(delays, duration, size)) is not None:
            lagging.append(al)
        if (laal := average_lagging(delays, duration, size, len(t.text.split()))) is not None:
            length_adaptive.append(laal)
    latencies = [t.final - t.reference.end for t in translated if t.final is not None]
    committed: dict[tuple[int, int], list[str]] = {}  # (run, utterance) -> its committed texts in order
    for i, r in enumerate(runs):
        for e in r.result.emissions:
            if isinstance(e.event, Translation):
                committed.setdefault((i, e.event.utterance), []).append(e.event.committed)
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, references).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, references).score, 2),
        "al": _round(sum(lagging) / len(lagging) if lagging else None),
        "laal": _round(sum(length_adaptive) / len(length_adaptive) if length_adaptive else None),
        "final_p50": _round(percentile(latencies, 50)),
        "final_p95": _round(percentile(latencies, 95)),
        "utterances": len(translated),
        "dropped": sum(not t.text for t in translated),
        "retractions": sum(retractions(c) for c in committed.values()),
    }


def _wer_pair(run: Run) -> tuple[str, str]:
    return " ".join(u.text for u in run.reference.utterances), " ".join(t.committed for t in run.result.finals)


def _language(run: Run) -> str:
    language = run.reference.language or (run.result.finals[0].language if run.result.finals else "en")
    return language.split("-")[0]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def language_figures(runs: list[Run]) -> dict[str, int] | None:
    """Reference utterances that state their language, and how many of them were recognised in
    another (the language of the finals whose words fall on them, by words); None without any."""
    stated = wrong = 0
    for run in runs:
        heard: list[dict[str, int]] = [{} for _ in run.reference.utterances]
        for final in run.result.finals:
            for word in final.words:
                index = owner(run.reference.utterances, (word.start, word.end))
                if index is not None:
                    heard[index][final.language] = heard[index].get(final.language, 0) + 1
        for utterance, languages in zip(run.reference.utterances, heard, strict=True):
            if utterance.language:
                stated += 1
                wanted = utterance.language.split("-")[0]
                wrong += not languages or max(languages, key=languages.__getitem__) != wanted
    return {"utterances": stated, "wrong_language": wrong} if stated else None


def speaker_figures(runs: list[Run]) -> dict[str, Any] | None:
    """Per speaker the references name ("wearer", "partner"): WER (each reference utterance against
    the final words falling on it), final latency, and how many of its utterances the pipeline
    labelled right (the label of most of the words on it; ``labelled`` counts those with any word
    recognised) and, for the wearer, were translated as another speaker's. None when no reference names speakers."""
    by_speaker: dict[str, dict[str, Any]] = {}
    for run in runs:
        references = run.reference.utterances
        if not any(u.speaker for u in references):
            continue
        words: list[list[str]] = [[] for _ in references]
        labels: list[dict[str, int]] = [{} for _ in references]
        for final in run.result.finals:
            for word in final.words:
                if (index := owner(references, (word.start, word.end))) is not None:
                    words[index].append(word.text)
                    label = final.speaker or ""
                    labels[index][label] = labels[index].get(label, 0) + 1
        translated = set()  # reference utterances a translation labelled other than the wearer covers
        for translation in run.result.translations:
            if translation.speaker != "wearer" and translation.committed:
                middle = (translation.start + translation.end) / 2
                translated |= {i for i, u in enumerate(references) if u.start <= middle <= u.end}
        for i, (utterance, timing) in enumerate(zip(references, run.timings, strict=True)):
            if not utterance.speaker:
                continue
            figures = by_speaker.setdefault(
                utterance.speaker,
                {"pairs": [], "finals": [], "labelled": 0, "labelled_right": 0, "utterances": 0, "translated": 0},
            )
            language = (utterance.language or run.reference.language or "en").split("-")[0]
            figures["pairs"].append(((utterance.text, " ".join(words[i])), language))
            if timing.final is not None:
                figures["finals"].append(timing.final)
            figures["utterances"] += 1
            if labels[i]:  # an utterance none of whose words were recognised carries no label
                figures["labelled"] += 1
                figures["labelled_right"] += max(labels[i], key=labels[i].__getitem__) == utterance.speaker
            figures["translated"] += utterance.speaker == "wearer" and i in translated
    if not by_speaker:
        return None
    report = {}
    for speaker, figures in sorted(by_speaker.items()):
        errors = words_total = 0.0
        for (reference, hypothesis), language in figures["pairs"]:
            size = len(reference.split())
            errors += corpus_wer([(reference, hypothesis)], language) * size
            words_total += size
        report[speaker] = {
            "wer": _round(errors / words_total if words_total else None, 4),
            "final_p50": _round(percentile(figures["finals"], 50)),
            "final_p95": _round(percentile(figures["finals"], 95)),
            "utterances": figures["utterances"],
            "labelled": figures["labelled"],
            "labelled_right": figures["labelled_right"],
        }
        if speaker == "wearer":
            report[speaker]["translated_as_other"] = figures["translated"]
    return report


def term_figures(runs: list[Run], terms: tuple[Term, ...]) -> dict[str, float | int] | None:
    """Recall and precision of the vocabulary's terms in the finals, against the references."""
    with_text = [r for r in runs if r.reference.has_text]
    if not terms or not with_text:
        return None
    return term_scores([_wer_pair(r) for r in with_text], terms, _language(with_text[0]))


def speech_figures(runs: list[Run]) -> dict[str, Any] | None:
    """Speech output, when the runs spoke: how long after each reference utterance ended its first
    spoken sample was handed to the output (negative: before the speaker stopped), the share of
    utterances whose speech started before their final, speech RTF, clauses skipped to keep up."""
    spoken = [r for r in runs if r.result.speech is not None]
    if not spoken:
        return None
    first_audio: list[float] = []
    timeline: list[dict[str, Any]] = []  # each reference utterance's speech latency, in order
    early = started = 0
    figures = {"clauses": 0, "skipped_clauses": 0, "skipped_utterances": 0, "speech_s": 0.0, "compute_s": 0.0}
    for run in spoken:
        speech = run.result.speech
        assert speech is not None
        references = run.reference.utterances
        belongs: dict[int, int] = {}  # recognised utterance -> the reference utterance most of its words fall on
        for final in run.result.finals:
            if (index := main_owner(references, [(w.start, w.end) for w in final.words])) is not None:
                belongs[final.utterance] = index
        firsts: dict[int, float] = {}  # recognised utterance -> its first spoken sample
        for clause in speech.spoken:
            firsts[clause.utterance] = min(clause.start, firsts.get(clause.utterance, clause.start))
        by_reference: dict[int, float] = {}
        for utterance, start in firsts.items():
            if (index := belongs.get(utterance)) is not None:
                by_reference[index] = min(start, by_reference.get(index, start))
        for i, start in sorted(by_reference.items()):
            first_audio.append(start - references[i].end)
            timeline.append(
                {"input": str(run.input), "end": references[i].end, "first_audio": round(start - references[i].end, 3)}
            )
        for utterance, start in firsts.items():
            if utterance in speech.finals:
                started += 1
                early += start < speech.finals[utterance]
        for key, value in speech.stats().items():
            if key in figures:
                figures[key] += value
    return {
        "first_audio_p50": _round(percentile(first_audio, 50)),
        "first_audio_p95": _round(percentile(first_audio, 95)),
        "started_before_final": _round(early / started if started else None),
        "rtf": _round(figures["compute_s"] / figures["speech_s"] if figures["speech_s"] else None, 4),
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()},
        "per_utterance": timeline,
    }


def report(runs: list[Run], realtime: bool, terms: tuple[Term, ...] = ()) -> dict[str, Any]:
    """The figures for one configuration over all its runs (schema in README, "Measuring latency and quality")."""
    audio = sum(r.result.audio_s for r in runs)
    wall = sum(r.result.wall_s for r in runs)
    stages: dict[str, float] = {}
    for r in runs:
        for name, seconds in r.result.compute.items():
            stages[name] = stages.get(name, 0.0) + seconds
    compute = sum(stages.values())
    recognition = [r.result.stats.get("asr", {}) for r in runs]  # each run's recogniser's figures
    frontends = [r.result.stats["frontend"] for r in runs if "frontend" in r.result.stats]
    timings = [t for r in runs for t in r.timings]
    finals = [t.final for t in timings if t.final is not None]
    firsts = [t.first_partial for t in timings if t.first_partial is not None]
    texts = [t for r in runs for t in _first_texts(r, realtime)]
    with_text = [r for r in runs if r.reference.has_text]
    wer = corpus_wer([_wer_pair(r) for r in with_text], _language(with_text[0])) if with_text else None
    translation = translation_figures(runs, realtime)
    speech = speech_figures(runs)
    return {
        "mode": "realtime" if realtime else "instant",
        "inputs": [str(r.input) for r in runs],
        "references": [r.reference.origin for r in runs],
        "audio_s": round(audio, 3),
        "wall_s": round(wall, 3),
        "rtf": round(compute / audio, 4) if audio else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_percent": round(100 * sum(r.cpu_s for r in runs) / wall, 1) if wall else None,
        "wer": _round(wer, 4),
        "bleu": translation["bleu"],
        "chrf": translation["chrf"],
        "al": translation["al"],
        "laal": translation["laal"],
        "terms": term_figures(runs, terms),
        "languages": language_figures(runs),
        "speakers": speaker_figures(runs),
        "latency": {
            "first_text_p50": _round(percentile([t for t in texts if t is not None], 50)),
            "first_partial_p50": _round(percentile(firsts, 50)),
            "final_p50": _round(percentile(finals, 50)),
            "final_p95": _round(percentile(finals, 95)),
            "final_max": _round(max(finals, default=None)),
            "translation_final_p50": translation["final_p50"],
            "translation_final_p95": translation["final_p95"],
            "tts_first_audio_p50": speech["first_audio_p50"] if speech else None,
            "tts_first_audio_p95": speech["first_audio_p95"] if speech else None,
        },
        "speech": speech,
        "utterances": {
            "reference": len(timings),
            "finalized": sum(not t.dropped for t in timings),
            "dropped": sum(t.dropped for t in timings),
        },
        "stages": {
            name: {"compute_s": round(s, 3), "rtf": round(s / audio, 4) if audio else None}
            for name, s in stages.items()
        },
        # The front-end's parts, each timed on the front-end's thread (the stage's own RTF above also
        # counts its waits for that thread).
        "frontend": {
            f"{part}_rtf": round(sum(f.get(f"{part}_s", 0.0) for f in frontends) / audio, 4)
            if frontends and audio
            else None
            for part in FRONTEND_PARTS
        },
        "translation": {k: v for k, v in translation.items() if k in ("utterances", "dropped", "retractions")},
        "backlog_max_s": round(max((a.get("backlog_max_s", 0.0) for a in recognition), default=0.0), 3),
        "overflows": sum(r.result.overflows for r in runs),
        # How recognition went: finals reused or decoded, sentences ended early, summed.
        "asr": {
            key: sum(int(a.get(key) or 0) for a in recognition)
            for key in sorted({k for a in recognition for k, v in a.items() if isinstance(v, int)})
        },
        "per_input": [
            {
                "input": str(r.input),
                "audio_s": round(r.result.audio_s, 3),
                "wer": _round(corpus_wer([_wer_pair(r)], _language(r)), 4) if r.reference.has_text else None,
                "final_p50": _round(percentile([t.final for t in r.timings if t.final is not None], 50)),
                "dropped": sum(t.dropped for t in r.timings),
                "chrf": translation_figures([r], realtime)["chrf"],
            }
            for r in runs
        ],
        "per_utterance": [
            {
                "input": str(r.input),
                "start": t.reference.start,
                "end": t.reference.end,
                "first_partial": t.first_partial,
                "final": t.final,
                "dropped": t.dropped,
            }
            for r in runs
            for t in r.timings
        ],
        "events": [
            {
                "input": str(r.input),
                "type": "translation" if isinstance(e.event, Translation) else "transcript",
                "utterance": e.event.utterance,
                "final": e.event.final,
                "committed": e.event.committed,
                "tentative": e.event.tentative,
                "start": e.event.start,
                "end": e.event.end,
                "speaker": e.event.speaker,
                "emitted": e.wall,
                "stream": e.stream,
            }
            for r in runs
            for e in r.result.emissions
            if isinstance(e.event, Transcript | Translation)
        ],
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


#: The front-end's parts whose cost ``bench`` reports apart (``FrontendStage.stats``).
FRONTEND_PARTS = ("dereverb", "beamformer", "denoise")

TABLE_ROWS = [
    ("audio_s", ("audio_s",)),
    ("wall_s", ("wall_s",)),
    ("rtf (compute/audio)", ("rtf",)),
    ("cpu %", ("cpu_percent",)),
    ("peak RSS MB", ("peak_rss_mb",)),
    ("WER", ("wer",)),
    ("BLEU", ("bleu",)),
    ("chrF", ("chrf",)),
    ("AL s", ("al",)),
    ("LAAL s", ("laal",)),
    ("term recall", ("terms", "term_recall")),
    ("term precision", ("terms", "term_precision")),
    ("wrong-language utterances", ("languages", "wrong_language")),
    ("first text p50 s", ("latency", "first_text_p50")),
    ("first committed p50 s", ("latency", "first_partial_p50")),
    ("final p50 s", ("latency", "final_p50")),
    ("final p95 s", ("latency", "final_p95")),
    ("final max s", ("latency", "final_max")),
    ("translation final p50 s", ("latency", "translation_final_p50")),
    ("translation final p95 s", ("latency", "translation_final_p95")),
    ("speech first audio p50 s", ("latency", "tts_first_audio_p50")),
    ("speech first audio p95 s", ("latency", "tts_first_audio_p95")),
    ("speech started before final", ("speech", "started_before_final")),
    ("speech rtf", ("speech", "rtf")),
    ("speech clauses skipped", ("speech", "skipped_clauses")),
    ("translations dropped", ("translation", "dropped")),
    ("retractions", ("translation", "retractions")),
    ("utterances", ("utterances", "reference")),
    ("finalized", ("utterances", "finalized")),
    ("dropped", ("utterances", "dropped")),
    ("backlog max s", ("backlog_max_s",)),
    ("overflows", ("overflows",)),
]


def _get(report_: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = report_
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def table(reports: list[tuple[str, dict[str, Any]]]) -> str:
    """Side by side, with each later configuration's ratio to the first."""
    names = [name for name, _ in reports]
    header = ["metric", *names] + [f"{n} / {names[0]}" for n in names[1:]]
    rows = [header]
    stage_names = sorted({s for _, r in reports for s in r["stages"]})
    extra: list[tuple[str, tuple[str, ...]]] = [(f"{s} rtf", ("stages", s, "rtf")) for s in stage_names]
    if any(_get(r, ("frontend", "beamformer_rtf")) is not None for _, r in reports):
        extra += [(f"frontend: {part} rtf", ("frontend", f"{part}_rtf")) for part in FRONTEND_PARTS]
    speakers = sorted({s for _, r in reports for s in (r.get("speakers") or {})})
    for who in speakers:
        extra += [
            (f"{who} WER", ("speakers", who, "wer")),
            (f"{who} final p50 s", ("speakers", who, "final_p50")),
            (f"{who} labelled right", ("speakers", who, "labelled_right")),
            (f"{who} with words", ("speakers", who, "labelled")),
            (f"{who} utterances", ("speakers", who, "utterances")),
        ]
    if "wearer" in speakers:
        extra.append(("wearer translated as other", ("speakers", "wearer", "translated_as_other")))
    for label, keys in TABLE_ROWS + extra:
        values = [_get(r, keys) for _, r in reports]
        ratios = []
        for value in values[1:]:
            base = values[0]
            ok = isinstance(value, int | float) and isinstance(base, int | float) and base
            ratios.append(f"{value / base:.2f}x" if ok else "-")
        rows.append([label, *[_cell(v) for v in values], *ratios])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def plot(runs: list[Run], realtime: bool, path: Path) -> None:
    """A timeline (one row per reference utterance) and the final-latency distribution."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'livesub[bench]'") from None
    rows = [(r, t) for r in runs for t in r.timings]
    figure, (timeline, histogram) = plt.subplots(
        2, 1, figsize=(11, 3 + 0.35 * len(rows)), gridspec_kw={"height_ratios": [max(2, len(rows) * 0.35), 2]}
    )
    clock = "wall" if realtime else "stream"
    for row, (run, timing) in enumerate(rows):
        ref = timing.reference
        timeline.barh(
            row, ref.end - ref.start, left=ref.start, height=0.5, color="#9ecae1", label="speech" if row == 0 else None
        )
        events = [
            e
            for e in _timed(run.result, realtime)
            if any((w[0] + w[1]) / 2 - ref.start >= -0.3 and (w[0] + w[1]) / 2 <= ref.end + 0.3 for w in e.word_times)
        ]
        partials = [e.emitted for e in events if not e.final]
        finals = [e.emitted for e in events if e.final]
        timeline.plot(
            partials, [row] * len(partials), "|", color="#636363", markersize=9, label="partial" if row == 0 else None
        )
        timeline.plot(
            finals, [row] * len(finals), "D", color="#d62728", markersize=5, label="final" if row == 0 else None
        )
    timeline.set_yticks(
        range(len(rows)), [f"{Path(r.input).stem[:18]} #{i}" for i, (r, _) in enumerate(rows)], fontsize=7
    )
    timeline.invert_yaxis()
    timeline.set_xlabel(f"seconds ({clock} clock)")
    timeline.set_title("Reference utterances: speech, partial and final emissions")
    timeline.legend(loc="lower right", fontsize=8)
    latencies = [t.final for _, t in rows if t.final is not None]
    histogram.hist(latencies, bins=20, color="#d62728")
    histogram.set_xlabel("final latency, s (end of speech to final)")
    histogram.set_ylabel("utterances")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _voice(config: Config) -> Voice:
    """The configured voice, checked against the language it will speak."""
    from pipeline.backends.voice import PiperVoice, session_voice

    target = config.translation.target if translation_backend(config) else ""
    return PiperVoice(session_voice(config.tts.voice, target, config.asr.language))


def run_bench(
    inputs: list[Path],
    refs: list[Path],
    configs: list[tuple[str, Config]],
    *,
    realtime: bool,
    repeat: int = 1,
    progress: Any = None,
    speak_to: Path | None = None,
    save_frontend: Path | None = None,
) -> tuple[list[tuple[str, dict[str, Any]]], list[list[Run]], bool]:
    """Plays every input ``repeat`` times per configuration. Returns the reports, the runs and
    whether all of them finished: Ctrl-C stops at once, and what finished is still reported.
    ``save_frontend`` is a directory for what each input's front-end handed to recognition,
    ``<stem>.<configuration>.frontend.wav`` (the last run's, with ``repeat``)."""
    references = [find_reference(path, refs[i] if i < len(refs) else None) for i, path in enumerate(inputs)]
    reports = []
    all_runs = []
    decoders: dict[tuple[str, str, int], WhisperDecoder] = {}  # one model load per distinct model
    voices: dict[Any, Voice] = {}
    complete = True
    for name, config in configs:
        model = (config.asr.model, config.asr.compute_type, config.asr.threads)
        if model not in decoders:
            decoders[model] = WhisperDecoder(config.asr, live=realtime)  # a replay keeps every core
        decoder = decoders[model]
        voice = None
        if config.tts.enabled:
            if config.tts not in voices:
                voices[config.tts] = _voice(config)
            voice = voices[config.tts]
        runs: list[Run] = []
        try:
            for _ in range(repeat):
                for path, reference in zip(inputs, references, strict=True):
                    started = time.perf_counter()
                    saved = save_frontend / f"{path.stem}.{name}.frontend.wav" if save_frontend else None
                    runs.append(play(config, decoder, path, reference, realtime, voice, speak_to, saved))
                    if progress:
                        progress(f"{name}: {path.name} done in {time.perf_counter() - started:.1f} s")
        except KeyboardInterrupt:
            complete = False
        if runs:
            reports.append((name, report(runs, realtime, config.asr.terms)))
            all_runs.append(runs)
        if not complete:
            break
    return reports, all_runs, complete
