"""End to end: the real `syndicator serve` process on 127.0.0.1, a real HTTP client, no mocks.

One server (module scope) on a temp copy of seeds/ plus one bad post, with a topic alias and
cache_max_age 123; the restart test starts its own.
"""

from __future__ import annotations

import calendar
import email.utils
import gzip
import hashlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import feedparser
import pytest

from tests.serverproc import ROOT, ServerProcess

TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
BAD_POST = "---\ntitle: [unclosed\npublishedDateTime: 2022-05-25T22:19:00Z\n---\n"
ALIASES = {"MSFT AI": "Microsoft AI", "Azure Cloud": "Azure"}
SECRET = b"SECRET-OUTSIDE-FEEDS"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("serve")
    server = ServerProcess(work, config={"topic_aliases": ALIASES}, env={"SYNDICATOR_CACHE_MAX_AGE": "123"})
    (server.seeds_dir / "zz_bad.txt").write_text(BAD_POST, encoding="utf-8")
    (work / "secret.rss").write_bytes(SECRET)  # beside feeds/, must never be served
    with server:
        yield server
    assert server.proc is not None and server.proc.returncode == 0, server.log()


def published(srv: ServerProcess) -> list[str]:
    """Every file the build published, as URL paths (from the writer's manifest)."""
    files = json.loads((srv.feeds_dir / ".manifest.json").read_text())["files"]
    assert "all.rss" in files and "index.html" in files and any(f.startswith("posts/") for f in files)
    return ["/" + f for f in files]


def feed_paths(srv: ServerProcess) -> list[str]:
    return [p for p in published(srv) if p.endswith((".rss", ".atom", ".json"))]


def no_traceback(body: bytes) -> None:
    assert b"Traceback" not in body and b'File "' not in body and b"werkzeug" not in body.lower()


# -- every published file, as on disk -------------------------------------------------------------

def test_every_file_served_with_type_and_validators(srv: ServerProcess) -> None:
    for path in published(srv) + ["/"]:
        rel = "index.html" if path == "/" else path[1:]
        on_disk = (srv.feeds_dir / rel).read_bytes()
        status, h, body = srv.request("GET", path)
        assert status == 200, path
        assert h["Content-Type"] == TYPES[os.path.splitext(rel)[1]], path
        assert body == on_disk and h["Content-Length"] == str(len(on_disk))
        assert h["ETag"] == f'"{hashlib.sha256(on_disk).hexdigest()[:32]}"'  # strong: hash of the bytes
        mtime = int((srv.feeds_dir / rel).stat().st_mtime)
        assert h["Last-Modified"] == email.utils.formatdate(mtime, usegmt=True)
        assert h["Cache-Control"] == "public, max-age=123"
        assert h["Vary"] == "Accept-Encoding"
        assert "Content-Encoding" not in h


def test_last_modified_is_when_the_bytes_changed(srv: ServerProcess) -> None:
    """The file's mtime, which the writer stamps when the bytes change: not a date the feed
    shows (the newest item's is years older here), and never later than the answer."""
    _, h, body = srv.request("GET", "/all.atom")
    newest = max(calendar.timegm(e.updated_parsed) for e in feedparser.parse(body).entries)
    last_modified = email.utils.parsedate_to_datetime(h["Last-Modified"]).timestamp()
    assert newest < last_modified <= email.utils.parsedate_to_datetime(h["Date"]).timestamp()
    assert last_modified == int((srv.feeds_dir / "all.atom").stat().st_mtime)


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


def test_opml_lists_served_feeds(srv: ServerProcess) -> None:
    status, h, body = srv.request("GET", "/feeds.opml")
    assert status == 200 and b"<opml" in body
    assert srv.url("/all.atom").encode() in body


# -- conditional requests ---------------------------------------------------------------------------

def test_if_none_match(srv: ServerProcess) -> None:
    _, h, _ = srv.request("GET", "/all.rss")
    etag, lm = h["ETag"], h["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    for inm in (etag, f'W/{etag}', f'"nope", {etag}', f'"a",W/{etag} , "b"', "*"):
        status, h304, body = srv.request("GET", "/all.rss", {"If-None-Match": inm})
        assert status == 304, inm
        assert body == b"" and h304["ETag"] == etag and h304["Last-Modified"] == lm
        assert h304["Cache-Control"] == "public, max-age=123" and h304["Vary"] == "Accept-Encoding"
    for inm in ('"nope"', 'W/"nope"', etag[:-2] + '"'):
        assert srv.request("GET", "/all.rss", {"If-None-Match": inm})[0] == 200, inm
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    assert srv.request("GET", "/all.rss", {"If-None-Match": '"other"', "If-Modified-Since": lm})[0] == 200
    assert srv.request("HEAD", "/all.rss", {"If-None-Match": etag})[0] == 304


def test_304_keeps_the_connection_open(srv: ServerProcess) -> None:
    """Readers revalidate many feeds over one keep-alive connection: a 304 must not close it."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request("GET", "/all.atom", headers={"Accept-Encoding": "gzip"})
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        for _ in range(3):
            conn.request("GET", "/all.atom",
                         headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]})
            resp = conn.getresponse()
            assert resp.status == 304 and resp.read() == b"" and resp.headers.get("Connection") != "close"
            assert conn.sock is sock  # same TCP connection
        conn.request("GET", "/topics/ai.rss")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() and conn.sock is sock
    finally:
        conn.close()


def test_if_modified_since(srv: ServerProcess) -> None:
    _, h, _ = srv.request("GET", "/topics/ai.atom")
    lm = email.utils.parsedate_to_datetime(h["Last-Modified"]).timestamp()
    later = email.utils.formatdate(time.time(), usegmt=True)  # after Last-Modified, not after now
    earlier = email.utils.formatdate(lm - 1, usegmt=True)
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)  # never a Last-Modified of ours
    for since in (h["Last-Modified"], later):
        status, h304, body = srv.request("GET", "/topics/ai.atom", {"If-Modified-Since": since})
        assert status == 304 and body == b"" and h304["ETag"] == h["ETag"]
    assert srv.request("GET", "/topics/ai.atom", {"If-Modified-Since": earlier})[0] == 200
    assert srv.request("GET", "/topics/ai.atom", {"If-Modified-Since": future})[0] == 200
    assert srv.request("GET", "/topics/ai.atom", {"If-Modified-Since": "garbage"})[0] == 200


def test_head_has_headers_and_no_body(srv: ServerProcess) -> None:
    _, g, body = srv.request("GET", "/all.json")
    status, h, _ = srv.request("HEAD", "/all.json")
    assert status == 200
    for k in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control", "Vary"):
        assert h[k] == g[k], k
    assert int(h["Content-Length"]) == len(body)
    # on the wire: nothing after the header block
    raw = srv.raw(f"HEAD /all.json HTTP/1.1\r\nHost: {srv.host}\r\nConnection: close\r\n\r\n".encode())
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and rest == b""


# -- compression ------------------------------------------------------------------------------------

def test_gzip_from_precompressed_twin(srv: ServerProcess) -> None:
    _, plain, body = srv.request("GET", "/all.atom")
    status, h, gz = srv.request("GET", "/all.atom", {"Accept-Encoding": "br, gzip;q=0.8, deflate"})
    assert status == 200 and h["Content-Encoding"] == "gzip" and h["Vary"] == "Accept-Encoding"
    assert gzip.decompress(gz) == body
    assert gz == (srv.feeds_dir / "all.atom.gz").read_bytes()  # the twin nginx gzip_static serves
    assert h["Content-Type"] == plain["Content-Type"] and h["Content-Length"] == str(len(gz))
    assert h["ETag"] != plain["ETag"] and h["ETag"].startswith('"') and h["Last-Modified"] == plain["Last-Modified"]
    # 304 with the gzip ETag, and with the identity one (same bytes underneath)
    s304, h304, b304 = srv.request("GET", "/all.atom", {"Accept-Encoding": "gzip", "If-None-Match": h["ETag"]})
    assert s304 == 304 and b304 == b"" and h304["ETag"] == h["ETag"]
    assert srv.request("GET", "/all.atom", {"Accept-Encoding": "gzip", "If-None-Match": plain["ETag"]})[0] == 304
    # not accepted → identity
    for ae in ("gzip;q=0", "identity", "br", "*;q=0"):
        s, h2, b2 = srv.request("GET", "/all.atom", {"Accept-Encoding": ae})
        assert s == 200 and "Content-Encoding" not in h2 and b2 == body, ae
    s, h3, _ = srv.request("GET", "/all.atom", {"Accept-Encoding": "*"})
    assert h3["Content-Encoding"] == "gzip"
    s, h4, b4 = srv.request("HEAD", "/", {"Accept-Encoding": "gzip"})
    assert s == 200 and h4["Content-Encoding"] == "gzip" and b4 == b""


# -- redirects -----------------------------------------------------------------------------------

def test_topic_alias_redirects(srv: ServerProcess) -> None:
    for fmt in ("rss", "atom", "json"):
        for old, new in (("msft-ai", "microsoft-ai"), ("azure-cloud", "azure")):
            status, h, body = srv.request("GET", f"/topics/{old}.{fmt}")
            assert status == 301, (old, fmt)
            assert h["Location"] == srv.url(f"/topics/{new}.{fmt}")
            no_traceback(body)
            assert srv.request("GET", f"/topics/{new}.{fmt}")[0] == 200
    assert srv.request("HEAD", "/topics/msft-ai.rss")[0] == 301


def test_persisted_renamed_slug_redirects(srv: ServerProcess) -> None:
    table = {"redirects": {"topics/old-ai": "topics/older-ai", "topics/older-ai": "topics/ai",
                           "topics/gone": "topics/nowhere", "topics/loop-a": "topics/loop-b",
                           "topics/loop-b": "topics/loop-a"}}
    path = srv.feeds_dir / ".redirects.json"
    path.write_text(json.dumps(table))
    try:
        status, h, _ = srv.request("GET", "/topics/old-ai.json")
        assert status == 301 and h["Location"] == srv.url("/topics/ai.json")  # chain followed in one hop
        assert srv.request("GET", "/topics/gone.rss")[0] == 404  # target does not exist
        assert srv.request("GET", "/topics/loop-a.rss")[0] == 404
        assert srv.request("GET", "/.redirects.json")[0] == 404
    finally:
        path.unlink()
    assert srv.request("GET", "/topics/old-ai.json")[0] == 404  # the map is re-read when it changes


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

def test_unknown_paths_are_plain_404(srv: ServerProcess) -> None:
    for path in ("/nope", "/topics/nope.rss", "/all.xml", "/all", "/topics/", "/topics", "/posts/",
                 "/all.rss.gz", "/index.html.gz", "/.manifest.json", "/topics/.ai.rss", "/all.rss/",
                 "/index.htm", "/favicon.ico", "/robots.txt", "/all.rss;x", "/%E6%99%BA.rss"):
        status, h, body = srv.request("GET", path)
        assert status == 404, path
        assert h["Content-Type"] == "text/plain; charset=utf-8"
        no_traceback(body)
        assert srv.request("HEAD", path)[2] == b""


def test_methods_other_than_get_head_405(srv: ServerProcess) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"):
        for path in ("/all.rss", "/", "/healthz", "/nope"):
            status, h, body = srv.request(method, path, body=b"x=1")
            assert status == 405, (method, path)
            assert {m.strip() for m in h["Allow"].split(",")} == {"GET", "HEAD"}
            no_traceback(body)


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


def test_symlink_out_of_feeds_not_followed(srv: ServerProcess) -> None:
    link = srv.feeds_dir / "topics" / "evil.rss"
    link.symlink_to(srv.workdir / "secret.rss")
    try:
        status, _, body = srv.request("GET", "/topics/evil.rss")
        assert status == 404 and SECRET not in body
    finally:
        link.unlink()


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
    assert status == 200 and h["Content-Type"].startswith("application/json")
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

@pytest.mark.skipif(not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()), reason="nginx is not installed")
def test_contrib_nginx_conf_serves_the_same_urls(srv: ServerProcess, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("serve_bench", ROOT / "bench" / "serve_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    user = "user root;" if os.geteuid() == 0 else ""  # pytest's temp folders are private
    proc, port = bench.start_nginx(tmp_path / "nginx", srv.feeds_dir, srv.port, main_extra=user)
    try:
        ngx = ServerProcess(tmp_path / "client", seeds=None, port=port)  # only used as an HTTP client
        for path in published(srv):
            status, h, body = ngx.request("GET", path)
            assert status == 200 and h["Content-Type"] == TYPES[os.path.splitext(path)[1]], path
            assert body == srv.request("GET", path)[2]
            assert h["Cache-Control"] == "public, max-age=300" and h["Vary"] == "Accept-Encoding"
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
        raw = ngx.raw(b"GET /../secret.rss HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 4") and SECRET not in raw
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)


# -- Last-Modified for readers that send only If-Modified-Since -----------------------------------

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
    with server:
        clients = [server]
        nginx = _nginx(server, tmp_path)
        if nginx is not None:
            clients.append(nginx[1])
        try:
            def titles() -> set[str]:
                return {i["title"] for i in json.loads(server.request("GET", "/all.json")[2])["items"]}

            def change(edit, done) -> None:  # type: ignore[no-untyped-def]
                seen = {c.port: c.request("GET", "/all.rss")[1]["Last-Modified"] for c in clients}
                time.sleep(1.05)  # a new second: Last-Modified is whole seconds, the stamp then is now
                edit()
                deadline = time.monotonic() + 10
                while not done(titles()):
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
        finally:
            if nginx is not None:
                nginx[0].send_signal(signal.SIGQUIT)
                nginx[0].wait(10)


def _nginx(srv: ServerProcess, tmp_path: Path) -> tuple[subprocess.Popen[bytes], ServerProcess] | None:
    """contrib/nginx.conf on the same feeds/ (None when nginx is not installed)."""
    spec = importlib.util.spec_from_file_location("serve_bench", ROOT / "bench" / "serve_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    user = "user root;" if os.geteuid() == 0 else ""  # pytest's temp folders are private
    started = bench.start_nginx(tmp_path / "nginx", srv.feeds_dir, srv.port, main_extra=user)
    if started is None:
        return None
    proc, port = started
    return proc, ServerProcess(tmp_path / "client", seeds=None, port=port)  # only used as an HTTP client
