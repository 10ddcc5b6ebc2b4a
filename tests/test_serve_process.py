"""End to end: the real `syndicator serve` process on 127.0.0.1 and real HTTP clients, for what
needs the server itself: feedparser over HTTP, keep-alive after 304s, the bytes on the wire,
raw request lines (traversal, NULs), /healthz of the running daemon, restarts, and nginx with
contrib/nginx.conf in front of the same feeds/. The app's HTTP answers are tested in-process
in test_serve.py.

One server (module scope) on a temp copy of seeds/ plus one bad post, with a topic alias and
cache_max_age 123; the restart test starts its own.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from tests.conftest import ALIASES, BAD_POST, SECRET, TYPES, VARY
from tests.serverproc import ServerProcess, nginx_binary, nginx_in_front

HAVE_NGINX = bool(shutil.which("nginx") or Path("/usr/sbin/nginx").exists())


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("serve")
    server = ServerProcess(work, config={"topic_aliases": ALIASES}, env={"SYNDICATOR_CACHE_MAX_AGE": "123"})
    (server.seeds_dir / "zz_bad.txt").write_text(BAD_POST, encoding="utf-8")
    (work / "secret.rss").write_bytes(SECRET)  # beside feeds/, must never be served
    with server:
        yield server
    assert server.proc is not None and server.proc.returncode == 0, server.log()


@pytest.fixture(scope="module")
def nginx(srv: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """nginx with contrib/nginx.conf on srv's feeds/ (srv as its upstream), as an HTTP client."""
    if not HAVE_NGINX:
        pytest.skip("nginx is not installed")
    with nginx_in_front(srv, tmp_path_factory.mktemp("nginx")) as client:
        yield client


def published(srv: ServerProcess) -> list[str]:
    """Every file the build published, as URL paths (from the writer's manifest)."""
    files = json.loads((srv.feeds_dir / ".manifest.json").read_text())["files"]
    assert "all.rss" in files and "index.html" in files and any(f.startswith("posts/") for f in files)
    return ["/" + f for f in files]


def feed_paths(srv: ServerProcess) -> list[str]:
    return [p for p in published(srv) if p.endswith((".rss", ".atom", ".json"))]


def no_traceback(body: bytes) -> None:
    assert b"Traceback" not in body and b'File "' not in body and b"werkzeug" not in body.lower()


# -- real clients over HTTP ---------------------------------------------------------------------

def test_feedparser_reads_every_feed_url(srv: ServerProcess) -> None:
    paths = feed_paths(srv)
    assert len(paths) >= 3 * 5
    for path in paths:
        if path.endswith(".json"):  # feedparser 6 has no JSON Feed parser: check it as JSON Feed 1.1
            status, h, body = srv.request("GET", path)
            doc = json.loads(body)
            assert status == 200 and doc["version"] == "https://jsonfeed.org/version/1.1"
            assert doc["feed_url"] == srv.url(path) and doc["items"], path
            continue
        parsed = feedparser.parse(srv.url(path))
        assert parsed.get("status") == 200, path
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.entries, path
        # the reader got gzip (feedparser asks for it) and the served type
        assert parsed.headers.get("content-encoding") == "gzip"
        assert parsed.headers["content-type"] == TYPES[os.path.splitext(path)[1]]


def test_304_keeps_the_connection_open(srv: ServerProcess) -> None:
    """Readers revalidate many feeds over one keep-alive connection: a 304 must not close it."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request("GET", "/all.atom", headers={"Accept-Encoding": "gzip"})
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        for _ in range(3):
            revalidate = {"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}
            conn.request("GET", "/all.atom", headers=revalidate)
            resp = conn.getresponse()
            assert resp.status == 304 and resp.read() == b"" and resp.headers.get("Connection") != "close"
            assert conn.sock is sock  # same TCP connection
        conn.request("GET", "/topics/ai.rss")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() and conn.sock is sock
    finally:
        conn.close()


def test_head_on_the_wire_has_no_body(srv: ServerProcess) -> None:
    raw = srv.raw(f"HEAD /all.json HTTP/1.1\r\nHost: {srv.host}\r\nConnection: close\r\n\r\n".encode())
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and rest == b""


# -- raw request lines ------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/../secret.rss", "/../../../../etc/passwd", "/topics/../../secret.rss",
    "/%2e%2e/secret.rss", "/%2E%2E/%2E%2E/etc/passwd", "/..%2fsecret.rss", "/topics%2f..%2f..%2fsecret.rss",
    "/topics/..%2F..%2Fsecret.rss", "/..%5csecret.rss", "/..\\secret.rss", "/topics\\..\\..\\secret.rss",
    "//etc/passwd", "///etc/passwd", "/%2fetc%2fpasswd", "/etc/passwd", "/C:/Windows/win.ini",
    "/all.rss%00.html", "/%00", "/topics/%00../../secret.rss", "/%c0%ae%c0%ae/secret.rss",
    "/.%2e/secret.rss", "/topics/./../../secret.rss", "/./all.rss",
    "http://127.0.0.1/../secret.rss",
])
def test_traversal_never_escapes(srv: ServerProcess, target: str) -> None:
    raw = srv.raw(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
    status = int(raw.split(b" ", 2)[1])
    assert status in (400, 404), (target, raw[:200])
    assert SECRET not in raw and b"root:" not in raw
    no_traceback(raw)


def test_raw_nul_and_garbage_request_lines(srv: ServerProcess) -> None:
    for line in (b"GET /all.rss\x00 HTTP/1.1", b"GET /\x00/../secret.rss HTTP/1.1", b"GET \\..\\secret.rss HTTP/1.1",
                 b"GET ../secret.rss HTTP/1.1", b"BREW /all.rss HTTP/1.1"):
        raw = srv.raw(line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 4"), (line, raw[:100])
        assert SECRET not in raw
        no_traceback(raw)


# -- health ----------------------------------------------------------------------------------------

def test_healthz(srv: ServerProcess) -> None:
    status, h, body = srv.request("GET", "/healthz")
    assert status == 503 and h["Retry-After"].isdigit()  # degraded: not 200, which only ok gets
    assert h["Content-Type"].startswith("application/json")
    assert h["Cache-Control"] == "no-store"
    doc = json.loads(body)
    assert doc["status"] == "degraded"  # the bad post
    assert doc["last_build"] and doc["posts"] == 4 and doc["feeds"] == len(feed_paths(srv))
    assert any(e["path"].endswith("zz_bad.txt") and e["message"] for e in doc["errors"])


# -- across rebuilds and restarts -------------------------------------------------------------------

def test_etags_stable_across_restarts_and_change_with_bytes(tmp_path: Path) -> None:
    paths = ["/all.rss", "/all.atom", "/all.json", "/topics/zhitongcaijingwang.atom", "/topics/facebook-ai.rss", "/"]
    server = ServerProcess(tmp_path, port=None)
    with server:
        first = {p: server.request("GET", p)[1] for p in paths}
        port = server.port
    assert server.proc.returncode == 0  # SIGTERM → clean exit 0
    # restart (a rebuild of the same seeds, same port): byte-identical files keep ETag and Last-Modified
    server = ServerProcess(tmp_path, port=port)
    with server:
        for p in paths:
            _, h, _ = server.request("GET", p)
            assert (h["ETag"], h["Last-Modified"]) == (first[p]["ETag"], first[p]["Last-Modified"]), p
            assert server.request("GET", p, {"If-None-Match": first[p]["ETag"]})[0] == 304
    # change one post's title (not its date): feeds that show it get a new ETag, the others keep theirs
    post = tmp_path / "seeds" / "000_7e8a7cf94ba4d3cc.txt"
    post.write_text(post.read_text().replace("Meta Taps Latest", "Meta Taps Newest"))
    server = ServerProcess(tmp_path, port=port)
    with server:
        for p in ("/all.rss", "/topics/facebook-ai.rss"):
            status, h, body = server.request("GET", p, {"If-None-Match": first[p]["ETag"]})
            assert status == 200 and b"Meta Taps Newest" in body and h["ETag"] != first[p]["ETag"], p
        _, h, _ = server.request("GET", "/topics/zhitongcaijingwang.atom")
        assert h["ETag"] == first["/topics/zhitongcaijingwang.atom"]["ETag"]



# -- contrib/nginx.conf on the same feeds/ ----------------------------------------------------------

def test_contrib_nginx_conf_serves_the_same_urls(srv: ServerProcess, nginx: ServerProcess) -> None:
    ngx = nginx
    for path in published(srv):
        status, h, body = ngx.request("GET", path)
        assert status == 200 and h["Content-Type"] == TYPES[os.path.splitext(path)[1]], path
        assert body == srv.request("GET", path)[2]
        assert h["Cache-Control"] == "public, max-age=300" and h["Vary"] == VARY[os.path.splitext(path)[1]], path
    status, h, gz = ngx.request("GET", "/all.rss", {"Accept-Encoding": "gzip"})
    assert h["Content-Encoding"] == "gzip" and gz == (srv.feeds_dir / "all.rss.gz").read_bytes()
    assert ngx.request("GET", "/all.rss", {"If-None-Match": h["ETag"], "Accept-Encoding": "gzip"})[0] == 304
    assert ngx.request("GET", "/all.rss", {"If-Modified-Since": h["Last-Modified"]})[0] == 304
    for path in ("/.manifest.json", "/all.rss.gz", "/nope", "/topics/"):
        assert ngx.request("GET", path)[0] == 404, path
    status, h, _ = ngx.request("POST", "/all.rss", body=b"x")
    assert status == 405 and h["Allow"] == "GET, HEAD"
    status, h, _ = ngx.request("GET", "/topics/msft-ai.atom")  # passed to syndicator
    assert status == 301 and h["Location"] == srv.url("/topics/microsoft-ai.atom")
    assert json.loads(ngx.request("GET", "/healthz")[2])["posts"] == 4
    # custom feeds are syndicator's: combinations, and a file's URL with filter parameters
    for path in ("/topics/ai,azure.atom", "/all.rss?filter=Azure&limit=1", "/topics/ai.json?lang=en"):
        status, h, body = ngx.request("GET", path)
        assert status == 200 and body == srv.request("GET", path)[2] and h["ETag"], path
    assert ngx.request("GET", "/all.rss?utm_source=x")[2] == (srv.feeds_dir / "all.rss").read_bytes()
    status, h, body = ngx.request("GET", "/all.rss?filter=(a")
    assert status == 400 and b"missing )" in body
    assert ngx.request("GET", "/topics/azure+ai.rss")[1]["Location"] == srv.url("/topics/ai+azure.rss")
    raw = ngx.raw(b"GET /../secret.rss HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 4") and SECRET not in raw


#: Range requests sent to both servers: {etag} and {gz_etag} become each server's own ETags
#: (nginx's are mtime-size), {lm} the Last-Modified both send.
RANGE_REQUESTS: list[dict[str, str]] = [
    *({"Range": r} for r in (
        "bytes=0-9", "bytes=0-0", "bytes=-5", "bytes=-99999999", "bytes=10-", "bytes=99999999-", "bytes=0-99999999",
        "bytes=5-2", "bytes=-0", "items=0-5", "bytes =0-9", "BYTES= 0 - 9 ", "bytes=00-09", "bytes=", "bytes=abc",
        "bytes=+1-2", "bytes=-", "bytes=0--1", "bytes=\t0-9", "bytes=- 5", "bytes=0-1,", "bytes=0-1,,2-3",
        "bytes=0-9,x", "bytes=0-1,99999999-", "bytes=99999999-,99999998-", "bytes=1-0,2-3", "bytes=0-1,4-5",
        "bytes=5-6,0-1", "bytes=0-5,3-8", "bytes=0-,0-", "bytes=0-9223372036854775807",
        "bytes=0-9223372036854775808", "bytes=99999999999999999999-")),
    *({"Range": "bytes=0-9", "If-Range": v} for v in (
        "{etag}", "W/{etag}", '"x"', "{lm}", "Thu, 01 Jan 1970 00:00:00 GMT", "garbage", "")),
    {"Range": "bytes=99999999-", "If-Range": '"x"'},
    {"If-Range": '"x"'},
    {"Range": "bytes=0-9", "If-None-Match": "{etag}"},
    {"Range": "bytes=0-9", "If-None-Match": '"x"'},
    {"Range": "bytes=0-9", "If-Modified-Since": "{lm}"},
    {"Range": "bytes=0-9", "Accept-Encoding": "gzip"},
    {"Range": "bytes=99999999-", "Accept-Encoding": "gzip"},
    {"Range": "bytes=0-1,4-5", "Accept-Encoding": "gzip", "If-Range": "{gz_etag}"},
    {"Range": "bytes=0-9", "Accept-Encoding": "gzip;q=0"},
    {"Range": "bytes=0-9", "Accept-Encoding": "gzip", "If-None-Match": "{gz_etag}"},
]


def _answer(server: ServerProcess, method: str, path: str, template: dict[str, str]) -> tuple[object, ...]:
    """What must match between the servers: status, range and encoding headers, length and body.

    Left out: a multipart boundary (nginx numbers its boundaries, we use the file's hash, so
    the lengths differ too), the body of a 416 (nginx's is an HTML page) and of a page
    compressed on the fly (nginx compresses pages with no twin itself)."""
    _, plain, _ = server.request("GET", path)
    _, gz, _ = server.request("GET", path, {"Accept-Encoding": "gzip"})
    values = {"{etag}": plain["ETag"], "{gz_etag}": gz.get("ETag", ""), "{lm}": plain["Last-Modified"]}
    headers = {k: re.sub(r"\{\w+\}", lambda m: values[m.group()], v) for k, v in template.items()}
    status, h, body = server.request(method, path, headers)
    content_type, length = h.get("Content-Type", ""), h.get("Content-Length")
    boundary = content_type.partition("boundary=")[2]
    if boundary:
        body, content_type, length = body.replace(boundary.encode(), b"B"), content_type.replace(boundary, "B"), None
    if status == 416 or (h.get("Content-Encoding") == "gzip" and path.endswith(".html")):
        body, length = b"", None
    return (status, h.get("Content-Range"), h.get("Accept-Ranges"), h.get("Content-Encoding"),
            content_type if status == 206 else None, length, body)


def test_ranges_answered_as_nginx_answers_them(srv: ServerProcess, nginx: ServerProcess) -> None:
    pages = [p for p in published(srv) if p.startswith("/posts/")]
    for path in ("/all.rss", "/topics/ai.json", pages[0]):
        for method in ("GET", "HEAD"):
            for template in RANGE_REQUESTS:
                ours, theirs = _answer(srv, method, path, template), _answer(nginx, method, path, template)
                assert ours == theirs, (method, path, template)


# -- Last-Modified for clients that revalidate by date alone -----------------------------------------

OLD_POST = "---\ntitle: Backdated\ndate: 2001-01-01 10:00\n---\n\nOld news.\n"
AHEAD_POST = "---\ntitle: Ahead\ndate: 2099-01-01 10:00\n---\n\nFrom the future.\n"


@pytest.mark.parametrize("case", ["delete", "backdated", "dated-2099"])
def test_if_modified_since_alone_sees_every_change(tmp_path: Path, case: str) -> None:
    """Last-Modified moves whenever the bytes move and is never in the future, so a reader that
    revalidates with If-Modified-Since alone (no ETag) sees a deleted post (not the newest), a
    backdated post and a post dated 2099, and is not pinned to 2099 after it goes: from `serve`
    and from nginx on the same files."""
    server = ServerProcess(tmp_path, config={"scan_interval": 0.5})
    seeds = server.seeds_dir
    with server, contextlib.ExitStack() as fronts:
        clients = [server]
        if nginx_binary() is not None:
            clients.append(fronts.enter_context(nginx_in_front(server, tmp_path)))
        def titles() -> set[str]:
            return {i["title"] for i in json.loads(server.request("GET", "/all.json")[2])["items"]}

        def change(edit, done) -> None:  # type: ignore[no-untyped-def]
            seen = {c.port: c.request("GET", "/all.rss")[1]["Last-Modified"] for c in clients}
            etag = server.request("GET", "/all.rss")[1]["ETag"]
            time.sleep(1.05)  # a new second: Last-Modified is whole seconds, the stamp then is now
            edit()
            deadline = time.monotonic() + 10
            # the pass has written all.rss too (it writes one file after another)
            while not done(titles()) or server.request("GET", "/all.rss")[1]["ETag"] == etag:
                assert time.monotonic() < deadline, "the change was not published"
                time.sleep(0.05)
            for c in clients:
                status, h, _ = c.request("GET", "/all.rss", {"If-Modified-Since": seen[c.port]})
                assert status == 200, (c.port, seen[c.port], h["Last-Modified"])
                last_modified = email.utils.parsedate_to_datetime(h["Last-Modified"]).timestamp()
                assert last_modified <= email.utils.parsedate_to_datetime(h["Date"]).timestamp() <= time.time()
                assert c.request("GET", "/all.rss", {"If-Modified-Since": h["Last-Modified"]})[0] == 304

        if case == "delete":  # the feed's newest date stays, its bytes do not
            gone = next(t for t in titles() if t.startswith("Meta Taps"))
            change(lambda: (seeds / "000_7e8a7cf94ba4d3cc.txt").unlink(), lambda t: gone not in t)
        elif case == "backdated":
            change(lambda: (seeds / "old.md").write_text(OLD_POST, encoding="utf-8"), lambda t: "Backdated" in t)
        else:
            change(lambda: (seeds / "ahead.md").write_text(AHEAD_POST, encoding="utf-8"), lambda t: "Ahead" in t)
            change(lambda: (seeds / "ahead.md").unlink(), lambda t: "Ahead" not in t)
