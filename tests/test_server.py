"""``livesub serve``: a real server on loopback and real WebSocket clients.

The fast tests run whole sessions on the fakes of the session tests (a scripted recogniser,
scripted voice detectors), so they need no model: the audio's samples hold their own stream time
(scaled into PCM16's range), which the scripted recogniser and detectors read back. The one
integration test streams a real recording to the real Whisper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from pipeline import cli
from pipeline.backends.whisper import Hypothesis, WhisperDecoder
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError
from pipeline.events import SAMPLE_RATE, AudioChunk, Subtitle, Transcript
from pipeline.inputs.audio import read_all
from pipeline.inputs.network import NetworkSource
from pipeline.runner import Emission
from pipeline.server import AudioPace, DisplayHub, ProtocolError, Server, parse_start
from pipeline.session import Detectors

from .conftest import FIXTURES, reference
from .test_session import DURATION_S, SPEECH, ScriptedDetectors
from .test_streaming import ScriptedDecoder

#: Samples hold their stream time divided by this, to fit PCM16's [-1, 1) for the whole stream.
TIME_SCALE = 16.0
FULL_TEXT = "The quick brown fox jumps. Over the lazy dog. Then it slept."
TOKEN = "a-token-long-enough-for-tests"
#: Guards against a hang only: every test takes well under a second when nothing is wrong.
TIMEOUT_S = 30.0


class PcmTimedDecoder(ScriptedDecoder):
    """The scripted recogniser, reading the stream times scaled into PCM16's range."""

    def decode_utterance(self, audio: np.ndarray, **settings: Any) -> Hypothesis:
        return super().decode_utterance(audio * np.float32(TIME_SCALE), **settings)


def _detectors(config: Config) -> Detectors:
    """Each session's own scripted detectors (they count the frames they are given)."""
    scripted = ScriptedDetectors(config.vad.frame_ms)
    return Detectors(scripted.is_speech, lambda audio: scripted.speech_spans(audio * TIME_SCALE))


def _config(output: dict[str, Any] | None = None, **server: Any) -> Config:
    streaming = {"first_decode_s": 0.5, "commit_margin_s": 0.3, "agree_gap_s": 0.5}
    settings = {"port": 0, "max_speed": 1000.0} | server  # the fakes stream far faster than real time
    return load_config(
        [], {"asr": {"language": "en"}, "streaming": streaming, "server": settings, "output": output or {}}
    )


def _pcm(start_s: float, end_s: float, rate: int = SAMPLE_RATE, channels: int = 1) -> bytes:
    """Audio whose every sample is its own stream time (scaled), as PCM16 at ``rate``."""
    times = np.arange(round(start_s * rate), round(end_s * rate)) / rate
    samples = np.round(times / TIME_SCALE * 32768).astype("<i2")
    return np.repeat(samples[:, None], channels, axis=1).tobytes()


def _run(
    body: Callable[[Server], Awaitable[None]],
    *,
    token: str | None = None,
    decoder: PcmTimedDecoder | None = None,
    output: dict[str, Any] | None = None,
    **settings: Any,
) -> Server:
    """Runs ``body`` against a server on fakes, started on a free loopback port."""
    decoder = decoder or PcmTimedDecoder(script=SPEECH)
    server = Server(_config(output, **settings), decoder=decoder, detectors=_detectors, token=token)

    async def main() -> None:
        async with server:
            async with asyncio.timeout(TIMEOUT_S):
                await body(server)

    asyncio.run(main())
    assert not server.counts["internal_errors"]  # nothing went wrong inside the server
    return server


async def _start(server: Server, **fields: Any) -> tuple[ClientConnection, dict[str, Any]]:
    """A session's client after its start message, and the server's first answer."""
    client = await connect(f"{server.url}/session")
    await client.send(json.dumps({"type": "start", "rate": SAMPLE_RATE} | fields))
    return client, json.loads(await client.recv())


async def _stream(
    client: ClientConnection,
    start_s: float = 0.0,
    end_s: float = DURATION_S,
    rate: int = SAMPLE_RATE,
    channels: int = 1,
) -> None:
    """The audio in 100 ms messages, as fast as the connection takes them."""
    step = 0.1
    for at in np.arange(start_s, end_s - 1e-9, step):
        await client.send(_pcm(at, min(at + step, end_s), rate, channels))


async def _until_closed(connection: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes, and its close code."""
    records = []
    try:
        while True:
            records.append(json.loads(await connection.recv()))
    except ConnectionClosed as e:
        return records, e.rcvd.code if e.rcvd is not None else None


async def _whole_session(server: Server, **fields: Any) -> tuple[list[dict[str, Any]], int | None]:
    client, ready = await _start(server, **fields)
    assert ready["type"] == "ready", ready
    await _stream(client)
    await client.send(json.dumps({"type": "stop"}))
    return await _until_closed(client)


def _finals(records: list[dict[str, Any]]) -> list[str]:
    return [r["committed"] for r in records if r["type"] == "transcript" and r["final"]]


async def _still_serving(server: Server) -> None:
    """A session with no audio: ready, then its summary and a normal close (once the session
    before has drained: until then it holds the session slot)."""
    while server.live_sessions:
        await asyncio.sleep(0.01)
    client, ready = await _start(server)
    assert ready["type"] == "ready"
    await client.send(json.dumps({"type": "stop"}))
    records, code = await _until_closed(client)
    assert code == 1000 and records[-1]["type"] == "session" and records[-1]["utterances"] == 0


# -- whole sessions -------------------------------------------------------------------------------


def test_a_session_gets_every_event_then_its_summary_and_a_normal_close() -> None:
    async def body(server: Server) -> None:
        records, code = await _whole_session(server)
        assert code == 1000
        assert " ".join(_finals(records)) == FULL_TEXT
        assert {r["type"] for r in records} == {"transcript", "subtitle", "session"}
        for record in records[:-1]:  # the records of `livesub live --events`
            assert {"utterance", "start", "end", "final", "emitted", "stream"} <= set(record)
        summary = records[-1]
        assert summary["type"] == "session" and summary["audio_s"] == pytest.approx(DURATION_S)
        assert (summary["utterances"], summary["overflows"], summary["lost"]) == (len(_finals(records)), 0, None)

    server = _run(body)
    assert server.counts["sessions"] == 1 and server.live_sessions == 0


def test_audio_at_another_rate_on_two_channels_is_resampled() -> None:
    async def body(server: Server) -> None:
        client, ready = await _start(server, channels=2, rate=48_000)
        assert ready["type"] == "ready"
        await _stream(client, rate=48_000, channels=2)
        await client.send(json.dumps({"type": "stop"}))
        records, code = await _until_closed(client)
        assert code == 1000 and " ".join(_finals(records)) == FULL_TEXT
        assert records[-1]["audio_s"] == pytest.approx(DURATION_S, abs=0.01)

    _run(body)


def test_the_start_message_sets_the_session_display() -> None:
    async def body(server: Server) -> None:
        records, _ = await _whole_session(server, display={"chars_per_line": 10, "lines": 3}, vocabulary=["fox"])
        subtitles = [r for r in records if r["type"] == "subtitle"]
        assert subtitles and all(
            len(r["lines"]) <= 3 and all(len(line) <= 10 for line in r["lines"]) for r in subtitles
        )
        assert any(len(r["lines"]) == 3 for r in subtitles)

    _run(body)


def test_a_labelled_sessions_events_all_carry_its_speaker() -> None:
    async def body(server: Server) -> None:
        records, code = await _whole_session(server, speaker="wearer")
        assert code == 1000 and " ".join(_finals(records)) == FULL_TEXT
        events = [r for r in records if r["type"] in ("transcript", "subtitle")]
        assert {r["type"] for r in events} == {"transcript", "subtitle"}
        assert all(r["speaker"] == "wearer" for r in events)
        unlabelled, _ = await _whole_session(server)
        assert all(r["speaker"] is None for r in unlabelled if r["type"] in ("transcript", "subtitle"))

    _run(body)


def test_a_second_session_is_refused_at_once_while_the_first_goes_on() -> None:
    async def body(server: Server) -> None:
        first, ready = await _start(server)
        assert ready["type"] == "ready"
        await _stream(first, 0.0, 3.0)
        second, refusal = await _start(server)
        assert refusal["type"] == "error" and "busy" in refusal["message"]
        assert (await _until_closed(second))[1] == 1013
        await _stream(first, 3.0)
        await first.send(json.dumps({"type": "stop"}))
        records, code = await _until_closed(first)
        assert code == 1000 and " ".join(_finals(records)) == FULL_TEXT

    server = _run(body)
    assert server.counts["sessions"] == 1 and server.counts["refused_try_again_later"] == 1


def test_a_client_that_vanishes_mid_utterance_ends_its_session_cleanly() -> None:
    async def body(server: Server) -> None:
        client, _ = await _start(server)
        await _stream(client, 0.0, 2.5)  # inside the first sentence
        await asyncio.sleep(0.1)
        client.transport.abort()  # gone without a close
        while server.live_sessions:
            await asyncio.sleep(0.01)
        records, code = await _whole_session(server)
        assert code == 1000 and " ".join(_finals(records)) == FULL_TEXT

    server = _run(body)
    assert server.counts["sessions"] == 2


def test_a_vanished_clients_transcript_is_saved_when_the_server_saves_transcripts(tmp_path: Path) -> None:
    async def body(server: Server) -> None:
        client, _ = await _start(server)
        await _stream(client, 0.0, 6.0)  # the first sentences, then gone mid-utterance
        await asyncio.sleep(0.1)
        client.transport.abort()
        while server.live_sessions:
            await asyncio.sleep(0.01)

    _run(body, output={"live_dir": str(tmp_path)})
    saved = list(tmp_path.glob("session-*.json"))
    assert len(saved) == 1
    segments = json.loads(saved[0].read_text())["segments"]
    assert segments and "The quick brown fox jumps." in " ".join(s["text"] for s in segments)


def test_saved_subtitles_keep_to_the_configured_cue_length(tmp_path: Path) -> None:
    finals: list[str] = []

    async def body(server: Server) -> None:
        records, _ = await _whole_session(server)
        finals.extend(_finals(records))

    _run(body, output={"live_dir": str(tmp_path), "max_cue_chars": 12})
    [srt] = tmp_path.glob("session-*.srt")
    blocks = [b.splitlines() for b in srt.read_text(encoding="utf-8").strip().split("\n\n")]
    texts = [" ".join(lines[2:]) for lines in blocks]
    assert finals and len(texts) > len(finals)  # sentences split into several cues
    assert all(len(text) <= 12 for text in texts)


def test_an_idle_session_ends_with_its_finals_and_summary() -> None:
    async def body(server: Server) -> None:
        client, _ = await _start(server)
        await _stream(client, 0.0, 2.0)  # then nothing
        records, code = await _until_closed(client)
        assert code == 1001
        assert len(_finals(records)) == 1  # the open utterance was finalised
        summary, error = records[-2:]
        assert summary["type"] == "session" and summary["lost"] == "no audio for 0.3 s"
        assert error["type"] == "error" and "no audio" in error["message"]

    _run(body, idle_timeout_s=0.3)


class FailingDecoder(PcmTimedDecoder):
    def decode_utterance(self, audio: np.ndarray, **settings: Any) -> Hypothesis:
        raise RuntimeError("the model broke")


def test_a_failing_session_gets_an_error_and_the_server_serves_on() -> None:
    async def body(server: Server) -> None:
        client, _ = await _start(server)
        with contextlib.suppress(ConnectionClosed):
            await _stream(client)
        records, code = await _until_closed(client)
        assert code == 1011 and "the session failed: stage 'asr' failed" in records[-1]["message"]
        while server.live_sessions:
            await asyncio.sleep(0.01)
        client, ready = await _start(server)  # the next one is served
        assert ready["type"] == "ready"
        await client.close()

    server = _run(body, decoder=FailingDecoder(script=SPEECH))
    assert server.counts["failed"] == 1


def test_logs_never_hold_the_transcript(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # what `livesub -v` shows

    async def body(server: Server) -> None:
        records, _ = await _whole_session(server)
        assert _finals(records)

    _run(body)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "session" in logged and "started" in logged  # it does log, ids and counts
    heard = {word.strip(".").lower() for word, _, _ in SPEECH} - {"the", "it"}
    assert heard.isdisjoint(re.findall(r"[a-z]+", logged.lower()))


def test_frames_are_never_logged_even_where_the_logging_is_set_to_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # an application embedding the server may log everything

    async def body(server: Server) -> None:
        records, _ = await _whole_session(server)
        assert _finals(records)

    _run(body)
    served = [r.getMessage() for r in caplog.records if r.name.startswith("pipeline.server")]
    assert "connection open" in served  # websockets' own connection records do come through
    # websockets writes a frame as "< TEXT '...'" or "> BINARY ...": its content, the transcript
    assert not [m for m in served if m.startswith(("< TEXT", "> TEXT", "< BINARY", "> BINARY"))]


# -- displays -------------------------------------------------------------------------------------


def test_a_display_gets_only_its_sessions_subtitles_and_every_final() -> None:
    async def body(server: Server) -> None:
        client, ready = await _start(server)
        other, _ = await _start(server, display={"chars_per_line": 12})  # laid out otherwise
        display = await connect(f"{server.url}/display?session={ready['session']}")
        await display.send(json.dumps({"type": "display"}))
        assert json.loads(await display.recv()) == {"type": "ready", "session": ready["session"]}
        await asyncio.gather(_stream(client), _stream(other))
        for connection in (client, other):
            await connection.send(json.dumps({"type": "stop"}))
        (records, code), (others, _), (shown, display_code) = await asyncio.gather(
            _until_closed(client), _until_closed(other), _until_closed(display)
        )
        assert code == display_code == 1000
        assert shown and all(r["type"] == "subtitle" for r in shown)
        client_finals = [r["lines"] for r in records if r["type"] == "subtitle" and r["final"]]
        assert [r["lines"] for r in shown if r["final"]] == client_finals
        # Every word reached a final (how many finals it took depends on when decodes fell, since
        # this session runs live, faster than real time: 2 or 3 sentence ends).
        assert " ".join(" ".join(lines) for lines in client_finals).split() == FULL_TEXT.split()
        other_finals = [r["lines"] for r in others if r["type"] == "subtitle" and r["final"]]
        assert not any(lines in client_finals for lines in other_finals)

    _run(body, max_sessions=2)


def test_a_display_of_no_running_session_is_refused() -> None:
    async def body(server: Server) -> None:
        display = await connect(f"{server.url}/display?session=0123456789abcdef")
        await display.send(json.dumps({"type": "display"}))
        records, code = await _until_closed(display)
        assert code == 1008 and records[0]["type"] == "error" and "no such session" in records[0]["message"]
        await _still_serving(server)

    _run(body)


def test_a_display_hub_keeps_the_newest_partial_and_every_final_for_each_display() -> None:
    def subtitle(utterance: int, text: str, final: bool = False) -> Emission:
        return Emission(Subtitle(utterance, (text,), 0.0, 1.0, final), 0.0, 0.0)

    async def main() -> None:
        hub = DisplayHub(max_lag_s=30.0)
        queue = hub.subscribe()
        for emission in (subtitle(0, "a"), subtitle(0, "a b"), subtitle(0, "a b c", final=True), subtitle(1, "d")):
            hub.write(emission)
        hub.write(Emission(Transcript(1, "d", "", 0.0, 1.0, "en"), 0.0, 0.0))  # not for a display
        late = hub.subscribe()  # gets what the display shows now
        hub.close()
        taken = [await queue.get() for _ in range(4)]
        assert [e.event.lines for e in taken[:3] if isinstance(e, Emission)] == [("a b",), ("a b c",), ("d",)]
        assert isinstance(taken[3], Emission) and not isinstance(taken[3].event, Subtitle)  # the end
        first = await late.get()
        assert isinstance(first, Emission) and first.event.lines == ("d",)

    asyncio.run(main())


# -- security and robustness ----------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_refused_and_the_right_one_admitted() -> None:
    async def body(server: Server) -> None:
        for token in ({}, {"token": "not-the-token"}, {"token": 12}):
            client, answer = await _start(server, **token)
            assert answer["type"] == "error" and "token" in answer["message"]
            assert (await _until_closed(client))[1] == 1008
        display = await connect(f"{server.url}/display?session=x")
        await display.send(json.dumps({"type": "display", "token": "wrong"}))
        records, code = await _until_closed(display)
        assert code == 1008 and "token" in records[0]["message"]
        records, code = await _whole_session(server, token=TOKEN)
        assert code == 1000 and " ".join(_finals(records)) == FULL_TEXT

    server = _run(body, token=TOKEN)
    assert server.counts["bad_token"] == 4


def test_browsers_from_other_origins_are_refused() -> None:
    async def body(server: Server) -> None:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{server.url}/session", origin=Origin("https://evil.example"))
        assert refused.value.response.status_code == 403
        for origin in ("http://localhost:5173", "https://127.0.0.1", "https://glasses.example:8443"):
            client = await connect(f"{server.url}/session", origin=Origin(origin))
            await client.close()
        with pytest.raises(InvalidStatus) as unknown:
            await connect(f"{server.url}/elsewhere")
        assert unknown.value.response.status_code == 404
        await _still_serving(server)

    _run(body, origins=["https://glasses.example:8443"])


@pytest.mark.parametrize(
    ("first", "then", "code", "message"),
    [
        ("start", b"\x00" * 3, 1003, "whole frames"),
        ("start", "hello{", 1003, "JSON object"),
        ("start", '{"type": "dance"}', 1003, "unknown message type 'dance'"),
        ("start", '["stop"]', 1003, "JSON object"),
        ('{"type": "start", "display": ' + "[" * 5000 + "]" * 5000 + "}", None, 1003, "JSON object"),
        ("start", b"\x00" * 70_000, 1009, None),
        (b"\x00\x00", None, 1003, "first message must be JSON"),
        ('{"type": "start"}', None, 1008, "'rate' must be"),
        ('{"type": "start", "rate": 16000, "rats": 1}', None, 1008, "unknown field 'rats'"),
        ('{"type": "start", "rate": 16000, "display": {"lines": 0}}', None, 1008, "display.lines must be 1 to 20"),
        ('{"type": "start", "rate": 16000, "language": "xx"}', None, 1008, "not 'xx'"),  # the fake knows only en
        ('{"type": "start", "rate": 16000, "vocabulary": "fox"}', None, 1008, "'vocabulary' must be a list"),
        ('{"type": "display"}', None, 1003, "must be of type 'start'"),
    ],
)
def test_a_bad_message_gets_an_error_and_a_close_and_the_server_serves_on(
    first: str | bytes, then: str | bytes | None, code: int, message: str | None
) -> None:
    async def body(server: Server) -> None:
        client = await connect(f"{server.url}/session", max_size=None)
        await client.send(json.dumps({"type": "start", "rate": SAMPLE_RATE}) if first == "start" else first)
        if then is not None:
            assert json.loads(await client.recv())["type"] == "ready"
            await client.send(then)
        records, closed = await _until_closed(client)
        assert closed == code
        if message is not None:
            assert records[-1]["type"] == "error" and message in records[-1]["message"]
        await _still_serving(server)

    _run(body, max_frame_bytes=65_536)


def test_audio_sent_much_faster_than_real_time_is_refused() -> None:
    async def body(server: Server) -> None:
        client, _ = await _start(server)
        with contextlib.suppress(ConnectionClosed):  # the server may close while the client still sends
            await _stream(client, 0.0, 120.0)
        records, code = await _until_closed(client)
        assert code == 1008 and records[-1]["type"] == "error" and "faster than 2 times" in records[-1]["message"]
        await _still_serving(server)

    _run(body, max_speed=2.0)


def test_connections_over_the_limit_are_refused_with_503() -> None:
    async def body(server: Server) -> None:
        held = [await connect(f"{server.url}/session") for _ in range(2)]
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{server.url}/session")
        assert refused.value.response.status_code == 503
        for connection in held:
            await connection.close()
        while True:  # the server notices the closes as their handlers end
            try:
                await _still_serving(server)
                break
            except InvalidStatus:
                await asyncio.sleep(0.01)

    server = _run(body, max_connections=2)
    assert server.counts["refused_connections"] >= 1


def test_tls(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    from pipeline.server import tls_context

    server = Server(_config(), decoder=PcmTimedDecoder(script=SPEECH), ssl_context=tls_context(cert, key))
    trust = ssl.create_default_context(cafile=str(cert))

    async def main() -> None:
        async with server:
            assert server.url.startswith("wss://")
            async with connect(f"{server.url}/session", ssl=trust) as client:
                await client.send(json.dumps({"type": "start", "rate": SAMPLE_RATE}))
                assert json.loads(await client.recv())["type"] == "ready"
                await client.send(json.dumps({"type": "stop"}))
                assert (await _until_closed(client))[1] == 1000

    asyncio.run(main())


def test_serving_beyond_loopback_needs_a_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--token-file" in error
    short = tmp_path / "token"
    short.write_text("secret\n")
    assert cli.main(["serve", "--host", "0.0.0.0", "--token-file", str(short)]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
    assert cli.main(["serve", "--tls-cert", str(short)]) == 2
    assert "--tls-key" in capsys.readouterr().err
    assert cli.main(["serve", "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(short)]) == 2
    assert f"TLS: no such file {tmp_path / 'no.pem'}" in capsys.readouterr().err
    assert cli.main(["serve", "--max-sessions", "0"]) == 2  # checked as the configuration's own
    assert "server.max_sessions must be 1 to 64" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--token-file"):  # the server itself insists too
        Server(_config(host="0.0.0.0"), decoder=PcmTimedDecoder())


# -- pure parts -----------------------------------------------------------------------------------


def test_the_start_message_maps_onto_the_configuration() -> None:
    start = parse_start(
        {
            "type": "start",
            "token": "t",
            "rate": 48_000,
            "channels": 2,
            "language": "es",
            "target": "en",
            "translator": "auto",
            "display": {"chars_per_line": 40, "lines": 3},
            "vocabulary": ["Kowloon", "Comité Olímpico = Olympic Committee"],
            "speaker": "wearer",
        }
    )
    assert (start.rate, start.channels, start.speaker) == (48_000, 2, "wearer")
    assert start.settings == {
        "asr": {"language": "es", "vocabulary": ["Kowloon", "Comité Olímpico = Olympic Committee"]},
        "translation": {"target": "en", "backend": "auto"},
        "display": {"chars_per_line": 40, "lines": 3},
    }
    assert parse_start({"type": "start", "rate": 16_000}).settings == {}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"rate": "16000"}, "'rate' must be"),
        ({"rate": True}, "'rate' must be"),
        ({"rate": 4000}, "'rate' must be"),
        ({"rate": 16_000, "channels": 9}, "'channels' must be"),
        ({"rate": 16_000, "language": 3}, "'language' must be a string"),
        ({"rate": 16_000, "display": {"font": "big"}}, "'display' must be an object"),
        ({"rate": 16_000, "vocabulary": [1]}, "'vocabulary' must be a list of strings"),
        ({"rate": 16_000, "model": "/etc/passwd"}, "unknown field 'model'"),
        ({"rate": 16_000, "speaker": "<b>wearer</b>"}, "'speaker' must be a label"),
        ({"rate": 16_000, "speaker": "w" * 33}, "'speaker' must be a label"),
        ({"rate": 16_000, "speaker": ["wearer"]}, "'speaker' must be a label"),
    ],
)
def test_a_bad_start_message_names_what_is_wrong(message: dict[str, Any], error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        parse_start({"type": "start", **message})


def test_the_pace_allows_real_time_and_bursts_but_not_sustained_speed() -> None:
    pace = AudioPace(max_speed=4.0, burst_s=10.0, now=0.0)
    assert all(pace.take(0.1, now=i * 0.1) for i in range(1000))  # real time, for 100 s
    fast = AudioPace(max_speed=4.0, burst_s=10.0, now=0.0)
    taken = [fast.take(0.1, now=i * 0.02) for i in range(1000)]  # 5x real time
    assert all(taken[:100]) and not all(taken)  # the burst passes, the rest does not
    big = AudioPace(max_speed=1.0, burst_s=2.0, now=0.0)
    assert big.take(5.0, now=0.0) and not big.take(0.1, now=1.0) and big.take(0.1, now=3.1)


def test_a_network_source_counts_overflows_and_resamples() -> None:
    async def main() -> None:
        source = NetworkSource(SAMPLE_RATE, 1, max_queued_s=1.0)
        assert all(source.push(_pcm(i * 0.1, (i + 1) * 0.1)) for i in range(10))
        assert not source.push(_pcm(1.0, 1.1))  # the queue holds 1 s
        with pytest.raises(ValueError):
            source.push(b"\x00")
        source.stop()
        assert not source.push(_pcm(1.1, 1.2))
        chunks = [chunk async for chunk in source.chunks()]
        assert source.stats() == {"overflows": 1, "lost": None}
        assert sum(c.frames for c in chunks) == SAMPLE_RATE and chunks[1].start == 1600
        times = np.concatenate([c.samples[:, 0] for c in chunks]) * TIME_SCALE
        np.testing.assert_allclose(times, np.arange(SAMPLE_RATE) / SAMPLE_RATE, atol=1e-3)

        stereo = NetworkSource(44_100, 2, idle_timeout_s=0.05)
        stereo.push(_pcm(0.0, 1.0, 44_100, 2))
        out: list[AudioChunk] = [chunk async for chunk in stereo.chunks()]  # ends when idle
        assert sum(c.frames for c in out) == SAMPLE_RATE and out[0].channels == 2
        assert stereo.lost == "no audio for 0.05 s"

    asyncio.run(main())


# -- the real recogniser --------------------------------------------------------------------------


@pytest.mark.integration
def test_a_recording_streamed_through_the_server_is_recognised(whisper_base: WhisperDecoder) -> None:
    audio = read_all(FIXTURES / "fleurs-en-003.ogg")
    pcm = (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
    config = load_config([], {"server": {"port": 0}})
    server = Server(config, decoder=whisper_base)

    async def main() -> list[dict[str, Any]]:
        async with server:
            client, ready = await _start(server, language="en")
            assert ready["type"] == "ready"
            block = SAMPLE_RATE // 10 * 2  # 100 ms
            for at in range(0, len(pcm), block):
                await client.send(pcm[at : at + block])
            await client.send(json.dumps({"type": "stop"}))
            async with asyncio.timeout(120):
                records, code = await _until_closed(client)
            assert code == 1000
            return records

    records = asyncio.run(main())
    assert records[-1]["type"] == "session" and records[-1]["overflows"] == 0
    from pipeline.algos.wer import wer

    assert wer(reference("fleurs-en-003.ogg"), " ".join(_finals(records))) <= 0.25
