"""The HUD page (``pipeline/hud/``), served by ``livesub serve``: its files over plain HTTP, and the
page itself in a real browser against a live server on the scripted recogniser of the server
tests.

The browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by ``make setup``)
through Playwright, headless; without either they are skipped, saying what is missing. The page
logs every render (``window.hudLog``, read back from the page after each change), which the tests
hold to the events the session's own client received.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.algos.layout import committed_chars, display_lines, wrap
from pipeline.server import Server

from .test_server import TOKEN, _pcm, _run, _start, _until_closed
from .test_session import DURATION_S

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: Flags for a browser in a container with no display, GPU, network or user: nothing but the page.
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Whether the page shows committed text and tentative text at once now.
DIMMED_SHOWN = """() => {
    const last = window.hudLog[window.hudLog.length - 1];
    return Boolean(last) && last.committed.some((count, i) => 0 < count && count < last.lines[i].length);
}"""


async def _http(server: Server, path: str, *headers: str) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP GET (the path sent exactly as given, as a client bent on traversal would)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    extra = "".join(f"{header}\r\n" for header in headers)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{extra}\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {name.lower(): value for name, value in fields.items()}, body


# -- the page's files, without a browser ----------------------------------------------------------


def test_the_hud_page_and_its_files_are_served_with_their_types() -> None:
    async def body(server: Server) -> None:
        for path, kind, holds in (
            ("/", "text/html", b'<script src="/hud/hud.js">'),
            ("/hud/", "text/html", b'<main id="lines"'),
            ("/hud/index.html", "text/html", b"<!doctype html>"),
            ("/hud/hud.js", "text/javascript", b"window.hudLog"),
            ("/hud/hud.css", "text/css", b"background: #000000"),
            ("/?session=0123456789abcdef&chars=32", "text/html", b"<!doctype html>"),
        ):
            status, headers, content = await _http(server, path)
            assert status == 200, path
            assert headers["content-type"] == f"{kind}; charset=utf-8"
            assert int(headers["content-length"]) == len(content) and holds in content
            assert headers["x-content-type-options"] == "nosniff"
            assert "script-src 'self'" in headers["content-security-policy"]  # nothing from elsewhere

    _run(body)


@pytest.mark.parametrize(
    "path",
    [
        "/../pipeline/server.py",
        "/hud/../server.py",
        "/hud/../../pyproject.toml",
        "/hud/%2e%2e/server.py",
        "/hud/hud.js/../../server.py",
        "/hud//etc/passwd",
        "/hud/missing.js",
        "/server.py",
        "/index.html",
    ],
)
def test_no_path_reaches_another_file(path: str) -> None:
    async def body(server: Server) -> None:
        status, headers, content = await _http(server, path)
        assert status == 404 and headers["content-type"].startswith("text/plain")
        assert b"import" not in content

    _run(body)


def test_the_session_list_names_the_running_sessions() -> None:
    async def body(server: Server) -> None:
        assert (await _http(server, "/sessions"))[2] == b"[]"
        client, ready = await _start(server)
        status, headers, content = await _http(server, "/sessions")
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(content) == [ready["session"]]
        refused = await _http(server, "/sessions", "Origin: https://evil.example")
        assert refused[0] == 403
        await client.send(json.dumps({"type": "stop"}))
        await _until_closed(client)
        while server.live_sessions:
            await asyncio.sleep(0.01)
        assert (await _http(server, "/sessions"))[2] == b"[]"

    _run(body)


def test_the_session_list_needs_the_token_when_the_server_has_one() -> None:
    async def body(server: Server) -> None:
        assert (await _http(server, "/sessions"))[0] == 401
        assert (await _http(server, "/sessions", "Authorization: Bearer not-the-token"))[0] == 401
        status, _, content = await _http(server, "/sessions", f"Authorization: Bearer {TOKEN}")
        assert status == 200 and content == b"[]"
        assert (await _http(server, "/"))[0] == 200  # the page itself holds nothing secret

    server = _run(body, token=TOKEN)
    assert server.counts["bad_token"] == 2


# -- committed characters per line (what lets the page dim the rest) ------------------------------


@pytest.mark.parametrize("width", [8, 12, 32])
def test_committed_characters_are_a_prefix_of_each_line_that_never_shrinks(width: int) -> None:
    words = "The quick brown fox jumps over the extraordinarily lazy dog and then it slept".split()
    for lines in (1, 2, 3):
        for commit in range(len(words) + 1):
            for shown in range(commit, len(words) + 1):
                committed, tentative = " ".join(words[:commit]), " ".join(words[commit:shown])
                laid_out = display_lines(committed, tentative, width, lines)
                counts = committed_chars(committed, tentative, width, lines)
                assert len(counts) == len(laid_out)
                wrapped = wrap(f"{committed} {tentative}".strip(), width)
                # The committed text is exactly the committed parts of the lines, read in order
                # (those scrolled away included; a word longer than a line is cut without a space).
                full_counts = committed_chars(committed, tentative, width, len(wrapped) or 1)
                parts = [line[:count] for line, count in zip(wrapped, full_counts, strict=True)]
                assert "".join(parts).replace(" ", "") == committed.replace(" ", "")
                # Committed lines come first: full ones, at most one part-committed, then none.
                partial = [i for i, line in enumerate(wrapped) if full_counts[i] < len(line)]
                assert all(full_counts[i] == 0 for i in partial[1:])
                assert counts == full_counts[len(full_counts) - len(counts) :]
    assert committed_chars("", "", 32, 2) == ()


# -- the page in a real browser -------------------------------------------------------------------


def _chromium() -> str:
    """Debian's Chromium, or a skip saying what is missing (Playwright's own browser downloads
    are not used: the set-up installs the distribution's, like its other Debian packages)."""
    pytest.importorskip("playwright.async_api", reason="needs Playwright: .venv/bin/pip install -e '.[dev]'")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("needs Debian's chromium (make setup, or apt-get install chromium)")
    return found


def _keeps_committed(earlier: dict[str, Any], later: dict[str, Any]) -> bool:
    """Whether ``later``, the next render of the same utterance, shows ``earlier``'s committed
    text unchanged in the same place, or scrolled up by whole lines (the layout scrolls a growing
    text by lines), with at least the earlier's last line still in sight (one render adds less
    than a display of text)."""
    before = list(zip(earlier["lines"], earlier["committed"], strict=True))
    after = list(zip(later["lines"], later["committed"], strict=True))
    for scroll in range(max(1, len(before))):
        kept = True
        for i, (line, count) in enumerate(before):
            if i < scroll or count == 0:
                continue
            if i - scroll >= len(after):
                kept = False
                break
            shown, shown_count = after[i - scroll]
            if shown_count < count or shown[:count] != line[:count]:
                kept = False
                break
        if kept:
            return True
    return False


def test_the_committed_check_sees_text_that_moves_or_changes() -> None:
    earlier = {"lines": ["The quick", "brown fox"], "committed": [9, 5]}
    assert _keeps_committed(earlier, {"lines": ["The quick", "brown fox jumps"], "committed": [9, 9]})
    assert _keeps_committed(earlier, {"lines": ["brown fox", "jumps over"], "committed": [9, 0]})  # scrolled
    assert not _keeps_committed(earlier, {"lines": ["The quick", "brawn fox"], "committed": [9, 5]})
    assert not _keeps_committed(earlier, {"lines": ["The quick", "brown fox"], "committed": [9, 3]})
    assert not _keeps_committed(earlier, {"lines": [" The quick", "brown fox"], "committed": [10, 5]})


async def _stream_in_real_time(client: Any, between: Callable[[], Awaitable[None]] | None = None) -> None:
    """The scripted audio in 100 ms messages, each sent when its audio would have been spoken
    (``between`` runs after each)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    for at in np.arange(0.0, DURATION_S - 1e-9, 0.1):
        await asyncio.sleep(max(0.0, began + at - loop.time()))
        await client.send(_pcm(at, min(at + 0.1, DURATION_S)))
        if between is not None:
            await between()


def _check_renders(log: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """The page's renders against the subtitle events the session's client received."""
    subtitles = [r for r in records if r["type"] == "subtitle"]
    sent = {(r["utterance"], tuple(r["lines"]), tuple(r["committed"]), r["final"]) for r in subtitles}
    assert log, "the page rendered nothing"
    for render in log:  # every state the page showed is an event's lines, exactly
        state = (render["utterance"], tuple(render["lines"]), tuple(render["committed"]), render["final"])
        assert state in sent, render
    finals = [r["lines"] for r in subtitles if r["final"]]
    assert [render["lines"] for render in log if render["final"]] == finals  # every final, in order
    assert log[-1]["final"] and log[-1]["lines"] == finals[-1]  # the page ends on the last final
    for utterance in {render["utterance"] for render in log}:  # committed text never changes or moves
        renders = [render for render in log if render["utterance"] == utterance]
        for earlier, later in itertools.pairwise(renders):
            assert _keeps_committed(earlier, later), (earlier, later)
    assert any(0 < sum(r["committed"]) < sum(map(len, r["lines"])) for r in log)  # steady and dimmed both seen
    # How soon after its event each render came is measured (page clock), not asserted: it depends
    # on how busy the machine is. Every render follows its event's arrival; the delays are kept in
    # tests/artifacts/hud_render_ms.json (the bound is 100 ms).
    delays = [render["t"] - render["received"] for render in log]
    assert all(delay >= 0 for delay in delays)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "hud_render_ms.json").write_text(json.dumps({"renders": len(delays), "max": max(delays)}) + "\n")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("profile", "discover"),
    [
        ({}, True),  # the default display (2 x 32); the page opened first, finding the session itself
        ({"chars_per_line": 12, "lines": 2}, False),  # narrow: sentences wrap and scroll; the id in the URL
    ],
    ids=["default-discovered", "narrow-by-id"],
)
def test_the_hud_in_a_browser_shows_every_subtitle_as_it_arrives(profile: dict[str, int], discover: bool) -> None:
    chromium = _chromium()
    from playwright.async_api import async_playwright

    async def body(server: Server) -> None:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 960, "height": 240})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                size = f"chars={profile.get('chars_per_line', 32)}&lines={profile.get('lines', 2)}"
                home = f"http://127.0.0.1:{server.port}"
                if discover:  # no session yet: the page waits for one and subscribes by itself
                    await page.goto(f"{home}/?{size}")
                    await page.wait_for_function("() => window.hudStatus === 'waiting'")
                client, ready = await _start(server, display=profile)
                assert ready["type"] == "ready"
                if not discover:
                    await page.goto(f"{home}/?session={ready['session']}&{size}")
                await page.wait_for_function("() => window.hudStatus === 'live'", timeout=10_000)
                assert await page.evaluate("window.hudSessions") == [ready["session"]]
                shots: list[Path] = []

                async def screenshot() -> None:
                    """The HUD the first time it shows both committed and tentative text."""
                    if discover and not shots and await page.evaluate(DIMMED_SHOWN):
                        ARTIFACTS.mkdir(exist_ok=True)
                        shots.append(ARTIFACTS / "hud.png")
                        await page.screenshot(path=str(shots[0]))

                await _stream_in_real_time(client, screenshot)
                await client.send(json.dumps({"type": "stop"}))
                records, code = await _until_closed(client)
                assert code == 1000
                await page.wait_for_function("() => window.hudStatus !== 'live'")  # its display was closed
                log = await page.evaluate("window.hudLog")
                looks = await page.evaluate(
                    """() => ({
                        background: getComputedStyle(document.body).backgroundColor,
                        lines: document.querySelectorAll('.line').length,
                        heights: [...document.querySelectorAll('.line')].map((box) => box.offsetHeight),
                        font: getComputedStyle(document.getElementById('lines')).fontFamily,
                    })"""
                )
                assert not errors, errors
            finally:
                await browser.close()
        _check_renders(log, records)
        assert looks["background"] == "rgb(0, 0, 0)" and "mono" in looks["font"].lower()
        assert looks["lines"] == profile.get("lines", 2) and len(set(looks["heights"])) == 1

    _run(body)
