"""HTML pages and the OPML list, from Jinja2 templates: the one module that imports Jinja2.

Pages are for people: a feed's page lists its newest items and the ways to subscribe (its
three formats, a copy button, one-click links for common readers), the index lists the feeds'
pages, a post's page links its topics' pages. Every page carries <link rel="alternate"> for
its own feeds, so a reader given the page's address finds the feed.
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote
from zoneinfo import ZoneInfo

from syndicator import urls
from syndicator.config import Settings
from syndicator.dates import rfc3339
from syndicator.model import Feed, Post

if TYPE_CHECKING:
    from jinja2 import Environment

#: One-click subscribe links: reader -> its public "add this feed" URL, `{url}` the feed's
#: address percent-encoded. `feed:` hands the address to the reader the system registered.
READERS: dict[str, str] = {
    "Feedly": "https://feedly.com/i/subscription/feed%2F{url}",
    "Inoreader": "https://www.inoreader.com/?add_feed={url}",
    "NewsBlur": "https://www.newsblur.com/?url={url}",
    "The Old Reader": "https://theoldreader.com/feeds/subscribe?url={url}",
    "Your reader (feed:)": "feed:{raw}",
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: (format name, media type, label) of each feed format, in the order they are listed.
Formats = Sequence[tuple[str, str, str]]


def human_date(value: datetime, timezone: str) -> str:
    """`26 May 2022, 04:19 UTC` in the site's time zone: the same in every locale (the ISO
    date goes beside it in <time datetime>)."""
    local = value.astimezone(ZoneInfo(timezone))
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M} {local.tzname()}"


def source_name(post: Post) -> str:
    """The source an item links to; none for one whose page is ours (see `render.shown`)."""
    return post.source.name if post.source and post.page_slug is None else ""


@lru_cache(maxsize=1)
def _env() -> Environment:
    # imported on first use: a build that writes no page (an unchanged folder) never loads it
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("syndicator", "templates"),
        autoescape=select_autoescape(["html", "xml", "opml"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the package: no stat of each per page rendered
    )
    env.filters["rfc3339"] = rfc3339
    env.filters["rfc822"] = lambda d: email.utils.format_datetime(d, usegmt=True)
    env.filters["human_date"] = human_date
    env.filters["source"] = source_name
    return env


def preload() -> None:
    """jinja2 and the templates, compiled now (see pipeline.build.preload)."""
    for name in ("index.html", "feed.html", "feeds.opml", "post.html"):
        _env().get_template(name)


def _links(settings: Settings, stem: str, formats: Formats, query: str = "") -> list[dict[str, str]]:
    return [
        {"format": fmt, "label": label, "type": media,
         "url": urls.feed_url(settings.base_url, stem, fmt) + (f"?{query}" if query else "")}
        for fmt, media, label in formats
    ]


def reader_links(feed_url: str) -> list[dict[str, str]]:
    encoded = quote(feed_url, safe="")
    return [{"name": name, "url": pattern.format(url=encoded, raw=feed_url)} for name, pattern in READERS.items()]


def _name(feed: Feed) -> str:
    return feed.topic.name if feed.topic else "All posts"


def index(settings: Settings, feeds: Sequence[Feed], formats: Formats) -> bytes:
    rows = [{"feed": f, "name": _name(f), "links": _links(settings, f.stem, formats),
             "page": urls.feed_page_url(settings.base_url, f.stem)} for f in feeds]
    html = _env().get_template("index.html").render(settings=settings, rows=rows)
    return html.encode("utf-8")


def feed_page(settings: Settings, feed: Feed, formats: Formats, name: str | None = None, query: str = "") -> bytes:
    """The page of one feed; the reader links subscribe to the format OPML lists. A custom feed
    (a topic combination, filters) is named by `name`, its formats' URLs carry `query`."""
    links = _links(settings, feed.stem, formats, query)
    primary = next((link for link in links if link["format"] == settings.opml_format), links[0])
    html = _env().get_template("feed.html").render(
        settings=settings, feed=feed, name=name or _name(feed), links=links, primary=primary,
        readers=reader_links(primary["url"]))
    return html.encode("utf-8")


def opml(settings: Settings, feeds: Sequence[Feed], fmt: str, media_type: str) -> bytes:
    rows = [{"feed": f, "url": urls.feed_url(settings.base_url, f.stem, fmt),
             "page": urls.feed_page_url(settings.base_url, f.stem)} for f in feeds]
    updated = max((f.updated for f in feeds if f.updated), default=None)
    xml = _env().get_template("feeds.opml").render(settings=settings, rows=rows, updated=updated, type=media_type)
    return xml.encode("utf-8")


def post_page(settings: Settings, post: Post, topic_urls: dict[str, str], formats: Formats) -> bytes:
    links = _links(settings, urls.ALL_STEM, formats)
    html = _env().get_template("post.html").render(settings=settings, post=post, topic_urls=topic_urls, links=links)
    return html.encode("utf-8")
