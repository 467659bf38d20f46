"""Streaming recognition: the open utterance re-decoded as it grows, words committed by agreement.

Utterances here are the ASR's own: VAD's utterance is one of them until the speaker pauses after
a finished sentence (a hypothesis covering a pause of ``SENTENCE_PAUSE_S`` ends with a full stop,
question or exclamation mark), or goes on without a pause after one that the latest hypothesis
and one of the two before it agree on (``QUICK_END_S`` of speech after it; or of audio in which
the latest two heard nothing, though VAD still hears voice: noise or breath it takes for
speech). Then that sentence is final at once, without waiting for VAD's longer silence, and the
rest of VAD's utterance continues as the next one, showing at once the words the latest
hypothesis heard of it. In quick turn-taking (pauses of 0.3-0.5 s between speakers) VAD alone
would close nothing for seconds.

Live, compute decides the cadence. One decode runs at a time on the model's thread; audio arriving
meanwhile is only appended, and the next decode takes all of it (coalescing), so the stage never
queues more work than the machine can do and never falls behind real time for long. Finals come
first: when VAD closes an utterance, it is finalised before the next one is decoded, reusing the
latest hypothesis when that already covers the utterance's audio, so a final rarely waits for a
decode of its own. A replay (``livesub live --instant``, ``bench --mode instant``) follows the
stream clock instead: a decode every ``streaming.replay_step_s`` of audio, the next piece taken
only once everything due is done, so the same input always gives the same events.

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
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from pipeline.algos.agreement import LocalAgreement
from pipeline.algos.open_utterance import (
    COVER_TOLERANCE_S,
    LOW_LOGPROB,
    OpenUtterance,
    first_word_start,
    heard_words,
    join_words,
)
from pipeline.algos.text import SENTENCE_END
from pipeline.algos.vocab import prompt as prompt_terms
from pipeline.backends.whisper import Decoder, Hypothesis
from pipeline.config import AsrConfig, StreamingConfig
from pipeline.events import SAMPLE_RATE, Samples, SpeechSegment, Transcript, Translation, Word
from pipeline.runner import Clock

log = logging.getLogger(__name__)

#: An utterance with less audio than this is not decoded, in seconds.
MIN_AUDIO_S = 0.1
#: Where the array labels utterances, one VAD started without a label (on a faint onset, or a side
#: talker before the partner spoke) waits for its label before its first decode, up to this much
#: audio, in seconds: decoded as the session's default, a wearer's utterance would be translated.
LABEL_WAIT_S = 2.0
#: Where the array's label changes inside an utterance, it is split where the new voice began
#: (moved into a gap between words up to ``TURN_SNAP_S`` away), unless either part would be shorter
#: than ``MIN_TURN_S``, in seconds.
MIN_TURN_S = 0.5
TURN_SNAP_S = 0.4
#: Characters of earlier text given to Whisper as its prompt, at most (the vocabulary comes first).
PROMPT_CHARS = 300
#: In a conversation of several languages, an utterance's language is decided by its first decode
#: of at least this much audio after its first word, in seconds (before, every decode detects it
#: again; an utterance shorter than this is decided by its final). Measured on the 25 FLEURS clips here, the five
#: languages allowed, detected on each clip's first seconds as a live decode sizes the encoder:
#: after 1 s, 7 clips came out in a wrong language; after 2 s one (German heard as English, p=0.90);
#: after 3 s none.
LANGUAGE_AFTER_S = 3.0


class StreamingAsrStage:
    """SpeechSegment pieces -> Transcript partials and finals, utterance by utterance."""

    name = "asr"
    publishes = True

    def __init__(
        self,
        decoder: Decoder,
        asr: AsrConfig,
        streaming: StreamingConfig,
        *,
        translate: bool = False,
        clock: Clock | None = None,
        speaker: str | None = None,
        actions: Mapping[str, str] | None = None,
        wearer_language: str = "",
    ) -> None:
        self._decoder = decoder
        self._speaker = speaker  # the label every utterance carries (who speaks into this audio)
        # What happens to an utterance the front-end labelled: "translate", "caption" or "drop".
        self._actions = dict(actions or {})
        self._wearer_language = wearer_language
        self._dropped: set[int] = set()  # VAD utterances not recognised (their speaker's action is drop)
        self._labels: dict[int, str | None] = {}  # VAD utterance -> the front-end's latest label
        self._unlabelled: set[int] = set()  # VAD utterances whose first pieces told nobody's voice
        self._labels_seen = False  # the array has labelled a piece: the input is the array's
        self._clock = clock or Clock()
        self._open: deque[OpenUtterance] = deque()  # oldest first
        self._by_vad_id: dict[int, OpenUtterance] = {}  # VAD's utterance -> the ASR utterance taking its audio
        self._ids = itertools.count()
        self._asr = asr
        self._config = streaming
        self._translating = translate  # decodes with task="translate" and emits Translation events
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self.language: str | None = None if asr.language == "auto" else asr.language
        self._previous: tuple[str, float] = ("", -1e9)  # the last final's text and end (stream seconds)
        self._heard_language = self.language or "en"  # the latest decode's, until one is locked
        self._glossary = prompt_terms(asr.terms, translated=translate)
        self.compute_seconds = 0.0
        self.reused_finals = 0
        self.sentence_finals = 0  # utterances ended at a sentence end before VAD closed them
        self.whole_finals = 0  # finals decoded again whole because they had stopped early
        self.skipped_finals = 0  # finals whose skipped first speech was decoded apart
        self.speaker_finals = 0  # utterances ended where the array heard another speaker take over
        #: The most audio ever waiting for recognition, in seconds (how far it fell behind).
        self.backlog_max_s = 0.0

    def _decode(self, audio: Samples, beam_size: int, prompt: str, task: str, language: str | None) -> Hypothesis:
        started = time.perf_counter()
        try:
            return self._decoder.decode_utterance(
                audio,
                language=language,
                task=task,
                beam_size=beam_size,
                prompt=prompt,
                pad_s=self._config.encoder_pad_s,
                languages=self._asr.languages,
            )
        finally:
            self.compute_seconds += time.perf_counter() - started

    def _prompt(self, utterance: OpenUtterance, whole: bool = False) -> str:
        """The utterance's committed words before the trim point (the decoded audio starts
        after them; none when the ``whole`` utterance is decoded), after the previous utterance's
        text when it ended just before this one began (a speaker's sentence cut by a short pause),
        after the vocabulary's terms."""
        language = self._language(utterance)
        trim_s = (utterance.start + (0 if whole else utterance.trim)) / SAMPLE_RATE
        before_trim = join_words([w for w in utterance.agreement.committed if w.start < trim_s], language)
        text, end = self._previous
        gap = utterance.start / SAMPLE_RATE - end
        context = (
            text[-self._config.context_chars :]
            if self._config.context_chars and gap <= self._config.context_gap_s
            else ""
        )
        return (self._glossary + " " + (context + " " + before_trim).strip()[-PROMPT_CHARS:]).strip()

    def _agreement(self) -> LocalAgreement:
        config = self._config
        return LocalAgreement(config.agree_gap_s, config.quick_gap_s, config.quick_probability)

    def _language(self, utterance: OpenUtterance) -> str:
        """The language the utterance is recognised in (the latest decode's while not yet known)."""
        return utterance.language or self.language or self._heard_language

    async def _hypothesis(
        self, utterance: OpenUtterance, end: int, beam_size: int, task: str | None = None, whole: bool = False
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
        prompt = self._prompt(utterance, whole) if own else self._glossary
        language = utterance.language or self.language
        task = task or ("translate" if utterance.translating else self._asr.task)
        hypothesis = await self._clock.compute(self._executor, self._decode, audio, beam_size, prompt, task, language)
        if own:
            utterance.decoded = end
            utterance.logprob = hypothesis.avg_logprob
            # Counted from the first word: the rest of an utterance split at a sentence end can
            # start with seconds of pause before the next speaker's first word.
            heard_s = len(audio) / SAMPLE_RATE - (hypothesis.words[0].start if hypothesis.words else len(audio))
            if self._asr.languages and utterance.language is None and heard_s >= LANGUAGE_AFTER_S:
                utterance.language = hypothesis.language
        offset = (utterance.start + begin) / SAMPLE_RATE
        words = heard_words(
            [
                Word(w.text, round(w.start + offset, 3), round(w.end + offset, 3), w.probability)
                for w in hypothesis.words
            ],
            audio,
            offset,
            no_speech_prob=hypothesis.no_speech_prob,
            avg_logprob=hypothesis.avg_logprob,
            compression_ratio=hypothesis.compression_ratio,
            timed=task != "translate",
        )
        if words is None:
            return []
        if own:
            self._heard_language = hypothesis.language
            utterance.heard(words)
        return words

    def _transcript(self, utterance: OpenUtterance, final: bool) -> Transcript | Translation | None:
        language = self._language(utterance)
        written = "en" if utterance.translating else language
        committed = join_words(utterance.agreement.committed, written)
        tentative = join_words(utterance.agreement.tentative, written)
        if (committed, tentative) == (utterance.emitted or ("", "")) and not (final and utterance.emitted):
            return None  # nothing new; and an utterance that never said anything ends silently
        utterance.emitted = (committed, tentative)
        start_s, end_s = utterance.span()
        tentative = "" if final else tentative
        if utterance.translating:
            return Translation(
                utterance.id,
                committed,
                tentative,
                start_s,
                end_s,
                language,
                "en",
                final=final,
                speaker=utterance.speaker,
            )
        words = tuple(utterance.agreement.committed)
        return Transcript(
            utterance.id,
            committed,
            tentative,
            start_s,
            end_s,
            language,
            final=final,
            words=words,
            speaker=utterance.speaker,
        )

    async def _source(self, utterance: OpenUtterance) -> Transcript | None:
        """The source text of a translated utterance whose final has been emitted (None when not
        translating, or when nothing was said)."""
        assert utterance.end is not None
        if not (utterance.translating and utterance.emitted):
            return None
        words = await self._hypothesis(utterance, utterance.end, self._config.final_beam_size, task="transcribe")
        if not words:
            return None
        language = self._language(utterance)
        start_s, end_s = utterance.span()
        text = join_words(words, language)
        return Transcript(
            utterance.id, text, "", start_s, end_s, language, final=True, words=tuple(words), speaker=utterance.speaker
        )

    async def _partial(self, utterance: OpenUtterance) -> Transcript | Translation | None:
        end = utterance.samples
        # In a pause, decode at final quality: if the speaker does not go on, the final reuses it.
        final_quality = utterance.pausing() or self._config.partial_beam_size == self._config.final_beam_size
        beam = self._config.final_beam_size if final_quality else self._config.partial_beam_size
        before = utterance.decoded
        words = await self._hypothesis(utterance, end, beam)
        utterance.older, utterance.previous, utterance.hypothesis = utterance.previous, utterance.hypothesis, words
        utterance.previous_decoded = before
        utterance.final_quality = final_quality
        audio_end = (utterance.start + end) / SAMPLE_RATE
        utterance.agreement.update(
            words,
            audio_end,
            audio_end - self._config.commit_margin_s,
            SENTENCE_END,
            quick_until=audio_end - self._config.quick_margin_s,
        )
        if not utterance.translating:  # English word times only roughly follow the speech: never cut
            utterance.trim_if_long(self._config.trim_after_s)
        return self._transcript(utterance, final=False)

    async def _final(self, utterance: OpenUtterance) -> Transcript | Translation | None:
        assert utterance.end is not None
        end_s = (utterance.start + utterance.end) / SAMPLE_RATE
        latest, latest_logprob = utterance.hypothesis, utterance.logprob
        how = "reused the latest hypothesis"
        if self._config.reuse_hypothesis and utterance.covered() and latest is not None and utterance.final_quality:
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
        if utterance.stopped_early(words):
            whole = await self._hypothesis(utterance, utterance.end, self._config.final_beam_size, whole=True)
            self.whole_finals += 1
            how += ", stopped early, decoded again whole"
            if whole and whole[-1].end > words[-1].end:
                words = whole
        if not utterance.translating and (skipped := utterance.skipped_before(words)) is not None:
            before = await self._hypothesis(utterance, skipped, self._config.final_beam_size, task=self._asr.task)
            self.skipped_finals += 1
            how += ", skipped its start, which was decoded apart"
            start = first_word_start(words)
            first = Word(words[0].text, round(start, 3), words[0].end, words[0].probability)
            words = [w for w in before if w.end <= start + COVER_TOLERANCE_S] + [first, *words[1:]]
        utterance.agreement.finish(words)
        start_s, _ = utterance.span()
        log.info("utterance %d final, %.2f-%.2f s, %d words: %s", utterance.id, start_s, end_s, len(words), how)
        if self._asr.languages:  # a conversation of several languages: each utterance is in its own
            utterance.language = utterance.language or self._heard_language
        elif self.language is None and utterance.language is None:  # auto: the first finished utterance decides
            self.language = self._heard_language
        final = self._transcript(utterance, final=True)
        if final is not None and final.committed:
            self._previous = (final.committed, final.end)
        return final

    def _carried(self, utterance: OpenUtterance, rest: OpenUtterance) -> Transcript | Translation | None:
        """The words the latest hypothesis heard after the sentence end that split ``rest`` off
        ``utterance``, shown at once as the rest's tentative text, so that they do not vanish
        with the final until the rest's first decode."""
        cut_s = rest.start / SAMPLE_RATE
        rest.agreement.tentative = [w for w in utterance.hypothesis or () if w.start >= cut_s]
        return self._transcript(rest, final=False)

    def _take(self, piece: SpeechSegment) -> None:
        """Appends a piece of VAD's utterance to the ASR utterance it belongs to (the latest one
        split off it, once sentences have ended it early)."""
        if piece.utterance in self._dropped:
            if piece.final:
                self._dropped.discard(piece.utterance)
            return
        self._labels[piece.utterance] = piece.speaker
        self._labels_seen |= piece.speaker is not None
        if piece.final:
            del self._labels[piece.utterance]  # no utterance is split off a closed one
        utterance = self._by_vad_id.get(piece.utterance)
        if utterance is None:
            agreement = self._agreement()
            utterance = OpenUtterance(next(self._ids), piece.start, vad_id=piece.utterance, agreement=agreement)
            if not self._label(utterance, piece.speaker):
                if not piece.final:  # its later pieces are skipped too
                    self._dropped.add(piece.utterance)
                return
            self._by_vad_id[piece.utterance] = utterance
            self._open.append(utterance)
            if piece.speaker is None:
                self._unlabelled.add(piece.utterance)
        elif piece.utterance in self._unlabelled and piece.speaker is not None:
            # The first pieces were too short (or too faint: VAD may start on a side talker before
            # the partner speaks) to tell whose voice it is: the first piece that tells labels the
            # utterance, if nothing of it has been decoded yet or it is decoded as that label asks.
            self._unlabelled.discard(piece.utterance)
            translating, language, kept = self._handling(piece.speaker)
            alike = kept and translating == utterance.translating and language is None
            if (utterance.decoded == 0 or alike) and not self._label(utterance, piece.speaker):
                self._open.remove(utterance)
                del self._by_vad_id[piece.utterance]
                if not piece.final:
                    self._dropped.add(piece.utterance)
                return
        elif piece.speaker is not None and piece.speaker != utterance.speaker and piece.speaker_since is not None:
            # Another voice took over without a pause VAD heard (the wearer answers at once, or a
            # side talker began the utterance): what came before is one speaker's, the rest the
            # other's, recognised as their label asks (never the wearer's words as the partner's).
            rest = self._turn(utterance, piece.speaker_since)
            if rest is not None:
                self.speaker_finals += 1
                if not self._follow(utterance, rest, piece.speaker, more=not piece.final):
                    return
                utterance = rest
        if piece.final:
            self._unlabelled.discard(piece.utterance)
        voiced_until = piece.voiced_until if piece.voiced_until is not None else piece.end
        utterance.take(piece.audio, voiced_until, piece.pauses, piece.end if piece.final else None)

    def _turn(self, utterance: OpenUtterance, since: int) -> OpenUtterance | None:
        """Ends the utterance where another speaker began (stream position ``since``, moved into
        the nearest gap between the latest hypothesis's words, never before a committed word) and
        returns the rest, or None where that leaves either part under ``MIN_TURN_S``."""
        at_s = since / SAMPLE_RATE
        words = utterance.hypothesis or []
        gaps = [(a.end + max(a.end, b.start)) / 2 for a, b in itertools.pairwise(words)]
        near = [g for g in gaps if abs(g - at_s) <= TURN_SNAP_S]
        if near:
            at_s = min(near, key=lambda g: abs(g - at_s))
        committed = utterance.agreement.committed
        if committed:
            at_s = max(at_s, committed[-1].end)
        at = int(at_s * SAMPLE_RATE) - utterance.start
        least = int(MIN_TURN_S * SAMPLE_RATE)
        if at < max(least, utterance.trim + least) or utterance.samples - at < least:
            return None
        return utterance.split(at, next(self._ids), self._agreement())

    def _follow(self, utterance: OpenUtterance, rest: OpenUtterance, label: str | None, *, more: bool) -> bool:
        """VAD's utterance goes on in ``rest``, split off ``utterance``, where its label keeps it
        (True); else the rest is dropped, with VAD's later pieces of it when ``more`` will come."""
        if self._label(rest, label):
            self._by_vad_id[utterance.vad_id] = rest
            self._open.insert(self._open.index(utterance) + 1, rest)
            return True
        del self._by_vad_id[utterance.vad_id]
        if more:
            self._dropped.add(utterance.vad_id)
        return False

    def _awaits_label(self, utterance: OpenUtterance) -> bool:
        return (
            self._labels_seen
            and utterance.vad_id in self._unlabelled
            and utterance.samples < LABEL_WAIT_S * SAMPLE_RATE
        )

    def _handling(self, label: str | None) -> tuple[bool, str | None, bool]:
        """What the label's action asks: (translated, the language it is heard in where the label
        sets one, kept rather than dropped)."""
        action = self._actions.get(label, "translate") if label is not None else "translate"
        language = self._wearer_language if label == "wearer" and self._wearer_language else None
        return self._translating and action == "translate", language, action != "drop"

    def _label(self, utterance: OpenUtterance, label: str | None) -> bool:
        """Says who spoke the new utterance (the front-end's label, else the session's) and sets
        what that speaker's action asks: whether it is translated, in which language it is heard.
        False when the action is to drop it."""
        utterance.speaker = label or self._speaker
        utterance.translating, language, kept = self._handling(label)
        if language is not None:
            utterance.language = language
        return kept

    async def _work(self, step: int) -> AsyncGenerator[Transcript | Translation, None]:
        """Does everything due, oldest utterance first: its final once VAD closed it, else a
        partial once ``step`` samples arrived since its last decode; returns when nothing is."""
        first = int(self._config.first_decode_s * SAMPLE_RATE)
        while self._open:
            utterance = self._open[0]
            backlog = sum((u.end if u.end is not None else u.samples) - u.decoded for u in self._open)
            self.backlog_max_s = max(self.backlog_max_s, backlog / SAMPLE_RATE)
            events: list[Transcript | Translation | None] = []
            finished: OpenUtterance | None = utterance
            if utterance.end is not None:
                events = [await self._final(utterance)]
            elif (
                utterance.samples >= first
                and utterance.samples - utterance.decoded >= step
                and not self._awaits_label(utterance)
            ):
                events = [await self._partial(utterance)]
                at = None if utterance.translating else utterance.sentence_end(self._config.commit_margin_s)
                if at is None:
                    finished = None  # still open
                else:
                    rest = utterance.split(at, next(self._ids), self._agreement())
                    kept = self._follow(utterance, rest, self._labels.get(utterance.vad_id), more=True)
                    self.sentence_finals += 1
                    events.append(await self._final(utterance))
                    if kept:
                        events.append(self._carried(utterance, rest))
            else:
                return
            for event in events:
                if event is not None:
                    yield event
            if finished is not None:  # the source text of a translation, after its final has gone
                self._open.remove(finished)
                if self._by_vad_id.get(finished.vad_id) is finished:
                    del self._by_vad_id[finished.vad_id]
                source = await self._source(finished)
                if source is not None:
                    yield source

    async def run(self, inputs: AsyncIterator[SpeechSegment]) -> AsyncGenerator[Transcript | Translation, None]:
        try:
            if self._clock.replay:
                # The stream clock decides the cadence: a decode every replay_step_s of audio, and
                # the next piece is taken only when everything due has been done.
                step = int(self._config.replay_step_s * SAMPLE_RATE)
                async for piece in inputs:
                    self._take(piece)
                    async for event in self._work(step):
                        yield event
                async for event in self._work(step):
                    yield event
            else:
                async for event in self._live(inputs):
                    yield event
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _live(self, inputs: AsyncIterator[SpeechSegment]) -> AsyncGenerator[Transcript | Translation, None]:
        """Compute decides the cadence: pieces are taken as they come, so audio never waits
        behind a decode, and the next decode takes all that arrived meanwhile (coalescing)."""
        arrived = asyncio.Event()
        done = False

        async def read() -> None:
            nonlocal done
            try:
                async for piece in inputs:
                    self._take(piece)
                    arrived.set()
            finally:
                done = True
                arrived.set()

        reader = asyncio.create_task(read())
        step = int(self._config.partial_interval_s * SAMPLE_RATE)
        try:
            while True:
                await arrived.wait()
                arrived.clear()
                last = done  # every piece was taken before done was set
                async for event in self._work(step):
                    yield event
                if last:
                    break
            await reader  # surfaces a failure of the stage before this one
        finally:
            reader.cancel()

    def stats(self) -> dict[str, float | int | None]:
        return {
            "compute_s": round(self.compute_seconds, 3),
            "backlog_max_s": round(self.backlog_max_s, 3),
            "reused_finals": self.reused_finals,
            "sentence_finals": self.sentence_finals,
            "whole_finals": self.whole_finals,
            "skipped_finals": self.skipped_finals,
            "speaker_finals": self.speaker_finals,
        }
