"""The one orchestrator: scan → read → normalize → plan feeds → render → write.

`build()` is one full pass (the CLI); a long-lived `Builder` keeps what it read and
rendered, so the scheduler's rebuilds only re-read changed files and re-render changed feeds.
With a `State` (the daemon) that memory outlives restarts: ids stay stable across moves,
`updated` means "content last changed", and a post that breaks keeps its last good version.

Timing seams (bench/): `Builder(settings).build()` is a cold build; calling `build()` again on
the same Builder after an edit is the incremental rebuild the daemon does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from syndicator import feeds as feedplan
from syndicator import output, parallel, redirects, sources
from syndicator.config import Settings
from syndicator.errors import PostError
from syndicator.model import Feed, Post, Problem, pickled_by_constructor
from syndicator.normalize import NotAPost, normalize, page_link
from syndicator.render import RENDERERS, pages
from syndicator.state import Record, State

log = logging.getLogger("syndicator.build")

#: Stat fingerprint of one file: cheap to take, changes on every save.
Fingerprint = tuple[int, int]


@pickled_by_constructor  # a forked reader sends thousands back
@dataclass(frozen=True, slots=True)
class ReadResult:
    """What reading one file gave: a post, or why not."""

    fingerprint: Fingerprint
    post: Post | None = None
    problems: tuple[Problem, ...] = ()
    not_a_post: bool = False
    #: sha256 of the bytes read (None when they could not be read).
    digest: str | None = None


@dataclass
class BuildResult:
    posts_read: int = 0
    posts_published: int = 0
    drafts_skipped: int = 0
    pages_skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    feeds: list[Feed] = field(default_factory=list)
    #: the published posts in path order (or how to list them: made on first use)
    _posts: list[Post] | Callable[[], list[Post]] = field(default_factory=list, repr=False)
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    changed_paths: list[str] = field(default_factory=list)
    #: (old path, new path) of posts that moved and kept their id.
    moved: list[tuple[str, str]] = field(default_factory=list)
    duration_ms: float = 0.0
    built_at: datetime | None = None

    @property
    def posts(self) -> list[Post]:
        if callable(self._posts):
            self._posts = self._posts()
        return self._posts

    @posts.setter
    def posts(self, value: list[Post]) -> None:
        self._posts = value

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def feeds_written(self) -> int:
        return sum(1 for rel in self.written if rel.endswith((".rss", ".atom", ".json")))


def read_one(root: Path, rel: str, fingerprint: Fingerprint, settings: Settings,
             sites: sources.SiteConfigs) -> ReadResult:
    """Read and normalize one file; every failure becomes a Problem, never an exception."""
    digest = None
    try:
        data = sources.read_bytes(root, rel, settings.max_post_bytes)
        digest = hashlib.sha256(data).hexdigest()
        raw = sources.parse(data, rel, sites.for_post(rel))
        post, warnings = normalize(raw, settings)
        return ReadResult(fingerprint, post, tuple(warnings), digest=digest)
    except PostError as e:
        return ReadResult(fingerprint, None, (Problem(e.path, e.message, e.line, "error"),), digest=digest)
    except NotAPost:
        return ReadResult(fingerprint, None, (), not_a_post=True, digest=digest)
    except RecursionError:
        return ReadResult(fingerprint, None, (Problem(rel, "nested too deeply to read", None, "error"),),
                          digest=digest)


#: A file modified less than this long ago may still be being written.
SETTLE_NS = 1_000_000_000


class Builder:
    """Holds what it knows of every file (a `Record`) and the last rendering of every feed."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None,
                 state: State | None = None, settle: bool = False) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now().astimezone())
        self.state = state
        #: Daemon mode: an error right after a change is retried on the next pass before it
        #: counts (an editor or a copy may still be writing the file).
        self.settle = settle
        self.records: dict[str, Record] = state.load() if state else {}
        #: path -> fingerprint of an error read that waits for its retry.
        self._tentative: dict[str, Fingerprint] = {}
        #: the feeds of the published posts, kept current change by change (None: plan afresh)
        self._planner: feedplan.Planner | None = None
        self._reset_collected()
        #: what feeds/.manifest.json lists, and which of those are no longer produced
        self._files: set[str] = set()
        self._stale: set[str] = set()
        #: output path -> digest of what the file on disk was rendered from (outlives restarts
        #: through the state, so a restart renders only what changed while it was down).
        self._out_digests: dict[str, str] = state.output_digests() if state else {}
        self._site_problems: list[Problem] = []
        #: fingerprints of the Jekyll _config.yml files the records were read with
        self._site_fps: dict[str, Fingerprint] = state.site_configs() if state else {}
        self.last: BuildResult | None = None
        #: the last feed whose items' digests were joined, and that join (see _items_digest)
        self._items_memo: tuple[Feed | None, bytes] = (None, b"")
        #: One pass at a time: the scheduler's tick and shutdown take turns.
        self.lock = threading.Lock()

    @property
    def reads(self) -> dict[str, Record]:
        """Every known file; `.post` is what its current bytes gave (None if broken)."""
        return self.records

    # -- reading ---------------------------------------------------------------------------

    def scan(self) -> dict[str, Fingerprint]:
        """Fingerprints of every post file and every Jekyll _config.yml."""
        found = sources.scan(self.settings.seeds_dir, site_configs=True)
        return {rel: (st.st_size, st.st_mtime_ns) for rel, st in found}

    @staticmethod
    def _split(scanned: dict[str, Fingerprint]) -> tuple[dict[str, Fingerprint], dict[str, Fingerprint]]:
        sites = {rel: fp for rel, fp in scanned.items() if sources.is_site_config(rel)}
        return ({rel: fp for rel, fp in scanned.items() if rel not in sites} if sites else scanned), sites

    def _stale_under_sites(self, sites: dict[str, Fingerprint]) -> set[str]:
        """Posts to re-read because a _config.yml above them appeared, changed or went away."""
        dirs = {rel.rpartition("/")[0] for rel in set(sites) ^ set(self._site_fps)}
        dirs |= {rel.rpartition("/")[0] for rel in sites if rel in self._site_fps and sites[rel] != self._site_fps[rel]}
        if not dirs:
            return set()
        return {rel for rel in self.records if any(not d or rel.startswith(d + "/") for d in dirs)}

    def pending(self, scanned: dict[str, Fingerprint]) -> bool:
        """True when a pass would change something: a file added, changed or deleted, a site
        config changed, or an error waiting for its retry."""
        scanned, sites = self._split(scanned)
        if self._tentative or len(scanned) != len(self.records) or self.last is None or sites != self._site_fps:
            return True
        return any(rel not in self.records or self.records[rel].fingerprint != fp for rel, fp in scanned.items())

    def refresh(self, scanned: dict[str, Fingerprint]) -> list[str]:
        """Re-read files whose fingerprint changed; forget deleted ones. Returns changed paths."""
        result = BuildResult()
        with self._first_pass(scanned):
            self._refresh(scanned, result)
        return result.changed_paths

    def _first_pass(self, scanned: dict[str, Fingerprint]) -> AbstractContextManager[None]:
        """Cyclic GC paused while a pass reads thousands of files it has never seen."""
        return parallel.no_cycle_collection(len(scanned) - len(self.records) >= parallel.MIN_FILES)

    def _refresh(self, scanned: dict[str, Fingerprint], result: BuildResult,
                 touched: set[str] | None = None) -> None:
        """`touched`: `scanned` covers only these paths (the watcher's events), not the folder."""
        root = self.settings.seeds_dir
        scanned, site_fps = self._split(scanned)
        if touched is not None:
            site_fps = self._site_fps
        stale = self._stale_under_sites(site_fps)
        sites = sources.SiteConfigs(root)
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        fresh: dict[str, ReadResult] = {}
        to_read = [(rel, fp) for rel, fp in scanned.items() if rel in stale or rel in self._tentative
                   or (known := self.records.get(rel)) is None or known.fingerprint != fp]
        reads = parallel.read_many(to_read, lambda item: read_one(root, *item, self.settings, sites))
        for (rel, _), read in zip(to_read, reads, strict=True):
            if self._defer(rel, read):
                continue
            self._tentative.pop(rel, None)
            fresh[rel] = read
        for rel in [r for r in self._tentative if r not in scanned and (touched is None or r in touched)]:
            del self._tentative[rel]
        gone = [rel for rel in (self.records if touched is None else sorted(touched))
                if rel not in scanned and rel in self.records]
        moves = self._moves(fresh, gone)
        for new, old in moves.items():
            log.info("moved %s -> %s (keeps id %s)", old, new, self.records[old].id)
            result.moved.append((old, new))
        changed = [self._advance(rel, read, moves.get(rel), now) for rel, read in fresh.items()]
        for rel in gone:
            del self.records[rel]
        for record in changed:
            self.records[record.path] = record
        if self.state is not None and (changed or gone):
            # committed before any feed is written: after a crash the next start renders the
            # same `updated` times instead of minting new ones
            self.state.save(changed, gone)
        for rel in site_fps:  # read every config, so a broken one is reported on every pass
            sites.for_post(rel)
        if site_fps != self._site_fps:
            self._site_fps = site_fps
            if self.state is not None:
                self.state.save_site_configs(site_fps)
        self._site_problems = [Problem(e.path, e.message, e.line, "error") for e in sites.errors]
        result.changed_paths = sorted([*fresh, *gone])

    def _defer(self, rel: str, read: ReadResult) -> bool:
        """Whether an error read waits for a retry instead of counting: only in daemon mode,
        after the first pass, for a file still being written or the first error after a change."""
        if not self.settle or self.last is None or read.post is not None or read.not_a_post:
            return False
        recent = time.time_ns() - read.fingerprint[1] < SETTLE_NS
        if recent or self._tentative.get(rel) != read.fingerprint:
            self._tentative[rel] = read.fingerprint
            return True
        return False

    def _moves(self, fresh: dict[str, ReadResult], gone: list[str]) -> dict[str, str]:
        """New path -> vanished path, for a new good post whose own id or content hash matches a
        good post that disappeared in the same scan."""
        candidates = [self.records[g] for g in gone if self.records[g].good is not None]
        moves: dict[str, str] = {}
        for rel, read in fresh.items():
            if not candidates or read.post is None or rel in self.records:
                continue
            match = next((c for c in candidates if c.good_hash == read.digest), None) or next(
                (c for c in candidates if c.own_id == read.post.id), None)
            if match is not None:
                candidates.remove(match)
                moves[rel] = match.path
        return moves

    def _advance(self, rel: str, read: ReadResult, moved_from: str | None, now: datetime) -> Record:
        """The new record of `rel` after reading it: stable id, `updated` = last content change."""
        prev = self.records.get(moved_from or rel)
        if read.post is None:
            keep = prev if prev is not None and prev.good is not None and not read.not_a_post else None
            return Record(
                path=rel, fingerprint=read.fingerprint, hash=read.digest, problems=read.problems,
                not_a_post=read.not_a_post, current=False, id=keep.id if keep else None,
                own_id=keep.own_id if keep else None, good=keep.good if keep else None,
                good_hash=keep.good_hash if keep else None,
                first_seen=prev.first_seen if prev else now, changed=prev.changed if prev else now,
            )
        post = read.post
        if prev is None or prev.good is None:
            # first seen: the post's own dates are all we know
            post_id, updated, first_seen, changed = post.id, post.updated, prev.first_seen if prev else now, now
        else:
            same = read.digest == prev.good_hash
            # a moved post keeps its id; so does an edit, unless the author changed the id itself
            post_id = prev.id if moved_from or post.id == prev.own_id else post.id
            updated = prev.good.updated if same else max(now, post.updated)
            first_seen, changed = prev.first_seen, prev.changed if same else now
        good = post if (post_id, updated) == (post.id, post.updated) else replace(post, id=post_id, updated=updated)
        return Record(
            path=rel, fingerprint=read.fingerprint, hash=read.digest, problems=read.problems, not_a_post=False,
            current=True, id=post_id or None, own_id=post.id, good=good, good_hash=read.digest,
            first_seen=first_seen, changed=changed,
        )

    # -- assembling ------------------------------------------------------------------------

    def _reset_collected(self) -> None:
        """What `collect` found, kept per path so a change is applied without a pass over all."""
        #: path -> the post as published (page slug made unique)
        self._published: dict[str, Post] = {}
        #: path -> the id its good post claims; id -> how many good posts claim it
        self._claim: dict[str, str] = {}
        self._claims: Counter[str] = Counter()
        self._not_posts: set[str] = set()
        #: page slugs the published posts asked for / got; paths whose slug got a suffix
        self._natural_slugs: Counter[str] = Counter()
        self._final_slugs: Counter[str] = Counter()
        self._suffixed: set[str] = set()
        #: path -> its problems (the record's, then a duplicate id)
        self._problems: dict[str, tuple[Problem, ...]] = {}
        self._drafts = 0
        self._collected = False

    def collect(self, result: BuildResult) -> list[Post]:
        """Posts that go into feeds: good, unique ids, drafts filtered (a pass over every record)."""
        self._reset_collected()
        owners: dict[str, str] = {}
        page_slugs: set[str] = set()
        for rel in sorted(self.records):
            record = self.records[rel]
            problems = list(record.problems)
            if record.not_a_post:
                self._not_posts.add(rel)
            elif record.good is not None:
                post = record.good  # while the file is broken: its last good version
                self._claim[rel] = post.id
                self._claims[post.id] += 1
                if post.id in owners:
                    problems.append(Problem(rel, f"duplicate id {post.id!r}: already used by {owners[post.id]}; skipped"))
                else:
                    owners[post.id] = rel
                    if post.draft and not self.settings.include_drafts:
                        self._drafts += 1
                    else:
                        natural = post.page_slug
                        post = self._unique_page(post, page_slugs)
                        if natural is not None:
                            self._natural_slugs[natural] += 1
                            self._final_slugs[post.page_slug or ""] += 1
                            if post.page_slug != natural:
                                self._suffixed.add(rel)
                        self._published[rel] = post
            if problems:
                self._problems[rel] = tuple(problems)
        self._collected = True
        self._fill(result)
        return list(self._published.values())  # in path order, as inserted

    def _fill(self, result: BuildResult) -> None:
        result.problems.extend(self._site_problems)
        for rel in sorted(self._problems):
            result.problems.extend(self._problems[rel])
        result.pages_skipped = len(self._not_posts)
        result.posts_read = len(self._claim)
        result.drafts_skipped = self._drafts
        result.posts_published = len(self._published)
        published = dict(self._published)
        result.posts = lambda: [published[rel] for rel in sorted(published)]

    def _collect_changes(self, changed: list[str]) -> tuple[list[Post], list[Post]] | None:
        """`collect` for the records of `changed` paths only: the published posts that went and
        came. None when the change involves a shared id or page slug (then `collect` decides)."""
        if not self._collected:
            return None
        include_drafts = self.settings.include_drafts
        removed: list[Post] = []
        added: list[Post] = []
        for rel in changed:
            self._problems.pop(rel, None)
            self._not_posts.discard(rel)
            post_id = self._claim.pop(rel, None)
            if post_id is None:
                continue
            if self._claims[post_id] != 1:
                return None
            del self._claims[post_id]
            old = self._published.pop(rel, None)
            if old is None:
                self._drafts -= 1
                continue
            removed.append(old)
            slug = old.page_slug
            if slug is not None:
                if rel in self._suffixed or self._natural_slugs[slug] != 1 or self._final_slugs[slug] != 1:
                    return None
                del self._natural_slugs[slug], self._final_slugs[slug]
        for rel in changed:
            record = self.records.get(rel)
            if record is None:
                continue
            if record.problems:
                self._problems[rel] = record.problems
            if record.not_a_post:
                self._not_posts.add(rel)
                continue
            post = record.good
            if post is None:
                continue
            if self._claims.get(post.id):
                return None
            self._claims[post.id] = 1
            self._claim[rel] = post.id
            if post.draft and not include_drafts:
                self._drafts += 1
                continue
            slug = post.page_slug
            if slug is not None:
                if self._natural_slugs.get(slug) or self._final_slugs.get(slug):
                    return None
                self._natural_slugs[slug] = self._final_slugs[slug] = 1
            self._published[rel] = post
            added.append(post)
        return removed, added

    def _unique_page(self, post: Post, taken: set[str]) -> Post:
        if post.page_slug is None:
            return post
        slug = post.page_slug
        if slug in taken:  # two paths that slugify alike: the later one gets a stable suffix
            slug = f"{slug}-{hashlib.sha1(post.path.encode()).hexdigest()[:6]}"
            post = replace(post, page_slug=slug, link=page_link(self.settings, slug))
        taken.add(slug)
        return post

    # -- rendering -------------------------------------------------------------------------

    def render_feed(self, feed: Feed, fmt: str) -> bytes:
        # not cached: an output is rendered only when its digest changed (the web layer caches
        # the bytes it serves), so keeping every rendering would only cost memory
        return RENDERERS[fmt].render(feed, feedplan.feed_url(self.settings, feed.stem, fmt))

    def outputs(self, feeds: list[Feed], posts: Iterable[Post]) -> tuple[Mapping[str, output.Output], dict[str, str]]:
        """What to write, and the digest of every output (for those left out: the file on disk
        was rendered from exactly these inputs, so it is skipped without rendering). Pages are
        rendered when the writer asks for them, so a cold build never holds them all at once."""
        s = self.settings
        out = _Rendered()
        digests: dict[str, str] = {}

        def add(rel: str, digest: str, render: Callable[[], bytes], modified: datetime | None) -> None:
            digests[rel] = digest
            if self._out_digests.get(rel) != digest or not (s.feeds_dir / rel).is_file():
                out.later(rel, render, modified)

        for feed in feeds:
            for fmt in RENDERERS:
                add(f"{feed.stem}.{fmt}", self._feed_digest(feed, fmt),
                    lambda feed=feed, fmt=fmt: self.render_feed(feed, fmt), feed.updated)  # type: ignore[misc]
        formats = [(fmt, r.media_type, r.label) for fmt, r in RENDERERS.items()]
        newest = feeds[0].updated if feeds else None
        out.later("index.html", lambda: pages.index(s, feeds, formats), newest)
        opml_type = RENDERERS[s.opml_format].media_type
        out.later("feeds.opml", lambda: pages.opml(s, feeds, s.opml_format, opml_type), newest)
        topic_urls = {f.topic.slug: feedplan.feed_url(s, f.stem, "atom") for f in feeds if f.topic}
        for post in posts:
            if post.page_slug:
                links = "|".join(topic_urls.get(t.slug, "") for t in post.topics)
                add(f"posts/{post.page_slug}.html", self._post_digest(post, links),
                    lambda post=post: self.render_page(post, topic_urls), post.updated)  # type: ignore[misc]
        return out, digests

    def _post_digest(self, post: Post, extra: str = "") -> str:
        # the post is a function of its bytes (hash) and the settings and code (the state key);
        # id, updated and the page slug are what the Builder may have changed since
        record = self.records.get(post.path)
        source = record.good_hash if record is not None and record.good_hash else repr(post)
        key = f"{source}|{post.id}|{post.updated.isoformat()}|{post.link}|{post.page_slug}|{extra}"
        return hashlib.sha256(key.encode()).hexdigest()

    def _feed_digest(self, feed: Feed, fmt: str) -> str:
        h = hashlib.sha256(repr((fmt, feed.key, feed.title, feed.description, feed.stem, feed.home_url,
                                 feed.language, feed.author, feed.updated, feed.topic)).encode())
        h.update(self._items_digest(feed))
        return h.hexdigest()

    def _items_digest(self, feed: Feed) -> bytes:
        """The feed's posts' digests, concatenated: the same for its three formats."""
        if self._items_memo[0] is not feed:
            self._items_memo = (feed, "".join(self._post_digest(post) for post in feed.posts).encode())
        return self._items_memo[1]

    def render_page(self, post: Post, topic_urls: dict[str, str]) -> bytes:
        return pages.post_page(self.settings, post, topic_urls)

    def _changed_outputs(self, stems: set[str], removed: list[Post], added: list[Post], feeds: list[Feed]
                         ) -> tuple[dict[str, output.Output], dict[str, str], list[str]]:
        """`outputs` for a change: only the feeds in `stems` and the pages of the posts that went
        and came. Returns what to write, the new digests of what was looked at, and the outputs
        no longer produced."""
        s = self.settings
        planner = self._planner
        assert planner is not None
        out: dict[str, output.Output] = {}
        digests: dict[str, str] = {}
        gone: list[str] = []

        def add(rel: str, digest: str, render: Callable[[], bytes], modified: datetime | None) -> None:
            digests[rel] = digest
            if self._out_digests.get(rel) != digest or not (s.feeds_dir / rel).is_file():
                out[rel] = output.Output(render(), modified)

        for stem in sorted(stems):
            feed = planner.feed(stem)
            for fmt in RENDERERS:
                rel = f"{stem}.{fmt}"
                if feed is None:
                    if rel in self._out_digests:
                        gone.append(rel)
                else:
                    add(rel, self._feed_digest(feed, fmt),
                        lambda feed=feed, fmt=fmt: self.render_feed(feed, fmt), feed.updated)  # type: ignore[misc]
        if gone or any(self._out_digests.get(rel) != d for rel, d in digests.items()):
            formats = [(fmt, r.media_type, r.label) for fmt, r in RENDERERS.items()]
            newest = feeds[0].updated if feeds else None
            out["index.html"] = output.Output(pages.index(s, feeds, formats), newest)
            opml_type = RENDERERS[s.opml_format].media_type
            out["feeds.opml"] = output.Output(pages.opml(s, feeds, s.opml_format, opml_type), newest)
        for post in added:
            if post.page_slug:
                topic_urls = {t.slug: feedplan.feed_url(s, f"topics/{t.slug}", "atom")
                              for t in post.topics if planner.has_topic(t.slug)}
                links = "|".join(topic_urls.get(t.slug, "") for t in post.topics)
                add(f"posts/{post.page_slug}.html", self._post_digest(post, links),
                    lambda post=post, urls=topic_urls: self.render_page(post, urls), post.updated)  # type: ignore[misc]
        for post in removed:
            rel = f"posts/{post.page_slug}.html"
            if post.page_slug and rel not in digests and rel in self._out_digests:
                gone.append(rel)
        return out, digests, gone

    # -- the pass --------------------------------------------------------------------------

    def build(self, scanned: dict[str, Fingerprint] | None = None,
              touched: set[str] | None = None) -> BuildResult:
        """One pass. `touched`: `scanned` covers only these paths (see `stat_paths`), so the pass
        costs what changed, not the size of the folder. After the first pass only the feeds and
        pages of changed posts are looked at (all of them when ids or page slugs collide)."""
        with self.lock:
            started = time.perf_counter()
            result = BuildResult(built_at=self.clock())
            if scanned is None:
                scanned, touched = self.scan(), None
            with self._first_pass(scanned):
                self._refresh(scanned, result, touched)
                try:
                    report = self._assemble(result)
                except BaseException:
                    self._collected = False  # what was kept may be half updated: the next pass starts afresh
                    raise
            redirects.record(self.settings.feeds_dir, self.settings.topic_aliases, [f.stem for f in result.feeds])
            result.written, result.unchanged, result.removed = report.written, report.unchanged, report.removed
            result.duration_ms = (time.perf_counter() - started) * 1000
            self.last = result
            return result

    def _assemble(self, result: BuildResult) -> output.WriteReport:
        """Collect, plan, render and write: for the changed paths only when it can, else for all."""
        change = self._collect_changes(result.changed_paths)
        if change is not None and self._planner is not None:
            self._fill(result)
            removed, added = change
            stems = self._planner.update(removed, added)
            result.feeds = self._planner.feeds()
            outputs, digests, gone = self._changed_outputs(stems, removed, added, result.feeds)
            report = output.write_changes(self.settings.feeds_dir, outputs, gone, self._files, self._stale,
                                          prune=not result.errors)
            report.unchanged = len(self._out_digests) + 2 - len(report.written)
            changed = {rel: d for rel, d in digests.items() if self._out_digests.get(rel) != d}
            self._out_digests.update(digests)
            for rel in gone:
                self._out_digests.pop(rel, None)
            if self.state is not None and (changed or gone):
                self.state.save_outputs(changed, [*gone, *report.removed])
        else:
            posts = self.collect(result)
            self._planner = feedplan.Planner(self.settings)
            self._planner.full(posts)
            result.feeds = self._planner.feeds()
            outputs, digests = self.outputs(result.feeds, posts)
            keep = [rel for rel in digests if rel not in outputs]
            report = output.write_tree(self.settings.feeds_dir, outputs, prune=not result.errors, keep=keep)
            self._files = set(report.files)
            self._stale = self._files - digests.keys() - {"index.html", "feeds.opml"}
            self._remember_outputs(digests, report.removed)
        return report

    def _remember_outputs(self, digests: dict[str, str], removed: list[str]) -> None:
        changed = {rel: d for rel, d in digests.items() if self._out_digests.get(rel) != d}
        gone = [rel for rel in self._out_digests if rel not in digests]
        self._out_digests = digests
        if self.state is not None and (changed or gone):
            self.state.save_outputs(changed, [*gone, *removed])

    def rebuild_if_changed(self) -> BuildResult | None:
        """One scheduler tick: scan, and build only when something changed."""
        scanned = self.scan()
        return self.build(scanned) if self.pending(scanned) else None

    def stat_paths(self, paths: Iterable[str]) -> tuple[dict[str, Fingerprint], set[str]] | None:
        """Fingerprints of just these files (absolute, or relative to seeds/), as `scan` would
        give them, and the set of post paths looked at (plus errors waiting for a retry).
        None when only a full scan can tell (a folder, a symlink, a Jekyll _config.yml)."""
        root = os.path.abspath(self.settings.seeds_dir)
        real_root = os.path.realpath(root)
        scanned: dict[str, Fingerprint] = {}
        touched: set[str] = set()
        for path in [*paths, *self._tentative]:  # an error waiting for its retry is looked at again
            full = os.path.abspath(os.path.join(root, path))
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel == "." or rel.startswith("../") or rel == "..":
                continue
            parts = rel.split("/")
            if sources.is_site_config(rel):
                return None
            if not all(sources.is_candidate(part) for part in parts):
                continue  # scan never looks there
            touched.add(rel)
            try:
                st = os.lstat(full)
            except OSError:
                continue  # gone
            if not stat.S_ISREG(st.st_mode) or os.path.realpath(full) != os.path.join(real_root, *parts):
                return None  # a folder, or a symlink on the way: what scan sees there is its business
            scanned[rel] = (st.st_size, st.st_mtime_ns)
        return scanned, touched

    def rebuild_paths(self, paths: Iterable[str]) -> BuildResult | None:
        """A tick for file-system events on `paths`: look at those files only, and build only
        when one of them (or an error waiting for its retry) changed."""
        if self.last is None:
            return self.rebuild_if_changed()
        found = self.stat_paths(paths)
        if found is None:
            return self.rebuild_if_changed()
        scanned, touched = found
        records = self.records
        if self._tentative or any(
                (rel in scanned) != (rel in records) or (rel in records and records[rel].fingerprint != scanned[rel])
                for rel in touched):
            return self.build(scanned, touched)
        return None


class _Rendered(dict):  # type: ignore[type-arg]
    """Outputs, some rendered only when looked up (each time: the writer looks once)."""

    def later(self, rel: str, render: Callable[[], bytes], modified: datetime | None) -> None:
        self[rel] = (render, modified)

    def __getitem__(self, rel: str) -> output.Output:
        value = super().__getitem__(rel)
        if isinstance(value, tuple):
            return output.Output(value[0](), value[1])
        return value  # type: ignore[no-any-return]


def build(settings: Settings, clock: Callable[[], datetime] | None = None) -> BuildResult:
    """One full pass over seeds/ (what `syndicator build` and every scheduler tick do)."""
    return Builder(settings, clock).build()
