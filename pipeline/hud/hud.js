// The livesub HUD: a display of a running session's subtitles (README, "Serving to a display or
// a phone"). It subscribes on /display, renders each subtitle event's lines exactly as the server
// laid them out, the committed part of each line steady and the tentative rest dimmed, and
// reconnects by itself when the connection drops or the session is not running yet.
//
// The page's address says what to show:  /?session=ID&lines=2&chars=32#token=TOKEN
// - the path: / is the wearer's display; /partner the partner's view, a phone held toward the
//   partner: the subtitles of utterances labelled "wearer" only (the wearer's words, translated
//   into the partner's language by a second session streaming the wearer's voice), large.
// - session: the id the session's client got; without it the page shows the newest running
//   session (GET /sessions) and moves on to the next one when it ends: for the wearer's display
//   the newest one not labelled "wearer", for the partner's view the newest one labelled so.
// - lines, chars: the display profile, for the size of the line boxes (2 x 32 by default).
// - token: the server's token when it has one; in the fragment, which the browser never sends.
//
// Every render is logged in window.hudLog, for tests and for measuring: {t, received, utterance,
// final, lines, committed}, read back from the page itself after the change; t and received
// (when the event arrived) are both performance.now() of this page.
"use strict";

(function () {
  const query = new URLSearchParams(window.location.search);
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const fixedSession = query.get("session") || fragment.get("session") || "";
  const partnerView = window.location.pathname === "/partner";
  const WEARER = "wearer";
  const token = fragment.get("token") || "";
  const profileLines = boundedInt(query.get("lines"), 2, 1, 20);
  const profileChars = boundedInt(query.get("chars"), 32, 8, 200);

  const MIN_BACKOFF_MS = 250;
  const MAX_BACKOFF_MS = 5000;
  const LOG_LIMIT = 10000; // renders kept in window.hudLog: a page may run for hours

  const linesBox = document.getElementById("lines");
  const statusBox = document.getElementById("status");
  const boxes = [];

  window.hudView = partnerView ? "partner" : "wearer";
  document.body.classList.toggle("partner", partnerView);
  if (partnerView) document.title = "livesub: partner view";
  window.hudLog = [];
  window.hudStatus = "connecting";
  window.hudSessions = []; // the ids of the sessions this page was subscribed to
  let current = null; // the event shown now, with the time it arrived

  function boundedInt(text, fallback, low, high) {
    const value = Number.parseInt(text || "", 10);
    return Number.isFinite(value) ? Math.min(high, Math.max(low, value)) : fallback;
  }

  function setStatus(status, text) {
    window.hudStatus = status;
    statusBox.textContent = text;
    statusBox.className = status;
  }

  function lineBox() {
    const box = document.createElement("div");
    box.className = "line";
    const committed = document.createElement("span");
    committed.className = "committed";
    const tentative = document.createElement("span");
    tentative.className = "tentative";
    box.append(committed, tentative);
    linesBox.append(box);
    boxes.push(box);
    return box;
  }

  document.documentElement.style.setProperty("--lines", String(profileLines));
  document.documentElement.style.setProperty("--chars", String(profileChars));
  for (let i = 0; i < profileLines; i += 1) lineBox();

  // -- rendering ---------------------------------------------------------------------------------

  function render(event) {
    const lines = Array.isArray(event.lines) ? event.lines.map(String) : [];
    // A server without committed counts: a final is all committed, a partial all tentative.
    const counts = Array.isArray(event.committed) && event.committed.length === lines.length
      ? event.committed
      : lines.map((line) => (event.final ? line.length : 0));
    while (boxes.length < lines.length) lineBox(); // a profile taller than the URL said
    if (lines.length > profileLines) {
      document.documentElement.style.setProperty("--lines", String(lines.length));
    }
    boxes.forEach((box, i) => {
      const line = i < lines.length ? lines[i] : "";
      const count = i < lines.length ? Math.max(0, Math.min(line.length, counts[i] | 0)) : 0;
      box.children[0].textContent = line.slice(0, count);
      box.children[1].textContent = line.slice(count);
      box.dataset.used = i < lines.length ? "1" : "0";
    });
  }

  // The log reads the lines back from the page once the change is made (a MutationObserver runs
  // right after the task that changed the page), so it records what the page holds, not what it
  // was asked to hold.
  new MutationObserver(() => {
    if (current === null) return;
    const shown = boxes.filter((box) => box.dataset.used === "1");
    window.hudLog.push({
      t: performance.now(),
      received: current.received,
      utterance: current.event.utterance,
      final: Boolean(current.event.final),
      lines: shown.map((box) => box.textContent),
      committed: shown.map((box) => box.children[0].textContent.length),
    });
    if (window.hudLog.length > LOG_LIMIT) window.hudLog.splice(0, window.hudLog.length - LOG_LIMIT);
  }).observe(linesBox, { childList: true, subtree: true, characterData: true, attributes: true });

  // -- the connection ----------------------------------------------------------------------------

  let backoff = MIN_BACKOFF_MS;

  function retry(text) {
    setStatus("waiting", text);
    const delay = backoff;
    backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
    window.setTimeout(connect, delay);
  }

  async function newestSession() {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch("/sessions", { headers, cache: "no-store" });
    if (!response.ok) throw new Error("the session list: HTTP " + response.status);
    const sessions = (await response.json()).filter((s) => (s.speaker === WEARER) === partnerView);
    return sessions.length ? String(sessions[sessions.length - 1].id) : "";
  }

  async function connect() {
    let session = fixedSession;
    if (!session) {
      try {
        session = await newestSession();
      } catch (error) {
        retry(String(error.message || error));
        return;
      }
      if (!session) {
        retry("waiting for a session");
        return;
      }
    }
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${window.location.host}/display?session=${encodeURIComponent(session)}`;
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      retry(String(error.message || error));
      return;
    }
    let refusal = "";
    socket.onopen = () => {
      setStatus("connecting", "subscribing");
      socket.send(JSON.stringify(token ? { type: "display", token } : { type: "display" }));
    };
    socket.onmessage = (message) => {
      const received = performance.now();
      let record;
      try {
        record = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (record.type === "subtitle") {
        // The partner reads the wearer's words only; the wearer, everyone's but their own.
        if (partnerView !== (record.speaker === WEARER)) return;
        current = { event: record, received };
        render(record);
      } else if (record.type === "ready") {
        backoff = MIN_BACKOFF_MS;
        window.hudSessions.push(record.session);
        setStatus("live", "live");
      } else if (record.type === "error") {
        refusal = String(record.message || "");
      }
    };
    socket.onclose = (close) => {
      // The last lines stay on the display; the page waits for the session (or the next one).
      if (close.code === 1000) {
        backoff = MIN_BACKOFF_MS;
        retry("the session ended");
      } else {
        retry(refusal || `disconnected (${close.code})`);
      }
    };
  }

  connect();
})();
