"""The web app's HTTP answers, in-process through Flask's test client (fixtures `app` and
`client` in conftest): every published file with its type and validators, 304s, gzip, byte
ranges, 301s, 404s and 405s. What needs the real server process (waitress, keep-alive, raw
request lines, restarts, nginx in front) is in test_serve_process.py.
"""

from __future__ import annotations

import calendar
import email.utils
import gzip
import hashlib
import json
import os
import time
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from syndicator.web import ranges
from tests.conftest import BASE_URL, FEED_VARY, SECRET, TYPES, VARY


@pytest.fixture
def feeds(app: Flask, tmp_path: Path) -> Path:
    """The feeds/ folder `app` serves."""
    return tmp_path / "site" / "feeds"


def published(feeds: Path) -> list[str]:
    """Every file the build published, as URL paths (from the writer's manifest)."""
    files = json.loads((feeds / ".manifest.json").read_text())["files"]
    assert "all.rss" in files and "index.html" in files and any(f.startswith("posts/") for f in files)
    return ["/" + f for f in files]


def no_traceback(body: bytes) -> None:
    assert b"Traceback" not in body and b'File "' not in body and b"werkzeug" not in body.lower()


def get(client: FlaskClient, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> TestResponse:
    return client.open(path, method=method, headers=headers or {})


# -- every published file, as on disk -------------------------------------------------------------

def test_every_file_served_with_type_and_validators(client: FlaskClient, feeds: Path) -> None:
    for path in published(feeds) + ["/"]:
        rel = "index.html" if path == "/" else path[1:]
        on_disk = (feeds / rel).read_bytes()
        resp = get(client, path)
        h = resp.headers
        assert resp.status_code == 200, path
        assert h["Content-Type"] == TYPES[os.path.splitext(rel)[1]], path
        assert resp.data == on_disk and h["Content-Length"] == str(len(on_disk))
        assert h["ETag"] == f'"{hashlib.sha256(on_disk).hexdigest()[:32]}"'  # strong: hash of the bytes
        mtime = int((feeds / rel).stat().st_mtime)
        assert h["Last-Modified"] == email.utils.formatdate(mtime, usegmt=True)
        assert h["Cache-Control"] == "public, max-age=123"
        assert h["Vary"] == VARY[os.path.splitext(rel)[1]], path
        assert h["Accept-Ranges"] == "bytes"
        assert "Content-Encoding" not in h


def test_last_modified_is_when_the_bytes_changed(client: FlaskClient, feeds: Path) -> None:
    """The file's mtime, which the writer stamps when the bytes change: not a date the feed
    shows (the newest item's is years older here), and never later than the answer."""
    resp = get(client, "/all.atom")
    newest = max(calendar.timegm(e.updated_parsed) for e in feedparser.parse(resp.data).entries)
    last_modified = email.utils.parsedate_to_datetime(resp.headers["Last-Modified"]).timestamp()
    assert newest < last_modified <= time.time()
    assert last_modified == int((feeds / "all.atom").stat().st_mtime)


def test_opml_lists_served_feeds(client: FlaskClient) -> None:
    resp = get(client, "/feeds.opml")
    assert resp.status_code == 200 and b"<opml" in resp.data
    assert f"{BASE_URL}all.atom".encode() in resp.data


# -- a feed's URL for a browser and for a reader ---------------------------------------------------

#: What Chromium sends when a person opens a feed's URL (typed, or a link followed).
NAVIGATION = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none",
              "Sec-Fetch-User": "?1", "Upgrade-Insecure-Requests": "1",
              "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
#: Requests that must get the feed: readers (some ask for text/html first), scripts, frames.
NOT_NAVIGATION: list[dict[str, str]] = [
    {},
    {"Accept": "text/html"},
    {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
    {"Accept": "application/rss+xml, application/atom+xml, text/html;q=0.5, */*;q=0.1"},
    {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"},          # fetch() from a page
    {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Mode": "navigate"},     # a frame
    {"Sec-Fetch-Dest": "documentary"},
]


@pytest.mark.parametrize("path", ["/all.rss", "/all.atom", "/all.json", "/topics/ai.rss", "/topics/ai.atom"])
def test_browser_navigation_gets_the_page_readers_get_the_feed(client: FlaskClient, feeds: Path, path: str) -> None:
    feed = (feeds / path[1:]).read_bytes()
    page_rel = path[1:].rsplit(".", 1)[0] + ".html"
    page = (feeds / page_rel).read_bytes()
    resp = get(client, path, NAVIGATION)
    h = resp.headers
    assert resp.status_code == 200 and resp.data == page and h["Content-Type"] == TYPES[".html"]
    assert h["ETag"] == f'"{hashlib.sha256(page).hexdigest()[:32]}"' and h["Vary"] == FEED_VARY
    assert h["Last-Modified"] == email.utils.formatdate(int((feeds / page_rel).stat().st_mtime), usegmt=True)
    assert get(client, path, {**NAVIGATION, "If-None-Match": h["ETag"]}).status_code == 304
    gz = get(client, path, {**NAVIGATION, "Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip" and gzip.decompress(gz.data) == page
    assert get(client, path, {**NAVIGATION, "Sec-Fetch-Dest": "Document"}).data == page
    feed_etag = f'"{hashlib.sha256(feed).hexdigest()[:32]}"'
    for headers in NOT_NAVIGATION:
        resp = get(client, path, headers)
        assert resp.status_code == 200 and resp.data == feed, headers
        assert resp.headers["ETag"] == feed_etag and resp.headers["Vary"] == FEED_VARY, headers
        assert resp.headers["Content-Type"] == TYPES[os.path.splitext(path)[1]]
    # the page's own URL, the index and OPML are what they are, and vary on the encoding only
    for other in ("/" + page_rel, "/", "/feeds.opml"):
        nav, plain_ = get(client, other, NAVIGATION), get(client, other)
        assert nav.data == plain_.data and nav.headers["Vary"] == "Accept-Encoding", other


def test_browser_navigation_to_an_old_feed_url_is_redirected_first(client: FlaskClient) -> None:
    resp = get(client, "/topics/msft-ai.rss", NAVIGATION)
    assert resp.status_code == 301 and resp.headers["Location"] == f"{BASE_URL}topics/microsoft-ai.rss"


# -- conditional requests ---------------------------------------------------------------------------

def test_if_none_match(client: FlaskClient) -> None:
    h = get(client, "/all.rss").headers
    etag, lm = h["ETag"], h["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    for inm in (etag, f'W/{etag}', f'"nope", {etag}', f'"a",W/{etag} , "b"', "*", etag.strip('"')):
        resp = get(client, "/all.rss", {"If-None-Match": inm})
        h304 = resp.headers
        assert resp.status_code == 304, inm
        assert resp.data == b"" and h304["ETag"] == etag and h304["Last-Modified"] == lm
        assert h304["Cache-Control"] == "public, max-age=123" and h304["Vary"] == FEED_VARY
        assert "Content-Type" not in h304 and "Accept-Ranges" not in h304
    # `*` is a wildcard only alone (RFC 9110 13.1.2: "*" / #entity-tag)
    for inm in ('"nope"', 'W/"nope"', etag[:-2] + '"', '"nope", *', ""):
        assert get(client, "/all.rss", {"If-None-Match": inm}).status_code == 200, inm
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2), even when it is empty
    for inm in ('"other"', ""):
        assert get(client, "/all.rss", {"If-None-Match": inm, "If-Modified-Since": lm}).status_code == 200
    assert get(client, "/all.rss", {"If-None-Match": etag}, method="HEAD").status_code == 304


def test_if_modified_since(client: FlaskClient) -> None:
    h = get(client, "/topics/ai.atom").headers
    lm = email.utils.parsedate_to_datetime(h["Last-Modified"]).timestamp()
    later = email.utils.formatdate(time.time(), usegmt=True)  # after Last-Modified, not after now
    earlier = email.utils.formatdate(lm - 1, usegmt=True)
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)  # never a Last-Modified of ours
    assert get(client, "/topics/ai.atom", {"If-Modified-Since": future}).status_code == 200
    for since in (h["Last-Modified"], later):
        resp = get(client, "/topics/ai.atom", {"If-Modified-Since": since})
        assert resp.status_code == 304 and resp.data == b"" and resp.headers["ETag"] == h["ETag"]
    assert get(client, "/topics/ai.atom", {"If-Modified-Since": earlier}).status_code == 200
    for bad in ("garbage", "Sun, 06 Nov 1994 99999999999999999999:49:37 GMT"):
        assert get(client, "/topics/ai.atom", {"If-Modified-Since": bad}).status_code == 200, bad


def test_if_modified_since_reads_all_three_http_date_formats(client: FlaskClient) -> None:
    """RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms (no zone: UTC)."""
    h = get(client, "/all.json").headers
    when = email.utils.parsedate_to_datetime(h["Last-Modified"])
    rfc850, asctime = when.strftime("%A, %d-%b-%y %H:%M:%S GMT"), when.strftime("%a %b %e %H:%M:%S %Y")
    for since in (h["Last-Modified"], rfc850, asctime):
        assert get(client, "/all.json", {"If-Modified-Since": since}).status_code == 304, since


def test_head_has_headers_and_no_body(client: FlaskClient) -> None:
    g = get(client, "/all.json")
    resp = get(client, "/all.json", method="HEAD")
    assert resp.status_code == 200 and resp.data == b""
    for k in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control", "Vary", "Accept-Ranges"):
        assert resp.headers[k] == g.headers[k], k
    assert int(resp.headers["Content-Length"]) == len(g.data)


# -- compression ------------------------------------------------------------------------------------

def test_gzip_from_precompressed_twin(client: FlaskClient, feeds: Path) -> None:
    plain = get(client, "/all.atom")
    body = plain.data
    resp = get(client, "/all.atom", {"Accept-Encoding": "br, gzip;q=0.8, deflate"})
    h, gz = resp.headers, resp.data
    assert resp.status_code == 200 and h["Content-Encoding"] == "gzip" and h["Vary"] == FEED_VARY
    assert gzip.decompress(gz) == body
    assert gz == (feeds / "all.atom.gz").read_bytes()  # the twin nginx gzip_static serves
    assert h["Content-Type"] == plain.headers["Content-Type"] and h["Content-Length"] == str(len(gz))
    assert h["ETag"] != plain.headers["ETag"] and h["ETag"].startswith('"')
    assert h["Last-Modified"] == plain.headers["Last-Modified"]
    assert "Accept-Ranges" not in h  # as nginx's gzip_static: ranges are of the identity bytes only
    # 304 with the gzip ETag, and with the identity one (same bytes underneath)
    r304 = get(client, "/all.atom", {"Accept-Encoding": "gzip", "If-None-Match": h["ETag"]})
    assert r304.status_code == 304 and r304.data == b"" and r304.headers["ETag"] == h["ETag"]
    r304 = get(client, "/all.atom", {"Accept-Encoding": "gzip", "If-None-Match": plain.headers["ETag"]})
    assert r304.status_code == 304 and r304.headers["ETag"] == plain.headers["ETag"]
    # not accepted → identity (an explicit q=0 beats `*`; an invalid q drops its item)
    for ae in ("gzip;q=0", "identity", "br", "*;q=0", "gzip;q=0, *", "*, gzip;q=0", "gzip;q=abc", "gzip;q=2"):
        r = get(client, "/all.atom", {"Accept-Encoding": ae})
        assert r.status_code == 200 and "Content-Encoding" not in r.headers and r.data == body, ae
    for ae in ("*", "x-gzip", "GZIP", "gzip;q=0.001", "identity;q=0.5, *;q=0.1"):
        assert get(client, "/all.atom", {"Accept-Encoding": ae}).headers.get("Content-Encoding") == "gzip", ae
    r = get(client, "/", {"Accept-Encoding": "gzip"}, method="HEAD")
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip" and r.data == b""


# -- byte ranges ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "span"), [
    ("bytes=0-9", (0, 10)),
    ("bytes=0-0", (0, 1)),
    ("bytes=-5", (-5, None)),
    ("bytes=-99999999", (0, None)),  # a suffix longer than the file is the file (RFC 9110 14.1.3)
    ("bytes=10-", (10, None)),
    ("bytes=0-99999999", (0, None)),
    ("BYTES= 0 - 9 ", (0, 10)),
    ("bytes=00-09", (0, 10)),
    ("bytes=0-1,99999999-", (0, 2)),  # unsatisfiable ranges next to satisfiable ones are dropped
    ("bytes=1-0,2-3", (2, 4)),
])
def test_single_range_is_206(client: FlaskClient, header: str, span: tuple[int, int | None]) -> None:
    data = get(client, "/all.rss").data
    start, end, _ = slice(*span).indices(len(data))
    resp = get(client, "/all.rss", {"Range": header})
    assert resp.status_code == 206, header
    assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(data)}"
    assert resp.data == data[start:end] and resp.headers["Content-Length"] == str(end - start)
    assert resp.headers["Content-Type"] == TYPES[".rss"] and "Accept-Ranges" not in resp.headers
    for k in ("ETag", "Last-Modified", "Cache-Control", "Vary"):
        assert k in resp.headers


def test_several_ranges_are_multipart_in_the_order_asked(client: FlaskClient) -> None:
    whole = get(client, "/all.rss")
    data, etag = whole.data, whole.headers["ETag"]
    for header, spans in (("bytes=5-6,0-1", [(5, 7), (0, 2)]), ("bytes=0-5, 3-8", [(0, 6), (3, 9)])):
        resp = get(client, "/all.rss", {"Range": header})
        assert resp.status_code == 206 and "Content-Range" not in resp.headers
        boundary = etag.strip('"')
        assert resp.headers["Content-Type"] == f"multipart/byteranges; boundary={boundary}"
        expected = b"".join(
            f"\r\n--{boundary}\r\nContent-Type: {TYPES['.rss']}\r\nContent-Range: bytes {a}-{b - 1}/{len(data)}"
            f"\r\n\r\n".encode() + data[a:b] for a, b in spans) + f"\r\n--{boundary}--\r\n".encode()
        assert resp.data == expected and resp.headers["Content-Length"] == str(len(expected))


@pytest.mark.parametrize("header", [
    "items=0-5",  # a unit we do not know is ignored (RFC 9110 14.2)
    "bytes =0-9",
    "bytes=0-,0-",  # ranges adding up to more than the file: nginx sends it whole
    "bytes=",
])
def test_range_ignored_whole_file(client: FlaskClient, header: str) -> None:
    data = get(client, "/all.rss").data
    resp = get(client, "/all.rss", {"Range": header})
    assert resp.status_code == 200 and resp.data == data and resp.headers["Accept-Ranges"] == "bytes", header


@pytest.mark.parametrize("header", [
    "bytes=99999999-", "bytes=-0", "bytes=5-2", "bytes=abc", "bytes=0-1,,2-3", "bytes=0-9,x", "bytes=\t0-9",
    "bytes=+1-2", "bytes=-", "bytes=0--1", "bytes=0-1,", "bytes=99999999999999999999-", "bytes=- 5",
])
def test_unsatisfiable_range_is_416(client: FlaskClient, header: str) -> None:
    length = len(get(client, "/all.rss").data)
    for method in ("GET", "HEAD"):
        resp = get(client, "/all.rss", {"Range": header}, method=method)
        assert resp.status_code == 416, header
        assert resp.headers["Content-Range"] == f"bytes */{length}"
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-store"  # it answers this Range only
        no_traceback(resp.data)


def test_if_range(client: FlaskClient) -> None:
    whole = get(client, "/all.rss")
    etag, lm = whole.headers["ETag"], whole.headers["Last-Modified"]
    when = email.utils.parsedate_to_datetime(lm)
    gz_etag = get(client, "/all.rss", {"Accept-Encoding": "gzip"}).headers["ETag"]
    for if_range in (etag, lm, when.strftime("%A, %d-%b-%y %H:%M:%S GMT")):
        assert get(client, "/all.rss", {"Range": "bytes=0-9", "If-Range": if_range}).status_code == 206, if_range
    later = email.utils.formatdate(when.timestamp() + 1, usegmt=True)
    # strong comparison: a weak tag never matches; a date must be Last-Modified exactly
    for if_range in (f"W/{etag}", '"x"', gz_etag, later, "garbage", ""):
        resp = get(client, "/all.rss", {"Range": "bytes=0-9", "If-Range": if_range})
        assert resp.status_code == 200 and resp.data == whole.data, if_range
    assert get(client, "/all.rss", {"Range": "bytes=99999999-", "If-Range": '"x"'}).status_code == 200
    assert get(client, "/all.rss", {"If-Range": '"x"'}).status_code == 200


def test_validators_come_before_ranges(client: FlaskClient) -> None:
    """RFC 9110 13.2.2: If-None-Match, then If-Modified-Since, then If-Range and Range."""
    h = get(client, "/all.rss").headers
    for cond in ({"If-None-Match": h["ETag"]}, {"If-Modified-Since": h["Last-Modified"]}):
        assert get(client, "/all.rss", {"Range": "bytes=0-9", **cond}).status_code == 304
        assert get(client, "/all.rss", {"Range": "bytes=99999999-", **cond}).status_code == 304
    assert get(client, "/all.rss", {"Range": "bytes=0-9", "If-None-Match": '"zz"'}).status_code == 206


def test_range_with_gzip_is_the_whole_gzip_file(client: FlaskClient, feeds: Path) -> None:
    for header in ("bytes=0-9", "bytes=99999999-", "bytes=0-1,4-5"):
        resp = get(client, "/all.rss", {"Range": header, "Accept-Encoding": "gzip"})
        assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip", header
        assert resp.data == (feeds / "all.rss.gz").read_bytes()
        assert "Content-Range" not in resp.headers and "Accept-Ranges" not in resp.headers
    resp = get(client, "/all.rss", {"Range": "bytes=0-9", "Accept-Encoding": "gzip;q=0"})
    assert resp.status_code == 206 and "Content-Encoding" not in resp.headers


def test_head_range_has_headers_and_no_body(client: FlaskClient) -> None:
    length = len(get(client, "/all.rss").data)
    resp = get(client, "/all.rss", {"Range": "bytes=0-9"}, method="HEAD")
    assert resp.status_code == 206 and resp.data == b""
    assert resp.headers["Content-Range"] == f"bytes 0-9/{length}" and resp.headers["Content-Length"] == "10"


@pytest.mark.parametrize(("header", "length", "spans"), [
    ("bytes=0-", 0, None),  # an empty file is sent whole
    ("bytes=-5", 0, None),
    ("bytes=5-", 0, []),
    ("bytes=0-9223372036854775807", 10, [(0, 10)]),
    ("bytes=0-9223372036854775808", 10, []),  # past nginx's largest offset
    ("bytes=9223372036854775807-", 10, []),
    ("bytes=0000000000000000000000001-2", 10, [(1, 3)]),
    ("bytes=-10", 10, [(0, 10)]),
    ("bytes=0-4,5-9", 10, [(0, 5), (5, 10)]),
    ("bytes=0-5,5-9", 10, None),
])
def test_requested_spans(header: str, length: int, spans: list[tuple[int, int]] | None) -> None:
    got = ranges.requested(header, length)
    assert (None if got is None else [(s.start, s.end) for s in got]) == spans


# -- redirects -----------------------------------------------------------------------------------

def test_topic_alias_redirects(client: FlaskClient) -> None:
    for fmt in ("rss", "atom", "json"):
        for old, new in (("msft-ai", "microsoft-ai"), ("azure-cloud", "azure")):
            resp = get(client, f"/topics/{old}.{fmt}")
            assert resp.status_code == 301, (old, fmt)
            assert resp.headers["Location"] == f"{BASE_URL}topics/{new}.{fmt}"
            assert resp.headers["Cache-Control"] == "public, max-age=123"
            no_traceback(resp.data)
            assert get(client, f"/topics/{new}.{fmt}").status_code == 200
    assert get(client, "/topics/msft-ai.rss", method="HEAD").status_code == 301


def test_persisted_renamed_slug_redirects(client: FlaskClient, feeds: Path) -> None:
    table = {"redirects": {"topics/old-ai": "topics/older-ai", "topics/older-ai": "topics/ai",
                           "topics/gone": "topics/nowhere", "topics/loop-a": "topics/loop-b",
                           "topics/loop-b": "topics/loop-a"}}
    path = feeds / ".redirects.json"
    path.write_text(json.dumps(table))
    resp = get(client, "/topics/old-ai.json")
    assert resp.status_code == 301 and resp.headers["Location"] == f"{BASE_URL}topics/ai.json"  # one hop
    assert get(client, "/topics/gone.rss").status_code == 404  # target does not exist
    assert get(client, "/topics/loop-a.rss").status_code == 404
    assert get(client, "/.redirects.json").status_code == 404
    path.unlink()
    assert get(client, "/topics/old-ai.json").status_code == 404  # the map is re-read when it changes


def test_redirects_record_keeps_aliases(tmp_path: Path) -> None:
    from syndicator import redirects
    from syndicator.publishers.directory import DirectoryPublisher

    publisher = DirectoryPublisher(tmp_path)

    def record(aliases: dict[str, str], stems: list[str]) -> dict[str, str]:
        table = redirects.updated(publisher.redirects(), aliases, stems)
        publisher.save_redirects(table)
        return table

    assert record({"A.I.": "AI", "ai": "AI"}, ["all", "topics/ai"]) == {"topics/a-i": "topics/ai"}
    # later the alias is gone from the config: the redirect stays; a slug used by a live feed is dropped
    assert record({}, ["all", "topics/ai"]) == {"topics/a-i": "topics/ai"}
    assert record({}, ["all", "topics/ai", "topics/a-i"]) == {}
    assert redirects.load(tmp_path) == {}


# -- errors ----------------------------------------------------------------------------------------

def test_unknown_paths_are_plain_404(client: FlaskClient) -> None:
    for path in ("/nope", "/topics/nope.rss", "/all.xml", "/all", "/topics/", "/topics", "/posts/",
                 "/all.rss.gz", "/index.html.gz", "/.manifest.json", "/topics/.ai.rss", "/all.rss/",
                 "/index.htm", "/favicon.png", "/robots.txt.gz", "/all.rss;x", "/%E6%99%BA.rss"):
        resp = get(client, path)
        assert resp.status_code == 404, path
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
        no_traceback(resp.data)
        assert get(client, path, method="HEAD").data == b""


def test_methods_other_than_get_head_405(client: FlaskClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"):
        for path in ("/all.rss", "/", "/healthz", "/nope"):
            resp = client.open(path, method=method, data=b"x=1")
            assert resp.status_code == 405, (method, path)
            assert {m.strip() for m in resp.headers["Allow"].split(",")} == {"GET", "HEAD"}
            no_traceback(resp.data)


def test_symlink_out_of_feeds_not_followed(client: FlaskClient, feeds: Path) -> None:
    secret = feeds.parent / "secret.rss"
    secret.write_bytes(SECRET)
    (feeds / "topics" / "evil.rss").symlink_to(secret)
    resp = get(client, "/topics/evil.rss")
    assert resp.status_code == 404 and SECRET not in resp.data


def test_crash_is_a_plain_500(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(rel: str) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.extensions["syndicator"].files, "get", broken)
    resp = get(client, "/all.rss")
    assert resp.status_code == 500 and resp.headers["Cache-Control"] == "no-store"
    no_traceback(resp.data)


# -- health ----------------------------------------------------------------------------------------

def test_healthz_without_a_daemon(client: FlaskClient) -> None:
    resp = get(client, "/healthz")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-store" and json.loads(resp.data) == {"status": "ok"}
