"""RSS 2.0 and Atom 1.0 through python-feedgen 1.0: the one module that imports it.

feedgen's traps, each handled here (tests/test_render_feedgen.py covers each):
- RSS <channel><link> is whichever fg.link() came last → the site link is added last.
- updated/lastBuildDate default to now → both set to the newest item's update.
- add_entry() prepends → order='append', after our own newest-first sort.
- Atom entry links lose rel/type, an enclosure becomes a 2nd alternate → one plain alternate
  link per entry, images go to media:content, never to enclosures.
- content(type='CDATA') writes an invalid Atom type → Atom content is type="html".
- the sy: extension writes wrong-case elements → not used.
- an Atom summary next to content is shown by some readers instead of it → summary only
  when there is no content.
- two entries of one Atom document with the same <updated> text draw the validator's
  DuplicateUpdated warning (posts crawled in the same second are common in real folders) →
  ties within a document are told apart by milliseconds (`_distinct_updates`).
- formatRFC2822 flips the process locale (not thread-safe) → replaced by a locale-free one.
- one FeedGenerator shares the self link between formats → one generator per format.
- RSS drops every atom:link but rel=self (so rel=hub too), and there is no API for RFC 5005's
  fh: elements → a small extension (`_LinksExtension`) adds both formats' hub and archive links.
- load_extension() imports `feedgen.ext.<name>_entry` on every call, which for media and dc
  does not exist: a failed import, with a search of sys.path, for each document (a tenth of a
  millisecond each, 3 % of a cold build that makes thousands of archive pages) → the extension
  classes are registered directly, as load_extension would register them.

Inside `shared.shared_items()` (one publish), an entry is serialized once and its bytes joined
into each document it is in (the document is feedgen's with no entries around them).
"""

from __future__ import annotations

import email.utils
import html
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import feedgen.entry
import feedgen.feed
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.ext.media import MediaEntryExtension, MediaExtension
from feedgen.feed import FeedGenerator
from lxml import etree  # type: ignore[import-untyped]  # (feedgen's tree: no stubs installed)

from syndicator import __version__
from syndicator.model import NO_LINKS, Feed, Links, Post, Related
from syndicator.render.shared import active, keep, kept

ATOM_NS = "http://www.w3.org/2005/Atom"
#: RFC 5005's namespace (fh:complete, fh:archive)
FH_NS = "http://purl.org/syndication/history/1.0"


def _rfc2822(value: datetime) -> str:
    """Locale-independent and thread-safe, unlike feedgen.util.formatRFC2822."""
    return email.utils.format_datetime(value.astimezone(UTC), usegmt=True)


# feedgen looks the function up in its own module namespaces at render time.
feedgen.feed.formatRFC2822 = _rfc2822
feedgen.entry.formatRFC2822 = _rfc2822


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


class _LinksExtension(BaseExtension):  # type: ignore[misc]
    """The document's RFC 5005 marker and links and its WebSub hubs, after its own links."""

    links: Links = NO_LINKS
    extension = ""
    media_type = ""

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FH_NS} if self.links.complete or self.links.archive else {}

    def extend_rss(self, feed: Any) -> Any:
        channel = feed[0]
        self._add(channel, f"{{{ATOM_NS}}}link", _after(channel, f"{{{ATOM_NS}}}link"))
        return feed

    def extend_atom(self, feed: Any) -> Any:
        # feedgen builds the Atom tree without namespaces (xmlns is an attribute of the root)
        self._add(feed, "link", _after(feed, "link"))
        return feed

    def _add(self, parent: Any, link_tag: str, at: int) -> None:
        links, ext = self.links, self.extension
        new: list[Any] = []
        for rel, url in (("hub", None), ("current", links.current), ("prev-archive", links.prev_archive),
                         ("next-archive", links.next_archive)):
            if rel == "hub":
                new += [parent.makeelement(link_tag, {"rel": "hub", "href": hub}) for hub in links.hubs]
            elif url is not None:
                new.append(parent.makeelement(link_tag, {"rel": rel, "type": self.media_type, "href": url + ext}))
        if links.complete or links.archive:  # (lxml elements, made by the tree feedgen built)
            new.append(parent.makeelement(f"{{{FH_NS}}}{'archive' if links.archive else 'complete'}", {}))
        for offset, element in enumerate(new):
            parent.insert(at + offset, element)


class _NoFeedExtension(BaseExtension):  # type: ignore[misc]
    """(feedgen loads an extension for the feed with each one for entries)"""


class _RelatedEntry(BaseEntryExtension):  # type: ignore[misc]
    """An Atom entry's other coverage of its story as `rel="related"` links, which readers
    that do not know them pass over (feedgen's own entry links lose their `rel`)."""

    related: tuple[Related, ...] = ()

    def extend_atom(self, entry: Any) -> Any:
        for item in self.related:
            attrs = {"rel": "related", "href": item.url, "type": "text/html"}
            if item.title:
                attrs["title"] = item.title
            entry.append(entry.makeelement("link", attrs))
        return entry


def _after(parent: Any, tag: str) -> int:
    """The index just after the last child `tag` of `parent` (its first child's if none)."""
    last = 0
    for i, child in enumerate(parent):
        if child.tag == tag:
            last = i + 1
    return last


def _generator(feed: Feed, self_url: str, media_type: str, links: Links, extension: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension("media", MediaExtension, MediaEntryExtension, atom=True, rss=True)
    if links != NO_LINKS:
        fg.register_extension("syndicator_links", _LinksExtension, None, atom=True, rss=True)
        ext = fg.syndicator_links
        ext.links, ext.extension, ext.media_type = links, extension, media_type
    fg.id(self_url)
    fg.title(feed.title)
    fg.subtitle(feed.description)
    fg.language(feed.language)
    fg.author({"name": feed.author})
    fg.generator("Syndicator", version=__version__)
    fg.link(href=self_url, rel="self", type=media_type)
    fg.link(href=feed.home_url, rel="alternate", type="text/html")  # last: RSS <link>
    fg.updated(feed.updated)
    fg.lastBuildDate(feed.updated)
    if feed.icon_url:
        fg.icon(feed.icon_url)  # Atom only (feedgen's logo() and image() would set an Atom <logo>)
    return fg


def _entry(fg: FeedGenerator, post: Post, atom: bool, updated: datetime) -> Any:
    fe = fg.add_entry(order="append")
    fe.id(post.id)
    fe.guid(post.id, permalink=_is_url(post.id) and post.id == post.link)
    fe.title(post.title)
    fe.link(href=post.link)
    fe.published(post.published)
    fe.updated(updated)
    content = post.content_html
    # Atom: a summary beside full content is what rss2email (and some others) show in place of
    # the content, so it goes when there is content. RSS: <description> is the one text every
    # reader shows, content:encoded is extra; it is read as HTML, so the plain text is escaped.
    if post.summary and not (atom and content):
        fe.summary(post.summary if atom else html.escape(post.summary, quote=False))
    if content:
        fe.content(content, type="html" if atom else None)
    if post.topics:  # one call: each call re-derives the RSS list from all categories so far
        fe.category([{"term": t.slug if atom else t.name, "label": t.name} for t in post.topics])
    # each entry names its author, the site's when the post names none: RSS has no feed-level
    # author, and the Atom one that entries inherit is not shown by newsboat, feedparser or
    # reader (bench/readers.py)
    authors = list(post.authors) or [fg.author()[0]["name"]]
    if atom:
        for name in authors:
            fe.author({"name": name})
    else:
        fe.dc.dc_creator(authors)
    for image in post.images:
        attrs = {"url": image.url, "medium": "image"}
        attrs.update({k: str(v) for k, v in (("width", image.width), ("height", image.height)) if v})
        fe.media.content(attrs, group=None)  # a lone item in a media:group is invalid
    if post.images:
        fe.media.thumbnail({"url": post.images[0].url}, group=None)
    return fe


# -- entries made once a publish (see shared.py) -----------------------------------------------


def _element(fg: FeedGenerator, post: Post, atom: bool, updated: datetime) -> Any:
    fe = _entry(fg, post, atom, updated)
    fg.remove_entry(fe)
    return fe.atom_entry() if atom else fe.rss_entry()


#: what pretty_print writes after the last entry: the closing tags (the channel's, indented)
_TAILS = {True: b"</feed>\n", False: b"  </channel>\n</rss>\n"}


def _serialize(doc: Any) -> bytes:
    return cast(bytes, etree.tostring(doc, pretty_print=True, encoding="UTF-8", xml_declaration=True))


def _document(fg: FeedGenerator, entries: list[tuple[Post, datetime]], atom: bool) -> bytes:
    """feedgen's document of `fg` (which has no entries) with `entries` appended, as
    atom_str/rss_str append them.

    Inside `shared_items()` each entry's bytes are made once and joined into every document
    it is in: feedgen appends entries last, after the channel and its extensions, and every
    document of a format declares the same namespaces at its root, so an entry serializes to
    the same bytes (indentation included) in any document of its format.
    """
    root, doc = fg._create_atom() if atom else fg._create_rss()
    parent = root if atom else root[0]
    tail = _TAILS[atom]
    head = _serialize(doc) if active() else None
    if head is None or not head.endswith(tail):  # outside a publish (or a layout not foreseen): one tree
        for post, updated in entries:
            parent.append(_element(fg, post, atom, updated))
        return _serialize(doc)
    prefix = head[: -len(tail)]
    parts = [prefix]
    author = fg.author()[0]["name"]
    for post, updated in entries:
        key = ("atom" if atom else "rss", updated, author)
        item = kept(post, *key)
        if item is None:
            element = _element(fg, post, atom, updated)
            parent.append(element)
            whole = _serialize(doc)
            parent.remove(element)
            if not (whole.startswith(prefix) and whole.endswith(tail)):  # pragma: no cover
                raise AssertionError("an entry changed what surrounds it in its document")
            item = whole[len(prefix): -len(tail)]
            keep(post, item, *key)
        parts.append(item)
    parts.append(tail)
    return b"".join(parts)


def render_rss(feed: Feed, self_url: str, links: Links = NO_LINKS) -> bytes:
    fg = _generator(feed, self_url, "application/rss+xml", links, ".rss")
    fg.register_extension("dc", DcExtension, DcEntryExtension, atom=False, rss=True)
    fg.description(feed.description)
    if feed.icon_url:  # title and link as the channel's: readers check that they match
        fg.image(feed.icon_url, title=feed.title, link=feed.home_url)
    return _document(fg, [(post, post.updated) for post in feed.posts], atom=False)


def _distinct_updates(posts: tuple[Post, ...]) -> list[datetime]:
    """The `updated` values of posts (newest first) made unique within one document.

    Sources give seconds; the k entries of a tie get -0 … -(k-1) ms in document order, so the
    order the instants say stays the document's order, the first (whose time may be the feed's
    <updated>) keeps the exact source time, and the same posts always get the same values
    (stable bytes). A millisecond is below any source's precision and any reader's display.
    """
    groups: dict[datetime, list[int]] = {}
    for index, post in enumerate(posts):
        groups.setdefault(post.updated, []).append(index)
    out = [post.updated for post in posts]
    for instant, indexes in groups.items():
        for rank, index in enumerate(indexes[1:], start=1):
            out[index] = instant - timedelta(milliseconds=rank)
    return out


def render_atom(feed: Feed, self_url: str, links: Links = NO_LINKS) -> bytes:
    fg = _generator(feed, self_url, "application/atom+xml", links, ".atom")
    updates = _distinct_updates(feed.posts)
    if not feed.coverage:
        return _document(fg, list(zip(feed.posts, updates, strict=True)), atom=True)
    # a grouped feed: each entry links its story's other coverage in this feed (not shared)
    fg.register_extension("syndicator_related", _NoFeedExtension, _RelatedEntry, atom=True, rss=False)
    for post, updated in zip(feed.posts, updates, strict=True):
        entry = _entry(fg, post, True, updated)
        entry.syndicator_related.related = feed.coverage.get(post.id, ())
    return cast(bytes, fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True))
