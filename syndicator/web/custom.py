"""Custom feeds: topic combinations (`topics/ai+azure.rss`, see topicexpr.py) and filter
parameters (`?filter=...`, see filters.py) on the feed URLs, answered from the builder's
Catalog.

Each is rendered on its first request and kept, bytes and gzip bytes with their validators, in
a cache bounded in entries and bytes (least recently used out first). Keys are normalised (the
canonical expression; parameters sorted, defaults left out), so equal feeds share one entry;
a pass drops only the entries made from feeds it changed.

Rendering is bounded: one render at a time, and renders take at most RENDER_SHARE of the
time once a burst of RENDER_BURST seconds of them is spent (a bucket of render time that fills
at RENDER_SHARE seconds a second: a reader asking for a few feeds one after another is never
refused, a flood soon is). A request that would render meanwhile gets `503` with
`Retry-After: 1`, and the app's gate (`refuses`) answers it so before Flask is involved, at the
cost of a few string tests: a flood of distinct queries then costs the server little more than
the files it serves beside it. Answers the cache holds pass the gate whatever the load.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from syndicator import filters, topicexpr, urls
from syndicator.bounded import Bounded
from syndicator.compress import gzip_bytes
from syndicator.config import Settings
from syndicator.formats import FEED_FORMATS
from syndicator.model import Related
from syndicator.pipeline import feeds
from syndicator.pipeline.catalog import Catalog
from syndicator.render import RENDERERS, pages
from syndicator.topicexpr import Expression
from syndicator.web.files import Entry, entry_of

#: The format key of a custom feed's page (what a browser navigating to its URL gets).
PAGE = "html"
#: (format, media type, label) of each feed format, as pages list them.
FEED_LINKS = tuple((fmt, r.media_type, r.label) for fmt, r in RENDERERS.items())
BUSY = "Busy: too many custom feeds are being made; try again"
_FEED_SUFFIXES = tuple("." + fmt for fmt in FEED_FORMATS)
#: Characters of a topic combination (`ai+azure`, `ai,azure`; `-azure` starts with one).
_COMBINING = ("+", ",")


def _looks_custom(rel: str, query: str) -> bool:
    """`rel` with `query` may be a custom feed: a filter parameter, or a topic combination."""
    if query and any(part.partition("=")[0] in filters.KEYS for part in query.split("&")):
        return True
    topic = urls.topic_of_stem(rel)
    return topic is not None and (topic.startswith("-") or any(c in topic for c in _COMBINING))


#: Longest query string read (a filter is at most filter_max_length per parameter anyway).
MAX_QUERY = 4096
#: Custom feeds rendered at once: renders are Python work that holds the GIL, so one at a time
#: (with the short switch interval `serve` sets) leaves the other threads to the files.
RENDERS = 1
#: The share of the time custom renders may take (of one thread: the GIL's, as the rest of
#: the server's Python work needs it too), past a burst of this many seconds of renders.
RENDER_SHARE = 0.25
RENDER_BURST = 1.0
#: Raw spellings (path, query, page) remembered with the cache key they were answered from.
RAW_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Answer:
    """What to answer: `entry` (200/304), a redirect to `location`, or `status` with `message`."""

    status: int
    entry: Entry | None = None
    location: str | None = None
    message: str = ""
    retry_after: int | None = None
    #: True while `entry` is still the answer (the server replays it until then)
    check: Callable[[], bool] | None = None


@dataclass(frozen=True, slots=True)
class _Kept:
    entry: Entry
    depends: frozenset[str]
    size: int


def _kept_size(kept: _Kept) -> int:
    return kept.size


def asks_custom(args: Mapping[str, Sequence[str]]) -> bool:
    """True when the query names a filter parameter (a file's URL with one is a custom feed)."""
    return any(key in args for key in filters.KEYS)


class CustomFeeds:
    def __init__(self, settings: Settings, catalog: Callable[[], Catalog | None],
                 resolve: Callable[[str], str]) -> None:
        self.settings = settings
        self._catalog = catalog
        self._resolve = resolve
        self._kept: Bounded[tuple[str, ...], _Kept] = Bounded(settings.custom_cache_mb * 1024 * 1024,
                                                              _kept_size, settings.custom_cache_entries)
        self._synced = 0
        self._lock = threading.Lock()
        self._renders = threading.BoundedSemaphore(RENDERS)
        #: renders under way; seconds of render time left in the bucket, as of _budget_at
        self._rendering = 0
        self._budget = RENDER_BURST
        self._budget_at = time.monotonic()
        #: (rel, raw query, page) -> the cache key it was answered from, for the gate
        self._raw: OrderedDict[tuple[str, str, bool], tuple[str, ...]] = OrderedDict()

    def saturated(self) -> bool:
        """True while a render that started now would exceed the bounds (see the docstring)."""
        return self._rendering >= RENDERS or self._left(time.monotonic()) <= 0

    def _left(self, now: float) -> float:
        """Seconds of render time in the bucket at `now`."""
        return min(RENDER_BURST, self._budget + (now - self._budget_at) * RENDER_SHARE)

    def refuses(self, rel: str, query: str, page: bool) -> bool:
        """The gate: True when the request for `rel` with the raw `query` looks like a custom
        feed, the cache has no answer for that spelling, and a render cannot start now. A few
        string tests, no parsing: a flood is refused without going through Flask."""
        if not self.saturated() or not rel.endswith(_FEED_SUFFIXES):
            return False
        if not _looks_custom(rel, query):
            return False
        key = self._raw.get((rel, query, page))
        return key is None or key not in self._kept

    def answer(self, rel: str, args: Mapping[str, Sequence[str]], query: str,
               is_file: Callable[[str], bool], page: bool = False) -> Answer | None:
        """The answer for a feed path `rel` with query `args`; None when `rel` names no custom
        feed (not a feed format, or a plain file's path without filters). `page`: a browser
        navigated to the URL, and gets the feed's page (HTML, with autodiscovery links)."""
        stem, dot, fmt = rel.rpartition(".")
        spelled = urls.topic_of_stem(stem)
        if not dot or fmt not in FEED_FORMATS or (stem != urls.ALL_STEM and (spelled is None or "/" in spelled)):
            return None
        asked = self._read(args, len(query), spelled)
        if isinstance(asked, Answer):
            return asked
        expression, wanted = asked
        canonical = urls.ALL_STEM if expression is None else urls.topic_stem(expression.text())
        if expression is not None and expression.single and not wanted:  # a topic's own feed: a file
            if canonical == stem:
                return None
            if is_file(urls.feed_path(canonical, fmt)):
                return Answer(301, location=self._url(canonical, fmt, wanted))
            return Answer(404, message="Not found")
        if expression is None and not wanted:
            return None
        catalog = self._catalog()
        if catalog is None:
            return Answer(503, message="Starting: the feeds are being built", retry_after=5)
        if expression is not None and catalog.unknown(expression):
            return Answer(404, message="Not found: no topic " + ", ".join(catalog.unknown(expression)))
        if canonical != stem or query != wanted.query:  # one URL a feed: its self link
            return Answer(301, location=self._url(canonical, fmt, wanted))
        return self._cached(catalog, expression, canonical, PAGE if page else fmt, wanted, (rel, query, page))

    def _read(self, args: Mapping[str, Sequence[str]], query_length: int,
              spelled: str | None) -> tuple[Expression | None, filters.Filters] | Answer:
        """The expression and filters asked for, or the error answer."""
        if query_length > MAX_QUERY:
            return Answer(400, message=f"the query has more than {MAX_QUERY} characters")
        try:
            wanted = filters.parse(args, self.settings.items_per_feed, self.settings.filter_max_length)
            return (None if spelled is None else topicexpr.parse(spelled, self._resolve)), wanted
        except filters.FilterError as e:
            return Answer(400, message=str(e))
        except topicexpr.ExpressionError as e:
            return Answer(404, message=f"Not found: {e}")

    def _url(self, stem: str, fmt: str, wanted: filters.Filters) -> str:
        return self.settings.base_url + urls.feed_path(stem, fmt) + (f"?{wanted.query}" if wanted.query else "")

    def _cached(self, catalog: Catalog, expression: Expression | None, stem: str, fmt: str,
                wanted: filters.Filters, raw: tuple[str, str, bool]) -> Answer:
        now = time.time()
        key = (stem, fmt, wanted.query, str(wanted.time_key(now)))
        with self._lock:
            self._sync(catalog)
            self._raw[raw] = key  # (the gate lets this spelling through while the key is kept)
            self._raw.move_to_end(raw)
            if len(self._raw) > RAW_KEPT:
                self._raw.popitem(last=False)
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.touch(key)
                return Answer(200, kept.entry, check=self._still(key, kept, wanted))
        if self._left(time.monotonic()) <= 0 or not self._renders.acquire(blocking=False):
            return Answer(503, message=BUSY, retry_after=1)
        self._rendering += 1
        started = time.monotonic()
        try:
            entry = self._render(catalog, expression, stem, fmt, wanted, now)
        finally:
            ended = time.monotonic()
            self._budget = self._left(ended) - (ended - started)
            self._budget_at = ended
            self._rendering -= 1
            self._renders.release()
        with self._lock:
            self._sync(self._catalog() or catalog)
            if self._synced != catalog.generation:  # a pass changed the posts meanwhile: keep nothing
                return Answer(200, entry)
            kept = _Kept(entry, Catalog.depends_on(expression, wanted.group), len(entry.data) + len(entry.gz))
            self._keep(key, kept)
        return Answer(200, entry, check=self._still(key, kept, wanted))

    def _still(self, key: tuple[str, ...], kept: _Kept, wanted: filters.Filters) -> Callable[[], bool]:
        """True while `kept` is the cache's answer for `key`: no pass dropped it, no eviction,
        and the filter_time cut is the same."""
        cut = key[3]

        def check() -> bool:
            catalog = self._catalog()
            if catalog is None:
                return False
            if catalog.generation != self._synced:
                with self._lock:
                    self._sync(catalog)
            return self._kept.get(key) is kept and (wanted.within is None or str(wanted.time_key()) == cut)

        return check

    def _render(self, catalog: Catalog, expression: Expression | None, stem: str, fmt: str,
                wanted: filters.Filters, now: float) -> Entry:
        s = self.settings
        limit = wanted.limit or s.items_per_feed
        coverage: dict[str, tuple[Related, ...]] = {}
        if wanted.group:
            posts, coverage = catalog.select_stories(expression, wanted.matcher(now), limit, wanted)
        else:
            posts = catalog.select(expression, wanted.matcher(now), limit, wanted)
        label = "All posts" if expression is None else expression.label(lambda slug: catalog.names.get(slug, slug))
        if wanted:
            label += f" ({wanted.describe()})"
        home = urls.feed_page_url(s.base_url, stem) if expression is not None and expression.single else s.base_url
        feed = replace(feeds.custom(s, stem, label, tuple(posts), home), coverage=coverage)
        if fmt == PAGE:
            data = pages.feed_page(s, feed, FEED_LINKS, name=label, query=wanted.query)
        else:
            data = RENDERERS[fmt].render(feed, self._url(stem, fmt, wanted))
        return entry_of(data, gzip_bytes(data), feed.updated.timestamp(), "." + fmt)

    def _sync(self, catalog: Catalog) -> None:
        """Drop what the passes since the last look changed (called with the lock held)."""
        if catalog.generation == self._synced:
            return
        changed = catalog.changed_since(self._synced)
        for key, kept in self._kept.items():
            if changed is None or kept.depends & changed:
                self._kept.pop(key)
        self._synced = catalog.generation

    def _keep(self, key: tuple[str, ...], kept: _Kept) -> None:
        self._kept.put(key, kept)

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._kept), "bytes": self._kept.bytes}
