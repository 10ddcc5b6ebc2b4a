"""Renderers keyed by feed format: (function, media type). Each takes a Feed and its own URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from syndicator.model import Feed
from syndicator.render import feedgen, jsonfeed


class Renderer(NamedTuple):
    render: Callable[[Feed, str], bytes]
    media_type: str
    label: str


RENDERERS: dict[str, Renderer] = {
    "rss": Renderer(feedgen.render_rss, "application/rss+xml", "RSS 2.0"),
    "atom": Renderer(feedgen.render_atom, "application/atom+xml", "Atom 1.0"),
    "json": Renderer(jsonfeed.render, "application/feed+json", "JSON Feed 1.1"),
}

FORMATS = tuple(RENDERERS)
