"""RFC 5005 archives: the items of a feed older than the ones it shows, in archive pages whose
bounds never move.

A feed's items are kept newest first (`feeds.Planner`); its archive pages are counted from the
oldest: page 1 holds the oldest `archive_page_size` items, page 2 the next ones, and so on. A
page is closed (made) only when it is full and its items would otherwise be in no document:
while the items newer than the newest page are more than the feed shows, the oldest
`archive_page_size` of them become the next page. So the feed's documents cover every item,
the subscription document (the feed itself) overlaps the newest page by fewer than a page, and
a feed whose whole history fits in the feed has no pages (it says fh:complete).

Pages link both ways: prev-archive to the next older page, next-archive to the next newer
one; the newest page's next-archive is the feed itself, the document that follows it in time
(so a lone page still links somewhere, as the W3C validator asks, and a client walking forward
ends at the feed). That link is the only thing a new page changes in an older one.

Each page is remembered by its top: the sort key of its newest item when it was closed. A page
holds the items between its top and the next older page's, so a new post, an edit or a
restart never moves an item to another page; an edit or deletion of an archived item rewrites
its one page, a post dated back into an archived page adds to that page. The tops are kept in
the site record (feeds/.site.json), which the `build` command and the daemon both keep.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from syndicator.config import Settings
from syndicator.pipeline.feeds import Entry, Key

log = logging.getLogger("syndicator.archive")

#: Key of the site record that holds the tops.
RECORD_KEY = "archives"


def _key(value: Any) -> Key | None:
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float))
            and not isinstance(value[0], bool) and isinstance(value[1], str)):
        return (float(value[0]), value[1])
    return None


def _tops(value: Any) -> list[Key] | None:
    """A stem's tops from the site record, if they are well-formed (oldest page first,
    strictly newer one after the other)."""
    if not isinstance(value, list):
        return None
    keys = [_key(v) for v in value]
    if not keys or any(k is None for k in keys):
        return None
    checked = [k for k in keys if k is not None]
    return checked if all(a > b for a, b in zip(checked, checked[1:], strict=False)) else None


class Archives:
    """The pages of every feed: their tops, closed as feeds grow."""

    def __init__(self, settings: Settings, record: Mapping[str, Any] | None = None) -> None:
        #: items a feed shows; a page is never larger (or an item could be in no document)
        self.shown = settings.items_per_feed
        self.size = min(settings.archive_page_size, settings.items_per_feed)
        #: archive_page_size 0: no pages (those of the record are forgotten)
        self.enabled = self.size > 0
        self.tops: dict[str, list[Key]] = {}
        for stem, value in (record or {}).items() if self.enabled else ():
            tops = _tops(value)
            if isinstance(stem, str) and tops is not None:
                self.tops[stem] = tops
        #: the tops changed since `record()` was last taken
        self.dirty = bool(record) and not self.enabled

    def record(self) -> dict[str, list[list[Any]]]:
        """The tops for the site record."""
        self.dirty = False
        return {stem: [list(k) for k in tops] for stem, tops in sorted(self.tops.items())}

    def feeds_with_pages(self) -> int:
        return sum(1 for tops in self.tops.values() if tops)

    def count(self, stem: str) -> int:
        return len(self.tops.get(stem, ()))

    def close(self, stem: str, entries: list[Entry]) -> int:
        """Close the pages `entries` (the feed's items, newest first) now need; returns how many
        pages it had before."""
        tops = self.tops.get(stem, [])
        before = len(tops)
        end = bisect.bisect_left(entries, (tops[-1],)) if tops else len(entries)
        while end > self.shown and self.enabled:
            end -= self.size
            tops.append(entries[end][0])
        if len(tops) > before:
            self.tops[stem] = tops
            self.dirty = True
        return before

    def forget(self, stem: str) -> None:
        """The feed is gone: so are its pages."""
        if self.tops.pop(stem, None) is not None:
            self.dirty = True

    def page(self, stem: str, entries: list[Entry], n: int) -> list[Entry]:
        """The entries of page `n` (1 = oldest), newest first."""
        tops = self.tops[stem]
        start = bisect.bisect_left(entries, (tops[n - 1],))
        end = bisect.bisect_left(entries, (tops[n - 2],)) if n > 1 else len(entries)
        return entries[start:end]

    def page_of(self, stem: str, key: Key) -> int | None:
        """The page an item with sort key `key` belongs in; None: newer than every page."""
        for i, top in enumerate(self.tops.get(stem, ())):
            if top <= key:
                return i + 1
        return None

    def pages_of(self, stem: str, keys: Iterable[Key]) -> set[int]:
        pages = {self.page_of(stem, key) for key in keys}
        pages.discard(None)
        return pages  # type: ignore[return-value]
