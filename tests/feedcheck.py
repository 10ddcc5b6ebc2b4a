"""Parse-back helpers shared by the tests: every produced feed is read with feedparser
(no bozo) and lxml, and checked against the W3C validator rules that bit us.

Each check_* function asserts and returns what it parsed, for further checks by the caller.
"""

from __future__ import annotations

import email.utils
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import feedparser
from lxml import etree
from lxml import html as lxml_html

from syndicator import urls

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                    r"\d{4} \d{2}:\d{2}:\d{2} (GMT|[+-]\d{4})$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
#: XML 1.0 forbids these even as character references.
ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: Things the sanitizer must never let through.
UNSAFE = re.compile(r"<script|<style|<iframe|\son\w+\s*=|javascript:|display\s*:\s*none", re.I)


def feedparse(data: bytes) -> Any:
    parsed = feedparser.parse(data)
    assert not parsed.bozo, f"feedparser: {parsed.get('bozo_exception')!r}"
    return parsed


def html_urls(fragment: str) -> list[str]:
    """Every href/src in an HTML fragment."""
    if not fragment.strip():
        return []
    doc = lxml_html.fragment_fromstring(fragment, create_parent="div")
    return [v for el in doc.iter() if isinstance(el.tag, str) for k, v in el.attrib.items() if k in ("href", "src")]


def check_html_fragment(fragment: str) -> None:
    assert not UNSAFE.search(fragment), f"unsanitised HTML: {UNSAFE.search(fragment).group(0)!r}"
    assert not ILLEGAL.search(fragment)
    for url in html_urls(fragment):
        assert re.match(r"^(https?:|mailto:|#)", url), f"relative or unsafe URL in content: {url!r}"


def _rfc822(value: str) -> datetime:
    assert RFC822.match(value), f"not RFC 822: {value!r}"
    return email.utils.parsedate_to_datetime(value)


def _rfc3339(value: str) -> datetime:
    assert RFC3339.match(value), f"not RFC 3339: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_rss(data: bytes, self_url: str, site_url: str) -> etree._Element:
    feedparse(data)
    root = etree.fromstring(data)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel.findtext("link") == site_url, "RSS <channel><link> must be the site URL"
    selfs = [e for e in channel.findall(f"{ATOM}link") if e.get("rel") == "self"]
    assert [e.get("href") for e in selfs] == [self_url]
    assert channel.findtext("title") and channel.findtext("description") is not None
    assert channel.findtext("language")
    items = channel.findall("item")
    dates = [_rfc822(i.findtext("pubDate")) for i in items]
    assert dates == sorted(dates, reverse=True), "items not newest first"
    if items:
        assert _rfc822(channel.findtext("lastBuildDate")) >= max(dates)
    for item in items:
        guid = item.find("guid")
        permalink = guid.get("isPermaLink", "true") != "false"
        if not re.match(r"^https?://", guid.text):
            assert not permalink, f"guid {guid.text!r} is not a URL but isPermaLink is not false"
        if permalink:
            assert guid.text == item.findtext("link")
        assert re.match(r"^https?://", item.findtext("link"))
        assert not ILLEGAL.search(item.findtext("title") or "")
        desc = item.findtext("description") or ""
        assert "<" not in desc, "description must be plain text"
        check_html_fragment(desc)
        check_html_fragment(item.findtext(f"{CONTENT}encoded") or "")
        _check_media(item)
    return root


def _check_media(item: etree._Element) -> None:
    for group in item.iter(f"{MEDIA}group"):
        assert len(group) > 1, "media:group with a single child"
    for el in list(item.iter(f"{MEDIA}content")) + list(item.iter(f"{MEDIA}thumbnail")):
        assert re.match(r"^https?://", el.get("url"))


def check_atom(data: bytes, self_url: str, site_url: str) -> etree._Element:
    feedparse(data)
    root = etree.fromstring(data)
    assert root.tag == f"{ATOM}feed"
    links = root.findall(f"{ATOM}link")
    assert [e.get("href") for e in links if e.get("rel") == "self"] == [self_url]
    assert [e.get("href") for e in links if e.get("rel") in (None, "alternate")] == [site_url]
    assert root.findtext(f"{ATOM}id") and root.findtext(f"{ATOM}title")
    assert root.find(f"{ATOM}author/{ATOM}name").text, "feed author is required"
    entries = root.findall(f"{ATOM}entry")
    updated = [_rfc3339(e.findtext(f"{ATOM}updated")) for e in entries]
    published = [_rfc3339(e.findtext(f"{ATOM}published")) for e in entries]
    assert published == sorted(published, reverse=True), "entries not newest first"
    feed_updated = _rfc3339(root.findtext(f"{ATOM}updated"))
    if entries:
        assert feed_updated == max(updated), "feed <updated> must be the newest entry's"
    for entry in entries:
        alternates = [e for e in entry.findall(f"{ATOM}link") if e.get("rel") in (None, "alternate")]
        assert len(alternates) == 1, "exactly one alternate link per entry"
        assert re.match(r"^https?://", alternates[0].get("href"))
        assert entry.findtext(f"{ATOM}id")
        content = entry.find(f"{ATOM}content")
        if content is not None:
            assert content.get("type") == "html"
            check_html_fragment(content.text or "")
        summary = entry.findtext(f"{ATOM}summary") or ""
        assert "<" not in summary
        for category in entry.findall(f"{ATOM}category"):
            assert category.get("term")
        _check_media(entry)
    return root


def check_json(data: bytes, self_url: str, site_url: str) -> dict[str, Any]:
    doc = json.loads(data)
    assert doc["version"] == JSONFEED_VERSION
    assert isinstance(doc["title"], str) and doc["title"]
    assert doc["feed_url"] == self_url and doc["home_page_url"] == site_url
    assert isinstance(doc["items"], list)
    for author in doc.get("authors", []):
        assert author.get("name")
    dates = []
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        for key in ("date_published", "date_modified"):
            if key in item:
                _rfc3339(item[key])
        dates.append(_rfc3339(item["date_published"]))
        assert re.match(r"^https?://", item["url"])
        if "image" in item:
            assert re.match(r"^https?://", item["image"])
        check_html_fragment(item.get("content_html", ""))
        assert isinstance(item.get("tags", []), list)
    assert dates == sorted(dates, reverse=True)
    ids = [i["id"] for i in doc["items"]]
    assert len(ids) == len(set(ids))
    return doc


CHECKS = {"rss": check_rss, "atom": check_atom, "json": check_json}


def check_tree(feeds_dir: Path, base_url: str) -> dict[str, Any]:
    """Check every feed under feeds_dir; returns {relative path: parsed}."""
    parsed = {}
    for path in sorted(feeds_dir.rglob("*")):
        fmt = path.suffix.lstrip(".")
        if fmt in CHECKS and path.is_file() and not path.name.startswith("."):
            rel = path.relative_to(feeds_dir).as_posix()
            page = base_url + (urls.page_of_feed(rel) or "")  # the feed's page: its home link
            parsed[rel] = CHECKS[fmt](path.read_bytes(), base_url + rel, page)
    assert parsed, f"no feeds in {feeds_dir}"
    return parsed
