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
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

from syndicator import feeds as feedplan
from syndicator import output, redirects, sources
from syndicator.config import Settings
from syndicator.errors import PostError
from syndicator.model import Feed, Post, Problem
from syndicator.normalize import NotAPost, normalize
from syndicator.render import RENDERERS, pages
from syndicator.state import Record, State

log = logging.getLogger("syndicator.build")

#: Stat fingerprint of one file: cheap to take, changes on every save.
Fingerprint = tuple[int, int]


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
    posts: list[Post] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    changed_paths: list[str] = field(default_factory=list)
    #: (old path, new path) of posts that moved and kept their id.
    moved: list[tuple[str, str]] = field(default_factory=list)
    duration_ms: float = 0.0
    built_at: datetime | None = None

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
        self._rendered: dict[tuple[str, str], tuple[Feed, bytes]] = {}
        self._pages: dict[str, tuple[Post, tuple[str, ...], bytes]] = {}
        #: output path -> digest of what the file on disk was rendered from (outlives restarts
        #: through the state, so a restart renders only what changed while it was down).
        self._out_digests: dict[str, str] = state.output_digests() if state else {}
        self._site_problems: list[Problem] = []
        #: fingerprints of the Jekyll _config.yml files the records were read with
        self._site_fps: dict[str, Fingerprint] = state.site_configs() if state else {}
        self.last: BuildResult | None = None
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
        self._refresh(scanned, result)
        return result.changed_paths

    def _refresh(self, scanned: dict[str, Fingerprint], result: BuildResult) -> None:
        root = self.settings.seeds_dir
        scanned, site_fps = self._split(scanned)
        stale = self._stale_under_sites(site_fps)
        sites = sources.SiteConfigs(root)
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        fresh: dict[str, ReadResult] = {}
        for rel, fp in scanned.items():
            known = self.records.get(rel)
            if known is not None and known.fingerprint == fp and rel not in self._tentative and rel not in stale:
                continue
            read = read_one(root, rel, fp, self.settings, sites)
            if self._defer(rel, read):
                continue
            self._tentative.pop(rel, None)
            fresh[rel] = read
        for rel in [r for r in self._tentative if r not in scanned]:
            del self._tentative[rel]
        gone = [rel for rel in self.records if rel not in scanned]
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

    def collect(self, result: BuildResult) -> list[Post]:
        """Posts that go into feeds: good, unique ids, drafts filtered."""
        posts: list[Post] = []
        owners: dict[str, str] = {}
        page_slugs: set[str] = set()
        result.problems.extend(self._site_problems)
        for rel in sorted(self.records):
            record = self.records[rel]
            result.problems.extend(record.problems)
            if record.not_a_post:
                result.pages_skipped += 1
                continue
            if record.good is None:
                continue
            result.posts_read += 1
            post = record.good  # while the file is broken: its last good version
            if post.id in owners:
                result.problems.append(Problem(rel, f"duplicate id {post.id!r}: already used by {owners[post.id]}; skipped"))
                continue
            owners[post.id] = rel
            if post.draft and not self.settings.include_drafts:
                result.drafts_skipped += 1
                continue
            post = self._unique_page(post, page_slugs)
            posts.append(post)
        result.posts_published = len(posts)
        return posts

    def _unique_page(self, post: Post, taken: set[str]) -> Post:
        if post.page_slug is None:
            return post
        slug = post.page_slug
        if slug in taken:  # two paths that slugify alike: the later one gets a stable suffix
            slug = f"{slug}-{hashlib.sha1(post.path.encode()).hexdigest()[:6]}"
            post = replace(post, page_slug=slug, link=urljoin(self.settings.base_url, f"posts/{slug}.html"))
        taken.add(slug)
        return post

    # -- rendering -------------------------------------------------------------------------

    def render_feed(self, feed: Feed, fmt: str) -> bytes:
        key = (feed.stem, fmt)
        cached = self._rendered.get(key)
        if cached is not None and cached[0] == feed:
            return cached[1]
        url = feedplan.feed_url(self.settings, feed.stem, fmt)
        data = RENDERERS[fmt].render(feed, url)
        self._rendered[key] = (feed, data)
        return data

    def outputs(self, feeds: list[Feed], posts: Iterable[Post]) -> tuple[dict[str, output.Output], dict[str, str]]:
        """What to write, and the digest of every output (for those left out: the file on disk
        was rendered from exactly these inputs, so it is skipped without rendering)."""
        s = self.settings
        out: dict[str, output.Output] = {}
        digests: dict[str, str] = {}

        def add(rel: str, digest: str, render: Callable[[], bytes], modified: datetime | None) -> None:
            digests[rel] = digest
            if self._out_digests.get(rel) != digest or not (s.feeds_dir / rel).is_file():
                out[rel] = output.Output(render(), modified)

        for feed in feeds:
            for fmt in RENDERERS:
                add(f"{feed.stem}.{fmt}", self._feed_digest(feed, fmt),
                    lambda feed=feed, fmt=fmt: self.render_feed(feed, fmt), feed.updated)  # type: ignore[misc]
        formats = [(fmt, r.media_type, r.label) for fmt, r in RENDERERS.items()]
        newest = feeds[0].updated if feeds else None
        out["index.html"] = output.Output(pages.index(s, feeds, formats), newest)
        opml_type = RENDERERS[s.opml_format].media_type
        out["feeds.opml"] = output.Output(pages.opml(s, feeds, s.opml_format, opml_type), newest)
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
        for post in feed.posts:
            h.update(self._post_digest(post).encode())
        return h.hexdigest()

    def render_page(self, post: Post, topic_urls: dict[str, str]) -> bytes:
        rel = f"posts/{post.page_slug}.html"
        links = tuple(topic_urls.get(t.slug, "") for t in post.topics)
        cached = self._pages.get(rel)
        if cached is not None and cached[0] == post and cached[1] == links:
            return cached[2]
        data = pages.post_page(self.settings, post, topic_urls)
        self._pages[rel] = (post, links, data)
        return data

    # -- the pass --------------------------------------------------------------------------

    def build(self, scanned: dict[str, Fingerprint] | None = None) -> BuildResult:
        with self.lock:
            started = time.perf_counter()
            result = BuildResult(built_at=self.clock())
            scanned = self.scan() if scanned is None else scanned
            self._refresh(scanned, result)
            posts = self.collect(result)
            result.posts = posts
            result.feeds = feedplan.plan(posts, self.settings)
            outputs, digests = self.outputs(result.feeds, posts)
            keep = [rel for rel in digests if rel not in outputs]
            report = output.write_tree(self.settings.feeds_dir, outputs, prune=not result.errors, keep=keep)
            self._remember_outputs(digests, report.removed)
            redirects.record(self.settings.feeds_dir, self.settings.topic_aliases, [f.stem for f in result.feeds])
            result.written, result.unchanged, result.removed = report.written, report.unchanged, report.removed
            result.duration_ms = (time.perf_counter() - started) * 1000
            self.last = result
            return result

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


def build(settings: Settings, clock: Callable[[], datetime] | None = None) -> BuildResult:
    """One full pass over seeds/ (what `syndicator build` and every scheduler tick do)."""
    return Builder(settings, clock).build()
