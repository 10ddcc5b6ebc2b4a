"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1): the one module that imports orjson.

orjson writes the same bytes as `json.dumps(doc, ensure_ascii=False, indent=2)`, about four
times faster: the standard library falls back to its pure-Python encoder whenever it indents.
"""

from __future__ import annotations

from typing import Any

import orjson

from syndicator.dates import rfc3339
from syndicator.model import NO_LINKS, Feed, Links, Post, Related
from syndicator.render.shared import keep, kept

VERSION = "https://jsonfeed.org/version/1.1"


def _shared_item(post: Post, author: str) -> dict[str, Any]:
    """The item, made once a publish (see shared.py); not to be changed."""
    item: dict[str, Any] | None = kept(post, "json", author)
    if item is None:
        item = _item(post, author)
        keep(post, item, "json", author)
    return item


def _own(text: str) -> str:
    """`text`, or a copy when it is not ASCII. orjson leaves the UTF-8 form of each non-ASCII
    string it writes inside that string (CPython's cache of it), so the posts' own strings
    would each carry a second copy, for Chinese text larger than the first, as long as the post
    lives: a service keeps the posts its feeds show (+2 MiB at 10,000 posts after 150 saves).
    A copy dies with the publish that made it."""
    return text if text.isascii() else "".join((text, ""))


def _item(post: Post, author: str) -> dict[str, Any]:
    item: dict[str, Any] = {"id": post.id, "url": post.link, "title": _own(post.title)}
    content = post.content_html
    if content:
        item["content_html"] = _own(content)
    else:  # one of the two is required
        item["content_text"] = _own(post.summary or post.title)
    if post.summary:
        item["summary"] = _own(post.summary)
    if post.images:
        item["image"] = post.images[0].url
    item["date_published"] = rfc3339(post.published)
    item["date_modified"] = rfc3339(post.updated)
    # named on every item: reader does not apply the feed's authors to items (bench/readers.py)
    item["authors"] = [{"name": name} for name in post.authors or (author,)]
    if post.topics:
        item["tags"] = [t.name for t in post.topics]
    item["language"] = post.language
    return item


def _related(item: Related) -> dict[str, Any]:
    out: dict[str, Any] = {"url": item.url, "title": item.title}
    if item.source is not None and item.source.name:
        out["source"] = item.source.name
    if item.published is not None:
        out["date_published"] = rfc3339(item.published)
    return out


def render(feed: Feed, self_url: str, links: Links = NO_LINKS) -> bytes:
    """JSON Feed pages backwards (`next_url`: older items), so the archive chain is the
    prev-archive chain of RFC 5005; hubs are the spec's `hubs` objects."""
    doc: dict[str, Any] = {
        "version": VERSION,
        "title": feed.title,
        "home_page_url": feed.home_url,
        "feed_url": self_url,
        "description": feed.description,
        "language": feed.language,
        "authors": [{"name": feed.author}],
    }
    if feed.icon_url:
        doc["icon"] = doc["favicon"] = feed.icon_url
    if links.prev_archive is not None:
        doc["next_url"] = links.prev_archive + ".json"
    if links.archive:  # RFC 5005's markers and links have no JSON Feed names: an extension object
        doc["_rfc5005"] = {"archive": True, **{name: url + ".json" for name, url in (
            ("current", links.current), ("next_archive", links.next_archive)) if url is not None}}
    if links.hubs:
        doc["hubs"] = [{"type": "WebSub", "url": hub} for hub in links.hubs]
    if not feed.coverage:
        doc["items"] = [_shared_item(p, feed.author) for p in feed.posts]
    else:  # a grouped feed: the story's other coverage, in an extension readers skip
        doc["items"] = [_item(p, feed.author) for p in feed.posts]
        for item, post in zip(doc["items"], feed.posts, strict=True):
            others = feed.coverage.get(post.id, ())
            if others:
                item["_syndicator"] = {"also_covered_by": [_related(r) for r in others]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
