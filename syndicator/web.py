"""The Flask app that serves feeds/ with the same URL layout as on disk (the one module that
imports Flask).

Every answer comes from the files the writer left under `settings.feeds_dir` -- the same tree
nginx would serve (contrib/nginx.conf) -- through a small in-memory cache of bytes, ETags and
gzip bytes keyed by the file's stat, so a poll costs one stat() and a dict lookup.

- strong ETag = hash of the bytes (stable across rebuilds and restarts), Last-Modified = the
  file's mtime (the writer stamps it when the bytes change), never later than now, 304 on
  If-None-Match (lists, `*`, W/ weak comparison) or, without it, If-Modified-Since (a date
  later than now is ignored: it was never ours, or the clock went back); HEAD has no body;
- the precompressed `.gz` twin when the client accepts gzip (ETag suffixed `-gzip`);
- 301 from topic aliases and renamed slugs (syndicator.redirects) to the canonical URL;
- only GET and HEAD (405 with Allow otherwise), plain-text 404 for anything that is not a
  published file (dotfiles, `.gz`, traversal), never a traceback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as statmod
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from syndicator import formats, redirects, urls
from syndicator.compress import gunzip, gzip_bytes
from syndicator.config import Settings

log = logging.getLogger("syndicator.web")

#: Extension → Content-Type of the files that are published; nothing else is served.
CONTENT_TYPES = formats.CONTENT_TYPES
FEED_FORMATS = formats.FEED_EXTENSIONS
ALLOWED = "GET, HEAD"
#: Files above this size are not kept in memory (feeds are tens of KB).
MAX_CACHED_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One file as served: identity and gzip bytes with their validators."""

    key: tuple[int, int, int, int]
    data: bytes
    etag: str
    gz: bytes
    gz_etag: str
    last_modified: str
    mtime: int
    content_type: str


class FileCache:
    """Bytes and ETags of files under `root`, keyed by (path, size, mtime_ns, inode, ctime_ns):
    an atomic rename by the writer changes the inode, so a new file is never mistaken for the
    old one even when its size and mtime happen to match."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def get(self, rel: str) -> Entry | None:
        path = os.path.join(self.root, rel)
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        if not statmod.S_ISREG(st.st_mode):
            return None
        key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        entry = self._entries.get(rel)
        if entry is not None and entry.key == key:
            return entry
        entry = self._load(rel, path, key, st.st_mtime)
        if entry is not None and st.st_size <= MAX_CACHED_BYTES:
            with self._lock:
                self._entries[rel] = entry
        return entry

    def _load(self, rel: str, path: str, key: tuple[int, int, int, int], mtime: float) -> Entry | None:
        if not _inside(self.root, path):  # a symlink pointing out of feeds/
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) != key[0]:  # replaced while reading: do not cache a torn pair
            key = (-1, -1, -1, -1)
        gz = _read_twin(path + ".gz", data, self.root)
        digest = hashlib.sha256(data).hexdigest()[:32]
        ext = os.path.splitext(rel)[1]
        return Entry(key=key, data=data, etag=f'"{digest}"', gz=gz, gz_etag=f'"{digest}-gzip"',
                     last_modified=formatdate(int(mtime), usegmt=True), mtime=int(mtime),
                     content_type=CONTENT_TYPES[ext])


def _inside(root: Path, path: str) -> bool:
    real = os.path.realpath(path)
    return os.path.commonpath([str(root), real]) == str(root)


def _read_twin(gz_path: str, data: bytes, root: Path) -> bytes:
    """The precompressed twin when it holds exactly these bytes, else a fresh compression
    (a twin can lag its file for an instant while the writer replaces both)."""
    try:
        if _inside(root, gz_path):
            with open(gz_path, "rb") as f:
                gz = f.read()
            if gunzip(gz) == data:
                return gz
    except (OSError, ValueError):
        pass
    return gzip_bytes(data)


def safe_rel(path: str) -> str | None:
    """The relative file path for a URL path, or None when it is not one we could publish:
    no empty, `.`/`..` or dot-prefixed segments, no backslashes, NULs, colons or `.gz`."""
    if path in ("", "/"):
        return urls.INDEX
    if not path.startswith("/"):
        return None
    rel = path[1:]
    if any(c in rel for c in "\\\x00:") or any(ord(c) < 0x20 for c in rel):
        return None
    parts = rel.split("/")
    if any(not p or p.startswith(".") for p in parts):
        return None
    if os.path.splitext(rel)[1] not in CONTENT_TYPES:
        return None
    return rel


def _etags(header: str) -> list[str]:
    """Entity tags of an If-None-Match list (weakness stripped: RFC 9110 weak comparison)."""
    tags, rest = [], header.strip()
    while rest:
        rest = rest.lstrip(" \t,")
        if not rest:
            break
        if rest.startswith("*"):
            tags.append("*")
            rest = rest[1:]
            continue
        if rest.startswith("W/"):
            rest = rest[2:]
        if rest.startswith('"'):
            end = rest.find('"', 1)
            if end < 0:
                break
            tags.append(rest[: end + 1])
            rest = rest[end + 1:]
        else:  # an unquoted tag from a sloppy client: take it up to the next comma
            token, _, rest = rest.partition(",")
            tags.append(f'"{token.strip()}"')
    return tags


def accepts_gzip(header: str | None) -> bool:
    """True when Accept-Encoding allows gzip (explicitly or via `*`) with q > 0."""
    if not header:
        return False
    star = None
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            k, _, v = param.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if name in ("gzip", "x-gzip"):
            return q > 0
        if name == "*":
            star = q > 0
    return bool(star)


def _not_modified_since(header: str, mtime: int, now: float) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    if since is None or since.tzinfo is None:
        return False
    # a date later than now is no Last-Modified we sent since (RFC 2616 calls it invalid): a
    # file stamped ahead of a clock that was then set back must not answer 304 until then
    return mtime <= since.timestamp() <= now


class _NotModified(Response):
    """A 304 that keeps Last-Modified (Werkzeug drops it as an 'entity header'; caches expect
    the validators the 200 would have carried)."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(status=304, headers=headers)

    def get_wsgi_headers(self, environ: Any) -> Any:
        headers = super().get_wsgi_headers(environ)
        headers["Last-Modified"] = self.headers["Last-Modified"]
        headers.pop("Content-Type", None)
        return headers


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    body = (text.rstrip("\n") + "\n").encode()
    resp = Response(body, status=status, content_type="text/plain; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store" if status >= 500 else "public, max-age=60"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def create_app(settings: Settings, status: Callable[[], dict[str, Any]] | None = None) -> Flask:
    """`status` returns the /healthz document (the daemon passes its own)."""
    app = Flask("syndicator")
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    root = Path(os.path.realpath(settings.feeds_dir))
    cache = FileCache(root)
    cache_control = f"public, max-age={settings.cache_max_age}"
    alias_map = redirects.from_aliases(settings.topic_aliases)
    persisted: dict[str, Any] = {"key": None, "table": {}}
    base_url = settings.base_url

    def redirect_table() -> dict[str, str]:
        try:
            st = os.stat(root / redirects.REDIRECTS)
            key: Any = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            key = None
        if key != persisted["key"]:
            persisted["table"] = redirects.load(root) if key else {}
            persisted["key"] = key
        return {**persisted["table"], **alias_map}

    def serve(rel: str) -> Response:
        entry = cache.get(rel)
        if entry is None:
            stem, ext = os.path.splitext(rel)
            if ext in FEED_FORMATS:
                target = redirects.resolve(redirect_table(), stem)
                if target is not None and cache.get(target + ext) is not None:
                    return _plain(301, f"Moved permanently to {base_url}{target}{ext}",
                                  {"Location": f"{base_url}{target}{ext}", "Cache-Control": cache_control})
            return _plain(404, "Not found")
        use_gz = accepts_gzip(request.headers.get("Accept-Encoding"))
        etag = entry.gz_etag if use_gz else entry.etag
        now = time.time()
        headers = {
            "ETag": etag,
            # never later than the answer's Date (RFC 9110 8.8.2.1): a stamp may run ahead
            "Last-Modified": entry.last_modified if entry.mtime <= now else formatdate(int(now), usegmt=True),
            "Cache-Control": cache_control,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        inm = request.headers.get("If-None-Match")
        if inm is not None:
            tags = _etags(inm)
            matched = next((t for t in tags if t in ("*", entry.etag, entry.gz_etag)), None)
            not_modified = matched is not None
            if matched in (entry.etag, entry.gz_etag):
                headers["ETag"] = matched  # the validator the client holds is the current one
        else:
            ims = request.headers.get("If-Modified-Since")
            not_modified = ims is not None and _not_modified_since(ims, entry.mtime, now)
        if not_modified:
            return _NotModified(headers)
        body = entry.gz if use_gz else entry.data
        resp = Response(body, status=200, headers=headers, content_type=entry.content_type)
        if use_gz:
            resp.headers["Content-Encoding"] = "gzip"
        return resp

    @app.route("/healthz", methods=["GET", "HEAD"], provide_automatic_options=False)
    def healthz() -> Any:
        doc = status() if status else {"status": "ok"}
        resp = Response(json.dumps(doc, ensure_ascii=False, indent=1) + "\n",
                        content_type="application/json; charset=utf-8")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.route("/", methods=["GET", "HEAD"], provide_automatic_options=False)
    def index() -> Any:
        return serve(urls.INDEX)

    @app.route("/<path:rel>", methods=["GET", "HEAD"], provide_automatic_options=False)
    def files(rel: str) -> Any:
        # the converter already decoded %2F and friends: judge the raw path as sent, too
        safe = safe_rel(request.path)
        if safe is None or safe != rel:
            return _plain(404, "Not found")
        return serve(safe)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        code = e.code or 500
        headers = {"Allow": ALLOWED} if code == 405 else {}
        return _plain(code, f"{e.name}", headers)

    @app.errorhandler(Exception)
    def crash(e: Exception) -> Response:
        log.exception("error serving %s %s", request.method, request.path)
        return _plain(500, "Internal server error")

    return app


def keep_alive_without_body(server: Any) -> Any:
    """Make a waitress server keep HTTP/1.1 connections open after 304 (and 204) answers.

    waitress 3.0 closes the connection after any response without Content-Length, bodyless
    ones included (and drops the Content-Length a 304 may carry), so every revalidation by a
    feed reader polling over keep-alive cost a new TCP connection. A 304 has no body, so no
    framing is needed: keep the connection unless the client asked to close it."""
    from waitress.channel import HTTPChannel
    from waitress.server import BaseWSGIServer
    from waitress.task import WSGITask

    class Task(WSGITask):
        _keep = False

        def build_response_header(self) -> bytes:
            self._keep = (not self.has_body and self.version == "1.1" and not self.close_on_finish
                          and self.request.headers.get("CONNECTION", "").lower() != "close")
            try:
                return super().build_response_header()
            finally:
                self._keep = False

        def set_close_on_finish(self) -> None:
            if not self._keep:
                super().set_close_on_finish()

    class Channel(HTTPChannel):
        task_class = Task

    for dispatcher in [server, *getattr(server, "map", {}).values()]:
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = Channel
    return server
