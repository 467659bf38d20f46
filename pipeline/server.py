"""``livesub serve``: live sessions over WebSocket. A phone or a glasses companion streams audio
and receives the session's events; a display subscribes to a running session's subtitles.

The protocol (the README's "Serving to a display or a phone" describes it for client authors):

- ``/session``: the first message is JSON text ``{"type": "start", "rate": 16000, ...}`` with the
  session's settings (values, never file paths) and the token when the server has one. The server
  answers ``{"type": "ready", "session": ID}``, then sends every event of the session as JSON text
  (the records of ``livesub live --events``: :func:`pipeline.outputs.view.event_record`). The client
  sends binary messages of PCM16 little-endian interleaved audio, and ``{"type": "stop"}`` to end:
  the open utterance is finalised, every final delivered, then ``{"type": "session", ...}`` and
  close 1000. A start message may label its audio's speaker (``"speaker": "wearer"``): every event
  of the session carries it. That is how the other side of a conversation is served without the
  front-end's labels: the wearer's voice streamed as a second session, translated the other way.
- ``/display?session=ID``: the first message is ``{"type": "display", "token": ...}``; the server
  answers ``ready``, then sends that session's subtitle events only, the newest partial of each
  utterance (a slow display skips partials, never finals), and closes 1000 when the session ends.
- Plain HTTP on the same port: ``GET /`` is the HUD page (``pipeline/hud/``: a display in a
  browser), ``GET /partner`` the same page as the partner's view (a phone held toward the
  partner: large text, the wearer's words only), their files under ``/hud/``, and
  ``GET /sessions`` the running sessions (JSON, oldest first: id, speaker, language, target),
  so a page can find the session to show.
- Anything wrong is answered with ``{"type": "error", "message": ...}`` and a close: 1008 (policy:
  token, settings, too fast), 1003 (a message the protocol has no place for), 1013 (the session
  limit), 1011 (the session failed); a message over ``server.max_frame_bytes`` closes with 1009.
  A connection's failure ends only that connection: the server goes on serving the others.

Why it is built this way:

- The token travels in the first message, not in a header or the URL: a browser's WebSocket API
  cannot set headers, and URLs end up in logs, proxies and browser history. It is compared in
  constant time (``hmac.compare_digest``). Browsers are held to known origins (``origins=`` of
  websockets), so a web page the wearer visits cannot reach a loopback server.
- Whisper is loaded once and shared; the session limit (``server.max_sessions``, 1 on 2 cores)
  refuses a session at once rather than serving every session too slowly. faster-whisper serialises
  concurrent decodes of one model (one CTranslate2 worker), so a higher limit is safe, only slower.
- Each session is built by :func:`pipeline.session.run_live`, the session graph's one assembly
  point, fed by a :class:`~pipeline.inputs.network.NetworkSource`. The client is an ``all``
  branch; displays come and go while the graph's branches are fixed when it starts, so one branch
  (:class:`DisplayHub`) hands subtitles to a ``latest`` queue per display
  (:class:`~pipeline.runner.BranchQueue`, the runner's own policy).
- Transcripts are personal data: logs carry ids, counts and reasons, never text, and websockets'
  own logger is kept above DEBUG (where it would log every frame).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import email.utils
import hmac
import ipaddress
import json
import logging
import re
import secrets
import signal
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server as WebSocketServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Origin

from pipeline.backends.whisper import Decoder, WhisperDecoder, check_languages
from pipeline.config import Config, merge
from pipeline.errors import ConfigError, LivesubError
from pipeline.events import SPEAKER_LABEL, Subtitle, Transcript, Translation
from pipeline.inputs.network import NetworkSource
from pipeline.outputs.transcripts import TranscriptSink
from pipeline.outputs.view import event_record
from pipeline.runner import BranchQueue, Emission, Policy, Sink
from pipeline.session import Detectors, SessionResult, run_live, translation_backend

log = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, and frames carry transcripts: those records are dropped
# whatever the level; the rest follow the root logger's (`-v` shows them).
_websockets_log = logging.getLogger(f"{__name__}.websockets")
_websockets_log.addFilter(lambda record: record.levelno > logging.DEBUG)

SESSION_PATH = "/session"
DISPLAY_PATH = "/display"
SESSIONS_PATH = "/sessions"
#: The HUD page's files (static, no build step), served by name only: a path names one of these
#: or nothing, so no request can reach another file (``/hud/../server.py`` is simply unknown).
HUD_DIR = Path(__file__).parent / "hud"
HUD_FILES = {
    "index.html": "text/html; charset=utf-8",
    "hud.js": "text/javascript; charset=utf-8",
    "hud.css": "text/css; charset=utf-8",
}
HUD_PATHS = {"/": "index.html", "/partner": "index.html", "/hud": "index.html", "/hud/": "index.html"} | {
    f"/hud/{n}": n for n in HUD_FILES
}
#: The page loads its own files only, and talks to this server only.
HUD_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; img-src 'self'"
#: Seconds a connection has to send its first message: until then it holds a connection slot.
HELLO_TIMEOUT_S = 10.0
#: Audio a client may send ahead of ``server.max_speed`` times real time, in seconds: a phone on
#: a stalling network sends what it buffered at once.
BURST_S = 10.0
#: Least audio a message is charged for, in seconds, so that a flood of tiny messages is limited too.
MIN_CHARGE_S = 0.01
#: A token shorter than this is refused: it would guard a server open to the network.
MIN_TOKEN_CHARS = 16
#: The start message's fields; an unknown one is an error naming it (a typo never passes silently).
START_FIELDS = (
    "type",
    "token",
    "rate",
    "channels",
    "language",
    "target",
    "translator",
    "display",
    "vocabulary",
    "speaker",
)
DISPLAY_FIELDS = ("chars_per_line", "lines", "show_source")
#: Browser origins always allowed: pages served from this machine (any port, http or https).
LOOPBACK_ORIGIN = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?")


class ProtocolError(LivesubError):
    """What a client did wrong: sent to it as an error message, then the connection is closed
    with ``code``."""

    def __init__(self, message: str, code: CloseCode = CloseCode.POLICY_VIOLATION) -> None:
        super().__init__(message)
        self.code = code


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_exposure(host: str, token: str | None) -> None:
    """A server reachable from other machines needs a token: anyone on the network could otherwise
    stream audio to it and read every session's subtitles."""
    if not is_loopback(host) and token is None:
        raise ConfigError(f"serving on {host} (beyond this machine) needs --token-file FILE holding a secret token")


def read_token(path: Path) -> str:
    """The token: the file's first line, at least MIN_TOKEN_CHARS characters."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read the token file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the token file {path} is not UTF-8 text") from None
    token = lines[0].strip() if lines else ""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"the token in {path} must be at least {MIN_TOKEN_CHARS} characters "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    return token


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context: a phone's browser opens its microphone only over HTTPS (or on
    localhost), and the token and audio should not cross a network in clear."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for path in (cert, key):  # load_cert_chain's own error does not say which file is missing
        if not path.is_file():
            raise ConfigError(f"TLS: no such file {path}")
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"TLS: cannot use {cert} with {key}: {e}") from None
    return context


@dataclasses.dataclass(frozen=True)
class Start:
    """A session's start message, checked: the audio's format and the settings to merge into the
    server's configuration (their ranges are the configuration's own checks)."""

    rate: int
    channels: int
    settings: dict[str, dict[str, Any]]
    #: Who speaks into this audio: every utterance carries it ("wearer": a partner's phone shows
    #: that session's translation; the wearer is never spoken back to).
    speaker: str | None = None


def _integer(message: Mapping[str, Any], name: str, default: int | None, low: int, high: int, what: str) -> int:
    value = message.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ProtocolError(f"'{name}' must be {what}, an integer from {low} to {high}")
    return value


def parse_start(message: Mapping[str, Any]) -> Start:
    """The start message's settings; a ProtocolError names the first field that is wrong."""
    unknown = [name for name in message if name not in START_FIELDS]
    if unknown:
        raise ProtocolError(f"unknown field '{unknown[0]}' in the start message (known: {', '.join(START_FIELDS)})")
    rate = _integer(message, "rate", None, 8000, 192_000, "the audio's sample rate in Hz")
    channels = _integer(message, "channels", 1, 1, 8, "the audio's channel count")
    asr: dict[str, Any] = {}
    translation: dict[str, Any] = {}
    for name, section, key in (
        ("language", asr, "language"),
        ("target", translation, "target"),
        ("translator", translation, "backend"),
    ):
        if name in message:
            if not isinstance(message[name], str):
                raise ProtocolError(f"'{name}' must be a string")
            section[key] = message[name]
    display = message.get("display", {})
    if not isinstance(display, dict) or any(key not in DISPLAY_FIELDS for key in display):
        raise ProtocolError(f"'display' must be an object with some of {', '.join(DISPLAY_FIELDS)}")
    if "vocabulary" in message:
        vocabulary = message["vocabulary"]
        if not isinstance(vocabulary, list) or not all(isinstance(term, str) for term in vocabulary):
            raise ProtocolError("'vocabulary' must be a list of strings ('term' or 'term = translation')")
        asr["vocabulary"] = vocabulary
    speaker = message.get("speaker")
    if speaker is not None and not (isinstance(speaker, str) and SPEAKER_LABEL.fullmatch(speaker)):
        raise ProtocolError("'speaker' must be a label of 1 to 32 letters, digits, '-' or '_' (e.g. \"wearer\")")
    settings = {"asr": asr, "translation": translation, "display": dict(display)}
    return Start(rate, channels, {name: values for name, values in settings.items() if values}, speaker)


class AudioPace:
    """How fast a client may send audio: a token bucket filled at ``max_speed`` seconds of audio
    per second, holding at most ``burst_s``. A message is taken while the bucket is not empty and
    may overdraw it (a message longer than the burst is still possible), so only sending faster
    than ``max_speed`` for longer than the burst is refused."""

    def __init__(self, max_speed: float, burst_s: float, now: float) -> None:
        self.max_speed = max_speed
        self.burst_s = burst_s
        self._allowance = burst_s
        self._last = now

    def take(self, seconds: float, now: float) -> bool:
        self._allowance = min(self.burst_s, self._allowance + (now - self._last) * self.max_speed)
        self._last = now
        if self._allowance <= 0.0:
            return False
        self._allowance -= max(seconds, MIN_CHARGE_S)
        return True


def _message(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: thousands of nested brackets
        raise ProtocolError("a text message must be a JSON object", CloseCode.UNSUPPORTED_DATA) from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError('a text message must be a JSON object with a "type"', CloseCode.UNSUPPORTED_DATA)
    return data


def _http(status: int, reason: str, body: bytes, content_type: str, *extra: tuple[str, str]) -> Response:
    """A plain HTTP response; the connection closes after it, as websockets does for any answer
    other than a handshake."""
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            *extra,
        ]
    )
    return Response(status, reason, headers, body)


def _text(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


async def _close(connection: ServerConnection, code: CloseCode, reason: str) -> None:
    """Closes, dropping whatever the client still sends meanwhile. Unread messages would fill
    websockets' incoming queue, which then stops reading the socket (flow control), and the
    client's closing frame with it: the close would wait ``close_timeout`` (10 s) for nothing."""
    closing = asyncio.create_task(connection.close(code, reason.encode()[:120].decode(errors="ignore")))
    try:
        while True:
            await connection.recv()
    except ConnectionClosed:
        pass
    finally:
        await closing


class ClientSink:
    """The session's own client: every event, nothing dropped (an ``all`` branch). A client that
    went away only stops the sending; the session is ended by its handler, not by this branch."""

    name = "client"
    policy: Policy = "all"

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection
        self._finals: set[int] = set()
        self.sent = 0
        self.gone = False

    @property
    def utterances(self) -> int:
        """Utterances finished (a final transcript or translation), as ``livesub live`` counts them."""
        return len(self._finals)

    def open(self) -> None: ...

    async def write(self, emission: Emission) -> None:
        event = emission.event
        if isinstance(event, Transcript | Translation) and event.final:
            self._finals.add(event.utterance)
        if self.gone:
            return
        try:
            await self._connection.send(_text(event_record(emission)))
            self.sent += 1
        except ConnectionClosed:
            self.gone = True

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class _SessionEnded:
    """Put in a display's queue when its session ends (no ``final`` field: never dropped)."""


class DisplayHub:
    """The session's display branch: each subtitle goes to every subscribed display's own
    ``latest`` queue, so a slow display gets the newest partial of an utterance and every final,
    and never holds up the session or another display. A display subscribing mid-session first
    gets the latest subtitle (what the display would show now)."""

    name = "displays"
    policy: Policy = "latest"

    def __init__(self, max_lag_s: float) -> None:
        self._max_lag_s = max_lag_s
        self._queues: list[BranchQueue] = []
        self._latest: Emission | None = None
        self._ended: Emission | None = None
        self.subscribed = 0  # displays that ever subscribed

    def subscribe(self) -> BranchQueue:
        queue = BranchQueue(f"display {len(self._queues)}", "latest", self._max_lag_s)
        for emission in (self._latest, self._ended):
            if emission is not None:
                queue.put(emission)
        self._queues.append(queue)
        self.subscribed += 1
        return queue

    def unsubscribe(self, queue: BranchQueue) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def open(self) -> None: ...

    def write(self, emission: Emission) -> None:
        if not isinstance(emission.event, Subtitle):
            return
        self._latest = emission
        for queue in self._queues:
            queue.put(emission)

    def close(self) -> None:
        """The session ended (or failed): each display is told once it has what came before."""
        if self._ended is None:
            self._ended = Emission(_SessionEnded(), 0.0, 0.0)
            for queue in self._queues:
                queue.put(self._ended)


@dataclasses.dataclass
class _Live:
    """A running session, as displays find it: ``about`` is what ``GET /sessions`` says of it
    (its languages and speaker label, never its text)."""

    id: str
    displays: DisplayHub
    about: dict[str, str | None] = dataclasses.field(default_factory=dict)


class Server:
    """The WebSocket server. ``decoder`` is shared by every session (by default Whisper from
    ``config.asr``, loaded here, once); ``detectors`` builds each session's voice detectors in
    place of WebRTC VAD and Silero (tests inject scripted ones); ``token`` is required of every
    client when given (and must be, beyond loopback); ``ssl_context`` serves over TLS.

    ``counts`` tallies what happened (sessions, refusals by reason) for logs and load tests.
    """

    def __init__(
        self,
        config: Config,
        *,
        decoder: Decoder | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        detectors: Callable[[Config], Detectors] | None = None,
    ) -> None:
        check_exposure(config.server.host, token)
        self.config = config
        self._decoder: Decoder = decoder if decoder is not None else WhisperDecoder(config.asr, live=True)
        self._token = token.encode("utf-8") if token is not None else None
        self._ssl = ssl_context
        self._detectors = detectors
        self._sessions: dict[str, _Live] = {}
        self._admitted: set[ServerConnection] = set()
        self._server: WebSocketServer | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self._origins: list[Origin | re.Pattern[str] | None] = [
            None,
            LOOPBACK_ORIGIN,
            *(Origin(origin) for origin in config.server.origins),
        ]

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Starts listening (port 0: any free port; see :attr:`port`)."""
        settings = self.config.server
        try:
            self._server = await serve(
                self._connection,
                settings.host,
                settings.port,
                origins=self._origins,
                process_request=self._check_request,
                # PCM does not compress with deflate, and the cores are for Whisper.
                compression=None,
                max_size=settings.max_frame_bytes,
                open_timeout=HELLO_TIMEOUT_S,
                ssl=self._ssl,
                logger=_websockets_log,
            )
        except OSError as e:  # the port is taken, the address is not this machine's, ...
            raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}") from None
        log.info("serving on %s (%d live sessions at most)", self.url, settings.max_sessions)

    async def close(self) -> None:
        """Stops listening and closes every connection (1001); sessions end as if their clients
        had gone, so every graph is drained (and a transcript being saved is written)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def serve(self, announce: Callable[[str], None] | None = None) -> None:
        """Serves until SIGINT or SIGTERM, then closes cleanly (``livesub serve``)."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            async with self:
                if announce is not None:
                    announce(self.url)
                await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    @property
    def port(self) -> int:
        if self._server is None:
            return self.config.server.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = self.config.server.host
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"{'wss' if self._ssl is not None else 'ws'}://{host}:{self.port}"

    @property
    def live_sessions(self) -> int:
        return len(self._sessions)

    # -- connections ------------------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Before the handshake: known paths only, and at most ``max_connections`` WebSocket
        connections at once.
        The HUD's files and the session list are answered here, as plain HTTP."""
        path = urlsplit(request.path).path
        if path not in (SESSION_PATH, DISPLAY_PATH, SESSIONS_PATH) and path not in HUD_PATHS:
            self.counts["refused_path"] += 1
            return connection.respond(404, f"livesub serves / (the HUD), {SESSION_PATH} and {DISPLAY_PATH}\n")
        # Connections admitted and not yet closed (a handshake refused after this, say for its
        # origin, closes and drops out). Not websockets' handler tasks: those hold every TCP
        # connection accepted, so a burst over the limit saw itself whole and refused everyone.
        self._admitted = {c for c in self._admitted if c.state is not State.CLOSED}
        if len(self._admitted) >= self.config.server.max_connections:
            self.counts["refused_connections"] += 1
            log.info("refused a connection: %d open", len(self._admitted))
            return connection.respond(503, "too many connections; try again later\n")
        if path in (SESSION_PATH, DISPLAY_PATH):
            self._admitted.add(connection)
        if path in HUD_PATHS:
            return self._hud_file(connection, HUD_PATHS[path])
        if path == SESSIONS_PATH:
            return self._session_list(connection, request)
        return None

    def _hud_file(self, connection: ServerConnection, name: str) -> Response:
        try:
            body = (HUD_DIR / name).read_bytes()
        except OSError:  # an installation without the page
            return connection.respond(404, "the HUD page is not installed\n")
        return _http(200, "OK", body, HUD_FILES[name], ("Content-Security-Policy", HUD_POLICY))

    def _session_list(self, connection: ServerConnection, request: Request) -> Response:
        """The running sessions, oldest first (a page shows the newest): each one's id, speaker
        label, language and translation target (``null`` when not translating). Held to the rules of
        the WebSocket paths: an allowed origin (websockets checks it only for a handshake) and,
        when the server has a token, ``Authorization: Bearer TOKEN``."""
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin):
            self.counts["refused_origin"] += 1
            return connection.respond(403, "origin not allowed\n")
        if self._token is not None:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip().encode("utf-8")
            if not hmac.compare_digest(given, self._token):
                self.counts["bad_token"] += 1
                return connection.respond(401, "a valid token is required (Authorization: Bearer TOKEN)\n")
        body = json.dumps([{"id": live.id, **live.about} for live in self._sessions.values()]).encode()
        return _http(200, "OK", body, "application/json")

    def _origin_allowed(self, origin: str) -> bool:
        for allowed in self._origins:
            if isinstance(allowed, re.Pattern):
                if allowed.fullmatch(origin):
                    return True
            elif allowed == origin:
                return True
        return False

    async def _connection(self, connection: ServerConnection) -> None:
        """One connection, whatever happens in it: nothing raised reaches websockets."""
        assert connection.request is not None
        target = urlsplit(connection.request.path)
        try:
            if target.path == SESSION_PATH:
                await self._session(connection)
            else:
                await self._display(connection, parse_qs(target.query))
        except ProtocolError as e:
            self.counts[f"refused_{e.code.name.lower()}"] += 1
            await self._refuse(connection, str(e), e.code)
        except ConnectionClosed:
            pass  # the client went away before its session began
        except Exception:
            self.counts["internal_errors"] += 1
            log.exception("a connection failed")  # a bug; the traceback holds no transcript
            await self._refuse(connection, "internal error", CloseCode.INTERNAL_ERROR)
        finally:
            self._admitted.discard(connection)

    async def _refuse(self, connection: ServerConnection, message: str, code: CloseCode) -> None:
        """An error message, then the close: the message says why (a close reason is cut short)."""
        try:
            await connection.send(_text({"type": "error", "message": message}))
        except ConnectionClosed:
            return
        await _close(connection, code, message)

    async def _hello(self, connection: ServerConnection, kind: str) -> dict[str, Any]:
        """The first message: a JSON object of ``type`` kind, with the token when one is required."""
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                first = await connection.recv()
        except TimeoutError:
            raise ProtocolError(f'no {{"type": "{kind}"}} message within {HELLO_TIMEOUT_S:g} s') from None
        if not isinstance(first, str):
            raise ProtocolError(
                f'the first message must be JSON text: {{"type": "{kind}", ...}}', CloseCode.UNSUPPORTED_DATA
            )
        message = _message(first)
        if message["type"] != kind:
            raise ProtocolError(f"the first message here must be of type '{kind}'", CloseCode.UNSUPPORTED_DATA)
        if self._token is not None:
            token = message.get("token")
            given = token.encode("utf-8") if isinstance(token, str) else b""
            if not hmac.compare_digest(given, self._token):
                self.counts["bad_token"] += 1
                raise ProtocolError("a valid token is required")
        return message

    # -- sessions ---------------------------------------------------------------------------------

    async def _session(self, connection: ServerConnection) -> None:
        start_message = await self._hello(connection, "start")
        limit = self.config.server.max_sessions
        if len(self._sessions) >= limit:
            log.info("refused a session: %d of %d running", len(self._sessions), limit)
            raise ProtocolError(
                f"busy: this server runs {limit} live session{'s' if limit > 1 else ''} at once "
                "(more would fall behind real time); try again later",
                CloseCode.TRY_AGAIN_LATER,
            )
        start = parse_start(start_message)
        try:
            config = merge(self.config, start.settings)
            backend = translation_backend(config)
            check_languages(self._decoder, config.spoken_languages)
        except ConfigError as e:
            raise ProtocolError(str(e)) from None
        # No await between the limit's check and the registration: nothing else can slip in.
        about = {
            "speaker": start.speaker,
            "language": config.asr.language,
            "target": config.translation.target if backend else None,
        }
        live = _Live(secrets.token_hex(8), DisplayHub(config.output.max_lag_s), about)
        self._sessions[live.id] = live
        self.counts["sessions"] += 1
        try:
            await self._run(connection, live, config, backend, start)
        finally:
            del self._sessions[live.id]

    def _transcript(self, config: Config, live: _Live, backend: str) -> TranscriptSink | None:
        """The session's transcript files, when the server's configuration asks for them
        (``output.live_dir``, or ``livesub serve --out``); never a path from the client."""
        if not config.output.live_dir:
            return None
        target = config.translation.target if backend else ""
        translation = {"backend": backend, "source": config.asr.language, "target": target} if backend else None
        stem = time.strftime("session-%Y%m%d-%H%M%S-") + live.id
        about = {"source": "livesub serve", "model": self._decoder.model_id}
        return TranscriptSink(
            Path(config.output.live_dir),
            stem,
            config.output,
            about=about,
            target=target,
            translation=translation,
        )

    async def _run(self, connection: ServerConnection, live: _Live, config: Config, backend: str, start: Start) -> None:
        source = NetworkSource(start.rate, start.channels, idle_timeout_s=config.server.idle_timeout_s)
        client = ClientSink(connection)
        sinks: list[Sink] = [client, live.displays]
        transcript = self._transcript(config, live, backend)
        if transcript is not None:
            sinks.append(transcript)
        log.info(
            "session %s: started (%d Hz, %d ch, language %s, translation %s, speaker %s)",
            live.id,
            start.rate,
            start.channels,
            config.asr.language,
            backend or "none",
            start.speaker or "unlabelled",
        )
        await connection.send(_text({"type": "ready", "session": live.id}))
        graph = asyncio.create_task(
            run_live(
                config,
                self._decoder,
                source,
                sinks,
                backend=backend,
                replay=False,
                detectors=self._detectors(config) if self._detectors is not None else None,
                speaker=start.speaker,
            )
        )
        reader = asyncio.create_task(self._read_audio(connection, source, config))
        try:
            await asyncio.wait({graph, reader}, return_when=asyncio.FIRST_COMPLETED)
            # The client's stop, its going away, a broken rule, or the stream's own end (idle):
            # whichever came first, the open utterance is finalised and the graph drains.
            outcome = reader.result() if reader.done() else "ended"
            source.stop()
            if isinstance(outcome, ProtocolError):
                self.counts[f"refused_{outcome.code.name.lower()}"] += 1
                await self._refuse(connection, str(outcome), outcome.code)
            result = await self._finish(graph, live.id)
        finally:
            source.stop()
            for task in (reader, graph):
                task.cancel()  # only when the handler itself was cancelled or failed: else both are done
            await asyncio.gather(reader, graph, return_exceptions=True)
        if isinstance(result, str):
            await self._refuse(connection, result, CloseCode.INTERNAL_ERROR)
        elif outcome in ("stop", "ended"):
            summary = {"audio_s": round(result.audio_s, 3), "wall_s": round(result.wall_s, 3)}
            counts = {"overflows": result.overflows, "lost": result.lost, "utterances": client.utterances}
            try:
                await connection.send(_text({"type": "session", **summary, **counts}))
                if result.lost:  # the stream ended itself: no audio for server.idle_timeout_s
                    await self._refuse(connection, f"{result.lost}: the session ended", CloseCode.GOING_AWAY)
                else:
                    await _close(connection, CloseCode.NORMAL_CLOSURE, "session ended")
            except ConnectionClosed:
                pass
        if isinstance(result, str):
            ended = "failed"
        elif isinstance(outcome, ProtocolError):
            ended = f"refused ({outcome.code.name.lower()})"
        else:
            ended = {"stop": "stop", "closed": "client gone"}.get(outcome, result.lost or "ended")
        log.info(
            "session %s: ended (%s): %.1f s of audio, %d utterances, %d events sent, %d overflows, %d displays",
            live.id,
            ended,
            source.position,
            client.utterances,
            client.sent,
            source.overflows,
            live.displays.subscribed,
        )

    async def _finish(self, graph: asyncio.Task[SessionResult], session: str) -> SessionResult | str:
        """The session's result once its graph has drained, or why it failed (logged): a user's
        error (a translator that will not start) as it is, a bug only as a pointer to the log."""
        try:
            return await graph
        except LivesubError as e:
            log.error("session %s: failed: %s", session, e)
            failure = f"the session failed: {e}"
        except Exception:
            log.exception("session %s: failed", session)
            failure = "the session failed; see the server's log"
        self.counts["failed"] += 1
        return failure

    async def _read_audio(
        self, connection: ServerConnection, source: NetworkSource, config: Config
    ) -> ProtocolError | str:
        """Hands the client's audio to the source until it sends ``stop`` (returns "stop"),
        goes away ("closed") or breaks the protocol (returns the ProtocolError)."""
        loop = asyncio.get_running_loop()
        pace = AudioPace(config.server.max_speed, BURST_S, loop.time())
        while True:
            try:
                message = await connection.recv()
            except ConnectionClosed:
                return "closed"  # gone, or a message over max_frame_bytes (websockets closed with 1009)
            if isinstance(message, bytes):
                if len(message) % source.frame_bytes:
                    return ProtocolError(
                        f"a binary message must hold whole frames of {source.frame_bytes} bytes "
                        f"(PCM16 x {source.channels} channels), not {len(message)} bytes",
                        CloseCode.UNSUPPORTED_DATA,
                    )
                seconds = len(message) / source.frame_bytes / source.rate
                if not pace.take(seconds, loop.time()):
                    return ProtocolError(
                        f"audio arrives faster than {config.server.max_speed:g} times real time (server.max_speed)"
                    )
                source.push(message)
                continue
            try:
                kind = _message(message)["type"]
            except ProtocolError as e:
                return e
            if kind == "stop":
                return "stop"
            return ProtocolError(
                f"unknown message type '{kind[:40]}' (a session takes audio and stop)", CloseCode.UNSUPPORTED_DATA
            )

    # -- displays ---------------------------------------------------------------------------------

    async def _display(self, connection: ServerConnection, query: dict[str, list[str]]) -> None:
        await self._hello(connection, "display")
        ids = query.get("session", [])
        live = self._sessions.get(ids[0]) if len(ids) == 1 else None
        if live is None:
            raise ProtocolError("no such session running (give /display?session=ID, the id its client got)")
        await connection.send(_text({"type": "ready", "session": live.id}))
        queue = live.displays.subscribe()
        log.info("session %s: a display subscribed (%d)", live.id, live.displays.subscribers)
        sender = asyncio.create_task(self._send_subtitles(connection, queue))
        reader = asyncio.create_task(connection.recv())
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
            delivered = sender.done() and sender.result()
            spoke = reader.done() and reader.exception() is None
        finally:
            live.displays.unsubscribe(queue)
            for task in (sender, reader):
                task.cancel()  # no longer reading: the close below reads what still comes
            await asyncio.gather(sender, reader, return_exceptions=True)
        if delivered:
            await _close(connection, CloseCode.NORMAL_CLOSURE, "session ended")
        elif spoke:
            raise ProtocolError("a display sends nothing after its first message", CloseCode.UNSUPPORTED_DATA)

    async def _send_subtitles(self, connection: ServerConnection, queue: BranchQueue) -> bool:
        """True when the session ended and the display got everything; False when it went away."""
        try:
            while True:
                item = await queue.get()
                if not isinstance(item, Emission) or isinstance(item.event, _SessionEnded):
                    return True
                await connection.send(_text(event_record(item)))
        except ConnectionClosed:
            return False
