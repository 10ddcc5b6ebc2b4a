"""The HTTP server of `syndicator serve`: granian (Rust, hyper) running the WSGI app in this
process, the one module that imports the server library.

Why granian: its HTTP/1.1 server (hyper) and every connection live on a Rust thread outside
the GIL, so idle and slow-loris connections cost a little memory and no Python thread, and its
own cost per request is small (~60,000 requests/s on 2 cores for an app returning a constant),
so what a request costs is the app's time. It installs from wheels and stops gracefully. The
measurements against other servers and nginx are in README "Which server".

It runs in-process beside the builder and watcher threads, so /healthz reads the builder
directly and one process writes feeds/. granian's own launcher spawns worker processes (threads
only on free-threaded Python) and owns the signals, so its worker is driven here directly
through granian's `_granian` bindings: hence the exact version pin in pyproject.toml.

Two WSGI layers sit in front of the app:
- `refuse_ambiguous`: the 400s nginx answers and hyper does not (see its docstring);
- `Replay`: the app's own 200 and 304 answers for a file, replayed for the same request while
  the file's stat is unchanged, so a feed poll costs ~8 µs of Python instead of Flask's ~110.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from granian._futures import _new_cbscheduler
from granian._granian import MetricsAggregator, SocketHolder, WorkerSignal, WSGIWorker
from granian.http import HTTP1Settings
from granian.wsgi import _callback_wrapper

from syndicator import allocator, urls
from syndicator.bounded import Bounded
from syndicator.web.app import SERVED_CHECK, SERVED_FILE, SERVED_SIZE

log = logging.getLogger("syndicator.server")
# the bindings log "Started/Stopping worker-1" at INFO: the daemon's own lines say it better
logging.getLogger("_granian").setLevel(logging.WARNING)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Seconds a connection may take to send a request's headers, counted from the end of the
#: previous answer: the keep-alive idle timeout and the slow-loris bound in one. Long enough for
#: a reader fetching its feeds one after another to reuse the connection, short enough that
#: idle and trickling clients give their descriptor back (nginx: 60 s header, 75 s idle).
HEADER_TIMEOUT = 20
#: Accepted connections waiting for the server (the kernel caps it at net.core.somaxconn).
BACKLOG = 1024
#: Seconds between two hand-backs of the free heap pages the answering threads left
#: (allocator.trim, a few ms): the reads and compressions of a crawl of every file leave
#: ~14 MiB free but resident at 10,000 posts.
TRIM_EVERY = 10.0
#: Open connections at most (granian's "backpressure" counts connections, not requests): far
#: above what readers need, small enough to bound memory (~15 KB a connection that has asked,
#: 150 MB in all); further clients wait in the backlog until the header timeout frees a slot.
#: Lowered to fit the descriptor limit.
MAX_CONNECTIONS = 10_000
#: Seconds `run()` waits, once closed, for answers in progress and connections to finish.
DRAIN_TIMEOUT = 2
#: Descriptors kept for the rest of the process (feeds read, state, watcher, logs).
_RESERVED_FDS = 256
#: Bytes a connection may buffer while reading a request head (hyper answers 431 once it has
#: read more, at most one read later): nginx's default header buffers hold 32 KB; a feed
#: reader sends well under 1 KB (granian's default is 400 KB).
MAX_HEAD_BYTES = 32 * 1024


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one: each open connection holds a descriptor and
    the usual soft limit of 1,024 would refuse clients long before memory or CPU runs out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _bad_request(start_response: Callable[..., Any]) -> list[bytes]:
    body = b"Bad Request\n"
    start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                       ("Content-Length", str(len(body))), ("Connection", "close")])
    return [body]


def refuse_ambiguous(app: WSGIApp) -> WSGIApp:
    """400 and close, as nginx answers, for requests hyper lets through:

    - a `Transfer-Encoding` header: hyper drops a `Content-Length` sent with it (the request
      smuggling shape) before the app sees the request, so any request framed by
      Transfer-Encoding is refused; the app only serves GET and HEAD, which carry no body;
    - HTTP/1.1 without `Host` (or with an empty one), RFC 9112 3.2;
    - more than one `Host` (hyper joins them with a comma, which no host name contains);
    - a method in lower case (hyper passes `get` on, and the app would take it for GET)."""

    def guard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if ("HTTP_TRANSFER_ENCODING" in environ
                or (not host and environ.get("SERVER_PROTOCOL") == "HTTP/1.1")
                or (host and "," in host)
                or not environ["REQUEST_METHOD"].isupper()):
            return _bad_request(start_response)
        return app(environ, start_response)

    return guard


#: Request headers that describe the connection, not the answer: left out of the replay key.
_HOP_BY_HOP = frozenset({"HTTP_CONNECTION", "HTTP_KEEP_ALIVE", "HTTP_TE", "HTTP_UPGRADE",
                         "HTTP_PROXY_CONNECTION"})
_StatKey = tuple[int, int, int, int]


class _Kept(NamedTuple):
    """A kept answer, and what it was made from: a file as it was (`path`, `stat`), or what
    the app's `check` says (True while the answer stands)."""

    path: str
    stat: _StatKey | None
    check: Callable[[], bool] | None
    status: str
    headers: list[tuple[str, str]]
    data: bytes
    #: the size the app gave for the file (SERVED_SIZE), handed on with each replay
    size: int | None = None


class Replay:
    """Replay the app's 200 and 304 answers for files under `root`.

    An answer is kept when it carries an ETag (only file answers do: not /healthz, redirects or
    errors) and the stat of the file it was made from was the same before and after the app
    made it. The app names that file and its stat when it read it in the environ
    (`SERVED_FILE`): it need not be the path's (a browser gets a feed's page at the feed's URL). It is replayed
    for a request with the same method, path, query and headers (all of them, except the
    hop-by-hop ones above: whatever header the app reads is part of the key) while the file's
    stat is unchanged -- the same (size, mtime, inode, ctime) key the app's own cache trusts,
    and an atomic rename by the writer always changes the inode. So a replay is byte for byte
    the answer the app would give, at the cost of one stat() and a dict lookup."""

    def __init__(self, app: WSGIApp, root: Path, max_entries: int = 4096,
                 max_bytes: int = 32 * 1024 * 1024, key: Callable[[str], _StatKey | None] | None = None) -> None:
        self.app = app
        self.root = os.path.realpath(root)
        #: what identifies a path's bytes when they are not files under root (a web node's copy)
        self._key = key
        # oldest first out: a replaced file's answers stop being asked for and age out
        self._answers: Bounded[tuple[Any, ...], _Kept] = Bounded(max_bytes, _answer_size, max_entries)
        self._lock = threading.Lock()

    def _stat(self, path: str) -> _StatKey | None:
        if self._key is not None:
            return self._key(path[1:] or urls.INDEX)
        try:
            st = os.stat(os.path.join(self.root, path[1:] or urls.INDEX))
        except (OSError, ValueError):
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if (method != "GET" and method != "HEAD") or environ.get("CONTENT_LENGTH", "0") not in ("", "0"):
            return self.app(environ, start_response)
        key = (method, path, environ.get("QUERY_STRING", ""),
               *[item for item in environ.items() if item[0][:5] == "HTTP_" and item[0] not in _HOP_BY_HOP])
        kept = self._answers.get(key)
        if kept is not None and (kept.check() if kept.check is not None else self._stat(kept.path) == kept.stat):
            if kept.size is not None:
                environ[SERVED_SIZE] = kept.size
            start_response(kept.status, kept.headers)
            return [kept.data]
        stat = self._stat(path)

        answer: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        check = environ.get(SERVED_CHECK)
        if ((stat is None and check is None) or not answer or answer[0][:3] not in ("200", "304")
                or not any(k.lower() == "etag" for k, _ in answer[1])
                or any(k.lower() == "set-cookie" for k, _ in answer[1])):
            return body
        try:
            data = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        if check is not None:  # an answer made from more than a file (a custom feed): the app's test
            if check():
                self._keep(key, _Kept(path, None, check, answer[0], list(answer[1]), data,
                                      environ.get(SERVED_SIZE)))
            return [data]
        served = environ.get(SERVED_FILE)
        if served is not None:  # the app's own word: this file, as it was when it was read
            path, stat = "/" + served[0], served[1]
        if self._stat(path) == stat:
            self._keep(key, _Kept(path, stat, None, answer[0], list(answer[1]), data, environ.get(SERVED_SIZE)))
        return [data]

    def forget(self) -> None:
        """Drop every kept answer (the app's settings changed: a reload)."""
        with self._lock:
            self._answers.clear()

    @property
    def size(self) -> int:
        """Bytes of the answers kept."""
        return self._answers.bytes

    def _keep(self, key: tuple[Any, ...], entry: _Kept) -> None:
        with self._lock:
            self._answers.put(key, entry)


def _answer_size(entry: _Kept) -> int:
    return len(entry.data)


class Server:
    """One granian WSGI worker on a socket bound here: `run()` serves until `close()`, then
    returns once the answers in progress are sent and the connections are closed, or
    DRAIN_TIMEOUT seconds after `close()` at the latest."""

    def __init__(self, app: WSGIApp, sock: socket.socket, threads: int, max_connections: int) -> None:
        self.effective_host, self.effective_port = sock.getsockname()[:2]
        self._max_connections = max_connections
        self._fd = sock.detach()  # granian owns it from here and closes it when it stops
        self._threads = threads
        self._app = app
        self._stop = WorkerSignal()
        self._stopped = threading.Event()
        self._closing = False
        self._closed_at: float | None = None
        self._started = False
        #: drops the answers kept for replay (create_server sets it)
        self.forget: Callable[[], None] = lambda: None
        #: bytes of the answers kept for replay (create_server sets it)
        self.cache_bytes: Callable[[], int] = lambda: 0

    def run(self) -> None:
        if self._closing:
            return
        self._started = True
        http1 = HTTP1Settings(header_read_timeout=HEADER_TIMEOUT * 1000, max_buffer_size=MAX_HEAD_BYTES)
        worker = WSGIWorker(
            1, (None, SocketHolder(self._fd, False, BACKLOG)), None,
            1,                      # Rust runtime threads: parsing and I/O, outside the GIL
            512,                    # Rust blocking threads (file I/O of the runtime; idle here)
            self._threads,          # Python threads running the app
            30,                     # seconds an idle Python thread is kept
            self._max_connections,
            "1", http1, None,       # HTTP/1.1 only (HTTP/2 and TLS are for nginx or a CDN)
            None,                   # no static route: every answer comes from the app
            False, None, None, None, "tls1.3", None, [], False,
            (None, MetricsAggregator(1)),  # no metrics exporter
        )
        # the app runs on granian's Python threads: the asyncio loop is never started
        loop = asyncio.new_event_loop()
        scheduler = _new_cbscheduler(loop, _callback_wrapper(self._app, {}, None))
        self._stop.add_cb(self._stopped.set)  # called once the server has drained
        worker.serve_mtr(scheduler, loop, self._stop)
        # granian waits for every connection to finish, a client halfway through its headers
        # included (up to HEADER_TIMEOUT): after DRAIN_TIMEOUT the rest are left to the exit
        trimmed = time.monotonic()
        while not self._stopped.wait(0.2):  # a timeout, so signal handlers run meanwhile
            now = time.monotonic()
            if self._closed_at is not None and now - self._closed_at > DRAIN_TIMEOUT:
                log.warning("stopping with connections still open after %d s", DRAIN_TIMEOUT)
                break
            if now - trimmed > TRIM_EVERY:
                allocator.trim()
                trimmed = now

    def close(self) -> None:
        """Stop accepting, finish the answers in progress, close every connection; safe to call
        from a signal handler and more than once."""
        if self._closing:
            return
        self._closing = True
        self._closed_at = time.monotonic()
        if self._started:
            self._stop.set()
        else:
            os.close(self._fd)
            self._stopped.set()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; OSError (EADDRINUSE, EADDRNOTAVAIL, ...) when it cannot be had.
    No SO_REUSEPORT: a second server on the same port must fail, not share it."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    return socket.create_server(address[:2], family=family, backlog=BACKLOG)


def create_server(app: WSGIApp, host: str, port: int, threads: int, root: Path,
                  key: Callable[[str], _StatKey | None] | None = None,
                  outer: Callable[[WSGIApp], WSGIApp] | None = None, replay_bytes: int = 16 << 20) -> Server:
    """The server for `app` on host:port (0: any free port, see `effective_port`); raises
    OSError when the address cannot be bound. `key`: see Replay. `outer`: a layer in front of
    all (the access log and metrics), which sees replayed answers too. `replay_bytes`: answers
    kept for replay at most (`file_cache_mb`)."""
    max_connections = min(MAX_CONNECTIONS, max(64, raise_fd_limit() - _RESERVED_FDS))
    sock = _bind(host, port)
    try:
        replay = Replay(app, root, key=key, max_bytes=replay_bytes)
        front = refuse_ambiguous(replay)
        server = Server(outer(front) if outer else front, sock, threads, max_connections)
        server.forget = replay.forget
        server.cache_bytes = lambda: replay.size
        return server
    except BaseException:
        sock.close()
        raise
