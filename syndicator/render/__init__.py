"""Renderers keyed by feed format (the names of `formats.FEED_FORMATS`). Each takes a Feed and
its own URL and returns the document's bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from syndicator.formats import FEED_FORMATS, FORMATS
from syndicator.model import Feed
from syndicator.render import feedgen, jsonfeed


class Renderer(NamedTuple):
    render: Callable[[Feed, str], bytes]
    media_type: str
    label: str


_FUNCTIONS: dict[str, Callable[[Feed, str], bytes]] = {
    "rss": feedgen.render_rss,
    "atom": feedgen.render_atom,
    "json": jsonfeed.render,
}

RENDERERS: dict[str, Renderer] = {
    name: Renderer(_FUNCTIONS[name], FORMATS[name].media_type, FORMATS[name].label) for name in FEED_FORMATS
}
