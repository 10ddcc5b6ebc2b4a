"""Which representation a request gets and whether the client's copy is still current.

RFC 9110 section 13.2.2 order: If-None-Match when present (weak comparison, lists, `*`),
otherwise If-Modified-Since; If-Range (strong comparison) only decides whether a Range is
honoured. Werkzeug parses the headers; where its ready-made answer differs from RFC 9110 or
from nginx, the reason is given next to the code that does it here instead.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from flask import Request, Response
from werkzeug.http import parse_accept_header, parse_date

from syndicator.web.files import Entry


# Werkzeug's parse costs 4-8 us per request (about a tenth of the app's own time for a 304);
# feed readers send a handful of distinct Accept-Encoding values, so a lookup costs 0.1 us.
@lru_cache(maxsize=256)
def accepts_gzip(header: str | None) -> bool:
    """True when Accept-Encoding allows gzip with q > 0, by name or through `*`.

    `Accept` sorts named codings before `*`, so `gzip;q=0, *` refuses gzip; `x-gzip` is read
    as gzip (RFC 9110 section 8.4.1.3). Items with an invalid q (`q=abc`, `q=1.5`) are
    skipped, as RFC 9110 section 12.4.2 allows."""
    if not header:
        return False
    return parse_accept_header(header.lower().replace("x-gzip", "gzip"))["gzip"] > 0


def current_etag(request: Request, entry: Entry, etag: str) -> str | None:
    """The ETag a 304 carries when the client's copy is current, None when it is not.

    `etag` is the one of the encoding being served; a client holding the other encoding's
    tag gets that tag back (same bytes underneath, and it is the validator it holds).
    `Response.make_conditional` is not used: it knows one ETag per response."""
    if "If-None-Match" in request.headers:  # it wins over If-Modified-Since, even when empty
        held = request.if_none_match
        if held.star_tag:
            return etag
        for tag in (etag, entry.etag, entry.gz_etag):
            if held.contains_weak(tag[1:-1]):
                return tag
        return None
    try:
        since = request.if_modified_since
        # a date later than now is no Last-Modified we sent (RFC 9110 13.1.3 calls it invalid): a
        # file stamped ahead of a clock that was then set back must not answer 304 until then
        unchanged = since is not None and entry.mtime <= since.timestamp() <= time.time()
    except OverflowError:  # email.utils on an hour of 20 digits
        unchanged = False
    return etag if unchanged else None


def if_range_holds(header: str | None, entry: Entry) -> bool:
    """True when a Range may be honoured: no If-Range, or one naming the identity bytes served.

    An entity tag must equal the ETag exactly (RFC 9110 section 13.1.5: strong comparison, so
    a `W/` tag never matches), a date must equal Last-Modified, as nginx checks them.
    `request.if_range` is not used: it drops the `W/` of a weak tag, and `make_conditional`
    accepts any date at or after Last-Modified."""
    if header is None:
        return True
    if header.endswith('"'):
        return header == entry.etag
    try:
        date = parse_date(header)
        return date is not None and date.timestamp() == entry.mtime
    except OverflowError:
        return False


class NotModified(Response):
    """A 304 that keeps Last-Modified (Werkzeug drops it as an 'entity header'; caches expect
    the validators the 200 would have carried)."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(status=304, headers=headers)

    def get_wsgi_headers(self, environ: Any) -> Any:
        headers = super().get_wsgi_headers(environ)
        headers["Last-Modified"] = self.headers["Last-Modified"]
        headers.pop("Content-Type", None)
        return headers
