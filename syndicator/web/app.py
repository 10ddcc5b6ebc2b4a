"""The Flask app: one blueprint that answers every URL from the files under feeds/.

The answers are those nginx gives for the same tree with contrib/nginx.conf (files with
their types, gzip twins, validators and ranges), plus what nginx passes on to us: 301s for
old feed URLs, plain-text 404s and 405s, /healthz, and never a traceback. The blueprint
reads its per-app state from `current_app.extensions`, so the factory can build several
apps (a test's and the daemon's) in one process.

A feed's URL opened in a browser answers with the feed's page (`all.rss` → `all.html`), every
other client gets the feed's bytes. The choice is made on `Sec-Fetch-Dest: document`, which
browsers send on a top-level navigation (typing the address, following a link) and on nothing
else: not on fetch()/XMLHttpRequest (`empty`), frames (`iframe`) or images, and no feed reader
sends it. It is never made on `Accept`: readers ask for `text/html` too (with `*/*` or as a
fallback), and a reader handed HTML loses the feed. Mode `navigate` comes with every
`document` destination, so it adds nothing to decide on and the one header is what feed
answers `Vary` on, beside Accept-Encoding, for caches in between.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol, cast

from flask import Blueprint, Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from syndicator import formats, redirects, urls, websub
from syndicator.config import Settings
from syndicator.pipeline.catalog import Catalog
from syndicator.web import clients, conditional, ranges
from syndicator.web.conditional import NotModified, accepts_gzip
from syndicator.web.custom import CustomFeeds, asks_custom
from syndicator.web.files import Entry, FileCache, safe_rel
from syndicator.websub.hub import Hub

log = logging.getLogger("syndicator.web")

ALLOWED = "GET, HEAD"
_EXTENSION = "syndicator"

bp = Blueprint("feeds", __name__)
_ROUTE: dict[str, Any] = {"methods": ["GET", "HEAD"], "provide_automatic_options": False}


class Redirects:
    """Old feed stems → canonical ones: topic aliases from the settings over the persisted map
    in feeds/.redirects.json, which is re-read when its stat changes."""

    def __init__(self, root: Path, aliases: Mapping[str, str],
                 source: Callable[[], Mapping[str, str]] | None = None) -> None:
        self._root = root
        #: the persisted map from elsewhere than feeds/ (a web node's copy of the database's)
        self._source = source
        self._aliases = redirects.from_aliases(aliases)
        # (stat key of the file, merged table), swapped as one value so threads never see a mix
        self._seen: tuple[object, dict[str, str]] = (None, dict(self._aliases))

    def target(self, rel: str) -> str | None:
        """The canonical path a feed path redirects to, None when it does not redirect."""
        stem, ext = os.path.splitext(rel)
        if ext not in formats.FEED_EXTENSIONS:
            return None
        canonical = redirects.resolve(self._table(), stem)
        return None if canonical is None else canonical + ext

    def slug(self, slug: str) -> str:
        """The topic slug `slug` redirects to (itself when it does not)."""
        stem = redirects.resolve(self._table(), urls.topic_stem(slug))
        return (urls.topic_of_stem(stem) or slug) if stem is not None else slug

    def _table(self) -> dict[str, str]:
        if self._source is not None:
            return {**self._source(), **self._aliases}
        try:
            st = os.stat(self._root / redirects.REDIRECTS)
            key: object = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            key = None
        seen, table = self._seen
        if key != seen:
            table = {**(redirects.load(self._root) if key else {}), **self._aliases}
            self._seen = (key, table)
        return table


class Files(Protocol):
    """Where the published outputs are read from: feeds/ (FileCache) or a web node's copy of the
    database's (web/published.py)."""

    def get(self, rel: str) -> Entry | None: ...


@dataclass(frozen=True, slots=True)
class Site:
    """What the views of one app serve."""

    files: Files
    redirects: Redirects
    cache_control: str
    base_url: str
    #: WebSub hubs: feeds (not archive pages) name them and themselves in Link headers
    hubs: tuple[str, ...]
    status: Callable[[], dict[str, Any]] | None
    #: who sees /healthz's details, and whose X-Forwarded-For names the client
    status_networks: clients.Networks
    trusted_proxies: clients.Networks
    #: topic combinations and filters (None: not answered)
    custom: CustomFeeds | None
    #: our own WebSub hub (websub_hubs: [self]), which takes POSTs at /hub
    hub: Hub | None = None
    #: the `redirects` setting: old path -> path of ours
    moved: Mapping[str, str] = field(default_factory=dict)
    #: True while a service's first pass is writing the files: one not there yet is a 503
    starting: Callable[[], bool] | None = None


#: Bytes of a subscription request at most (a few URLs and a secret).
MAX_HUB_REQUEST = 16 * 1024


def create_app(settings: Settings, status: Callable[[], dict[str, Any]] | None = None,
               catalog: Callable[[], Catalog | None] | None = None, hub: Hub | None = None,
               files: Files | None = None, redirect_table: Callable[[], Mapping[str, str]] | None = None,
               starting: Callable[[], bool] | None = None) -> Flask:
    """The app serving `settings.feeds_dir` (or `files`, with the persisted redirects from
    `redirect_table`); `status` returns the /healthz document (the daemon passes its own);
    `catalog` the builder's last Catalog, for custom feeds; `hub` answers WebSub subscription
    requests."""
    app = Flask("syndicator")
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    root = Path(os.path.realpath(settings.feeds_dir))
    table = Redirects(root, settings.topic_aliases, redirect_table)
    app.extensions[_EXTENSION] = Site(
        files=files if files is not None else FileCache(root, settings.file_cache_mb << 20),
        redirects=table,
        cache_control=f"public, max-age={settings.cache_max_age}",
        base_url=settings.base_url,
        hubs=websub.advertised(settings),
        status=status,
        status_networks=clients.networks(settings.status_networks),
        trusted_proxies=clients.networks(settings.trusted_proxies),
        custom=CustomFeeds(settings, catalog, table.slug) if catalog is not None and settings.custom_feeds else None,
        moved=settings.redirects,
        hub=hub,
        starting=starting,
    )
    app.register_blueprint(bp)
    app.wsgi_app = _gate(app, app.wsgi_app)  # type: ignore[method-assign]
    return app


#: The gate's answer to a custom feed that cannot be rendered now (see CustomFeeds.refuses).
_BUSY = b"Busy: too many custom feeds are being made; try again\n"
_BUSY_HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_BUSY))),
                 ("Retry-After", "1"), ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]


def _gate(app: Flask, wsgi: Callable[..., Any]) -> Callable[..., Any]:
    """In front of Flask: a custom feed that would be rendered while the renders are at their
    bound is answered 503 here, before routing (see web/custom.py), so a flood of distinct
    queries costs little more than the files served beside it."""

    def gate(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        custom = cast(Site, app.extensions[_EXTENSION]).custom
        if custom is not None and custom.saturated() and custom.refuses(
                environ.get("PATH_INFO", "")[1:], environ.get("QUERY_STRING", ""),
                wants_page(environ.get("HTTP_SEC_FETCH_DEST"))):
            start_response("503 Service Unavailable", list(_BUSY_HEADERS))
            return [b"" if environ["REQUEST_METHOD"] == "HEAD" else _BUSY]
        return wsgi(environ, start_response)

    return gate


def reconfigure(app: Flask, fresh: Flask) -> None:
    """Answer from now on as `fresh` (the same app made with reloaded settings) would."""
    app.extensions[_EXTENSION] = fresh.extensions[_EXTENSION]


def files_cached(app: Flask) -> int:
    """Bytes of published files `app` keeps in memory (see files.FileCache)."""
    return int(getattr(cast(Site, app.extensions[_EXTENSION]).files, "size", 0))


def _site() -> Site:
    return cast(Site, current_app.extensions[_EXTENSION])


#: Seconds a monitor or load balancer is asked to wait before asking again when not ok.
RETRY_AFTER = 5


@bp.route("/healthz", **_ROUTE)
def healthz() -> Response:
    """200 when ok, 503 (with Retry-After) when starting or degraded, so a load balancer or
    monitor reads the state from the code. The details (reason, errors with their paths,
    counts) go to clients in `status_networks` only; others get the status alone."""
    site = _site()
    doc = site.status() if site.status else {"status": "ok"}
    if site.custom is not None:
        doc = {**doc, "custom_feeds": site.custom.stats()}
    if not clients.within(clients.parse(client_address(site)), site.status_networks):
        doc = {"status": doc["status"]}
    ok = doc["status"] == "ok"
    resp = Response(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", status=200 if ok else 503,
                    content_type="application/json; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    if not ok:
        resp.headers["Retry-After"] = str(RETRY_AFTER)
    return resp


def client_address(site: Site) -> str:
    """The client of this request (see clients.client)."""
    return clients.client(request.remote_addr or "", request.headers.get("X-Forwarded-For"), site.trusted_proxies)


@bp.route("/" + urls.PATHS["hub"], methods=["POST"])
def hub() -> Response:
    """WebSub subscription requests (form-encoded), when our own hub runs."""
    site = _site()
    if site.hub is None:
        return plain(405, "Method Not Allowed", {"Allow": ALLOWED})
    if (request.content_length or 0) > MAX_HUB_REQUEST:
        return plain(413, "Request too large")
    request.max_content_length = MAX_HUB_REQUEST
    status, text = site.hub.request({k: v for k, v in request.form.items()})
    resp = plain(status, text)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/", **_ROUTE)
def index() -> Response:
    return _serve(_site(), urls.INDEX)


@bp.route("/<path:rel>", **_ROUTE)
def files(rel: str) -> Response:
    # the converter already decoded %2F and friends: judge the raw path as sent, too
    safe = safe_rel(request.path)
    if safe is None or safe != rel:
        moved = _elsewhere(_site(), request.path)
        return moved if moved is not None else plain(404, "Not found")
    return _serve(_site(), safe)


#: What feed answers vary on: the encoding, and whether a browser navigated to the URL.
FEED_VARY = "Accept-Encoding, Sec-Fetch-Dest"
#: The WSGI environ key where the app leaves (path, stat key) of the file an answer was made
#: from (the feed's page for a browser), for the server's replay of answers to check.
SERVED_FILE = "syndicator.served_file"
#: Where the app leaves, for an answer made from more than one file (a custom feed), a function
#: that says whether the answer still stands.
SERVED_CHECK = "syndicator.served_check"
#: Where the app leaves the size of that file's (or custom feed's) bytes, for the metrics of
#: bytes saved
SERVED_SIZE = "syndicator.served_size"


def wants_page(dest: str | None) -> bool:
    """True for a browser's top-level navigation, given its `Sec-Fetch-Dest` (see the module
    docstring)."""
    return dest is not None and dest.strip().lower() == "document"


def _serve(site: Site, rel: str) -> Response:
    if site.custom is not None and request.args and asks_custom(request.args):
        made = _custom(site, rel)
        if made is not None:
            return made
    entry = site.files.get(rel)
    is_feed = entry is not None and rel.endswith(formats.FEED_EXTENSIONS)
    if is_feed and wants_page(request.headers.get("Sec-Fetch-Dest")):
        page = urls.page_of_feed(rel)
        page_entry = site.files.get(page) if page else None
        if page is not None and page_entry is not None:
            rel, entry = page, page_entry
    if entry is None:
        target = site.redirects.target(rel)
        if target is None or site.files.get(target) is None:
            made = _custom(site, rel) if site.custom is not None else None
            if made is None:
                made = _elsewhere(site, rel)
            return made if made is not None else _missing(site)
        return _moved(site, site.base_url + target)
    request.environ[SERVED_FILE] = (rel, entry.key)
    request.environ[SERVED_SIZE] = len(entry.data)
    return _answer(site, rel, entry, is_feed)


def _missing(site: Site) -> Response:
    """404; while the first pass writes the files, 503 with Retry-After (it may be next)."""
    if site.starting is not None and site.starting():
        return plain(503, "Starting: the feeds are being written or loaded; try again shortly",
                     {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"})
    return plain(404, "Not found")


def _elsewhere(site: Site, path: str) -> Response | None:
    """A 301 for a URL that is not ours but stands for one of our files: the `redirects`
    setting's, then another feed tool's (`redirects.known`); None when the target is not
    published (a topic that does not exist here) or `path` is neither."""
    rel = path.strip("/")
    target = site.moved.get(rel) or redirects.known(rel)
    hops = 0
    while target is not None and target in site.moved and hops < redirects.MAX_HOPS:
        target, hops = site.moved[target], hops + 1
    if target is not None and site.files.get(target) is None and target.endswith(formats.FEED_EXTENSIONS):
        target = site.redirects.target(target)  # a topic's former slug, an alias
    if target is None or site.files.get(target) is None:
        return None
    return _moved(site, site.base_url + target)


def _moved(site: Site, location: str) -> Response:
    return plain(301, f"Moved permanently to {location}", {"Location": location, "Cache-Control": site.cache_control})


def _custom(site: Site, rel: str) -> Response | None:
    """A custom feed's answer (see web/custom.py), None when `rel` names none."""
    assert site.custom is not None
    args = request.args.to_dict(flat=False)
    made = site.custom.answer(rel, args, request.query_string.decode("latin-1"),
                              lambda r: site.files.get(r) is not None,
                              page=wants_page(request.headers.get("Sec-Fetch-Dest")))
    if made is None:
        return None
    if made.entry is not None:
        if made.check is not None:
            request.environ[SERVED_CHECK] = made.check
        request.environ[SERVED_SIZE] = len(made.entry.data)
        return _answer(site, rel, made.entry, True, custom=True)
    if made.location is not None:
        return _moved(site, made.location)
    headers = {"Retry-After": str(made.retry_after)} if made.retry_after else {}
    return plain(made.status, made.message, headers)


def _answer(site: Site, rel: str, entry: Entry, is_feed: bool, custom: bool = False) -> Response:
    """A file's answer (or a custom feed's or its page's, which have no archive and name no hub)."""
    use_gz = accepts_gzip(request.headers.get("Accept-Encoding"))
    headers = {
        "ETag": entry.gz_etag if use_gz else entry.etag,
        # never later than the answer's Date (RFC 9110 8.8.2.1): a stamp may run ahead of the clock
        "Last-Modified": entry.last_modified if entry.mtime <= time.time() else formatdate(usegmt=True),
        "Cache-Control": _cache_control(site, rel, entry),
        "Vary": FEED_VARY if is_feed else "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if site.hubs and not custom and rel.endswith(formats.FEED_EXTENSIONS) and urls.archive_page(rel) is None:
        headers["Link"] = ", ".join([*(f'<{hub}>; rel="hub"' for hub in site.hubs),
                                     f'<{site.base_url}{rel}>; rel="self"'])
    held = conditional.current_etag(request, entry, headers["ETag"])
    if held is not None:
        headers["ETag"] = held
        return NotModified(headers)
    if use_gz:  # a Range is not applied to gzip bytes, as with nginx's gzip_static
        headers["Content-Encoding"] = "gzip"
        return Response(entry.gz, status=200, headers=headers, content_type=entry.content_type)
    return _identity(entry, headers)


#: An archive page that a newer one follows: it changes only if one of its items is edited
#: (RFC 5005 archive documents are meant to be stable; readers fetch each about once).
IMMUTABLE = "public, max-age=31536000, immutable"
#: A page's link to the next newer archive page (RSS and Atom links, the JSON extension); the
#: newest page links the feed itself instead.
_SUPERSEDED = re.compile(rb'rel="next-archive"[^>]*? href="[^"]*/archive/\d+\.|"next_archive": "[^"]*/archive/\d+\.')


def _cache_control(site: Site, rel: str, entry: Entry) -> str:
    """Archive pages are cached for good once they link a newer page; the newest one still
    gains that link, so it is cached as the feeds are. Decided from the bytes alone, as the
    server's replay of answers requires."""
    if urls.archive_page(rel) is not None and _SUPERSEDED.search(entry.data):
        return IMMUTABLE
    return site.cache_control


def _identity(entry: Entry, headers: dict[str, str]) -> Response:
    """The identity bytes: whole (200), in part (206) or not at all (416)."""
    spans = None
    header = request.headers.get("Range")
    if header is not None and conditional.if_range_holds(request.headers.get("If-Range"), entry):
        spans = ranges.requested(header, len(entry.data))
    if spans is None:
        headers["Accept-Ranges"] = "bytes"
        return Response(entry.data, status=200, headers=headers, content_type=entry.content_type)
    if not spans:
        # not stored by caches (nginx sends no Cache-Control either): it answers one Range only
        return plain(416, "Range not satisfiable", {"Content-Range": ranges.unsatisfiable(len(entry.data)),
                                                    "Cache-Control": "no-store", "Vary": headers["Vary"]})
    return ranges.partial(entry, spans, headers)


def plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    """A short text/plain answer (errors, redirects): cached a minute, except server errors."""
    body = (text.rstrip("\n") + "\n").encode()
    resp = Response(body, status=status, content_type="text/plain; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store" if status >= 500 else "public, max-age=60"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


@bp.app_errorhandler(HTTPException)
def http_error(e: HTTPException) -> Response:
    code = e.code or 500
    headers = {"Allow": ALLOWED} if code == 405 else {}
    return plain(code, f"{e.name}", headers)


@bp.app_errorhandler(Exception)
def crash(e: Exception) -> Response:
    log.exception("error serving %s %s", request.method, request.path)
    return plain(500, "Internal server error")
