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


def test_custom_feed_urls_show_their_page_in_a_browser(tmp_path: Path) -> None:
    """A topic combination's or a filtered feed's URL, opened in Chromium, shows that feed's page:
    named after what it holds, listing its items, with autodiscovery links to its three formats
    (the query kept) that answer with the feeds; a feed reader at the same URL gets the feed."""
    with ServerProcess(tmp_path / "srv") as srv:
        for path, query in (("/topics/ai,azure.rss", ""), ("/all.atom?filter=Azure&limit=3", "filter=Azure&limit=3"),
                            ("/topics/ai.json?group=story", "group=story")):
            stem = path.split("?")[0].rsplit(".", 1)[0].lstrip("/")
            doc = lxml_html.fromstring(dump_dom(srv.url(path), tmp_path / "profile"))
            found = {(el.get("type"), el.get("href")) for el in doc.xpath("//head/link[@rel='alternate']")}
            expected = {(TYPES[fmt], srv.url(f"/{stem}.{fmt}") + (f"?{query}" if query else "")) for fmt in TYPES}
            assert found == expected, path
            assert doc.findtext(".//h1"), path
            titles = [a.text_content() for a in doc.xpath("//ol[@class='items']//h2/a")]
            for media, href in sorted(found):
                rel = href[len(srv.base_url) - 1:]
                status, headers, body = srv.request("GET", rel)
                assert status == 200 and headers["Content-Type"] == f"{media}; charset=utf-8", href
                if media == TYPES["json"]:
                    assert [i["title"] for i in json.loads(body)["items"]] == titles, path
            # the same URL as a browser asks for it, and as a reader does
            status, headers, body = srv.request("GET", path, {"Sec-Fetch-Dest": "document"})
            assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8", path
            assert "Sec-Fetch-Dest" in headers["Vary"]
            status, headers, _ = srv.request("GET", path)
            assert status == 200 and headers["Content-Type"].startswith("application/"), path
            assert "Sec-Fetch-Dest" in headers["Vary"]
        assert "AI" in doc.findtext(".//h1")
