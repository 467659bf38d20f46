"""Streaming recognition: the open utterance re-decoded as it grows, words committed by agreement.

Utterances here are the ASR's own: VAD's utterance is one of them until the speaker pauses after
a finished sentence (a hypothesis covering a pause of ``SENTENCE_PAUSE_S`` ends with a full stop,
question or exclamation mark), or goes on without a pause after one that two consecutive
hypotheses agree on (``QUICK_END_S`` of speech after it; or of audio in which both heard
nothing, though VAD still hears voice: noise or breath it takes for speech). Then that sentence
is final at once, without waiting for VAD's longer silence, and the rest of VAD's utterance
continues as the next one. In quick turn-taking (pauses of 0.3-0.5 s between speakers) VAD
alone would close nothing for seconds.

Compute decides the cadence. One decode runs at a time on the model's thread; audio arriving
meanwhile is only appended, and the next decode takes all of it (coalescing), so the stage never
queues more work than the machine can do and never falls behind real time for long. Finals come
first: when VAD closes an utterance, it is finalised before the next one is decoded, reusing the
latest hypothesis when that already covers the utterance's audio, so a final rarely waits for a
decode of its own.

With ``translate=True`` (the whisper translation backend) the same machinery streams Whisper's
translation into English:
hypotheses are English, committed English words are never retracted, and the stage emits
Translation events. Every decode is then a translation and nothing else: a transcription beside
each one would double the decoding cost (measured: 0.3 s per 6 s of audio each, at beam 5), so the
source text is decoded once per utterance, after its translation is final.
English word times only roughly follow the source speech, so while translating the audio is not
trimmed (a cut could take away source words whose translation has not come yet) and sentences
do not end utterances early (a cut inside the speaker's sentence costs the rest its context:
measured on the FLEURS streams, chrF 49.4 with early ends, 50.3 without; with VAD's own ends
the translation final p50 is 1.3 s).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from pipeline.algos.agreement import ANCHOR_S, LocalAgreement, cut_repetition, cut_unheard, key
from pipeline.algos.text import SENTENCE_END, UNSPACED, ends_clause, ends_sentence
from pipeline.backends.whisper import Hypothesis, WhisperDecoder
from pipeline.config import AsrConfig, StreamingConfig
from pipeline.events import SAMPLE_RATE, Samples, SpeechSegment, Transcript, Translation, Word

log = logging.getLogger(__name__)

#: A hypothesis is dropped as non-speech when Whisper is this sure there is no speech...
NO_SPEECH_PROB = 0.6
#: ...and its average log-probability is below this (Whisper's own rule).
LOW_LOGPROB = -1.0
#: Above this, decoded text is repetitive enough to be a loop.
MAX_COMPRESSION_RATIO = 2.4
#: A word whose audio is this far (dB) below the utterance's loudest part is taken as invented.
SILENT_WORD_DB = 40.0
#: A hypothesis covers an utterance when it decoded audio up to this close to the end of its speech.
COVER_TOLERANCE_S = 0.05
#: A sentence is final as soon as a hypothesis covering this much silence after it ends with it,
#: or as soon as the next sentence began after a pause VAD heard, in seconds.
SENTENCE_PAUSE_S = 0.25
#: A final whose last word ends this long before the utterance's speech is taken to have stopped early, in s.
STOPPED_EARLY_S = 1.0
#: A sentence end two consecutive hypotheses agree on ends the utterance once this much audio
#: followed it, in seconds (quick turn-taking, no pause).
QUICK_END_S = 0.8
#: Audio after a sentence end at least this much quieter than the speech before it (dB) is not a
#: next speaker Whisper has yet to hear, but noise or breath VAD takes for voice.
QUIET_AFTER_DB = 6.0
#: How far from a pause VAD heard a sentence's last word may end (Whisper's word times drift), in s.
PAUSE_SLACK_S = 0.3
#: An utterance with less audio than this is not decoded, in seconds.
MIN_AUDIO_S = 0.1
#: Characters of earlier text given to Whisper as its prompt, at most.
PROMPT_CHARS = 300
#: The decoded audio is trimmed after a sentence end, else a clause end, else any word, and only
#: when that drops at least MIN_TRIM_S seconds of audio.
MIN_TRIM_S = 2.0
#: The speaker is pausing when VAD has heard no voice for this long, in seconds. At least
#: vad.post_roll_ms, so that a decode made in the pause covers the utterance if it ends there.
PAUSE_S = 0.3


def join_words(words: Sequence[Word], language: str) -> str:
    separator = "" if language in UNSPACED else " "
    return separator.join(w.text for w in words).strip()


def _said_again(word: Word, hypothesis: Sequence[Word]) -> bool:
    """Whether the hypothesis has the word, ending at about the same time."""
    return any(key(w.text) == key(word.text) and abs(w.end - word.end) <= ANCHOR_S for w in hypothesis)


def _frame_levels(audio: Samples, frame: int = 320) -> Samples:
    usable = len(audio) // frame * frame
    if usable == 0:
        return np.zeros(0, dtype=np.float32)
    frames = audio[:usable].reshape(-1, frame)
    levels: Samples = np.sqrt(np.mean(frames * frames, axis=1))
    return levels


def drop_silent_words(words: Sequence[Word], audio: Samples, offset_s: float) -> list[Word]:
    """Cuts the hypothesis at the first word spoken over (near) silence: Whisper's inventions
    on silence and noise sit there, real words do not."""
    levels = _frame_levels(audio)
    if len(levels) == 0:
        return list(words)
    floor = float(levels.max()) * 10 ** (-SILENT_WORD_DB / 20)
    kept = []
    for word in words:
        first = max(0, int((word.start - offset_s) * 50))
        last = max(first + 1, int(np.ceil((word.end - offset_s) * 50)))
        span = levels[first:last]
        if len(span) and float(span.max()) < floor:
            break
        kept.append(word)
    return kept


@dataclass
class _Utterance:
    id: int
    start: int  # stream sample of audio[0]
    vad_id: int = 0  # the VAD utterance this is (part of)
    audio: list[Samples] = field(default_factory=list)
    samples: int = 0  # audio received
    voiced_until: int = 0  # just after the last voiced frame, as an offset into the utterance
    pauses: list[tuple[int, int]] = field(default_factory=list)  # silences VAD heard, as offsets
    trim: int = 0  # decoded audio starts at this offset into the utterance
    end: int | None = None  # set when VAD closed it: the utterance's length in samples
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    hypothesis: list[Word] | None = None  # latest, in stream seconds
    previous: list[Word] | None = None  # the one before it
    final_quality: bool = False  # the latest hypothesis was decoded with the final beam size
    decoded: int = 0  # samples covered by the latest decode
    logprob: float = 0.0  # the latest decode's average log-probability
    emitted: tuple[str, str] | None = None

    @property
    def whole(self) -> Samples:
        """All the utterance's audio received so far."""
        if len(self.audio) > 1:
            self.audio = [np.concatenate(self.audio)]
        return self.audio[0] if self.audio else np.zeros(0, dtype=np.float32)


class StreamingAsrStage:
    """SpeechSegment pieces -> Transcript partials and finals, utterance by utterance."""

    name = "asr"

    def __init__(
        self, decoder: WhisperDecoder, asr: AsrConfig, streaming: StreamingConfig, *, translate: bool = False
    ) -> None:
        self._decoder = decoder
        self._asr = asr
        self._config = streaming
        self._translating = translate  # decodes with task="translate" and emits Translation events
        self._task = "translate" if translate else asr.task
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self.language: str | None = None if asr.language == "auto" else asr.language
        self._previous: tuple[str, float] = ("", -1e9)  # the last final's text and end (stream seconds)
        self._heard_language = self.language or "en"  # the latest decode's, until one is locked
        self.compute_seconds = 0.0
        self.reused_finals = 0
        self.sentence_finals = 0  # utterances ended at a sentence end before VAD closed them
        self.whole_finals = 0  # finals decoded again whole because they had stopped early
        #: The most audio ever waiting for recognition, in seconds (how far it fell behind).
        self.backlog_max_s = 0.0

    def _decode(self, audio: Samples, beam_size: int, prompt: str, task: str) -> Hypothesis:
        started = time.perf_counter()
        try:
            return self._decoder.decode_utterance(
                audio,
                language=self.language,
                task=task,
                beam_size=beam_size,
                prompt=prompt,
                pad_s=self._config.encoder_pad_s,
            )
        finally:
            self.compute_seconds += time.perf_counter() - started

    def _prompt(self, utterance: _Utterance, whole: bool = False) -> str:
        """The utterance's committed words before the trim point (the decoded audio starts
        after them; none when the ``whole`` utterance is decoded), after the previous utterance's
        text when it ended just before this one began (a speaker's sentence cut by a short pause)."""
        language = self.language or self._heard_language
        trim_s = (utterance.start + (0 if whole else utterance.trim)) / SAMPLE_RATE
        before_trim = join_words([w for w in utterance.agreement.committed if w.start < trim_s], language)
        text, end = self._previous
        gap = utterance.start / SAMPLE_RATE - end
        context = (
            text[-self._config.context_chars :]
            if self._config.context_chars and gap <= self._config.context_gap_s
            else ""
        )
        return (context + " " + before_trim).strip()[-PROMPT_CHARS:]

    async def _hypothesis(
        self, utterance: _Utterance, end: int, beam_size: int, task: str | None = None, whole: bool = False
    ) -> list[Word]:
        """Decodes the utterance's audio up to ``end`` (from the trim point, or from its start when
        ``whole``) and returns the guarded words, in stream seconds. With ``task`` other than the
        stage's own (the source text of a translated utterance), the utterance's state is left as it is."""
        own = task is None
        begin = 0 if whole else utterance.trim
        audio = utterance.whole[begin:end]
        if len(audio) < MIN_AUDIO_S * SAMPLE_RATE:
            if own:
                utterance.decoded = end
            return []
        loop = asyncio.get_running_loop()
        prompt = self._prompt(utterance, whole) if own else ""
        hypothesis = await loop.run_in_executor(
            self._executor, self._decode, audio, beam_size, prompt, task or self._task
        )
        if own:
            utterance.decoded = end
            utterance.logprob = hypothesis.avg_logprob
        offset = (utterance.start + begin) / SAMPLE_RATE
        if hypothesis.no_speech_prob > NO_SPEECH_PROB and hypothesis.avg_logprob < LOW_LOGPROB:
            return []
        words = [
            Word(w.text, round(w.start + offset, 3), round(w.end + offset, 3), w.probability) for w in hypothesis.words
        ]
        words = cut_repetition(cut_unheard(words))
        if hypothesis.compression_ratio > MAX_COMPRESSION_RATIO and len(words) == len(hypothesis.words):
            return []  # repetitive, yet not a simple loop we could cut: trust none of it
        if own:
            self._heard_language = hypothesis.language
        return drop_silent_words(words, audio, offset)

    def _transcript(self, utterance: _Utterance, final: bool) -> Transcript | Translation | None:
        language = self.language or self._heard_language
        written = "en" if self._translating else language
        committed = join_words(utterance.agreement.committed, written)
        tentative = join_words(utterance.agreement.tentative, written)
        if (committed, tentative) == (utterance.emitted or ("", "")) and not (final and utterance.emitted):
            return None  # nothing new; and an utterance that never said anything ends silently
        utterance.emitted = (committed, tentative)
        start_s, end_s = self._span(utterance)
        tentative = "" if final else tentative
        if self._translating:
            return Translation(utterance.id, committed, tentative, start_s, end_s, language, "en", final=final)
        words = tuple(utterance.agreement.committed)
        return Transcript(utterance.id, committed, tentative, start_s, end_s, language, final=final, words=words)

    @staticmethod
    def _span(utterance: _Utterance) -> tuple[float, float]:
        """The utterance's stream times in seconds: to where VAD closed it, else to what was decoded."""
        end = utterance.end if utterance.end is not None else utterance.decoded
        return round(utterance.start / SAMPLE_RATE, 3), round((utterance.start + end) / SAMPLE_RATE, 3)

    async def _source(self, utterance: _Utterance) -> Transcript | None:
        """The source text of a translated utterance whose final has been emitted (None when not
        translating, or when nothing was said)."""
        assert utterance.end is not None
        if not (self._translating and utterance.emitted):
            return None
        words = await self._hypothesis(utterance, utterance.end, self._config.final_beam_size, task="transcribe")
        if not words:
            return None
        language = self.language or self._heard_language
        start_s, end_s = self._span(utterance)
        text = join_words(words, language)
        return Transcript(utterance.id, text, "", start_s, end_s, language, final=True, words=tuple(words))

    def _maybe_trim(self, utterance: _Utterance) -> None:
        """Once the decoded audio is long, start it after a committed word, so that each decode
        costs about the same however long the utterance grows (the words before it become
        Whisper's prompt). A sentence end is preferred, then a clause end, then any word."""
        if self._translating or (utterance.samples - utterance.trim) < self._config.trim_after_s * SAMPLE_RATE:
            return
        trim_s = (utterance.start + utterance.trim) / SAMPLE_RATE
        committed = [w for w in utterance.agreement.committed if w.start >= trim_s]
        # Each committed word with the word after it (committed or not): the cut goes between them.
        candidates = list(itertools.pairwise(committed + utterance.agreement.tentative[:1]))
        # Only after a word the latest hypothesis says again where it was committed: where Whisper
        # has re-worded the committed words (in noise it hears the start of a sentence better
        # once it has heard more), their times may be wrong, and a cut there could take away
        # the audio of words not yet committed.
        for ends in (ends_sentence, ends_clause, None):  # None: after any word
            for word, after in reversed(candidates):
                if ends is not None and not ends(word.text):
                    continue
                if not _said_again(word, utterance.hypothesis or []):
                    continue
                # Cut in the middle of the gap between the words, so that neither loses a sound.
                cut_s = (word.end + max(word.end, after.start)) / 2
                at = int(cut_s * SAMPLE_RATE) - utterance.start
                if at - utterance.trim >= MIN_TRIM_S * SAMPLE_RATE:
                    utterance.trim = at
                    utterance.agreement.trim(cut_s)
                    return
                break

    async def _partial(self, utterance: _Utterance) -> Transcript | Translation | None:
        end = utterance.samples
        # In a pause, decode at final quality: if the speaker does not go on, the final reuses it.
        final_quality = (
            end - utterance.voiced_until >= PAUSE_S * SAMPLE_RATE
            or self._config.partial_beam_size == self._config.final_beam_size
        )
        beam = self._config.final_beam_size if final_quality else self._config.partial_beam_size
        words = await self._hypothesis(utterance, end, beam)
        utterance.previous, utterance.hypothesis = utterance.hypothesis, words
        utterance.final_quality = final_quality
        audio_end = (utterance.start + end) / SAMPLE_RATE
        utterance.agreement.update(words, audio_end, audio_end - self._config.commit_margin_s, SENTENCE_END)
        self._maybe_trim(utterance)
        return self._transcript(utterance, final=False)

    @staticmethod
    def _quiet_after(utterance: _Utterance, end_s: float) -> bool:
        """Whether the decoded audio from 0.1 s after stream second ``end_s`` (past the word's last
        sound, which Whisper's end times can cut short) is ``QUIET_AFTER_DB`` quieter than the two
        seconds before it."""
        at = int(end_s * SAMPLE_RATE) - utterance.start
        audio = utterance.whole
        before = audio[max(utterance.trim, at - 2 * SAMPLE_RATE) : at]
        after = audio[at + int(0.1 * SAMPLE_RATE) : utterance.decoded]
        if len(before) == 0 or len(after) == 0:
            return False
        ratio = float(np.mean(after * after)) / max(float(np.mean(before * before)), 1e-12)
        return ratio <= 10 ** (-QUIET_AFTER_DB / 10)

    def _sentence_end(self, utterance: _Utterance) -> int | None:
        """Where to end the utterance early (an offset into it), else None: after the latest
        sentence end in the hypothesis that a pause follows, either heard by VAD (the speaker
        has stopped after it) or seen in the word times (the next sentence began after a gap)."""
        words = utterance.hypothesis
        if not words or utterance.end is not None or self._translating:
            return None
        # In speech with no pause at all (quick turn-taking), a sentence end that two consecutive
        # hypotheses agree on (with all before it), with the next sentence begun after it, is
        # enough: waiting for its words to be committed costs seconds (agree_gap_s + commit_margin_s).
        # So is one after which both heard nothing in as much audio.
        decoded_s = (utterance.start + utterance.decoded) / SAMPLE_RATE
        committed = utterance.agreement.committed
        # Never before a committed word: it would be in both utterances' text.
        earliest_s = committed[-1].end - COVER_TOLERANCE_S if committed else -1.0
        if utterance.previous:
            stable = 0
            while stable < min(len(words), len(utterance.previous)) and key(words[stable].text) == key(
                utterance.previous[stable].text
            ):
                stable += 1
            for i in range(stable - 1, -1, -1):
                word = words[i]
                if word.end < earliest_s:
                    break
                if not ends_sentence(word.text) or decoded_s - word.end < QUICK_END_S:
                    continue
                if i + 1 < len(words):
                    cut_s = (word.end + max(word.end, words[i + 1].start)) / 2
                    return int(cut_s * SAMPLE_RATE) - utterance.start
                # Both heard nothing after it, though VAD still hears voice, and what VAD hears is
                # quiet: noise or breath it takes for speech (non-stationary noise kept utterances
                # open 2 s after the words).
                if len(utterance.previous) == len(words) and self._quiet_after(utterance, word.end):
                    return int((word.end + decoded_s) / 2 * SAMPLE_RATE) - utterance.start
        voiced_until_s = (utterance.start + utterance.voiced_until) / SAMPLE_RATE
        last = words[-1]
        pausing = decoded_s - voiced_until_s >= SENTENCE_PAUSE_S and last.end <= voiced_until_s + SENTENCE_PAUSE_S
        if pausing and ends_sentence(last.text):
            return utterance.voiced_until + int(SENTENCE_PAUSE_S / 2 * SAMPLE_RATE)
        # Whisper's word times close up pauses (a word's end moves into the silence after it),
        # so the pauses come from VAD: a sentence end near a pause, the next word after it.
        for word, after in reversed(list(itertools.pairwise(words))):
            if word.end < earliest_s:
                break
            if not ends_sentence(word.text) or decoded_s - word.end < self._config.commit_margin_s:
                continue
            for pause_start, pause_end in utterance.pauses:
                start_s = (utterance.start + pause_start) / SAMPLE_RATE
                end_s = (utterance.start + pause_end) / SAMPLE_RATE
                if start_s - PAUSE_SLACK_S <= word.end <= end_s + PAUSE_SLACK_S and after.start >= start_s:
                    return (pause_start + pause_end) // 2
        return None

    def _split(self, utterance: _Utterance, at: int, next_id: int) -> _Utterance:
        """Ends ``utterance`` at offset ``at``; the audio after it starts the next utterance."""
        rest = _Utterance(
            next_id,
            utterance.start + at,
            vad_id=utterance.vad_id,
            audio=[utterance.whole[at:].copy()] if utterance.samples > at else [],
            samples=max(0, utterance.samples - at),
            voiced_until=max(0, utterance.voiced_until - at),
            pauses=[(s - at, e - at) for s, e in utterance.pauses if s >= at],
            agreement=LocalAgreement(self._config.agree_gap_s),
        )
        utterance.end = at
        return rest

    async def _final(self, utterance: _Utterance) -> Transcript | Translation | None:
        assert utterance.end is not None
        # Covered when every voiced frame was decoded: the silence VAD keeps after speech adds
        # nothing, and a decode of the utterance's tail alone (after a trim) can lose its words.
        speech_end = min(utterance.end, utterance.voiced_until)
        covered = utterance.decoded >= speech_end - COVER_TOLERANCE_S * SAMPLE_RATE
        end_s = (utterance.start + utterance.end) / SAMPLE_RATE
        latest, latest_logprob = utterance.hypothesis, utterance.logprob
        how = "reused the latest hypothesis"
        if self._config.reuse_hypothesis and covered and latest is not None and utterance.final_quality:
            words = [w for w in latest if w.start < end_s]
            self.reused_finals += 1
        else:
            how = "decoded"
            words = await self._hypothesis(utterance, utterance.end, self._config.final_beam_size)
            # A decode Whisper itself would reject (it would retry at a higher temperature): the
            # latest hypothesis, which heard nearly all of it, is the better final. In noise, the
            # tail after a trim decoded alone came out as "dado en" for eight words heard before.
            if latest and utterance.logprob < LOW_LOGPROB and latest_logprob > utterance.logprob:
                words = [w for w in latest if w.start < end_s]
        # After a trim Whisper hears the rest of a sentence with its start as the prompt, and at
        # times stops early: "...had then leisure to consider how much" for 2 s more of quiet
        # speech. A final that ends that far before the speech does is decoded again whole, as
        # offline Whisper would hear it, and the decode that reaches further is kept.
        speech_end_s = (utterance.start + speech_end) / SAMPLE_RATE
        if utterance.trim and words and speech_end_s - words[-1].end > STOPPED_EARLY_S:
            whole = await self._hypothesis(utterance, utterance.end, self._config.final_beam_size, whole=True)
            self.whole_finals += 1
            how += ", stopped early, decoded again whole"
            if whole and whole[-1].end > words[-1].end:
                words = whole
        utterance.agreement.finish(words)
        start_s, _ = self._span(utterance)
        log.info("utterance %d final, %.2f-%.2f s, %d words: %s", utterance.id, start_s, end_s, len(words), how)
        if self.language is None:  # auto: the first finished utterance decides
            self.language = self._heard_language
        final = self._transcript(utterance, final=True)
        if final is not None and final.committed:
            self._previous = (final.committed, final.end)
        return final

    async def run(self, inputs: AsyncIterator[SpeechSegment]) -> AsyncGenerator[Transcript | Translation, None]:
        utterances: deque[_Utterance] = deque()
        by_id: dict[int, _Utterance] = {}
        arrived = asyncio.Event()
        done = False

        async def read() -> None:
            """Takes pieces as they come, so audio never waits behind a decode (it coalesces)."""
            nonlocal done
            try:
                async for piece in inputs:
                    utterance = by_id.get(piece.utterance)
                    if utterance is None:
                        agreement = LocalAgreement(self._config.agree_gap_s)
                        utterance = _Utterance(next_id(), piece.start, vad_id=piece.utterance, agreement=agreement)
                        by_id[piece.utterance] = utterance
                        utterances.append(utterance)
                    if len(piece.audio):
                        utterance.audio.append(piece.audio)
                        utterance.samples += len(piece.audio)
                    voiced_until = piece.voiced_until if piece.voiced_until is not None else piece.end
                    utterance.voiced_until = voiced_until - utterance.start
                    utterance.pauses += [(s - utterance.start, e - utterance.start) for s, e in piece.pauses]
                    if piece.final:
                        utterance.end = min(utterance.samples, piece.end - utterance.start)
                    arrived.set()
            finally:
                done = True
                arrived.set()

        ids = itertools.count()

        def next_id() -> int:
            return next(ids)

        reader = asyncio.create_task(read())
        step = int(self._config.partial_interval_s * SAMPLE_RATE)
        first = int(self._config.first_decode_s * SAMPLE_RATE)
        try:
            while True:
                if not utterances:
                    if done:
                        break
                    await arrived.wait()
                    arrived.clear()
                    continue
                utterance = utterances[0]
                finished: _Utterance | None = None
                backlog = sum((u.end if u.end is not None else u.samples) - u.decoded for u in utterances)
                self.backlog_max_s = max(self.backlog_max_s, backlog / SAMPLE_RATE)
                events: list[Transcript | Translation | None] = []
                if utterance.end is not None:
                    events = [await self._final(utterance)]
                    utterances.popleft()
                    finished = utterance
                    if by_id.get(utterance.vad_id) is utterance:
                        del by_id[utterance.vad_id]
                elif utterance.samples >= first and utterance.samples - utterance.decoded >= step:
                    events = [await self._partial(utterance)]
                    at = self._sentence_end(utterance)
                    if at is not None:
                        rest = self._split(utterance, at, next_id())
                        by_id[utterance.vad_id] = rest
                        utterances.insert(1, rest)
                        self.sentence_finals += 1
                        events.append(await self._final(utterance))
                        utterances.remove(utterance)
                        finished = utterance
                else:
                    await arrived.wait()
                    arrived.clear()
                    continue
                for event in events:
                    if event is not None:
                        yield event
                if finished is not None:  # the source text of a translation, after its final has gone
                    source = await self._source(finished)
                    if source is not None:
                        yield source
            await reader  # surfaces a failure of the stage before this one
        finally:
            reader.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)
