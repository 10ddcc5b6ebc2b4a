"""The outermost WSGI layer of `serve`: one access-log line per request (the combined format
nginx and Apache write), the request counts of syndicator/metrics.py, and /metrics itself for
the clients in `metrics_networks`. Outside the answer replay, so replayed answers are counted
and logged like the rest."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TextIO

from syndicator import formats, urls
from syndicator.config import Settings
from syndicator.metrics import CONTENT_TYPE, Metrics
from syndicator.web import clients
from syndicator.web.app import SERVED_SIZE

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

METRICS_PATH = "/metrics"
_PLAIN = {0x22: "\\\"", 0x5C: "\\\\"}  # what a quoted log field escapes besides control characters


def route(path: str, status: int) -> str:
    """A small, fixed set of names for what was asked (metrics labels must not grow with the URLs)."""
    if path in ("/healthz", METRICS_PATH):
        return path[1:]
    if status in (301, 302, 307, 308):
        return "redirect"
    if status == 404:
        return "not_found"
    rel = path[1:]
    if not rel:
        return "index"
    if urls.archive_page(rel) is not None:
        return "archive"
    if rel.endswith(formats.FEED_EXTENSIONS):
        return "feed"
    return "page" if rel.endswith(".html") else "other"


def quoted(text: str) -> str:
    """`text` safe inside a quoted log field: no quote, backslash or control character of the
    client's can forge a line or a field."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(_PLAIN.get(ord(c), c) if c.isprintable() else f"\\x{ord(c) & 0xFF:02x}" for c in text)


#: Access log lines are written in blocks of up to this many bytes, none waiting longer than
#: FLUSH_S (nginx's `access_log ... buffer=64k flush=1s`): a write and flush per request let
#: each request's thread give up the GIL and wait to get it back.
BUFFER = 64 * 1024
FLUSH_S = 1.0


class AccessLog:
    """Combined-format lines to stderr or a file (reopened by `reopen`, after a rotation),
    written in blocks (see BUFFER); `flush` writes what is kept."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._out: TextIO | None = None
        self._stamp: tuple[int, str] = (0, "")
        self._lines: list[str] = []
        self._size = 0
        self.reopen()

    def reopen(self) -> None:
        with self._lock:
            self._flush()  # what was logged before a rotation goes to the file it was for
            if self._out is not None and self._out is not sys.stderr:
                self._out.close()
            if self.target == "stderr":
                self._out = sys.stderr
            else:
                self._out = open(self.target, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def _at(self, when: float) -> str:
        second = int(when)
        if self._stamp[0] != second:
            self._stamp = (second, time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second)))
        return self._stamp[1]

    def line(self, asked: Asked, client: str) -> str:
        uri = asked.uri or asked.path
        if asked.query and "?" not in uri:
            uri += "?" + asked.query
        return (f'{client} - - [{self._at(asked.when)}] "{quoted(asked.method)} {quoted(uri)} '
                f'{quoted(asked.protocol)}" {asked.status} {asked.sent or "-"} "{quoted(asked.referer)}" '
                f'"{quoted(asked.agent)}"\n')

    def write(self, lines: list[str]) -> None:
        with self._lock:
            if self._out is None:
                return
            self._lines.extend(lines)
            self._size += sum(map(len, lines))
            if self._size >= BUFFER:
                self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        """Write the lines kept (with the lock held)."""
        if not self._lines:
            return
        data = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        if self._out is not None:
            try:
                self._out.write(data)
                self._out.flush()
            except (OSError, ValueError):
                pass  # a full disk loses log lines, never answers

    def close(self) -> None:
        with self._lock:
            self._flush()
            if self._out is not None and self._out is not sys.stderr:
                self._out.close()
            self._out = None


class Asked(NamedTuple):
    """A request and its answer as its thread leaves them for the recorder: strings and numbers
    only, so nothing of the request (its environ, the app's objects) lives on until then."""

    method: str
    path: str
    query: str
    uri: str
    protocol: str
    referer: str
    agent: str
    remote: str
    forwarded_for: str | None
    status: int
    sent: int
    encoding: str
    #: the size of the file (or custom feed) answered, as the app gives it (SERVED_SIZE): what a
    #: 304 or gzip saved is counted from it. Not a stat(): with one per request the recording
    #: thread gave up the GIL and waited to get it back once per request of its batch (under
    #: load, tens of ms for a batch: a cached custom feed's p99 went from 3 to 40-80 ms)
    size: int | None
    when: float


def asked(environ: dict[str, Any], status_line: str, headers: list[tuple[str, str]]) -> Asked:
    length, encoding = "0", ""
    for k, v in headers:
        lowered = k.lower()
        if lowered == "content-length":
            length = v
        elif lowered == "content-encoding":
            encoding = v
    method = environ.get("REQUEST_METHOD", "")
    return Asked(method, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
                 environ.get("RAW_URI", ""), environ.get("SERVER_PROTOCOL", ""), environ.get("HTTP_REFERER", "-"),
                 environ.get("HTTP_USER_AGENT", "-"), environ.get("REMOTE_ADDR", ""),
                 environ.get("HTTP_X_FORWARDED_FOR"), int(status_line[:3]),
                 0 if method == "HEAD" else int(length) if length.isdigit() else 0,
                 encoding, environ.get(SERVED_SIZE), time.time())


#: Answered requests recorded together, by the thread of the request that fills the batch.
BATCH = 64
#: Answered requests waiting at most: past it a request waits for its turn to record (while
#: another thread records a batch, the others go on answering).
PENDING = 20_000


class Observer:
    """Logs and counts every request to the app it wraps (`around`); answers /metrics.

    A request's thread appends what was asked and answered to a deque; every BATCH requests
    one thread turns them into counts and log lines in one go, and a thread that runs once a
    second records what is left and writes the log (at most FLUSH_S late). Done request by
    request (a label lookup and a lock per counter, the line formatted and a lock for it) the
    same work made the threads wait on each other. Not a thread that records all the time: a
    busy Python thread keeps the GIL for its whole switch interval (5 ms) each time a request's
    thread gives it up, which cost more than the recording (18,700 instead of 29,300 req/s in
    one run)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.metrics = metrics
        self.log: AccessLog | None = None
        self._pending: deque[Asked] = deque()
        self._recording = threading.Lock()
        self._closed = threading.Event()
        self._recorder: threading.Thread | None = None
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Take on (reloaded) settings; the access log file is opened again (logrotate)."""
        self.record()  # what was answered under the old settings is logged with them
        self.trusted = clients.networks(settings.trusted_proxies)
        self.allowed = clients.networks(settings.metrics_networks)
        old, target = self.log, settings.access_log
        self.log = None if target == "off" else AccessLog(target)
        if old is not None:
            old.close()

    def close(self) -> None:
        """Everything answered recorded and the access log's last lines written (at shutdown)."""
        self._closed.set()
        while self._pending:
            self.record()
        if self.log is not None:
            self.log.close()

    def around(self, app: WSGIApp) -> WSGIApp:
        pending = self._pending

        def observed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == METRICS_PATH:
                client = clients.client(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR"),
                                        self.trusted)
                if clients.within(clients.parse(client), self.allowed):
                    self.record()  # the counts include every request answered before this one
                    text = self.metrics.exposition()
                    headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(text))),
                               ("Cache-Control", "no-store")]
                    start_response("200 OK", headers)
                    pending.append(asked(environ, "200 OK", headers))
                    return [text]
            seen: list[Any] = []

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                seen[:] = [status, headers]
                return start_response(status, headers, exc_info)

            body = app(environ, capture)
            if seen:
                pending.append(asked(environ, seen[0], seen[1]))
                if len(pending) >= BATCH:
                    self.record(wait=len(pending) > PENDING)
                elif self._recorder is None:
                    self._start()
            return body

        return observed

    def _start(self) -> None:
        with self._recording:
            if self._recorder is None and not self._closed.is_set():
                self._recorder = threading.Thread(target=self._record_every, name="syndicator-recorder",
                                                  daemon=True)
                self._recorder.start()

    def _record_every(self) -> None:
        while not self._closed.wait(FLUSH_S):
            self.record()
            if self.log is not None:
                self.log.flush()

    def record(self, wait: bool = True) -> None:
        """Turn the requests answered so far into counts and log lines; with `wait` False,
        leave it when another thread is already doing it."""
        if not self._recording.acquire(blocking=wait):
            return
        try:
            batch: list[Asked] = []
            pending = self._pending
            while pending and len(batch) < PENDING:
                batch.append(pending.popleft())
            if batch:
                self._record(batch)
        finally:
            self._recording.release()

    def _record(self, batch: list[Asked]) -> None:
        counts: dict[tuple[str, int], int] = {}
        sent_total = 0
        saved: dict[str, int] = {"304": 0, "gzip": 0}
        lines: list[str] = []
        log, trusted = self.log, self.trusted
        for one in batch:
            status, sent, path = one.status, one.sent, one.path
            kind = route(path, status)
            counts[kind, status] = counts.get((kind, status), 0) + 1
            sent_total += sent
            if one.size is not None and (status == 304 or one.encoding == "gzip"):
                saved["304" if status == 304 else "gzip"] += one.size if status == 304 else max(0, one.size - sent)
            if kind == "feed" and ("ubscriber" in one.agent or "eaders" in one.agent):
                self.metrics.reported(path[1:], one.agent)
            if log is not None:
                lines.append(log.line(one, clients.client(one.remote, one.forwarded_for, trusted)))
        for (kind, status), n in counts.items():
            self.metrics.answered(kind, status, n)
        self.metrics.sent_bytes(sent_total)
        for by, n in saved.items():
            self.metrics.saved_by(by, n)
        if log is not None:
            log.write(lines)
