from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.algos.layout import display_lines, wrap


def test_wrap_fills_lines_greedily() -> None:
    assert wrap("the quick brown fox jumps over the lazy dog", 10) == [
        "the quick",
        "brown fox",
        "jumps over",
        "the lazy",
        "dog",
    ]
    assert wrap("", 10) == []
    assert wrap("supercalifragilistic", 8) == ["supercal", "ifragili", "stic"]


def test_display_shows_the_last_lines() -> None:
    assert display_lines("the quick brown fox", "jumps over the lazy dog", 10, 2) == ("the lazy", "dog")
    assert display_lines("hello", "", 32, 2) == ("hello",)


@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=12), min_size=1, max_size=40), st.integers(8, 40))
def test_committed_full_lines_never_change_as_text_grows(words: list[str], width: int) -> None:
    previous: list[str] = []
    for n in range(1, len(words) + 1):
        lines = wrap(" ".join(words[:n]), width)
        full = previous[:-1]  # every line but the last is full and must stay as it was
        assert lines[: len(full)] == full
        assert all(len(line) <= width for line in lines)
        previous = lines
