"""The one common model every reader's output is normalized into.

Frozen, typed and UTC-aware, so the renderers and the server never see
front-matter quirks. Unknown front-matter keys stay in `extra`, never as attributes.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

EMPTY: Mapping[str, Any] = MappingProxyType({})
T = TypeVar("T")


def pickled_by_constructor(cls: type[T]) -> type[T]:
    """Pickle as `cls(*fields)`. A frozen slots dataclass otherwise unpickles through a
    `__setstate__` that lists its fields and sets each one in Python: posts cross a process
    boundary on every large build (never the state file: see store/codec.py), and this way
    both directions take about a third less time."""
    values = operator.attrgetter(*(f.name for f in fields(cls)))  # type: ignore[arg-type]

    def __reduce__(self: T) -> tuple[type[T], tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@pickled_by_constructor
@dataclass(frozen=True, slots=True)
class Topic:
    #: Display name, as the author wrote it (after aliasing).
    name: str
    #: ASCII, transliterated, safe as a file name.
    slug: str


@pickled_by_constructor
@dataclass(frozen=True, slots=True)
class Source:
    name: str = ""
    domain: str = ""
    url: str = ""


@pickled_by_constructor
@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None
    title: str = ""


@pickled_by_constructor
@dataclass(frozen=True, slots=True)
class Related:
    title: str
    url: str
    published: datetime | None = None
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class RawPost:
    """What a reader hands over: the file's metadata and body, nothing interpreted."""

    #: Path relative to the seeds folder, POSIX separators.
    path: str
    meta: Mapping[str, Any]
    #: The text after the front matter; None when the whole file is front matter.
    body: str | None
    #: 1-based line of each top-level front-matter key, for error messages.
    lines: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    #: Jekyll `_config.yml` values inherited from the post's folders.
    site: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    #: Problems the reader repaired (message, line).
    warnings: tuple[tuple[str, int | None], ...] = ()
    #: The file's modification time (seconds), when read from a folder.
    mtime: float | None = None


@pickled_by_constructor
@dataclass(frozen=True, slots=True)
class Post:
    id: str
    title: str
    link: str
    summary: str
    #: Sanitised HTML of the post's body; None for a news item, which has none (see content_html).
    body_html: str | None
    #: Both UTC-aware.
    published: datetime
    updated: datetime
    topics: tuple[Topic, ...] = ()
    source: Source | None = None
    authors: tuple[str, ...] = ()
    language: str = "en"
    images: tuple[Image, ...] = ()
    related: tuple[Related, ...] = ()
    #: Related items left out of `related` (the `related_shown` cap): shown as "and N more".
    related_more: int = 0
    draft: bool = False
    quality: int | None = None
    heat: int | None = None
    #: Path relative to the seeds folder.
    path: str = ""
    #: Set when the post has no URL of its own and gets a page at /posts/<page_slug>.html.
    page_slug: str | None = None
    #: Front-matter keys the model has no field for, kept aside.
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False)

    @property
    def content_html(self) -> str:
        """What feeds and pages show. A news item's is built from its excerpt, lead image, source
        link and coverage each time it is shown: most items of a large site are in no feed, and
        keeping it for all of them cost more memory than building it for the few."""
        return self.body_html if self.body_html is not None else news_body(self)


#: The fields of a post that only rendering reads (its summary, body, images, related coverage,
#: the keys kept aside): the bulk of a post, and of most posts of a large site no output needs
#: them. The summary is read on its own where all posts are searched (custom feeds' filters,
#: stories' names): `summaries` reads it for many posts at once, keeping none of it.
HEAVY_FIELDS = ("summary", "body_html", "images", "related", "extra")
_set = object.__setattr__


@dataclass(frozen=True, slots=True, eq=False)
class Loader:
    """Where the LazyPosts of one state come from: one per open state, shared by its posts."""

    #: the values of HEAVY_FIELDS of one post, in that order
    heavy: Callable[[Post], tuple[Any, ...]]
    #: the summaries of these posts, in their order (one read for many)
    summaries: Callable[[Sequence[Post]], list[str]]
    #: which of its posts keep their heavy fields once read (None: every one)
    resident: Resident | None = None


class LazyPost(Post):
    """A post whose HEAVY_FIELDS are read on first use, by its Loader (a post loaded from the
    state: the state has them). Everything else about it is a Post's: it equals, hashes,
    pickles and prints as the Post it stands for, which it becomes field by field once read.
    Its summary alone is read each time it is asked for and not kept (a search of every post
    reads each one's once), unless the other heavy fields are in memory."""

    __slots__ = ("_load",)

    def __getattr__(self, name: str) -> Any:
        # only reached for a slot not yet set: a heavy field before its first use
        if name not in HEAVY_FIELDS:
            raise AttributeError(name)
        load: Loader = object.__getattribute__(self, "_load")
        if name == "summary":
            return load.summaries([self])[0]
        for key, value in zip(HEAVY_FIELDS, load.heavy(self), strict=True):
            _set(self, key, value)
        if load.resident is not None:
            load.resident.loaded(self)
        return getattr(self, name)

    def loaded(self) -> bool:
        try:
            object.__getattribute__(self, "body_html")
        except AttributeError:
            return False
        return True

    def unload(self) -> None:
        """Drop the heavy fields (read again on next use). A read of them in another thread
        meanwhile reads them again: each field is dropped on its own, and one missing is read."""
        for key in HEAVY_FIELDS:
            with contextlib.suppress(AttributeError):
                object.__delattr__(self, key)

    def full(self) -> Post:
        return Post(*(getattr(self, f.name) for f in fields(Post)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Post):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(Post) if f.compare)

    __hash__ = Post.__hash__

    def __repr__(self) -> str:
        return repr(self.full())


#: How many posts read from a state keep their heavy fields besides those the feeds show (Resident).
SPARE_LOADED = 256


class Resident:
    """Which LazyPosts of one state keep their heavy fields in memory once read.

    Those of the posts the feeds show stay (`keep`): a pass that renders a feed again needs
    them. Of the others (read for an archive page, a post's page, a custom feed) the last
    SPARE_LOADED read stay, and older ones are dropped, to be read again on their next use. Without
    this a service held every post that any output had needed since it started: 300 saves of
    random posts, each rendering the archive pages its post is in, took one over 10,000 posts
    from 94 to 130 MiB (91 to 105 with it), one over 100,000 from 280 to 373 MiB (280 to 292).
    """

    def __init__(self) -> None:
        self.spare = SPARE_LOADED  # (read when made: a test sets a smaller one)
        self._lock = threading.Lock()  # (posts are read by the builder and by the server's threads)
        #: loaded posts no feed shows, by identity, the least recently read first
        self._loose: dict[int, LazyPost] = {}
        #: the posts the feeds show, by identity (held, so that no other object takes an id meanwhile)
        self._kept: dict[int, LazyPost] = {}

    def loaded(self, post: LazyPost) -> None:
        """`post` has just read its heavy fields."""
        with self._lock:
            key = id(post)
            if key in self._kept:
                return
            self._loose.pop(key, None)
            self._loose[key] = post
            victims = self._overflow()
        for victim in victims:
            victim.unload()

    def keep(self, posts: Iterable[Post]) -> None:
        """These posts keep their heavy fields from now on; the ones kept until now that are not
        among them are treated as any other."""
        kept = {id(post): post for post in posts if type(post) is LazyPost}
        with self._lock:  # (a post is never loose while kept; a pass changes a few of thousands)
            for key in self._kept.keys() - kept.keys():
                if (post := self._kept[key]).loaded():
                    self._loose[key] = post
            for key in kept.keys() - self._kept.keys():
                self._loose.pop(key, None)
            self._kept = kept
            victims = self._overflow()
        for victim in victims:
            victim.unload()

    def _overflow(self) -> list[LazyPost]:
        """Takes the least recently read loose posts beyond `spare` off the list."""
        extra = len(self._loose) - self.spare
        if extra <= 0:
            return []
        return [self._loose.pop(key) for key in list(itertools.islice(self._loose, extra))]


def summaries(posts: Sequence[Post]) -> list[str]:
    """The summaries of `posts`, in order: those of LazyPosts read from their state, in one go
    per Loader (a post at a time, 100,000 of them took seconds), as stored there even when the
    post has them in memory (telling which do cost more than the read)."""
    out: list[str] = [""] * len(posts)
    waiting: dict[Loader, list[int]] = {}
    loader_of = _LOADER.__get__
    for i, post in enumerate(posts):
        if type(post) is LazyPost:
            waiting.setdefault(loader_of(post), []).append(i)
        else:
            out[i] = post.summary
    for load, positions in waiting.items():
        for i, text in zip(positions, load.summaries([posts[i] for i in positions]), strict=True):
            out[i] = text
    return out


#: The slot LazyPost keeps its Loader in (read past __getattr__).
_LOADER = LazyPost.__dict__["_load"]


def lazy_post(load: Loader, id: str, title: str, link: str, published: datetime, updated: datetime,
              topics: tuple[Topic, ...], source: Source | None, authors: tuple[str, ...], language: str,
              related_more: int, draft: bool, quality: int | None, heat: int | None, path: str,
              page_slug: str | None) -> LazyPost:
    """A LazyPost of these fields; `load` gives the HEAVY_FIELDS."""
    post = object.__new__(LazyPost)
    _set(post, "_load", load)
    _set(post, "id", id)
    _set(post, "title", title)
    _set(post, "link", link)
    _set(post, "published", published)
    _set(post, "updated", updated)
    _set(post, "topics", topics)
    _set(post, "source", source)
    _set(post, "authors", authors)
    _set(post, "language", language)
    _set(post, "related_more", related_more)
    _set(post, "draft", draft)
    _set(post, "quality", quality)
    _set(post, "heat", heat)
    _set(post, "path", path)
    _set(post, "page_slug", page_slug)
    return post


def held_lazily(post: Post, load: Loader) -> LazyPost:
    """`post` (read from its file, then stored where `load` reads) as a LazyPost with its heavy
    fields in memory, which it can let go once no feed shows it (see Resident)."""
    lazy = lazy_post(load, post.id, post.title, post.link, post.published, post.updated, post.topics, post.source,
                     post.authors, post.language, post.related_more, post.draft, post.quality, post.heat, post.path,
                     post.page_slug)
    for key in HEAVY_FIELDS:
        _set(lazy, key, getattr(post, key))
    if load.resident is not None:
        load.resident.loaded(lazy)
    return lazy


#: The last news bodies built, by the identity of their post: a feed shows each item in three
#: formats. (Keyed by equality, a lookup hashed every field of the post, related items and all.)
_BODIES: OrderedDict[int, tuple[Post, str]] = OrderedDict()
_BODIES_MAX = 256


def news_body(post: Post) -> str:
    hit = _BODIES.get(id(post))
    if hit is not None and hit[0] is post:  # the entry holds the post, so its id is not reused
        return hit[1]
    body = _build_news_body(post)
    _BODIES[id(post)] = (post, body)
    if len(_BODIES) > _BODIES_MAX:
        _BODIES.popitem(last=False)
    return body


def _build_news_body(post: Post) -> str:
    esc = html.escape
    parts = []
    if post.images:
        img = post.images[0]
        size = "".join(f' {k}="{v}"' for k, v in (("width", img.width), ("height", img.height)) if v)
        parts.append(f'<p><img src="{esc(img.url)}" alt="{esc(img.title)}"{size}></p>')
    if post.summary:
        parts.append(f"<p>{esc(post.summary)}</p>")
    if post.page_slug is None:  # it has a URL of its own
        url, source = post.link, post.source
        where = source.name if source and source.name else urlsplit(url).hostname or url
        parts.append(f'<p><a href="{esc(url)}">Read at {esc(where)}</a></p>')
    if post.related:
        items = "".join(_related_li(r) for r in post.related)
        parts.append(f"<h3>Related coverage</h3><ul>{items}</ul>")
    if post.related_more:
        parts.append(f"<p>and {post.related_more} more</p>")
    return "".join(parts)


def _related_li(item: Related) -> str:
    esc = html.escape
    when = item.published.strftime("%Y-%m-%d") if item.published else ""
    bits = [b for b in (item.source.name if item.source else "", when) if b]
    tail = f" — {esc(', '.join(bits))}" if bits else ""
    return f'<li><a href="{esc(item.url)}">{esc(item.title)}</a>{tail}</li>'


@pickled_by_constructor
@dataclass(frozen=True, slots=True)
class Problem:
    """A bad or repaired post, as reported by check, build, the log and /healthz."""

    path: str
    message: str
    line: int | None = None
    #: "error": the post was skipped (or its last good version kept); "warning": repaired.
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed to render: all posts, or one topic's."""

    #: "all" or the topic slug.
    key: str
    title: str
    description: str
    #: Path of the feed relative to feeds/, without the format suffix ("all", "topics/ai").
    stem: str
    home_url: str
    language: str
    author: str
    posts: tuple[Post, ...]
    #: Newest item update; the fixed tag_date for an empty feed (never "now").
    updated: datetime
    topic: Topic | None = None
    #: the feed's square icon (Atom <icon>, RSS <image>, JSON Feed icon); empty: none
    icon_url: str = ""
    #: a grouped feed's other coverage of each item's story, by the item's id (see stories.py)
    coverage: Mapping[str, tuple[Related, ...]] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Links:
    """Where one feed document sits among its feed's documents (RFC 5005), and the WebSub hubs
    that carry it. URLs of documents are given without their format extension: each renderer
    adds its own, so the RSS chain links RSS documents and the JSON chain JSON ones."""

    #: the feed's whole history is in this document (fh:complete)
    complete: bool = False
    #: this is an archive document (fh:archive), not the subscription document
    archive: bool = False
    #: the next older archive document, the next newer one, and the subscription document
    prev_archive: str | None = None
    next_archive: str | None = None
    current: str | None = None
    #: WebSub hub URLs (rel="hub")
    hubs: tuple[str, ...] = ()


NO_LINKS = Links()
