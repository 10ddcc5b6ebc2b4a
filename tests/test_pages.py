"""The pages people read: a page per feed, the index and post pages, built from seeds/ and read
back with html5lib in strict mode (a parse error fails) and lxml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import html5lib
import pytest
from lxml import etree
from lxml import html as lxml_html

from syndicator.dates import rfc3339
from syndicator.render.pages import human_date
from tests.regen_golden import build_seeds

BASE = "http://127.0.0.1:8080/"
TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pages")
    build_seeds(work)
    return work / "feeds"


def _stems(feeds: Path) -> list[str]:
    return sorted(p.relative_to(feeds).as_posix()[: -len(".atom")] for p in feeds.rglob("*.atom"))


def _doc(path: Path) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(path.read_bytes())


def test_every_page_is_well_formed_html5(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
        parser.parse(page.read_bytes(), transport_encoding="utf-8")  # raises on any parse error
        doc = _doc(page)
        assert doc.findtext(".//title").strip(), page
        assert doc.find(".//meta[@name='viewport']") is not None, page
        assert not doc.xpath("//link[@rel='stylesheet'] | //script[@src] | //style[contains(., 'url(')]"), \
            f"{page}: an external resource"


def test_a_page_per_feed_lists_its_items(site: Path) -> None:
    for stem in _stems(site):
        doc = _doc(site / f"{stem}.html")
        feed = json.loads((site / f"{stem}.json").read_text(encoding="utf-8"))
        assert feed["home_page_url"] == f"{BASE}{stem}.html"
        items = doc.xpath("//ol[@class='items']/li")
        assert [li.findtext(".//h2/a") for li in items] == [i["title"] for i in feed["items"]]
        for li, item in zip(items, feed["items"], strict=True):
            assert li.find(".//h2/a").get("href") == item["url"]
            time = li.find(".//time")
            assert time.get("datetime") == item["date_published"]
            assert not re.search(r"\dT\d", time.text) and time.text.strip()
            if "summary" in item:
                assert item["summary"] in li.text_content()
            if "image" in item:
                assert li.find(".//img").get("src") == item["image"]
            assert li.get("lang") == item["language"]


def test_a_feed_page_offers_every_way_to_subscribe(site: Path) -> None:
    for stem in _stems(site):
        doc = _doc(site / f"{stem}.html")
        alternates = {(e.get("type"), e.get("href")) for e in doc.xpath("//head/link[@rel='alternate']")}
        assert alternates == {(t, f"{BASE}{stem}.{fmt}") for fmt, t in TYPES.items()}
        body_links = {(a.get("type"), a.get("href")) for a in doc.xpath("//section[@class='subscribe']//a[@type]")}
        assert body_links == alternates
        atom = f"{BASE}{stem}.atom"
        assert doc.find(".//input[@id='feed-url']").get("value") == atom
        assert doc.find(".//button[@data-copy]").get("data-copy") == atom
        hrefs = [a.get("href") for a in doc.xpath("//section[@class='subscribe']//a[@rel='nofollow']")]
        assert hrefs == [
            "https://feedly.com/i/subscription/feed%2F" + quote(atom, safe=""),
            "https://www.inoreader.com/?add_feed=" + quote(atom, safe=""),
            "https://www.newsblur.com/?url=" + quote(atom, safe=""),
            "https://theoldreader.com/feeds/subscribe?url=" + quote(atom, safe=""),
            "feed:" + atom,
        ]


def test_feeds_point_home_at_their_page(site: Path) -> None:
    for stem in _stems(site):
        rss = etree.fromstring((site / f"{stem}.rss").read_bytes())
        assert rss.findtext("channel/link") == f"{BASE}{stem}.html"
        atom = etree.fromstring((site / f"{stem}.atom").read_bytes())
        alt = atom.findall("{http://www.w3.org/2005/Atom}link[@rel='alternate']")
        assert [(e.get("type"), e.get("href")) for e in alt] == [("text/html", f"{BASE}{stem}.html")]


def test_index_and_post_pages_link_topics_to_pages(site: Path) -> None:
    index = _doc(site / "index.html")
    topic_links = [a.get("href") for a in index.xpath("//ul[@class='feeds']//h2/a")]
    assert topic_links == [f"{BASE}{stem}.html" for stem in ["all", *[s for s in _stems(site) if s != "all"]]]
    posts = sorted((site / "posts").glob("*.html"))
    assert posts
    for page in posts:
        doc = _doc(page)
        links = [a.get("href") for a in doc.xpath("//article//p[@class='meta']/a")]
        assert links and all(h.startswith(f"{BASE}topics/") and h.endswith(".html") for h in links), links
        for href in links:
            assert (site / href[len(BASE):]).is_file()
        alternates = {e.get("href") for e in doc.xpath("//head/link[@rel='alternate']")}
        assert alternates == {f"{BASE}all.{fmt}" for fmt in TYPES}


def test_human_date_keeps_the_iso_one_beside_it(site: Path) -> None:
    from datetime import UTC, datetime

    when = datetime(2022, 5, 26, 4, 19, 14, tzinfo=UTC)
    assert human_date(when, "UTC") == "26 May 2022, 04:19 UTC"
    assert human_date(when, "Asia/Shanghai") == "26 May 2022, 12:19 CST"
    doc = _doc(site / "all.html")
    first = doc.find(".//ol[@class='items']/li//time")
    parsed = datetime.fromisoformat(first.get("datetime").replace("Z", "+00:00"))
    assert first.text == human_date(parsed, "UTC") and first.get("datetime") == rfc3339(parsed)
