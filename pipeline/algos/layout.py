"""Laying text out on a small display without jumps.

Text is wrapped greedily into lines of at most ``chars_per_line`` characters, and the display
shows the last ``lines`` of them. Greedy wrapping of a growing text never changes a line that
is already full, so committed lines stay exactly where they are; when the text outgrows the
display it scrolls by whole lines, never by words.
"""

from __future__ import annotations


def wrap(text: str, chars_per_line: int) -> list[str]:
    """Greedy word wrap; a word longer than a line is cut into line-sized pieces."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > chars_per_line:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:chars_per_line])
            word = word[chars_per_line:]
        if not word:
            continue
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= chars_per_line:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def display_lines(committed: str, tentative: str, chars_per_line: int, lines: int) -> tuple[str, ...]:
    """The display's content: the last ``lines`` wrapped lines of committed then tentative text."""
    wrapped = wrap(f"{committed} {tentative}".strip(), chars_per_line)
    return tuple(wrapped[-lines:])


def committed_chars(committed: str, tentative: str, chars_per_line: int, lines: int) -> tuple[int, ...]:
    """How many characters of each line of :func:`display_lines` are committed text (never
    retracted), so a display can dim the rest without laying the text out again. Greedy wrapping
    of the committed text alone gives the same lines as the whole text's, but the last, which the
    whole text's line at its place begins with (wrapping a longer text only adds words to it)."""
    whole = wrap(f"{committed} {tentative}".strip(), chars_per_line)
    counts = [len(line) for line in wrap(committed, chars_per_line)]
    counts += [0] * (len(whole) - len(counts))
    return tuple(min(count, len(line)) for count, line in zip(counts[-lines:], whole[-lines:], strict=True))
