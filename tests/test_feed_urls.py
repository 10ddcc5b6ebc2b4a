"""A feed's URL as people and readers meet it, against the real `syndicator serve` process and
nginx with contrib/nginx.conf in front of the same feeds/: headless Chromium opening a feed's
URL sees the feed's page (its item titles, no XML view); newsboat, feedparser and curl get the
feed's bytes with the ETag a plain request gets. The in-process answers (every header) are in
test_serve.py."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from lxml import html as lxml_html

from tests.chromium import chromium, dump_dom
from tests.conftest import FEED_VARY, TYPES
from tests.serverproc import ServerProcess

FEEDS = ["/all.rss", "/all.atom", "/all.json", "/topics/ai.atom"]
#: What feedparser and newsboat read (neither reads JSON Feed).
XML_FEEDS = [p for p in FEEDS if not p.endswith(".json")]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("serve")) as server:
        yield server
    assert server.proc is not None and server.proc.returncode == 0, server.log()


def feed_titles(srv: ServerProcess, path: str) -> list[str]:
    data = (srv.feeds_dir / path[1:]).read_bytes()
    if path.endswith(".json"):
        titles = [item["title"] for item in json.loads(data)["items"]]
    else:
        titles = [e.title for e in feedparser.parse(data).entries]
    assert titles, path
    return titles


def plain_etag(server: ServerProcess, path: str, gzip: bool = False) -> str:
    """The ETag of the feed as a request with no browser headers gets it."""
    status, h, body = server.request("GET", path, {"Accept-Encoding": "gzip"} if gzip else {})
    assert status == 200 and h["Content-Type"] == TYPES[os.path.splitext(path)[1]]
    return h["ETag"]


# -- a person's browser ----------------------------------------------------------------------------

@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("path", FEEDS)
def test_feed_url_in_chromium_reads_as_the_feeds_page(server: ServerProcess, srv: ServerProcess, path: str,
                                                      tmp_path: Path) -> None:
    dom = dump_dom(server.url(path), tmp_path / "profile")
    # Chromium's XML viewer (raw XML, "no style information") and an XSLT rendering are absent
    for sign in ("xml-viewer-style", "webkit-xml-viewer-source-xml", "style information", "XSLT", "<rss", "<feed"):
        assert sign not in dom, sign
    doc = lxml_html.fromstring(dom)
    shown = [a.text_content().strip() for a in doc.xpath("//ol[@class='items']/li/h2/a")]
    assert shown == feed_titles(srv, path)
    assert doc.findtext(".//h1") and doc.xpath("//head/link[@rel='alternate']")
    assert b"xml-stylesheet" not in (srv.feeds_dir / path[1:]).read_bytes()


def test_navigation_headers_get_the_page_with_vary(server: ServerProcess, srv: ServerProcess) -> None:
    page = (srv.feeds_dir / "all.html").read_bytes()
    status, h, body = server.request("GET", "/all.rss", {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"})
    assert status == 200 and body == page and h["Content-Type"] == TYPES[".html"] and h["Vary"] == FEED_VARY
    assert server.request("GET", "/all.rss", {"Sec-Fetch-Dest": "document", "If-None-Match": h["ETag"]})[0] == 304
    status, h2, body = server.request("GET", "/all.rss", {"Accept": "text/html"})
    assert body == (srv.feeds_dir / "all.rss").read_bytes() and h2["Vary"] == FEED_VARY
    assert h2["ETag"] != h["ETag"]


# -- feed readers ------------------------------------------------------------------------------------

def test_feedparser_gets_the_feed_and_its_etag(server: ServerProcess, srv: ServerProcess) -> None:
    for path in XML_FEEDS:
        d = feedparser.parse(server.url(path))
        assert d.status == 200 and not d.bozo, (path, d.get("bozo_exception"))
        assert [e.title for e in d.entries] == feed_titles(srv, path)
        assert d.etag == plain_etag(server, path, gzip=True)  # feedparser asks for gzip
        assert feedparser.parse(server.url(path), etag=d.etag).status == 304


def test_curl_gets_the_feed_bytes_even_asking_for_html(server: ServerProcess, srv: ServerProcess,
                                                       tmp_path: Path) -> None:
    for path in FEEDS:
        body = tmp_path / "body"
        out = subprocess.run(["curl", "-sS", "-D", "-", "-o", str(body), "-H", "Accept: text/html,*/*;q=0.8",
                              server.url(path)], capture_output=True, text=True, timeout=30, check=True)
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in out.stdout.splitlines()[1:] if ": " in line)}
        assert out.stdout.startswith("HTTP/1.1 200")
        assert body.read_bytes() == (srv.feeds_dir / path[1:]).read_bytes()
        assert headers["etag"] == plain_etag(server, path)
        if server is srv:
            assert headers["etag"] == f'"{hashlib.sha256(body.read_bytes()).hexdigest()[:32]}"'


def test_newsboat_gets_the_feed_and_its_etag(server: ServerProcess, srv: ServerProcess, tmp_path: Path) -> None:
    newsboat = "newsboat"
    if subprocess.run(["sh", "-c", f"command -v {newsboat}"], capture_output=True).returncode != 0:
        pytest.skip("newsboat is not installed (apt-get install newsboat)")
    (tmp_path / "urls").write_text("".join(server.url(p) + "\n" for p in XML_FEEDS), encoding="utf-8")
    (tmp_path / "config").write_text("", encoding="utf-8")
    cmd = [newsboat, "-u", str(tmp_path / "urls"), "-c", str(tmp_path / "cache.db"), "-C", str(tmp_path / "config"),
           "-x", "reload"]
    for _ in range(2):  # newsboat keeps the validators it got from the second fetch on
        out = subprocess.run(cmd, capture_output=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=60)
        assert out.returncode == 0, out.stderr
    with sqlite3.connect(tmp_path / "cache.db") as db:
        etags = dict(db.execute("SELECT rssurl, etag FROM rss_feed").fetchall())
        titles = {t for (t,) in db.execute("SELECT title FROM rss_item")}
    for path in XML_FEEDS:  # items shared by several feeds (same id) are kept once
        assert etags[server.url(path)] == plain_etag(server, path, gzip=True), path
    assert titles == {t for path in XML_FEEDS for t in feed_titles(srv, path)}
