"""Feed autodiscovery from `/` as a real browser sees it: headless Chromium loads the index page
from the real `syndicator serve` process and dumps the DOM it built; every feed must be linked
with <link rel="alternate" type=...>, and every link must answer 200 with that content type."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import html as lxml_html

from tests.chromium import chromium, dump_dom
from tests.serverproc import ServerProcess

TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}

pytestmark = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium)")


def test_autodiscovery_in_headless_chromium(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "srv") as srv:
        dom = dump_dom(srv.url("/"), tmp_path / "profile")
        doc = lxml_html.fromstring(dom)
        assert doc.findtext(".//title"), dom[:500]
        links = [(el.get("type"), el.get("href"), el.get("title"))
                 for el in doc.xpath("//head/link[@rel='alternate']")]
        found = {(t, href) for t, href, _ in links}
        assert all(title for _, _, title in links)

        stems = sorted({f.rsplit(".", 1)[0] for f in json.loads((srv.feeds_dir / ".manifest.json").read_text())["files"]
                        if f.endswith(".atom")})
        assert "all" in stems and len(stems) >= 5
        expected = {(TYPES[fmt], srv.url(f"/{stem}.{fmt}")) for stem in stems for fmt in TYPES}
        assert expected <= found, expected - found
        assert len(found) == len(expected)

        for media, href in sorted(found):
            parts = urlsplit(href)
            assert (parts.hostname, parts.port) == (srv.host, srv.port), href
            status, headers, body = srv.request("GET", parts.path)
            assert status == 200, href
            assert headers["Content-Type"] == f"{media}; charset=utf-8", href
            assert body


def test_feed_and_post_pages_lead_to_their_own_feeds(tmp_path: Path) -> None:
    """A topic's page (and the page Chromium shows for its feed's URL) names that topic's three
    feeds and no other; a post page names all posts' feeds; each page names its icon."""
    with ServerProcess(tmp_path / "srv") as srv:
        for path, stem in (("/topics/ai.html", "topics/ai"), ("/topics/azure.rss", "topics/azure"),
                           ("/all.html", "all"), ("/posts/002-4daa3943c2b2dbc1.html", "all")):
            doc = lxml_html.fromstring(dump_dom(srv.url(path), tmp_path / "profile"))
            found = {(el.get("type"), el.get("href")) for el in doc.xpath("//head/link[@rel='alternate']")}
            assert found == {(TYPES[fmt], srv.url(f"/{stem}.{fmt}")) for fmt in TYPES}, path
            assert doc.xpath("//head/link[@rel='icon']/@href") == [srv.url("/favicon.ico")], path
        status, headers, body = srv.request("GET", "/favicon.ico")
        assert status == 200 and headers["Content-Type"] == "image/x-icon" and body[:4] == b"\x00\x00\x01\x00"
