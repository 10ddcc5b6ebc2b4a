"""The orchestrator: scan → guard → read and track → collect → plan → render → publish, one pass.

`build()` is one full pass (the `build` command); a long-lived `Builder` (the daemon) keeps
what every stage knows, so its later passes re-read changed files only and re-render changed
outputs. A cold build is the same pass from an empty memory. With a persistent Store that
memory outlives restarts: ids stay stable across moves, `updated` means "content last
changed", and a post that breaks keeps its last good version.

Timing seams (bench/): `Builder(settings).build()` is a cold build; calling `build()` again on
the same Builder after an edit is the incremental rebuild the daemon does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from syndicator import normalize, parallel, redirects, render, urls
from syndicator.config import Settings
from syndicator.formats import FEED_EXTENSIONS
from syndicator.model import Feed, Post, Problem
from syndicator.pipeline import archive, guard, read
from syndicator.pipeline.catalog import Catalog
from syndicator.pipeline.collect import Collection, Delta
from syndicator.pipeline.feeds import Planner
from syndicator.pipeline.guard import Confirmations, Hold
from syndicator.pipeline.plan import OutputPlanner, Plan, Scope
from syndicator.pipeline.track import Change, Tracker
from syndicator.pipeline.warm import WarmReads
from syndicator.publishers import Publisher, PublishReport
from syndicator.publishers.directory import DirectoryPublisher
from syndicator.store import Fingerprint, MemoryStore, Record, Store
from syndicator.stories import Stories

log = logging.getLogger("syndicator.build")

#: A full scan that finds at most this many files added or changed, and nothing else, makes a
#: pass over just those files (see rebuild_if_changed).
NARROW_MOST = 1000


@dataclass
class BuildResult:
    posts_read: int = 0
    posts_published: int = 0
    drafts_skipped: int = 0
    pages_skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    feeds: list[Feed] = field(default_factory=list)
    #: the published posts in path order (or how to list them: made on first use, which must
    #: come before the Builder's next pass; see Builder._listing)
    _posts: list[Post] | Callable[[], list[Post]] = field(default_factory=list, repr=False)
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    changed_paths: list[str] = field(default_factory=list)
    #: (old path, new path) of posts that moved and kept their id.
    moved: list[tuple[str, str]] = field(default_factory=list)
    duration_ms: float = 0.0
    built_at: datetime | None = None
    #: Set when the pass was held: it published nothing, and the rest says what is still published.
    held: Hold | None = None
    #: how many feeds a repeated pass published (it lists none in `feeds`)
    _feed_count: int = field(default=0, repr=False)

    @property
    def posts(self) -> list[Post]:
        if callable(self._posts):
            self._posts = self._posts()
        return self._posts

    @posts.setter
    def posts(self, value: list[Post]) -> None:
        self._posts = value

    @property
    def feed_count(self) -> int:
        """How many feeds the pass published (each in every format)."""
        return len(self.feeds) if self.feeds else self._feed_count

    @feed_count.setter
    def feed_count(self, value: int) -> None:
        self._feed_count = value

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def feeds_written(self) -> int:
        return sum(1 for rel in self.written if rel.endswith(FEED_EXTENSIONS))


class Builder:
    """Runs the stages and holds their memory between passes."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None,
                 state: Store | None = None, settle: bool = False,
                 publisher: Publisher | None = None, confirmations: Confirmations | None = None,
                 keep_catalog: bool = False, warm: WarmReads | None = None, long_lived: bool = False) -> None:
        """`warm`: a standby's reads of seeds/ (see warm.py), used instead of reading again.
        `long_lived`: what the first pass loads and makes lives as long as the process (a
        service's Builder): it is frozen out of cyclic collections at the end of that pass."""
        self.publisher: Publisher = publisher or DirectoryPublisher(settings.feeds_dir,
                                                                    durable=settings.durable_writes)
        #: what the last pass recorded about the published site (see Publisher.site_record)
        self._site = self.publisher.site_record()
        self.settings = settings = pin_ids(settings, self._site)
        self.clock = clock or (lambda: datetime.now().astimezone())
        self.state: Store = state if state is not None else MemoryStore()
        #: Daemon mode: an error right after a change is retried on the next pass before it
        #: counts (an editor or a copy may still be writing the file).
        self.settle = settle
        self.confirmations = confirmations or Confirmations(settings)
        self.tracker = Tracker(settings, self.state, warm, lighten=long_lived)
        self.collection = Collection(settings)
        self.planner = Planner(settings)
        self.outputs = OutputPlanner(settings, self.state.output_digests(), self._source_hash, self.publisher,
                                     self._site.get(archive.RECORD_KEY))
        #: the collection and planner hold every record's contribution (False: start afresh)
        self._collected = False
        self.last: BuildResult | None = None
        #: what the redirects table was last updated from, when this pass updated it
        self._redirects_key: str | None = None
        #: what the last pass reported, as kept with the mark that the outputs are current
        self._summary = ""
        #: every feed's posts after the last pass, for custom feeds (`serve` keeps it)
        self.catalog: Catalog | None = Catalog(want_stories=self.want_stories) if keep_catalog else None
        #: every published post's story, for grouped feeds: kept from the start when published
        #: feeds are grouped, else from the first custom feed that asks for them (an index of
        #: every post's names costs about as much memory as the posts themselves)
        self.stories: Stories | None = Stories() if settings.group_stories else None
        #: One pass at a time: the scheduler's tick and shutdown take turns.
        self.lock = threading.Lock()
        self.long_lived = long_lived
        #: passes begun (and checks): a result lists the posts of its own pass only
        self._passes = 0

    @property
    def records(self) -> dict[str, Record]:
        """Every known file; `.post` is what its current bytes gave (None if broken)."""
        return self.tracker.records

    reads = records

    def _source_hash(self, post: Post) -> str | None:
        record = self.tracker.records.get(post.path)
        return record.good_hash.hex() if record is not None and record.good_hash is not None else None

    # -- what to look at ----------------------------------------------------------------------

    def scan(self) -> dict[str, Fingerprint]:
        """Fingerprints of every post file and every Jekyll _config.yml."""
        return read.scan(self.settings.seeds_dir)

    def pending(self, scanned: dict[str, Fingerprint]) -> bool:
        """True when a pass would change something (a held pass looks again: for a confirmation,
        or for the folder to come back)."""
        return self.last is None or self.last.held is not None or self.tracker.pending(scanned)

    def rebuild_if_changed(self) -> BuildResult | None:
        """One scheduler tick: scan, and build only when something changed; when a few files
        were added or changed and nothing else, the pass is the one over just those files
        that the watcher's events would make (a full pass over 100,000 posts costs 0.3-0.45 s
        more than that)."""
        scanned = self.scan()
        if self.last is not None and self.last.held is None:
            narrowed = self.tracker.narrowed(scanned, NARROW_MOST)
            if narrowed is not None:  # (and when it names no file, nothing is pending)
                return self.build(*narrowed) if narrowed[1] else None
        return self.build(scanned) if self.pending(scanned) else None

    def rebuild_paths(self, paths: Iterable[str]) -> BuildResult | None:
        """A tick for file-system events on `paths`: look at those files only (and errors
        waiting for their retry), and build only when one of them changed."""
        if self.last is None or self.last.held is not None:
            return self.rebuild_if_changed()
        found = read.stat_paths(self.settings.seeds_dir, [*paths, *self.tracker.tentative])
        if found is None:
            return self.rebuild_if_changed()
        scanned, touched = found
        return self.build(scanned, touched) if self.tracker.touches(scanned, touched) else None

    # -- the pass -----------------------------------------------------------------------------

    def build(self, scanned: dict[str, Fingerprint] | None = None,
              touched: set[str] | None = None, once: bool = False) -> BuildResult:
        """One pass. `touched`: `scanned` covers only these paths, so the pass costs what
        changed, not the size of the folder. `once`: this Builder makes no other pass (the
        `build` command), so when the folder is as the last pass left it the result is that
        pass's, with nothing loaded (see `_repeated`)."""
        with self.lock:
            self._passes += 1
            started = time.perf_counter()
            result = BuildResult(built_at=self.clock())
            if scanned is None:
                scanned, touched = self.scan(), None
            if once and self.last is None and touched is None and self._repeated(scanned, result):
                result.duration_ms = (time.perf_counter() - started) * 1000
                self.last = result
                return result
            # A Builder's first pass (a start: every record is loaded, collected and planned) and
            # a pass over thousands of new files make objects that all live on: collections would
            # walk them to free nothing (0.75 s of a 3.7 s restart's catch-up at 100,000 posts)
            first = self.last is None
            with parallel.no_cycle_collection(first or len(scanned) - len(self.records) >= parallel.MIN_FILES,
                                              keep=first and (once or self.long_lived)):
                hold = self._guard(scanned, touched)
                if hold is not None:
                    return self._held(hold, result)
                if first and not self._collected:
                    self._prime()
                change = self._track(scanned, touched)
                try:
                    report = self._publish(change, result)
                except BaseException:
                    self._collected = False  # what was kept may be half updated: start afresh
                    raise
            result.written, result.removed = report.written, report.removed
            result.unchanged = self.outputs.files_known() + 2 - len(report.written)
            result.duration_ms = (time.perf_counter() - started) * 1000
            self._record_site(result)
            summary = _summary(result, [p.path for p in self.tracker.name_problems],
                               _newest(scanned) if touched is None else None)
            if first or change.paths or summary != self._summary:
                self.state.mark_outputs_current(summary)
                self._summary = summary
            self.confirmations.passed(None)
            self.last = result
            return result

    def _repeated(self, scanned: dict[str, Fingerprint], result: BuildResult) -> bool:
        """Fill `result` with the last pass's and say True when this pass has nothing to do:
        the outputs were made from the stored records (Store.last_pass), every file has the
        fingerprint its record was read at and no other file is there (no name that is not
        UTF-8 either), the site configs are the same, and every output, the manifest and the
        site record are still published.
        A full pass would then load every record and plan every feed (0.6 s at 10,000 posts)
        to write nothing and report the same; a repeat costs the scan and one query."""
        if self.tracker.loaded or self.tracker.warm is not None or not self._site or not self.publisher.has_manifest():
            return False  # (the site record and the manifest are written by a pass)
        last = _parse_summary(self.state.last_pass())
        if last is None or last["not_utf8"] != list(getattr(scanned, "not_utf8", ())) \
                or last.get("newest") not in (None, _newest(scanned)):  # (a save is the newest file)
            return False
        posts, sites = read.split_sites(scanned)
        if sites != self.tracker.site_fps or posts != self.state.fingerprints() or self.outputs.missing():
            return False
        for key in ("posts_read", "posts_published", "drafts_skipped", "pages_skipped"):
            setattr(result, key, last[key])
        result.problems = [Problem(path, message, line, severity) for path, message, line, severity in last["problems"]]
        result.feed_count = last["feeds"]
        result.unchanged = self.outputs.files_known() + 2
        result._posts = self._listed
        return True

    def _listed(self) -> list[Post]:
        """The published posts, in path order, of the stored records (a repeated pass's)."""
        collection = Collection(self.settings)
        collection.apply(self.records, list(self.records))
        return [collection.published[rel] for rel in sorted(collection.published)]

    def check(self) -> BuildResult:
        """Read and collect every post; publish nothing (`syndicator check`). A folder that
        cannot be read, or is empty while posts are published, is held as a pass would be."""
        with self.lock, parallel.no_cycle_collection():  # (what is read lives on: see `build`)
            self._passes += 1
            result = BuildResult(built_at=self.clock())
            scanned = self.scan()
            hold = self._guard(scanned, None)
            if hold is not None and hold.kind != guard.REMOVALS:
                result.held = hold
                return result
            change = self._track(scanned, None)
            self._collect(change)
            self._fill(result, change)
            return result

    # -- the guard (see guard.py) ----------------------------------------------------------

    def _guard(self, scanned: dict[str, Fingerprint], touched: set[str] | None) -> Hold | None:
        """The hold this pass needs, unless an operator confirmed it."""
        posts, _ = read.split_sites(scanned)
        published = self._published()
        count = published if isinstance(published, int) else len(published)
        hold = guard.assess(self.settings, count, guard.gone(published, posts, touched),
                            len(posts) if touched is None else None)
        if hold is not None and self.confirmations.accepts(hold):
            log.warning("publishing a confirmed removal: %s", hold.reason)
            return None
        return hold

    def _published(self) -> AbstractSet[str] | int:
        """The paths of the published posts; without records (a first pass without state) only
        how many the site record says there are."""
        if self._collected:
            return self.collection.published.keys()
        if not self.records:
            posts = self._site.get("posts")
            return posts if isinstance(posts, int) else 0
        drafts = self.settings.include_drafts
        return {rel for rel, r in self.records.items()
                if r.good is not None and not r.not_a_post and (drafts or not r.good.draft)}

    def _prime(self) -> None:
        """A start over a state whose outputs were made from its records (see
        Store.outputs_current), with every output it knows still published: collect and plan
        those records as the published site, so that the pass renders only what changed since,
        as a pass of a running service does, instead of planning every feed and page again. Archive
        pages gone from the folder are planned again; any other output gone, and it is a full pass."""
        if not self.records or not self.state.outputs_current() or not self.publisher.has_manifest():
            return  # (without the manifest, what is published is known from a full pass only)
        gone = [urls.archive_page(rel) for rel in self.outputs.missing()]
        if None in gone:  # a feed, a page, the index: the full pass looks at every one
            return
        delta = self._collect(Change())
        stems = self.planner.update(delta.removed, delta.added)
        self._advance_catalog(stems, delta)
        self.outputs.primed(self.planner)
        self.outputs.repair((stem, n) for stem, n, _ in filter(None, gone))

    def _held(self, hold: Hold, result: BuildResult) -> BuildResult:
        """A held pass publishes nothing: its result says why and what is still published."""
        if self.last is not None:
            result = replace(self.last, written=[], removed=[], changed_paths=[],
                             moved=[], unchanged=0, duration_ms=0.0)
        elif self.records:  # a first pass: the remembered records are what is published
            delta = self._collect(Change())
            stems = self.planner.update(delta.removed, delta.added)
            self._advance_catalog(stems, delta)
            result.feeds = self.planner.feeds()
            self._fill(result, Change())
            self._collected = False  # the first pass that publishes starts afresh
        else:
            result.posts_published = hold.published
        result.held = hold
        self.confirmations.passed(hold)
        self.last = result
        return result

    def _record_site(self, result: BuildResult) -> None:
        record = {**self._site, "posts": result.posts_published, "tag_authority": self.settings.tag_authority}
        if self.outputs.archives.dirty:
            record[archive.RECORD_KEY] = self.outputs.archives.record()
        if self._redirects_key is not None:
            record[redirects.RECORD_KEY] = self._redirects_key
        if record != self._site:
            self.publisher.save_site_record(record)
            self._site = record

    def _track(self, scanned: dict[str, Fingerprint], touched: set[str] | None) -> Change:
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        return self.tracker.refresh(scanned, touched, now, settle=self.settle and self.last is not None)

    def _collect(self, change: Change) -> Delta:
        if not self._collected:
            self.collection.reset()
            self.planner = Planner(self.settings)
            self._collected = True
            delta = self.collection.apply(self.records, list(self.records))
            delta.full = True
            return delta
        delta = self.collection.apply(self.records, change.paths)
        if delta.full:
            self.planner = Planner(self.settings)
        return delta

    def _publish(self, change: Change, result: BuildResult) -> PublishReport:
        delta = self._collect(change)
        stems = self.planner.update(delta.removed, delta.added)
        self._advance_catalog(stems, delta)
        result.feeds = self.planner.feeds()
        self._fill(result, change)
        scope = Scope(stems, delta.removed, delta.added, full=delta.full)
        plan = self.outputs.plan(self.planner, scope, self.stories if self.settings.group_stories else None)
        report = self._hand_over(plan, delta.full)
        changed, gone = self.outputs.remember(plan, delta.full, report.removed)
        if changed or gone:
            self.state.save_outputs(changed, gone)
        self._update_redirects(result.feeds)
        # what the feeds show is rendered again by any pass that changes them: it stays in
        # memory; what archive pages, post pages and custom feeds read is let go (model.Resident)
        self.state.keep_loaded(post for feed in result.feeds for post in feed.posts)
        return report

    def _update_redirects(self, feeds: list[Feed]) -> None:
        """Keep the redirects table current (redirects.updated). It is a function of the table
        and this pass's aliases and feeds, so when those are what the last update saw it is
        skipped: the renamed slugs of Chinese topics load text-unidecode's table (60 ms and 4
        MiB) to spell them, for a result that is already there."""
        aliases, stems = self.settings.topic_aliases, [f.stem for f in feeds]
        topics = [(f.topic.name, f.topic.slug) for f in feeds if f.topic]
        table = self.publisher.redirects()
        if redirects.inputs_key(table, aliases, stems, topics) == self._site.get(redirects.RECORD_KEY):
            return
        table = redirects.updated(table, aliases, stems, topics)
        self.publisher.save_redirects(table)
        self._redirects_key = redirects.inputs_key(table, aliases, stems, topics)

    def _advance_catalog(self, stems: set[str], delta: Delta) -> None:
        """Keep the stories (grouped feeds, custom feeds) and the catalog (custom feeds) current."""
        if self.stories is not None:
            if delta.full:
                self.stories = Stories()
            self.stories.update(delta.removed, delta.added)
        if self.catalog is not None:
            changed = stems if delta.removed or delta.added else set()
            self.catalog = self.catalog.advance(self.planner, changed, delta.full, delta.removed, delta.added,
                                                self.stories)

    def want_stories(self) -> Stories:
        """The stories, made now from the published posts if they are not kept yet (and kept
        from now on, pass by pass). Waits for a pass under way."""
        with self.lock:
            if self.stories is None:
                stories = Stories()
                stories.update((), list(self.collection.published.values()))
                self.stories = stories
                if self.catalog is not None:
                    self.catalog = self.catalog.with_stories(stories)
            return self.stories

    def _hand_over(self, plan: Plan, full: bool) -> PublishReport:
        # Whatever a pass no longer produces goes at once, errors or not: a broken post is
        # still produced from its last good version, so only deletions are taken down.
        produced = {*plan.digests, urls.INDEX, urls.OPML} if full else None
        with render.shared_items():
            return self.publisher.publish(plan.outputs, plan.gone, produced=produced)

    def _fill(self, result: BuildResult, change: Change) -> None:
        c = self.collection
        result.changed_paths, result.moved = change.paths, change.moved
        result.problems.extend(self.tracker.site_problems)
        for rel in sorted(c.problems):
            result.problems.extend(c.problems[rel])
        result.pages_skipped = len(c.not_posts)
        result.posts_read = c.posts_read
        result.drafts_skipped = c.drafts
        result.posts_published = len(c.published)
        result._posts = self._listing()

    def _listing(self) -> Callable[[], list[Post]]:
        """The published posts in path order as this pass leaves them, listed when asked.
        Not a copy of the collection's map: a pass of a service at 100,000 posts spent 20 ms
        of its ~110 making one (fresh pages for 5 MB), for a list only a caller of `build`
        reads, right after it. Asked once the next pass has begun, RuntimeError: the
        collection has moved on."""
        made_in, published = self._passes, self.collection.published

        def listing() -> list[Post]:
            if self._passes != made_in:
                raise RuntimeError("BuildResult.posts read after the Builder's next pass began: read it before")
            return [published[rel] for rel in sorted(published)]

        return listing


def _summary(result: BuildResult, not_utf8: list[str], newest: int | None) -> str:
    """What a repeated pass reports (see Builder._repeated), as JSON; `not_utf8`: the names of
    the last full scan that are not UTF-8 (their problems are among the result's); `newest`:
    that scan's latest mtime, when the pass made one (a quick no for a repeat after a save)."""
    return json.dumps({
        "posts_read": result.posts_read, "posts_published": result.posts_published,
        "drafts_skipped": result.drafts_skipped, "pages_skipped": result.pages_skipped,
        "feeds": result.feed_count, "not_utf8": not_utf8, "newest": newest,
        "problems": [[p.path, p.message, p.line, p.severity] for p in result.problems],
    }, ensure_ascii=False, sort_keys=True)


def _newest(scanned: dict[str, Fingerprint]) -> int:
    return max((mtime for _, mtime in scanned.values()), default=0)


def _parse_summary(text: str | None) -> dict[str, Any] | None:
    """`_summary`'s JSON; None for anything else (a mark an older version left)."""
    try:
        data = json.loads(text) if text else None
        if not isinstance(data, dict):
            return None
        counts = [data[k] for k in ("posts_read", "posts_published", "drafts_skipped", "pages_skipped", "feeds")]
        problems = data["problems"]
        if not all(type(n) is int for n in counts) or not isinstance(data["not_utf8"], list) \
                or not all(isinstance(p, list) and len(p) == 4 for p in problems):
            return None
        return data
    except (ValueError, KeyError, TypeError):
        return None


def preload() -> None:
    """Import now what reading and rendering import on first use (python-frontmatter and
    yaml-rs, feedgen and lxml, jinja2 and its templates): a service calls it once its builder
    is up, so the first pass after a save does not wait for them. (A `build` that finds
    nothing to do never loads them.)"""
    from syndicator.render import feedgen, pages
    from syndicator.sources import frontmatter

    del feedgen, frontmatter
    pages.preload()


def pin_ids(settings: Settings, site: dict[str, Any]) -> Settings:
    """The settings with the tag: authority ids are minted with: the setting; else the one the
    site record keeps (taken from base_url the first time), so a site that moves keeps its ids."""
    if settings.tag_authority:
        return settings
    recorded = site.get("tag_authority")
    return replace(settings, tag_authority=recorded if isinstance(recorded, str) and recorded
                   else normalize.tag_authority(settings))


def build(settings: Settings, clock: Callable[[], datetime] | None = None) -> BuildResult:
    """One full pass over seeds/ (what `syndicator build` does)."""
    return Builder(settings, clock).build()
