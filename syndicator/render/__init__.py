"""Renderers keyed by feed format (the names of `formats.FEED_FORMATS`). Each takes a Feed, its
own URL and the document's Links (archive chain, hubs) and returns the document's bytes."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from syndicator.formats import FEED_FORMATS, FORMATS
from syndicator.model import NO_LINKS, Feed, Links, Post
from syndicator.render import jsonfeed, shared


class RenderFunction(Protocol):
    def __call__(self, feed: Feed, self_url: str, links: Links = NO_LINKS) -> bytes: ...


class Renderer(NamedTuple):
    render: RenderFunction
    media_type: str
    label: str


def _rss(feed: Feed, self_url: str, links: Links = NO_LINKS) -> bytes:
    # feedgen and lxml are imported by the first document made: a build that writes no feed
    # (an unchanged folder) never loads them
    from syndicator.render import feedgen

    return feedgen.render_rss(feed, self_url, links)


def _atom(feed: Feed, self_url: str, links: Links = NO_LINKS) -> bytes:
    from syndicator.render import feedgen

    return feedgen.render_atom(feed, self_url, links)


_FUNCTIONS: dict[str, RenderFunction] = {
    "rss": _rss,
    "atom": _atom,
    "json": jsonfeed.render,
}

#: Inside it, a post's item is made once for every document it is in (see shared.py).
shared_items = shared.shared_items

RENDERERS: dict[str, Renderer] = {
    name: Renderer(_FUNCTIONS[name], FORMATS[name].media_type, FORMATS[name].label) for name in FEED_FORMATS
}


def shown(post: Post) -> tuple[object, ...]:
    """Everything of a post that an output shows (the renderers here, the page template, the
    order of feeds, the feed pages), except its id, `updated` and the address of the page the service writes
    for it, which tracking decides (a move changes that address and nothing else). Tracking
    compares it, so an edit of what no output shows (`heat`, `quality`, AMP URLs, a provider's
    domain, keys kept in `extra`) changes no file. A news item's body is built from its lead
    image, summary, link, source name and related coverage: comparing the body covers those."""
    body = post.content_html  # first: a post loaded from the state reads its heavy fields at once
    return (
        post.title, post.link if post.page_slug is None else None, post.summary, body,
        post.published, post.topics, post.authors, post.language, post.draft,
        # the feed pages name the source of an item that links to it (one with a page of its
        # own here has no source line, as in its body)
        post.source.name if post.source and post.page_slug is None else "",
        tuple((image.url, image.width, image.height) for image in post.images),
    )
