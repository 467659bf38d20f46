"""The open utterance of streaming recognition, and every decision about it, pure and synchronous.

An :class:`OpenUtterance` holds its audio as VAD sends it, its latest two hypotheses and the
words committed by agreement. Its methods decide: where to trim the decoded audio once it is long
(:meth:`~OpenUtterance.trim_if_long`), where a finished sentence ends it before VAD does
(:meth:`~OpenUtterance.sentence_end`, the reasons in ``pipeline.stages.streaming``), whether the
latest hypothesis covers it for the final (:meth:`~OpenUtterance.covered`), whether a final
stopped early; :func:`heard_words` guards each decode. The stage only decodes and emits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.algos.agreement import ANCHOR_S, LocalAgreement, cut_repetition, cut_unheard, key
from pipeline.algos.speech_cover import MAX_WORD_S, STRETCHED_WORD_S
from pipeline.algos.text import UNSPACED, ends_clause, ends_sentence
from pipeline.events import SAMPLE_RATE, Samples, Word

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
#: A final whose first word comes this much voiced audio (pauses VAD heard not counted) after the
#: first word an earlier hypothesis heard, in seconds, with nothing committed, skipped speech.
STARTED_LATE_S = 2.0
#: A sentence end the latest hypothesis and one of the two before it agree on ends the utterance
#: once this much audio followed it, in seconds (quick turn-taking, no pause).
QUICK_END_S = 0.8
#: A sentence end both of two consecutive hypotheses heard nothing after ends the utterance only
#: where the earlier one too had this much audio after it, in seconds. Whisper leaves out the
#: last words of a decode: in the glasses fixture (through MVDR) "...que se concentró?" ended a
#: decode 0.08 s after the word and the next one 1.2 s after it, though the sentence went on
#: ("que no todos pudieron..."); cut there, the rest was decoded alone and came out garbled.
HEARD_AFTER_S = 0.4
#: Two hypotheses agree on a sentence end when both hold its word starting or ending this close,
#: in seconds. Either: Whisper stretches a sentence's last word over the pause after it when it
#: puts the full stop there ("Jersey.[13.53-14.38]" against "Jersey[13.54-14.01]").
AGREE_S = 0.3
#: A sentence end with speech after it that Whisper has not transcribed is cut this long after
#: the word's end time (which Whisper can put a little before the word's last sound), in seconds.
SPLIT_AFTER_S = 0.2
#: Audio after a sentence end at least this much quieter than the speech before it (dB) is not a
#: next speaker Whisper has yet to hear, but noise or breath VAD takes for voice.
QUIET_AFTER_DB = 6.0
#: How far from a pause VAD heard a sentence's last word may end (Whisper's word times drift), in s.
PAUSE_SLACK_S = 0.3
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
class OpenUtterance:
    """An utterance being recognised: its audio as it arrives (offsets are samples from its
    start), its latest hypotheses and committed words, and what was decided about it."""

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
    previous_decoded: int = 0  # samples covered by the decode before it
    older: list[Word] | None = None  # the hypothesis before the previous one
    logprob: float = 0.0  # the latest decode's average log-probability
    first_heard_s: float | None = None  # the earliest first word of its hypotheses, stream seconds
    emitted: tuple[str, str] | None = None
    language: str | None = None  # in a conversation of several languages: the one it is in, once known
    speaker: str | None = None  # who spoke it, where known ("wearer", "partner", a session's label)
    translating: bool = False  # decoded with task="translate" (Whisper into English)

    @property
    def whole(self) -> Samples:
        """All the utterance's audio received so far."""
        if len(self.audio) > 1:
            self.audio = [np.concatenate(self.audio)]
        return self.audio[0] if self.audio else np.zeros(0, dtype=np.float32)

    def span(self) -> tuple[float, float]:
        """Its stream times in seconds: to where VAD closed it, else to what was decoded."""
        end = self.end if self.end is not None else self.decoded
        return round(self.start / SAMPLE_RATE, 3), round((self.start + end) / SAMPLE_RATE, 3)

    def trim_if_long(self, trim_after_s: float) -> None:
        """Once the decoded audio is long, start it after a committed word, so that each decode
        costs about the same however long the utterance grows (the words before it become
        Whisper's prompt). A sentence end is preferred, then a clause end, then any word."""
        if (self.samples - self.trim) < trim_after_s * SAMPLE_RATE:
            return
        trim_s = (self.start + self.trim) / SAMPLE_RATE
        committed = [w for w in self.agreement.committed if w.start >= trim_s]
        # Each committed word with the word after it (committed or not): the cut goes between them.
        candidates = list(itertools.pairwise(committed + self.agreement.tentative[:1]))
        # Only after a word the latest hypothesis says again where it was committed: where Whisper
        # has re-worded the committed words (in noise it hears the start of a sentence better
        # once it has heard more), their times may be wrong, and a cut there could take away
        # the audio of words not yet committed.
        for ends in (ends_sentence, ends_clause, None):  # None: after any word
            for word, after in reversed(candidates):
                if ends is not None and not ends(word.text):
                    continue
                if not _said_again(word, self.hypothesis or []):
                    continue
                # Cut in the middle of the gap between the words, so that neither loses a sound.
                cut_s = (word.end + max(word.end, after.start)) / 2
                at = int(cut_s * SAMPLE_RATE) - self.start
                if at - self.trim >= MIN_TRIM_S * SAMPLE_RATE:
                    self.trim = at
                    self.agreement.trim(cut_s)
                    return
                break

    def quiet_after(self, end_s: float) -> bool:
        """Whether the decoded audio from 0.1 s after stream second ``end_s`` (past the word's last
        sound, which Whisper's end times can cut short) is ``QUIET_AFTER_DB`` quieter than the two
        seconds before it."""
        at = int(end_s * SAMPLE_RATE) - self.start
        audio = self.whole
        before = audio[max(self.trim, at - 2 * SAMPLE_RATE) : at]
        after = audio[at + int(0.1 * SAMPLE_RATE) : self.decoded]
        if len(before) == 0 or len(after) == 0:
            return False
        ratio = float(np.mean(after * after)) / max(float(np.mean(before * before)), 1e-12)
        return ratio <= 10 ** (-QUIET_AFTER_DB / 10)

    def heard_before(self, word: Word, hypothesis: Sequence[Word] | None) -> int | None:
        """The index of the same word, starting or ending within ``AGREE_S`` of it, in an earlier hypothesis."""
        for j, other in enumerate(hypothesis or ()):
            close = abs(other.start - word.start) <= AGREE_S or abs(other.end - word.end) <= AGREE_S
            if key(other.text) == key(word.text) and close:
                return j
        return None

    def sentence_end(self, commit_margin_s: float) -> int | None:
        """Where to end the utterance early (an offset into it), else None: after the latest
        sentence end in the hypothesis that a pause follows, either heard by VAD (the speaker
        has stopped after it) or seen in the word times (the next sentence began after a gap)."""
        words = self.hypothesis
        if not words or self.end is not None:
            return None
        # In speech with no pause at all (quick turn-taking), a sentence end that the latest
        # hypothesis and one of the two before it agree on, with the next sentence begun after it,
        # is enough: waiting for its words to be committed costs seconds (agree_gap_s +
        # commit_margin_s). One of the two before: given two speakers' sentences, Whisper can give
        # both in one decode and only the second in the next, every other decode (replayed, turns
        # de finals p95 2.28 -> 1.80 s, the conversation's WER 23.5 -> 21.0%; of 24 other streams
        # only babble pt changed, by one word). So is a sentence end after which the latest two
        # heard nothing in as much audio. They agree on the word and its time, not on every word
        # before it: Whisper rewords earlier parts between decodes ("there's" / "there is"), which
        # says nothing about where the sentence ends.
        decoded_s = (self.start + self.decoded) / SAMPLE_RATE
        committed = self.agreement.committed
        # Never before a committed word: it would be in both utterances' text.
        earliest_s = committed[-1].end - COVER_TOLERANCE_S if committed else -1.0
        for i in range(len(words) - 1, -1, -1):
            word = words[i]
            if word.end < earliest_s:
                break
            if not ends_sentence(word.text) or decoded_s - word.end < QUICK_END_S:
                continue
            before = self.heard_before(word, self.previous)
            if before is None and self.heard_before(word, self.older) is None:
                continue
            if i + 1 < len(words):
                cut_s = (word.end + max(word.end, words[i + 1].start)) / 2
                return int(cut_s * SAMPLE_RATE) - self.start
            # Both heard nothing after it (each in HEARD_AFTER_S of audio at least; the latest two
            # decodes, not the one before: this is weaker evidence than words after it), though VAD
            # still hears voice. Where that is quiet it is noise or breath VAD takes for speech
            # (non-stationary noise kept utterances open 2 s after the words): cut in the middle.
            # Where it is as loud as speech it is the next sentence, often the next speaker's,
            # whose start Whisper leaves out after a sentence end until it is decoded apart: cut
            # just after the word (in the two-speaker conversation, finals p50 2.33 -> 1.63 s,
            # WER unchanged on 21 streams).
            previous_after_s = (self.start + self.previous_decoded) / SAMPLE_RATE - word.end
            if before == len(self.previous or ()) - 1 and previous_after_s >= HEARD_AFTER_S:
                if self.quiet_after(word.end):
                    return int((word.end + decoded_s) / 2 * SAMPLE_RATE) - self.start
                return int((word.end + SPLIT_AFTER_S) * SAMPLE_RATE) - self.start
        voiced_until_s = (self.start + self.voiced_until) / SAMPLE_RATE
        last = words[-1]
        pausing = decoded_s - voiced_until_s >= SENTENCE_PAUSE_S and last.end <= voiced_until_s + SENTENCE_PAUSE_S
        if pausing and ends_sentence(last.text):
            return self.voiced_until + int(SENTENCE_PAUSE_S / 2 * SAMPLE_RATE)
        # Whisper's word times close up pauses (a word's end moves into the silence after it),
        # so the pauses come from VAD: a sentence end near a pause, the next word after it.
        for word, after in reversed(list(itertools.pairwise(words))):
            if word.end < earliest_s:
                break
            if not ends_sentence(word.text) or decoded_s - word.end < commit_margin_s:
                continue
            for pause_start, pause_end in self.pauses:
                start_s = (self.start + pause_start) / SAMPLE_RATE
                end_s = (self.start + pause_end) / SAMPLE_RATE
                if start_s - PAUSE_SLACK_S <= word.end <= end_s + PAUSE_SLACK_S and after.start >= start_s:
                    return (pause_start + pause_end) // 2
        return None

    def split(self, at: int, next_id: int, agreement: LocalAgreement) -> OpenUtterance:
        """Ends this utterance at offset ``at``; the audio after it starts the next one, returned,
        whose words ``agreement`` (a fresh one) commits."""
        rest = OpenUtterance(
            next_id,
            self.start + at,
            vad_id=self.vad_id,
            audio=[self.whole[at:].copy()] if self.samples > at else [],
            samples=max(0, self.samples - at),
            voiced_until=max(0, self.voiced_until - at),
            pauses=[(s - at, e - at) for s, e in self.pauses if s >= at],
            agreement=agreement,
            speaker=self.speaker,
            translating=self.translating,
        )
        self.end = at
        return rest

    def take(self, audio: Samples, voiced_until: int, pauses: Sequence[tuple[int, int]], end: int | None) -> None:
        """Appends a piece of VAD's utterance: its audio, how far voice was heard (a stream
        sample), the pauses heard inside it, and where VAD closed it (None while open)."""
        if len(audio):
            self.audio.append(audio)
            self.samples += len(audio)
        # VAD can close it before it began (split off after where VAD hears the speech end).
        self.voiced_until = max(0, voiced_until - self.start)
        self.pauses += [(s - self.start, e - self.start) for s, e in pauses]
        if end is not None:
            self.end = min(self.samples, max(0, end - self.start))

    def pausing(self) -> bool:
        """Whether VAD has heard no voice for PAUSE_S at the end of the audio so far (a decode
        now is made at final quality: if the speaker does not go on, the final reuses it)."""
        return self.samples - self.voiced_until >= PAUSE_S * SAMPLE_RATE

    @property
    def speech_end(self) -> int:
        """Where its voiced audio ends, as an offset (the silence VAD keeps after it adds nothing)."""
        assert self.end is not None
        return min(self.end, self.voiced_until)

    def covered(self) -> bool:
        """Whether the latest decode heard every voiced frame of the closed utterance (a decode of
        its tail alone, after a trim, can lose its words: the final had better reuse it)."""
        return self.decoded >= self.speech_end - COVER_TOLERANCE_S * SAMPLE_RATE

    def heard(self, words: Sequence[Word]) -> None:
        """Notes where a hypothesis of it began (see :meth:`skipped_before`)."""
        if words:
            start = first_word_start(words)
            self.first_heard_s = start if self.first_heard_s is None else min(self.first_heard_s, start)

    def skipped_before(self, words: Sequence[Word]) -> int | None:
        """Where a final that skipped speech an earlier hypothesis heard begins (an offset to
        decode up to), else None. Whisper hearing one speaker's sentence and the next one's
        together at times gives only the second: in quick turn-taking of FLEURS speakers (0.35 s
        apart) a final lost "Sem carro Fisichella perdeu o controle do carro...", which its
        hypotheses had held for 4 s. It is skipped when ``STARTED_LATE_S`` of voiced audio (pauses
        VAD heard not counted) lies between the first word heard and the final's. Only where
        nothing was committed: a committed word already holds the start. (At 1.5 s, the 1.58 s
        from where VAD began an utterance of clean English to its first word came out as "How
        well?", decoded apart.)"""
        if not words or self.agreement.committed or self.first_heard_s is None:
            return None
        heard = max(0, int(self.first_heard_s * SAMPLE_RATE) - self.start)
        first = max(0, int(first_word_start(words) * SAMPLE_RATE) - self.start)
        voiced = first - heard - sum(max(0, min(e, first) - max(s, heard)) for s, e in self.pauses)
        return first if voiced >= STARTED_LATE_S * SAMPLE_RATE else None

    def stopped_early(self, words: Sequence[Word]) -> bool:
        """Whether a final decoded after a trim ends STOPPED_EARLY_S or more before the speech does."""
        speech_end_s = (self.start + self.speech_end) / SAMPLE_RATE
        return bool(self.trim and words and speech_end_s - words[-1].end > STOPPED_EARLY_S)


def first_word_start(words: Sequence[Word]) -> float:
    """When the first word began: Whisper can stretch a first word over speech it skipped ("O"
    over 28.23-33.83 s, the first speaker's whole sentence), so one longer than ``MAX_WORD_S`` is
    taken to begin ``STRETCHED_WORD_S`` before its end."""
    word = words[0]
    return word.end - STRETCHED_WORD_S if word.end - word.start > MAX_WORD_S else word.start


def heard_words(
    words: Sequence[Word],
    audio: Samples,
    offset_s: float,
    *,
    no_speech_prob: float,
    avg_logprob: float,
    compression_ratio: float,
    timed: bool = True,
) -> list[Word] | None:
    """The words of a decode worth keeping (in stream seconds, the audio decoded starting at
    ``offset_s``): None when Whisper itself would call it no speech, or a loop it cannot cut;
    else the words without repeated n-grams, words that take no time, and what was said over
    silence (which may leave none).

    The last two trust the word times, which only a transcript's words have: a translation's
    words are not the ones spoken, and Whisper gives runs of them no time mid-sentence ("who
    have worked[7.44-7.44] hard to get to[7.54-7.54] death"). Translations (``timed`` False)
    skip them: cut there, German finals ended in "... or who have worked hard" in two real-time
    runs of three."""
    if no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOW_LOGPROB:
        return None
    kept = cut_repetition(cut_unheard(words) if timed else words)
    if compression_ratio > MAX_COMPRESSION_RATIO and len(kept) == len(words):
        return None  # repetitive, yet not a simple loop we could cut: trust none of it
    return drop_silent_words(kept, audio, offset_s) if timed else kept
