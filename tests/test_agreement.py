from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.algos.agreement import LocalAgreement, cut_repetition, cut_unheard
from pipeline.events import Word


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    return [Word(t, start + i * step, start + i * step + 0.4) for i, t in enumerate(text.split())]


def texts(ws: list[Word]) -> str:
    return " ".join(w.text for w in ws)


def test_words_are_committed_when_two_hypotheses_agree() -> None:
    agreement = LocalAgreement()
    assert agreement.update(words("and so my")) == []
    assert texts(agreement.tentative) == "and so my"
    assert texts(agreement.update(words("And so, my fellow"))) == "And so, my"
    assert texts(agreement.tentative) == "fellow"
    assert texts(agreement.update(words("and so my fellow Americans ask"))) == "fellow"
    assert texts(agreement.committed) == "And so, my fellow"
    assert texts(agreement.tentative) == "Americans ask"


def test_disagreement_commits_nothing_new() -> None:
    agreement = LocalAgreement()
    agreement.update(words("the cat sat"))
    agreement.update(words("the cat sat on"))
    assert agreement.update(words("the cat sat in the")) == []
    assert texts(agreement.committed) == "the cat sat"
    assert texts(agreement.tentative) == "in the"


def test_reworded_committed_part_is_aligned_by_time() -> None:
    agreement = LocalAgreement()
    agreement.update(words("I scream for"))
    agreement.update(words("I scream for ice"))
    # Whisper now hears "Ice cream" where "I scream" was committed; the new words are aligned by time.
    hypothesis = [
        Word("Ice", 0.0, 0.4),
        Word("cream", 0.5, 0.9),
        Word("for", 1.0, 1.4),
        Word("ice", 1.5, 1.9),
        Word("cream", 2.0, 2.4),
    ]
    assert texts(agreement.new_words(hypothesis)) == "ice cream"


def test_reworded_start_is_aligned_on_the_last_committed_word() -> None:
    # Conversation, crosstalk: "Okay, I" was committed; the final hypothesis drops "Okay" and
    # stretches "I" over it. By times alone, "thought" (which starts before "I" ended) was lost.
    agreement = LocalAgreement()
    heard = [Word("Okay,", 10.0, 11.2), Word("I", 11.2, 11.3)]
    agreement.update([*heard, Word("thought", 11.3, 11.5)])
    agreement.update([*heard, Word("taught", 11.3, 11.5)])
    assert texts(agreement.committed) == "Okay, I"
    final = [Word("I", 10.0, 10.8), Word("thought,", 10.8, 11.7), Word("you", 11.7, 11.8), Word("know.", 11.8, 12.0)]
    assert texts(agreement.finish(final)) == "thought, you know."
    assert texts(agreement.committed) == "Okay, I thought, you know."


def test_finish_commits_the_rest_and_trim_keeps_alignment() -> None:
    agreement = LocalAgreement()
    agreement.update(words("Hello there. How"))
    agreement.update(words("Hello there. How are"))
    agreement.trim(1.0)  # audio now starts after "there."
    assert texts(agreement.committed) == "Hello there. How"  # "are" is still tentative
    assert texts(agreement.new_words(words("How are you", start=1.0))) == "are you"
    assert texts(agreement.finish(words("How are you today", start=1.0))) == "are you today"
    assert texts(agreement.committed) == "Hello there. How are you today"
    assert agreement.tentative == []


def test_loops_are_cut() -> None:
    assert texts(cut_repetition(words("thank you thank you thank you thank you"))) == "thank you"
    assert texts(cut_repetition(words("no no no no no"))) == "no"
    assert texts(cut_repetition(words("I said no no to that"))) == "I said no no to that"
    # A sentence said twice and begun a third time (noisy French, over a sentence with none of it).
    looped = "Nous sommes tous en train de faire ce qu'il y a."
    assert texts(cut_repetition(words(f"{looped} {looped} Nous sommes"))) == looped
    assert texts(cut_repetition(words("After 1963 the dam was built. After 1963 the dam was built."))) == (
        "After 1963 the dam was built."
    )
    # Four words said twice, and five words said again later, are speech.
    said = "thank you very much, thank you very much for coming"
    assert texts(cut_repetition(words(said))) == said
    later = "ask what your country can do, not what your country can do for you"
    assert texts(cut_repetition(words(later))) == later


def test_words_whisper_put_in_no_time_are_cut() -> None:
    heard = words("em uma declaração.", start=5.76, step=0.34)
    unheard = [Word(t, 6.78, 6.78) for t in ("Em", "uma", "declaração.")]
    assert texts(cut_unheard(heard + unheard)) == "em uma declaração."
    two_short = [Word("a", 40.02, 40.04), Word("nova", 40.04, 40.06), Word("navegada.", 40.06, 41.5)]
    assert texts(cut_unheard(heard + two_short)) == "em uma declaração. a nova navegada."


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=12), min_size=1, max_size=12))
def test_committed_text_only_grows(hypotheses: list[list[str]]) -> None:
    agreement = LocalAgreement()
    seen: list[str] = []
    for hyp in hypotheses:
        agreement.update([Word(t, i * 0.5, i * 0.5 + 0.4) for i, t in enumerate(hyp)])
        current = [w.text for w in agreement.committed]
        assert current[: len(seen)] == seen
        seen = current


def test_agreement_needs_hypotheses_from_audio_far_enough_apart() -> None:
    agreement = LocalAgreement(min_gap_s=1.0)
    # Two decodes 0.3 s apart on the first second agree on an invented word: not enough.
    agreement.update(words("I don't"), audio_end=1.3)
    assert agreement.update(words("I don't know"), audio_end=1.6) == []
    # A decode 1 s later disagrees with the one at 1.3 s: still nothing committed.
    assert agreement.update(words("Many people don't"), audio_end=2.3) == []
    # One more, agreeing with a hypothesis at least 1 s older, commits what both say.
    assert agreement.update(words("Many people don't think"), audio_end=2.6) == []  # 2.3 is too recent
    assert texts(agreement.update(words("Many people don't think about"), audio_end=3.3)) == "Many people don't"


def test_an_echo_of_the_committed_text_is_not_new() -> None:
    agreement = LocalAgreement()
    agreement.update(words("built by the Egyptians in the third century"))
    agreement.update(words("built by the Egyptians in the third century BC"))
    committed = texts(agreement.committed)
    assert committed == "built by the Egyptians in the third century"
    # After a trim, Whisper is given the committed words as its prompt and repeats them, with
    # new times, before the new words.
    agreement.trim(4.0)
    echo = words("built by the Egyptians in the third century BC the great pyramid", start=4.0)
    assert texts(agreement.new_words(echo)) == "BC the great pyramid"


def sure(text: str, probability: float, start: float = 0.0) -> list[Word]:
    return [Word(w.text, w.start, w.end, probability) for w in words(text, start)]


def test_words_whisper_is_sure_of_are_committed_sooner() -> None:
    agreement = LocalAgreement(min_gap_s=4.0, quick_gap_s=1.5, quick_probability=0.9)
    agreement.update(sure("the dam was built", 0.95), audio_end=2.5, quick_until=1.5)
    # 1.5 s later the same words again, as sure: committed up to where the margin allows (the
    # slow rule, needing 4 s between the two decodes, would commit nothing yet).
    committed = agreement.update(sure("the dam was built in", 0.95), audio_end=4.0, quick_until=3.0)
    assert texts(committed) == "the dam was built"
    assert texts(agreement.tentative) == "in"


def test_unsure_words_wait_for_the_slow_rule() -> None:
    agreement = LocalAgreement(min_gap_s=4.0, quick_gap_s=1.5, quick_probability=0.9)
    unsure = sure("the dam was built", 0.95)
    unsure[1] = Word("dam", unsure[1].start, unsure[1].end, 0.5)
    agreement.update(unsure, audio_end=2.5, quick_until=1.5)
    # Unsure of "dam" in both decodes 1.5 s apart: only the words before it are committed.
    assert texts(agreement.update(unsure, audio_end=4.0, quick_until=3.0)) == "the"
    # 4 s after the first decode the slow rule commits what both say, however unsure.
    committed = agreement.update(sure("the dam was built in 1963", 0.95), 6.5, commit_until=3.5, quick_until=5.5)
    assert texts(committed) == "dam was built"
