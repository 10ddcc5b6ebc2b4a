"""THE format table: every kind of file the service publishes, keyed by extension.

Read by the renderers' registry (`render.RENDERERS` has one entry per feed format here), the
planner (which outputs a feed has), the writer (which files get a `.gz` twin), the web app
(Content-Type, what may be served), the index page and OPML (labels, media types). Adding a
feed format is one line here plus its renderer in `render/`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Format:
    """One kind of published file."""

    #: name and file extension without the dot ("rss"): feeds are `<stem>.<name>`
    name: str
    #: media type without parameters (feed autodiscovery `type=`, OPML, JSON Feed spec)
    media_type: str
    #: what a person calls it ("RSS 2.0")
    label: str
    #: a feed (rendered from a Feed for `all` and every topic) rather than a page or list
    feed: bool
    #: written with a precompressed `.gz` twin (for nginx `gzip_static`)
    twin: bool = True
    #: text, served with `charset=utf-8`
    text: bool = True

    @property
    def extension(self) -> str:
        return "." + self.name

    @property
    def content_type(self) -> str:
        """The Content-Type header it is served with."""
        return f"{self.media_type}; charset=utf-8" if self.text else self.media_type


FORMATS: dict[str, Format] = {
    "rss": Format("rss", "application/rss+xml", "RSS 2.0", feed=True),
    "atom": Format("atom", "application/atom+xml", "Atom 1.0", feed=True),
    "json": Format("json", "application/feed+json", "JSON Feed 1.1", feed=True),
    "opml": Format("opml", "text/x-opml", "OPML", feed=False),
    "html": Format("html", "text/html", "HTML", feed=False),
    "txt": Format("txt", "text/plain", "text", feed=False, twin=False),        # robots.txt
    "ico": Format("ico", "image/x-icon", "icon", feed=False, twin=False, text=False),
    "png": Format("png", "image/png", "PNG", feed=False, twin=False, text=False),
}

#: The feed formats, in the order feeds are rendered and listed.
FEED_FORMATS: tuple[str, ...] = tuple(name for name, f in FORMATS.items() if f.feed)
#: Extensions of feed files (".rss", ...), for suffix checks.
FEED_EXTENSIONS: tuple[str, ...] = tuple(FORMATS[name].extension for name in FEED_FORMATS)
#: Extension -> Content-Type of every file the web app may serve.
CONTENT_TYPES: dict[str, str] = {f.extension: f.content_type for f in FORMATS.values()}


def of_path(rel: str) -> Format | None:
    """The format of a published file's path, or None when it is not one we publish."""
    _, dot, ext = rel.rpartition(".")
    return FORMATS.get(ext) if dot else None
