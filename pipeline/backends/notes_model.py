"""Meeting notes by an instruction-tuned language model the user converted to CTranslate2.

``livesub notes --notes-model DIR`` runs the model with :class:`ctranslate2.Generator` over the
transcript. Every claim it keeps carries the times of the sentences it cites, and those times
come from the transcript, never from the model: a note citing a time that is not a sentence's
tag in what the model was shown is dropped.

**What a model directory must hold.** ``ct2-transformers-converter`` writes ``model.bin``,
``config.json`` and ``vocabulary.json``; it copies the tokenizer only when asked::

    ct2-transformers-converter --model Qwen/Qwen2.5-1.5B-Instruct --output_dir qwen2.5-1.5b-ct2 \\
        --quantization int8 --copy_files tokenizer.json tokenizer_config.json

``tokenizer.json`` is required (tokenisation with the ``tokenizers`` library). ``tokenizer_config.json``
is optional but recommended: its ``chat_template`` is checked, its ``eos_token`` ends the answer and
its ``model_max_length`` bounds the context (without it: :data:`DEFAULT_CONTEXT_TOKENS`).

**Chat format.** Only ChatML is supported (``<|im_start|>role\\n...<|im_end|>\\n``), the format of
Qwen2 / Qwen2.5 Instruct, SmolLM2-Instruct and Qwen3. The Jinja template itself is not executed
(no Jinja here); it is only checked to be ChatML, and the prompt is written in that format by
:func:`render_chatml`. A template that mentions ``<think>`` (Qwen3) gets an empty thinking block
at the start of the answer, which is how that template turns thinking off. Any other template
(Llama 3, Gemma, Mistral, Phi-3) is a :class:`~pipeline.errors.ModelError` naming what is supported.

**Map.** The transcript is cut into chunks of consecutive sentences whose lines fit
``max_chunk_tokens`` and, together with the prompt and the longest answer, the model's context
(tokens counted with the model's tokenizer). Each sentence is one line, ``[12:03 S2] text``. The
model reads one chunk at a time (greedy decoding, deterministic, at most ``max_answer_tokens``)
and answers with lines in the format of :data:`SYSTEM_PROMPT`, which :func:`parse_notes` reads.
A chunk's prompt, and an answer::

    <|im_start|>system
    You write meeting notes from a transcript. ... (SYSTEM_PROMPT, with the notes' language)<|im_end|>
    <|im_start|>user
    Transcript:
    [00:12 S1] Good morning, let's look at the budget.
    [12:03 S2] I'll send the report on Friday.<|im_end|>
    <|im_start|>assistant
    SUMMARY | 00:12 | - | The budget was reviewed.
    ACTION | 12:03 | S2 | Send the report on Friday.<|im_end|>

The system turn is the same for every chunk: CTranslate2 keeps its state (``static_prompt``).

**Reduce.** Deterministic, not a second model call: the claims of all chunks are put in time
order and exact repetitions (same kind, owner and text up to case and punctuation) are kept once,
at their first time. Chunks do not overlap, so claims from different chunks are about different
stretches of the meeting: what is left is a per-stretch summary, which is what the notes show
anyway (every line with its time). A reduce call would cost another full pass of a small model
on two CPU cores, and small models rewrite or drop items when merging, and mangle the citations.

Transcripts are personal data: nothing here logs their text or the model's answers.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pipeline.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

#: The context assumed when ``tokenizer_config.json`` gives no ``model_max_length``.
DEFAULT_CONTEXT_TOKENS = 4096
#: Transcript tokens per chunk: about five minutes of speech. Small models keep track of shorter
#: inputs better, and on two cores a chunk this long takes tens of seconds to read.
DEFAULT_CHUNK_TOKENS = 1536
#: The longest answer per chunk, in tokens (a dozen notes take about 300).
DEFAULT_ANSWER_TOKENS = 512
#: Room for tokens that merge differently where the transcript joins the rest of the prompt.
_MARGIN_TOKENS = 8

ClaimKind = Literal["summary", "decision", "action"]
KINDS: tuple[ClaimKind, ...] = ("summary", "decision", "action")

#: ChatML's special tokens.
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
#: What a ChatML answer may end with, besides ``tokenizer_config.json``'s ``eos_token``.
_END_TOKENS = (IM_END, "<|endoftext|>")
#: Qwen3's answer prefix that turns thinking off (what its template writes for enable_thinking=False).
_NO_THINKING = "<think>\n\n</think>\n\n"


class SentenceLike(Protocol):
    """A transcript sentence, as ``pipeline.algos.notes.Sentence`` has it."""

    @property
    def text(self) -> str: ...

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def speaker(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Claim:
    """One note, with the times of the transcript sentences it cites."""

    kind: ClaimKind
    text: str
    start: float  # the earliest cited sentence's start, stream seconds
    end: float  # the latest cited sentence's end
    owner: str | None = None  # who will do it (actions): a speaker label or a name, as the model wrote it


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive transcript sentences the model reads at once."""

    first: int  # index of the first sentence in the transcript
    sentences: tuple[SentenceLike, ...]
    lines: tuple[str, ...]  # one tagged line per sentence (an over-long sentence's text is cut)
    tokens: int  # tokens of the lines joined by newlines, as the prompt holds them


# --- Prompts ----------------------------------------------------------------------------------

#: The instructions, in English whatever the meeting's language (small models follow English
#: instructions best); ``{language}`` is the language the notes are written in. The example's
#: notes are dropped if the model echoes them (:data:`_EXAMPLE_NOTES`).
SYSTEM_PROMPT = """\
You write meeting notes from a transcript. Each transcript line starts with a tag in square \
brackets: the time the sentence was said and, when known, the speaker, e.g. [12:03 S2].

Write one note per line, in exactly this format, and nothing else:
SUMMARY | time | - | a point that was discussed
DECISION | time | - | something that was decided or agreed
ACTION | time | owner | a task someone will do, with its deadline if one was said

time: the time in the tag of the transcript line the note comes from, copied exactly; for a \
note drawn from several lines, their times separated by commas.
owner: who will do the task: the speaker label from the tag (e.g. S2) or the name said in the \
transcript, or - if nobody was named.
Keep the words SUMMARY, DECISION and ACTION in English and write the notes themselves in {language}. \
Note only what the transcript says. Keep each note short. If there is nothing to note, write NONE.

Example transcript:
[03:10 S1] Let's go with the cheaper supplier.
[03:15 S2] Fine. I'll call them tomorrow.
Example notes:
DECISION | 03:10 | - | Go with the cheaper supplier.
ACTION | 03:15 | S2 | Call the supplier tomorrow."""

#: The user turn: the chunk's tagged lines follow.
USER_PROMPT = "Transcript:\n{transcript}"

_EXAMPLE_NOTES = ("Go with the cheaper supplier.", "Call the supplier tomorrow.")

#: English names of the languages Whisper hears most, for the instructions.
_LANGUAGE_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali",
    "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian", "is": "Icelandic", "it": "Italian",
    "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "lt": "Lithuanian",
    "lv": "Latvian", "mk": "Macedonian", "ms": "Malay", "mt": "Maltese", "nb": "Norwegian Bokmål",
    "nl": "Dutch", "nn": "Norwegian Nynorsk", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian",
    "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
    "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip


def language_name(code: str) -> str:
    """How the instructions name the language of ``code`` (ISO 639-1)."""
    code = code.strip().lower()
    if not code or code == "auto":
        return "the language of the transcript"
    return _LANGUAGE_NAMES.get(code, f"the language of the transcript (code '{code}')")


def time_tag(seconds: float) -> str:
    """A sentence's time as the model sees it: ``02:05``, or ``1:02:05`` past the first hour."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _tag_seconds(tag: str) -> int | None:
    """The whole seconds a time tag names (``2:05`` and ``02:05`` alike), or None if it is not one."""
    match = re.fullmatch(r"(?:(\d{1,2}):)?(\d{1,3}):(\d{2})", tag)
    if match is None or int(match.group(3)) >= 60:
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


# Text that must not reach the prompt as markup: ChatML-like special tokens in what was said
# (``<|im_end|>`` in a transcript would end the user's turn), and line breaks (one sentence, one line).
_MARKUP = re.compile(r"<\|[^|>]*\|>|<\||\|>|<think>|</think>")


def _clean(text: str) -> str:
    return " ".join(_MARKUP.sub(" ", text).split())


def transcript_line(sentence: SentenceLike, text: str | None = None) -> str:
    """``[12:03 S2] I'll send the report on Friday.`` (``text`` replaces the sentence's own)."""
    speaker = _clean(sentence.speaker or "").replace(" ", "_")
    tag = f"{time_tag(sentence.start)} {speaker}" if speaker else time_tag(sentence.start)
    return f"[{tag}] {_clean(sentence.text if text is None else text)}"


def chatml_turn(role: str, content: str) -> str:
    """One ChatML turn: ``<|im_start|>role\\ncontent<|im_end|>\\n``."""
    return f"{IM_START}{role}\n{content}{IM_END}\n"


def render_chatml(messages: Sequence[tuple[str, str]], *, answer_prefix: str = "") -> str:
    """``(role, content)`` messages in ChatML, ending with the open assistant turn (and ``answer_prefix``)."""
    return "".join(chatml_turn(role, content) for role, content in messages) + f"{IM_START}assistant\n{answer_prefix}"


# --- Reading the answer -----------------------------------------------------------------------

# KIND | times | owner | text, or KIND | times | text; a list bullet or number, Markdown bold and
# surrounding brackets are tolerated.
_NOTE_LINE = re.compile(
    r"^\s*(?:[-*•]\s*|\d{1,3}[.)]\s*)?\**\s*(summary|decision|action)\s*\**\s*:?\s*\|(.+)$", re.IGNORECASE
)
_TIME = r"\d{1,3}:\d{2}(?::\d{2})?"
# One cited time, possibly copied with the speaker label after it ("12:03 S2").
_CITED = re.compile(rf"^\[?\s*({_TIME})(?:\s+[^\s,;\]]+)?\s*\]?$")
_KIND_BY_NAME: dict[str, ClaimKind] = {kind: kind for kind in KINDS}
_NO_OWNER = frozenset({"", "-", "–", "—", "none", "n/a", "na", "nobody", "unknown", "?"})


def _cited_times(field: str) -> list[int] | None:
    """The seconds of every time in a time field (``12:03``, ``12:03, 12:41``, ``12:03-12:41``),
    or None when the field holds anything else."""
    pieces = [p.strip() for p in re.split(r"[,;]|\s[-–—]\s|(?<=\d)[-–—](?=\d)|\band\b", field.strip())]
    seconds = []
    for piece in pieces:
        match = _CITED.match(piece)
        found = _tag_seconds(match.group(1)) if match else None
        if found is None:
            return None
        seconds.append(found)
    return seconds or None


def parse_notes(answer: str, sentences: Sequence[SentenceLike]) -> list[Claim]:
    """The claims in a model's ``answer`` about the chunk ``sentences``, in the answer's order.

    A line is kept only if it has the note format and every time it cites is the tag of one of
    ``sentences``; its start and end are then those of the cited sentences (all sentences that
    share a tag, when several start within the same second). Anything else is ignored.
    """
    by_tag: dict[int, list[SentenceLike]] = {}
    for sentence in sentences:
        by_tag.setdefault(_tag_seconds(time_tag(sentence.start)) or 0, []).append(sentence)
    examples = {_normalised(text) for text in _EXAMPLE_NOTES}
    claims = []
    for line in re.sub(r"<think>.*?</think>", "", answer, flags=re.DOTALL).splitlines():
        match = _NOTE_LINE.match(line.strip())
        if match is None:
            continue
        fields = [f.strip() for f in match.group(2).split("|", 2)]
        if len(fields) == 2:  # KIND | time | text: no owner field
            fields.insert(1, "-")
        if len(fields) != 3:
            continue
        times, owner, text = fields
        seconds = _cited_times(times)
        text = _clean(text.strip("*").strip())
        if seconds is None or not text or _normalised(text) in examples or _normalised(text) == "none":
            continue
        if any(s not in by_tag for s in seconds):
            continue  # a time the model was not shown: it cannot be traced to what was said
        cited = [sentence for s in seconds for sentence in by_tag[s]]
        owner = _clean(owner.strip("[]*").strip())
        claims.append(
            Claim(
                kind=_KIND_BY_NAME[match.group(1).lower()],
                text=text,
                start=min(s.start for s in cited),
                end=max(s.end for s in cited),
                owner=None if owner.lower() in _NO_OWNER else owner,
            )
        )
    return claims


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def merge_claims(claims: Sequence[Claim]) -> list[Claim]:
    """The claims of all chunks in time order, each repeated claim kept once, at its first time.

    A repetition is the same kind and owner with the same text up to case and punctuation:
    models repeat lines (greedy decoding loops), and restate a point again in the next chunk.
    """
    order = {kind: i for i, kind in enumerate(KINDS)}
    seen: set[tuple[str, str, str]] = set()
    merged = []
    for claim in sorted(claims, key=lambda c: (c.start, order[c.kind], c.end)):
        key = (claim.kind, (claim.owner or "").casefold(), _normalised(claim.text))
        if key not in seen:
            seen.add(key)
            merged.append(claim)
    return merged


def pack(token_counts: Sequence[int], budget: int) -> list[range]:
    """Consecutive runs of items whose token counts add up to at most ``budget`` each; an item
    over the budget on its own gets a run of its own."""
    if budget < 1:
        raise ValueError("budget must be at least one token")
    runs: list[range] = []
    start, used = 0, 0
    for i, count in enumerate(token_counts):
        if i > start and used + count > budget:
            runs.append(range(start, i))
            start, used = i, 0
        used += count
    if start < len(token_counts):
        runs.append(range(start, len(token_counts)))
    return runs


# --- The model --------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _token_content(value: Any) -> str | None:
    """A special token as ``tokenizer_config.json`` writes it: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _chat_template(model_dir: Path, config: dict[str, Any]) -> str | None:
    """The model's chat template: ``tokenizer_config.json``'s (a string, or named templates) or
    ``chat_template.jinja`` (newer Transformers save it apart)."""
    template = config.get("chat_template")
    if isinstance(template, list):  # [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        named = {str(t.get("name")): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default", next(iter(named.values()), None))
    if isinstance(template, str):
        return template
    jinja = model_dir / "chat_template.jinja"
    return jinja.read_text(encoding="utf-8") if jinja.is_file() else None


class NotesModel:
    """An instruction-tuned ChatML model converted to CTranslate2, writing meeting notes.

    Loading and :meth:`notes` block; run them on a worker thread. ``threads`` is the number of
    CPU threads (0: CTranslate2's default). ``context_tokens`` overrides the context length read
    from ``tokenizer_config.json``; ``max_answer_tokens`` bounds each answer.

    Attributes: ``chat_format`` ("chatml"), ``end_tokens`` (what ends an answer), ``context_tokens``,
    ``tokenizer`` (the model's ``tokenizers.Tokenizer``).
    """

    def __init__(
        self,
        path: Path | str,
        threads: int = 0,
        *,
        context_tokens: int | None = None,
        max_answer_tokens: int = DEFAULT_ANSWER_TOKENS,
    ) -> None:
        import ctranslate2
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.max_answer_tokens = max_answer_tokens
        if not self.path.is_dir():
            raise ModelError(f"no CTranslate2 model in {self.path} (not a directory)")
        if not (self.path / "model.bin").is_file():
            raise ModelError(f"no CTranslate2 model in {self.path} (model.bin missing)")
        tokenizer_file = self.path / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelError(
                f"{self.path} has no tokenizer.json: convert with --copy_files tokenizer.json tokenizer_config.json"
            )
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as e:  # the Rust library raises bare Exceptions for damaged files
            raise ModelError(f"cannot read {tokenizer_file}: {_one_line(e)}") from None
        config: dict[str, Any] = {}
        config_file = self.path / "tokenizer_config.json"
        try:
            if config_file.is_file():
                config = json.loads(config_file.read_text(encoding="utf-8"))
            template = _chat_template(self.path, config)
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as e:
            raise ModelError(f"cannot read {config_file}: {_one_line(e)}") from None
        if not isinstance(config, dict):
            raise ModelError(f"cannot read {config_file}: not a JSON object")

        vocabulary = self.tokenizer.get_vocab(with_added_tokens=True)
        supported = "livesub supports ChatML chat models (Qwen2.5-Instruct, SmolLM2-Instruct, Qwen3)"
        if template is not None and not (IM_START in template and IM_END in template):
            raise ModelError(f"the chat template of {self.path} is not ChatML: {supported}")
        if IM_START not in vocabulary or IM_END not in vocabulary:
            raise ModelError(f"{tokenizer_file} has no {IM_START} and {IM_END} tokens: {supported}")
        self.chat_format = "chatml"
        self._answer_prefix = _NO_THINKING if template is not None and "<think>" in template else ""
        ends = [_token_content(config.get("eos_token")), *_END_TOKENS]
        self.end_tokens = list(dict.fromkeys(t for t in ends if t is not None and t in vocabulary))
        if template is None:
            log.info("%s has no chat template (tokenizer_config.json): assuming ChatML", self.path)

        configured = config.get("model_max_length")
        # Transformers writes a huge number (1e30) when the length is unknown.
        known = configured if isinstance(configured, int) and 0 < configured <= 10_000_000 else None
        self.context_tokens = context_tokens or known or DEFAULT_CONTEXT_TOKENS
        self._check_vocabulary(set(vocabulary))

        started = time.perf_counter()
        compute_type = "int8" if "int8" in ctranslate2.get_supported_compute_types("cpu") else "default"
        try:
            self._generator: Any = ctranslate2.Generator(
                str(self.path), device="cpu", compute_type=compute_type, intra_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelError(f"cannot load {self.path} as a CTranslate2 language model: {_one_line(e)}") from None
        log.debug("notes model %s loaded in %.0f ms", self.path, (time.perf_counter() - started) * 1000)

    def _check_vocabulary(self, tokens: set[str]) -> None:
        """tokenizer.json must be the model's own: every token the tokenizer makes is in the model's vocabulary."""
        for name in ("vocabulary.json", "vocabulary.txt"):
            file = self.path / name
            if not file.is_file():
                continue
            try:
                text = file.read_text(encoding="utf-8")
                model_tokens = set(json.loads(text) if name.endswith(".json") else text.splitlines())
            except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
                raise ModelError(f"cannot read {file}: {_one_line(e)}") from None
            missing = len(tokens - model_tokens)
            if missing:
                raise ModelError(
                    f"tokenizer.json in {self.path} does not match the model ({missing} tokens unknown to it): "
                    "copy it from the same model"
                )
            return

    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text`` (special-token strings included)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _tokens(self, text: str) -> list[str]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).tokens)

    def prompt(self, lines: Sequence[str], language: str) -> tuple[list[str], list[str]]:
        """The prompt for a chunk's ``lines`` as tokens: (the system turn, the same for every chunk
        and cached by CTranslate2; the user turn and the open assistant turn)."""
        system = chatml_turn("system", SYSTEM_PROMPT.format(language=language_name(language)))
        user = render_chatml(
            [("user", USER_PROMPT.format(transcript="\n".join(lines)))], answer_prefix=self._answer_prefix
        )
        # Special tokens split the text, so the turns tokenised apart are the whole prompt's tokens.
        return self._tokens(system), self._tokens(user)

    def chunks(
        self, sentences: Sequence[SentenceLike], language: str, *, max_chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    ) -> list[Chunk]:
        """The transcript cut into chunks whose prompt fits the context with the longest answer;
        each chunk's transcript lines hold at most ``max_chunk_tokens`` tokens."""
        static, rest = self.prompt([], language)
        room = self.context_tokens - len(static) - len(rest) - self.max_answer_tokens - _MARGIN_TOKENS
        budget = min(max_chunk_tokens, room)
        if budget < 32:
            raise ConfigError(
                f"the notes model's context ({self.context_tokens} tokens) leaves no room for the transcript "
                f"(the prompt takes {len(static) + len(rest)}, the answer {self.max_answer_tokens})"
            )
        lines = [self._fitting_line(sentence, budget) for sentence in sentences]
        counts = [self.count_tokens(line + "\n") for line in lines]
        result: list[Chunk] = []
        first = 0
        while first < len(lines):
            stop = first + pack(counts[first:], budget)[0].stop
            tokens = self.count_tokens("\n".join(lines[first:stop]))
            # Lines counted apart may come to fewer tokens than joined: give back lines until it fits.
            while tokens > budget and stop - first > 1:
                stop -= 1
                tokens = self.count_tokens("\n".join(lines[first:stop]))
            result.append(Chunk(first, tuple(sentences[first:stop]), tuple(lines[first:stop]), tokens))
            first = stop
        return result

    def _fitting_line(self, sentence: SentenceLike, budget: int) -> str:
        """The sentence's line, its text cut to fit ``budget`` tokens when it is longer on its own."""
        line = transcript_line(sentence)
        if self.count_tokens(line) <= budget:
            return line
        ids = self.tokenizer.encode(_clean(sentence.text), add_special_tokens=False).ids
        keep = budget - self.count_tokens(transcript_line(sentence, "…"))
        while keep > 0:
            line = transcript_line(sentence, self.tokenizer.decode(ids[:keep]) + " …")
            if self.count_tokens(line) <= budget:
                return line
            keep -= max(1, keep // 10)
        return transcript_line(sentence, "…")

    def answer(self, chunk: Chunk, language: str) -> str:
        """The model's raw answer for one chunk (greedy, at most ``max_answer_tokens`` tokens)."""
        generator = self._generator
        if generator is None:
            raise ModelError(f"the notes model {self.path} is closed")
        static, rest = self.prompt(chunk.lines, language)
        try:
            result = generator.generate_batch(
                [rest],
                static_prompt=static,
                max_length=self.max_answer_tokens,
                sampling_topk=1,
                beam_size=1,
                end_token=self.end_tokens,
                include_prompt_in_result=False,
            )[0]
        except RuntimeError as e:
            raise ModelError(f"note writing with {self.path} failed: {_one_line(e)}") from None
        ids = [self.tokenizer.token_to_id(token) for token in result.sequences[0]]
        return str(self.tokenizer.decode([i for i in ids if i is not None], skip_special_tokens=True))

    def notes(
        self, sentences: Sequence[SentenceLike], language: str, *, max_chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    ) -> list[Claim]:
        """The summary points, decisions and action items of a transcript, in time order, each
        with the times of the sentences it cites. ``language`` (ISO 639-1) is the notes' language."""
        if not sentences:
            return []
        started = time.perf_counter()
        chunks = self.chunks(sentences, language, max_chunk_tokens=max_chunk_tokens)
        claims: list[Claim] = []
        for chunk in chunks:
            claims += parse_notes(self.answer(chunk, language), chunk.sentences)
        merged = merge_claims(claims)
        log.debug(
            "notes: %d sentences, %d chunks, %d claims (%d kept) in %.1f s",
            len(sentences),
            len(chunks),
            len(claims),
            len(merged),
            time.perf_counter() - started,
        )
        return merged

    def close(self) -> None:
        """Releases the model. Idempotent."""
        self._generator = None
