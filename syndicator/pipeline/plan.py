"""Planning stage, outputs: which files a pass produces, the digest of what each is made of,
and which of them must be rendered again (the rest are current where they are published).

One function for both passes: a cold build plans every feed and every post page, an
incremental one the feeds of the posts that went and came and their pages. An output whose
digest is unchanged and which is still published is not rendered at all.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syndicator import urls, websub
from syndicator.config import Settings
from syndicator.formats import FEED_FORMATS, FORMATS
from syndicator.model import NO_LINKS, Feed, Links, Post
from syndicator.pipeline import feeds as feedplan
from syndicator.pipeline.archive import Archives
from syndicator.pipeline.feeds import Entry, Key, Planner, sort_key
from syndicator.publishers import Outputs, Publisher
from syndicator.render import RENDERERS, pages, site
from syndicator.stories import Stories, grouped

log = logging.getLogger("syndicator.plan")

#: (format, media type, label) of each feed format, as pages list them.
FEED_LINKS = tuple((fmt, r.media_type, r.label) for fmt, r in RENDERERS.items())
#: What a post is made of beyond its fields: the hash of its bytes (None: use its repr).
SourceHash = Callable[[Post], str | None]


@dataclass
class Plan:
    outputs: Outputs = field(default_factory=Outputs)
    #: output path -> digest of what it is made of, for every output looked at
    digests: dict[str, str] = field(default_factory=dict)
    #: outputs no longer produced
    gone: list[str] = field(default_factory=list)


@dataclass
class Scope:
    """What a pass looks at: feed stems, and the posts whose pages went and came."""

    stems: Iterable[str]
    removed: Iterable[Post] = ()
    added: Iterable[Post] = ()
    #: every feed and page is in scope (index and OPML are rendered whatever the digests say)
    full: bool = False


class OutputPlanner:
    """Remembers the digest each published output was rendered from (through the Store, so a
    restart renders only what changed while it was down)."""

    def __init__(self, settings: Settings, digests: dict[str, str], source_hash: SourceHash,
                 publisher: Publisher, archives: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self.known = digests
        self.source_hash = source_hash
        self.publisher = publisher
        #: every feed's archive pages (RFC 5005), from the site record
        self.archives = Archives(settings, archives)
        #: the last feed whose items' digests were joined, and that join (see _items_digest)
        self._items_memo: tuple[Feed | None, bytes] = (None, b"")
        #: post digests of this pass, by the post's identity (a post is in several feeds' pages)
        self._digests: dict[int, tuple[Post, str]] = {}
        #: a full pass's post digests by feed entry (see _archive_digest)
        self._entry_digests: dict[Entry, str] | None = None
        #: stem -> what its archive pages share with the feed, as last planned (see _head)
        self._heads: dict[str, str] = {}
        #: stem -> archive pages the next pass plans whatever changed (published pages gone)
        self._repair: dict[str, set[int]] = {}
        #: this pass's archive pages to render: (their newest item's key, path, digest, render)
        self._pages: list[tuple[Key, str, str, Callable[[], bytes]]] = []

    def files_known(self) -> int:
        """How many published files the known digests are of (each feed with archive pages
        also has one digest of all of them)."""
        return len(self.known) - self.archives.feeds_with_pages()

    def missing(self) -> list[str]:
        """The outputs with a known digest, and the index and OPML list, that are not published
        (one listing a folder)."""
        listings: dict[str, set[str]] = {}
        gone = []
        for rel in (*self.known, urls.INDEX, urls.OPML):
            if urls.is_archive_prefix(rel):
                continue  # a digest of every archive page of a feed, no file
            folder, _, name = rel.rpartition("/")
            present = listings.get(folder)
            if present is None:
                present = listings[folder] = self.publisher.listing(folder + "/" if folder else "")
            if name not in present:
                gone.append(rel)
        return gone

    def repair(self, pages: Iterable[tuple[str, int]]) -> None:
        """Plan these archive pages (stem, number) on the next pass, whatever changed."""
        for stem, n in pages:
            self._repair.setdefault(stem, set()).add(n)

    def primed(self, planner: Planner) -> None:
        """The planner holds what the known outputs were made from (see Builder._prime): what
        each feed's archive pages took from the feed is as the feed is now."""
        for stem in planner.stems():
            feed = planner.feed(stem)
            if feed is not None:
                self._heads[stem] = self._head(feed)

    def plan(self, planner: Planner, scope: Scope, stories: Stories | None = None) -> Plan:
        """`stories`: every post's story, for the feeds `group_stories` names. A grouped feed is
        planned on every pass (a story gathers posts of every topic); its digest says whether
        it changed."""
        plan = Plan()
        feeds = planner.feeds()
        changed = _keys_by_stem(scope) if not scope.full else {}
        by_story = feedplan.grouped_stems(self.settings) if stories is not None else frozenset()
        stems = {*scope.stems, *self._repair, *(stem for stem in by_story if stem in planner.stems())}
        for stem in sorted(stems):
            feed = planner.feed(stem)
            if feed is not None and stories is not None and stem in by_story:
                feed = self._grouped(planner, stem, feed, stories)
            links = self._archive(plan, planner, stem, feed, None if scope.full else changed.get(stem, []))
            self._plan_feed(plan, stem, feed, links)
        self._add_pages(plan)
        feeds_changed = plan.gone or any(self.known.get(rel) != d for rel, d in plan.digests.items())
        if scope.full or feeds_changed:
            self._plan_lists(plan, feeds)
        topic_urls = {f.topic.slug: urls.feed_page_url(self.settings.base_url, f.stem) for f in feeds if f.topic}
        for post in scope.added:
            self._plan_page(plan, post, topic_urls)
        for post in scope.removed:
            rel = urls.post_page(post.page_slug) if post.page_slug else None
            if rel and rel not in plan.digests and rel in self.known:
                plan.gone.append(rel)
        self._digests.clear()
        self._entry_digests = None
        self._repair.clear()
        return plan

    def _grouped(self, planner: Planner, stem: str, feed: Feed, stories: Stories) -> Feed:
        """The feed at `stem` with one item per story (see stories.grouped)."""
        slug = urls.topic_of_stem(stem)

        def admits(post: Post) -> bool:
            return slug is None or any(t.slug == slug for t in post.topics)

        items, coverage = grouped(planner.stream(stem), stories, admits, self.settings.items_per_feed)
        return feedplan.grouped(feed, items, coverage, self.settings)

    def _add(self, plan: Plan, rel: str, digest: str, render: Callable[[], bytes]) -> None:
        plan.digests[rel] = digest
        if self.known.get(rel) != digest or not self.publisher.exists(rel):
            plan.outputs.later(rel, render)

    def _plan_feed(self, plan: Plan, stem: str, feed: Feed | None, links: Links) -> None:
        """A feed's three formats and its page, made of the same things."""
        page = urls.feed_page(stem)
        if feed is None:
            if page in self.known:
                plan.gone.append(page)
        else:
            s = self.settings
            self._add(plan, page, self._feed_digest(feed, "html", NO_LINKS),
                      lambda feed=feed: pages.feed_page(s, feed, FEED_LINKS))  # type: ignore[misc]
        for fmt in FEED_FORMATS:
            rel = urls.feed_path(stem, fmt)
            if feed is None:
                if rel in self.known:
                    plan.gone.append(rel)
                continue
            url = urls.feed_url(self.settings.base_url, stem, fmt)
            self._add(plan, rel, self._feed_digest(feed, fmt, links),
                      lambda feed=feed, fmt=fmt, url=url: RENDERERS[fmt].render(feed, url, links))  # type: ignore[misc]

    # -- archive pages (see archive.py) --------------------------------------------------------

    def _archive(self, plan: Plan, planner: Planner, stem: str, feed: Feed | None,
                 changed: list[Key] | None) -> Links:
        """Plan the archive pages of the feed at `stem` that may have changed (all of them when
        `changed` is None, else the pages of the items that went and came, the pages closed
        now and the one before them); returns the feed's own Links."""
        archives = self.archives
        if feed is None:
            archives.forget(stem)
            prefix = urls.archive_prefix(stem)
            plan.gone.extend(rel for rel in self.known if rel.startswith(prefix))
            return Links()
        entries = planner.entries(stem)
        before = archives.close(stem, entries)
        count = archives.count(stem)
        hubs = websub.advertised(self.settings)
        if count == 0:  # with pages turned off, a feed that holds some of its items only is not complete
            if not archives.enabled and changed is None:
                prefix = urls.archive_prefix(stem)
                plan.gone.extend(rel for rel in self.known if rel.startswith(prefix))
            return Links(complete=len(entries) <= archives.shown, hubs=hubs)
        head = self._head(feed)
        base = self.settings.base_url
        own = Links(prev_archive=base + urls.archive_stem(stem, count), hubs=hubs)
        if changed is None:
            # a full pass (a start): one digest over all of the feed's pages, so that pages
            # which are what they were are neither planned nor looked at one by one
            whole = self._archive_digest(planner, stem, entries, head)
            plan.digests[urls.archive_prefix(stem)] = whole
            if self.known.get(urls.archive_prefix(stem)) == whole and self._keep_pages(plan, stem, count):
                self._heads[stem] = head
                return own
            pages: Iterable[int] = range(1, count + 1)
        elif self._heads.get(stem) != head:
            pages = range(1, count + 1)
        else:
            touched = archives.pages_of(stem, changed)
            if touched:  # said aloud: a reader who cached the page keeps the old version
                log.info("archive pages of %s rewritten for changed items: %s", stem,
                         ", ".join(str(n) for n in sorted(touched)))
            pages = touched | (set(range(max(before, 1), count + 1)) if count > before else set())
            pages |= {n for n in self._repair.get(stem, ()) if n <= count}
        self._heads[stem] = head
        for n in sorted(pages):
            posts = planner.posts_of(archives.page(stem, entries, n))
            links = Links(archive=True, current=base + stem,
                          prev_archive=base + urls.archive_stem(stem, n - 1) if n > 1 else None,
                          next_archive=base + (urls.archive_stem(stem, n + 1) if n < count else stem))
            self._plan_archive_page(plan, feed, urls.archive_stem(stem, n), posts, links, head)
        if pages and changed is not None and urls.archive_prefix(stem) in self.known:
            plan.gone.append(urls.archive_prefix(stem))  # pages planned one by one: the whole's digest is off
        return own

    def _archive_digest(self, planner: Planner, stem: str, entries: list[Entry], head: str) -> str:
        """What every archive page of `stem` is made of: the feed's head, the pages' bounds and
        the digests of the archived posts."""
        tops = self.archives.tops[stem]
        if self._entry_digests is None:  # each post's digest once, for all the feeds it is in
            self._entry_digests = {e: self._post_digest(post) for e, post in planner.by_entry().items()}
        archived = entries[bisect.bisect_left(entries, (tops[-1],)):]
        h = hashlib.sha256(repr((head, tops)).encode())
        h.update("".join(map(self._entry_digests.__getitem__, archived)).encode())
        return h.hexdigest()

    def _keep_pages(self, plan: Plan, stem: str, count: int) -> bool:
        """Take the known digests of the `count` pages of `stem` as this pass's, if every page
        is published (one listing of the folder, not a look per file)."""
        present = self.publisher.listing(urls.archive_prefix(stem))
        kept = {}
        for n in range(1, count + 1):
            for fmt in FEED_FORMATS:
                rel = urls.feed_path(urls.archive_stem(stem, n), fmt)
                digest = self.known.get(rel)
                if digest is None or rel.rpartition("/")[2] not in present:
                    return False
                kept[rel] = digest
        plan.digests.update(kept)
        return True

    def _plan_archive_page(self, plan: Plan, feed: Feed, page_stem: str, posts: tuple[Post, ...], links: Links,
                   head: str) -> None:
        h = hashlib.sha256(repr((head, links)).encode())
        for post in posts:
            h.update(self._post_digest(post).encode())
        digest = h.hexdigest()
        s = self.settings
        newest = sort_key(posts[0]) if posts else (0.0, "")
        for fmt in FEED_FORMATS:
            rel = urls.feed_path(page_stem, fmt)
            url = s.base_url + rel
            self._pages.append((newest, rel, f"{fmt}:{digest}",
                                lambda fmt=fmt, url=url: RENDERERS[fmt].render(  # type: ignore[misc]
                                    feedplan.archive_page(feed, posts, s), url, links)))

    def _add_pages(self, plan: Plan) -> None:
        """The archive pages of every feed in the order of their items' dates, newest first,
        after the feeds (which show the newest items): the pages holding a post are rendered
        close together, so its item is made once for them all (render.shared_items)."""
        self._pages.sort(key=lambda page: (page[0], page[1]))  # sort keys: the newest is the smallest
        for _, rel, digest, render in self._pages:
            self._add(plan, rel, digest, render)
        self._pages.clear()

    @staticmethod
    def _head(feed: Feed) -> str:
        """What a feed's archive pages take from the feed itself."""
        return repr((feed.key, feed.title, feed.description, feed.stem, feed.home_url, feed.author, feed.topic,
                     feed.icon_url))

    def _post_digest(self, post: Post) -> str:
        hit = self._digests.get(id(post))
        if hit is not None and hit[0] is post:
            return hit[1]
        digest = self.post_digest(post)
        self._digests[id(post)] = (post, digest)
        return digest

    def _plan_lists(self, plan: Plan, feeds: list[Feed]) -> None:
        """The index page and OPML list every feed: rendered whenever a feed changed (the
        publisher skips them when their bytes are the same). The site's files (favicon, icon,
        robots.txt) go with them."""
        s = self.settings
        plan.outputs.later(urls.INDEX, lambda: pages.index(s, feeds, FEED_LINKS))
        opml_type = FORMATS[s.opml_format].media_type
        plan.outputs.later(urls.OPML, lambda: pages.opml(s, feeds, s.opml_format, opml_type))
        for rel, make in site.SITE_FILES.items():  # a few KB each: made to be compared
            data = make(s)
            self._add(plan, rel, hashlib.sha256(data).hexdigest(), lambda data=data: data)  # type: ignore[misc]

    def _plan_page(self, plan: Plan, post: Post, topic_urls: dict[str, str]) -> None:
        if not post.page_slug:
            return
        urls_of_post = {t.slug: topic_urls[t.slug] for t in post.topics if t.slug in topic_urls}
        links = "|".join(urls_of_post.get(t.slug, "") for t in post.topics)
        s = self.settings
        page_digest = hashlib.sha256(f"{self._post_digest(post)}|{links}".encode()).hexdigest()
        self._add(plan, urls.post_page(post.page_slug), page_digest,
                  lambda: pages.post_page(s, post, urls_of_post, FEED_LINKS))

    def remember(self, plan: Plan, full: bool, removed: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """Take the plan's digests as what is published now; returns (changed digests, paths
        forgotten) for the Store."""
        changed = {rel: d for rel, d in plan.digests.items() if self.known.get(rel) != d}
        gone = [*plan.gone, *removed]
        if full:
            gone += [rel for rel in self.known if rel not in plan.digests]
            self.known = dict(plan.digests)
        else:
            self.known.update(plan.digests)
        for rel in gone:
            self.known.pop(rel, None)
        return changed, gone

    def post_digest(self, post: Post) -> str:
        # the post is a function of its bytes (hash) and the settings and code (the Store's
        # key); id, updated and the page slug are what tracking may have changed since
        source = self.source_hash(post) or repr(post)
        key = f"{source}|{post.id}|{post.updated.isoformat()}|{post.link}|{post.page_slug}"
        return hashlib.sha256(key.encode()).hexdigest()

    def _feed_digest(self, feed: Feed, fmt: str, links: Links) -> str:
        h = hashlib.sha256(repr((fmt, feed.key, feed.title, feed.description, feed.stem, feed.home_url,
                                 feed.language, feed.author, feed.updated, feed.topic, feed.icon_url,
                                 links)).encode())
        h.update(self._items_digest(feed))
        if feed.coverage:  # a grouped feed: each item's other coverage
            h.update(repr(sorted(feed.coverage.items())).encode())
        return h.hexdigest()

    def _items_digest(self, feed: Feed) -> bytes:
        """The feed's posts' digests, concatenated: the same for its three formats."""
        if self._items_memo[0] is not feed:
            self._items_memo = (feed, "".join(self._post_digest(post) for post in feed.posts).encode())
        return self._items_memo[1]


def _keys_by_stem(scope: Scope) -> dict[str, list[Key]]:
    """The sort keys of the posts that went and came, by the stems of the feeds they are in."""
    keys: dict[str, list[Key]] = defaultdict(list)
    for post in (*scope.removed, *scope.added):
        key = sort_key(post)
        keys[urls.ALL_STEM].append(key)
        for topic in post.topics:
            keys[urls.topic_stem(topic.slug)].append(key)
    return keys
