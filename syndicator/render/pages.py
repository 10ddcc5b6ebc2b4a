"""HTML pages and the OPML list, from Jinja2 templates: the one module that imports Jinja2."""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape

from syndicator.config import Settings
from syndicator.dates import rfc3339
from syndicator.model import Feed, Post
from syndicator.urls import feed_url


@lru_cache(maxsize=1)
def _env() -> Environment:
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
    return env


def _links(settings: Settings, feed: Feed, formats: Sequence[tuple[str, str, str]]) -> list[dict[str, str]]:
    return [
        {"format": fmt, "label": label, "type": media, "url": feed_url(settings.base_url, feed.stem, fmt)}
        for fmt, media, label in formats
    ]


def index(settings: Settings, feeds: Sequence[Feed], formats: Sequence[tuple[str, str, str]]) -> bytes:
    rows = [{"feed": f, "links": _links(settings, f, formats)} for f in feeds]
    html = _env().get_template("index.html").render(settings=settings, rows=rows)
    return html.encode("utf-8")


def opml(settings: Settings, feeds: Sequence[Feed], fmt: str, media_type: str) -> bytes:
    rows = [{"feed": f, "url": feed_url(settings.base_url, f.stem, fmt)} for f in feeds]
    updated = max((f.updated for f in feeds if f.updated), default=None)
    xml = _env().get_template("feeds.opml").render(settings=settings, rows=rows, updated=updated, type=media_type)
    return xml.encode("utf-8")


def post_page(settings: Settings, post: Post, topic_urls: dict[str, str]) -> bytes:
    html = _env().get_template("post.html").render(settings=settings, post=post, topic_urls=topic_urls)
    return html.encode("utf-8")
