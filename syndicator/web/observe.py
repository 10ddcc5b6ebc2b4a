"""The outermost WSGI layer of `serve`: one access-log line per request (the combined format
nginx and Apache write), the request counts of syndicator/metrics.py, and /metrics itself for
the clients in `metrics_networks`. Outside the answer replay, so replayed answers are counted
and logged like the rest."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

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
    written in blocks (see BUFFER)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._out: TextIO | None = None
        self._stamp: tuple[int, str] = (0, "")
        self._lines: list[str] = []
        self._size = 0
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
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

    def _now(self) -> str:
        second = int(time.time())
        if self._stamp[0] != second:
            self._stamp = (second, time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second)))
        return self._stamp[1]

    def write(self, environ: dict[str, Any], client: str, status: int, sent: int) -> None:
        uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING") and "?" not in uri:
            uri += "?" + environ["QUERY_STRING"]
        line = (f'{client} - - [{self._now()}] "{quoted(environ.get("REQUEST_METHOD", ""))} {quoted(uri)} '
                f'{quoted(environ.get("SERVER_PROTOCOL", ""))}" {status} {sent or "-"} '
                f'"{quoted(environ.get("HTTP_REFERER", "-"))}" "{quoted(environ.get("HTTP_USER_AGENT", "-"))}"\n')
        with self._lock:
            if self._out is None:
                return
            self._lines.append(line)
            self._size += len(line)
            if self._size >= BUFFER:
                self._flush()
            elif self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_every, name="syndicator-access-log",
                                                 daemon=True)
                self._flusher.start()

    def _flush_every(self) -> None:
        while not self._closed.wait(FLUSH_S):
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
        self._closed.set()
        with self._lock:
            self._flush()
            if self._out is not None and self._out is not sys.stderr:
                self._out.close()
            self._out = None


class Observer:
    """Logs and counts every request to the app it wraps (`around`); answers /metrics."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.metrics = metrics
        self.log: AccessLog | None = None
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Take on (reloaded) settings; the access log file is opened again (logrotate)."""
        self.root = os.path.realpath(settings.feeds_dir)
        self.trusted = clients.networks(settings.trusted_proxies)
        self.allowed = clients.networks(settings.metrics_networks)
        old, target = self.log, settings.access_log
        self.log = None if target == "off" else AccessLog(target)
        if old is not None:
            old.close()

    def close(self) -> None:
        """The access log's last lines written (at shutdown)."""
        if self.log is not None:
            self.log.close()

    def around(self, app: WSGIApp) -> WSGIApp:
        def observed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            client = clients.client(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR"),
                                    self.trusted)
            if environ.get("PATH_INFO") == METRICS_PATH and clients.within(clients.parse(client), self.allowed):
                text = self.metrics.exposition()
                start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(text))),
                                          ("Cache-Control", "no-store")])
                self._record(environ, client, 200, "", len(text))
                return [text]
            seen: list[Any] = []

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                seen[:] = [status, headers]
                return start_response(status, headers, exc_info)

            body = app(environ, capture)
            if seen:
                length, encoding = "0", ""
                for k, v in seen[1]:
                    lowered = k.lower()
                    if lowered == "content-length":
                        length = v
                    elif lowered == "content-encoding":
                        encoding = v
                sent = 0 if environ.get("REQUEST_METHOD") == "HEAD" else int(length) if length.isdigit() else 0
                self._record(environ, client, int(seen[0][:3]), encoding, sent)
            return body

        return observed

    def _record(self, environ: dict[str, Any], client: str, status: int, encoding: str, sent: int) -> None:
        path = environ.get("PATH_INFO", "")
        kind = route(path, status)
        self.metrics.answered(kind, status, sent)
        if status == 304 or encoding == "gzip":
            self._saved(path, status, sent, environ.get(SERVED_SIZE))
        if kind == "feed":
            agent = environ.get("HTTP_USER_AGENT", "")
            if "ubscriber" in agent or "eaders" in agent:
                self.metrics.reported(path[1:], agent)
        if self.log is not None:
            self.log.write(environ, client, status, sent)

    def _saved(self, path: str, status: int, sent: int, size: int | None) -> None:
        """Bytes a 304 (the file's size) or gzip (the file's size less what was sent) saved.
        `size`: the app's word for the file's size; else a stat() (each one lets the thread give
        up the GIL and wait to get it back, which under load costs more than the work)."""
        if size is None:
            try:
                size = os.stat(os.path.join(self.root, path[1:] or urls.INDEX)).st_size
            except (OSError, ValueError):
                return
        self.metrics.saved_by("304" if status == 304 else "gzip", size if status == 304 else size - sent)
