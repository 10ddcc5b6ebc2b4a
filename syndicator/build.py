"""The one orchestrator: scan → read → normalize → plan feeds → render → write.

`build()` is one full pass (the CLI); a long-lived `Builder` keeps what it read and
rendered, so the scheduler's rebuilds only re-read changed files and re-render changed feeds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urljoin

from syndicator import feeds as feedplan
from syndicator import output, sources
from syndicator.config import Settings
from syndicator.errors import PostError
from syndicator.model import Feed, Post, Problem
from syndicator.normalize import NotAPost, normalize
from syndicator.render import RENDERERS, pages

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
    try:
        raw = sources.read_post(root, rel, settings.max_post_bytes, sites)
        post, warnings = normalize(raw, settings)
        return ReadResult(fingerprint, post, tuple(warnings))
    except PostError as e:
        return ReadResult(fingerprint, None, (Problem(e.path, e.message, e.line, "error"),))
    except NotAPost:
        return ReadResult(fingerprint, None, (), not_a_post=True)
    except RecursionError:
        return ReadResult(fingerprint, None, (Problem(rel, "nested too deeply to read", None, "error"),))


class Builder:
    """Holds the last read of every file and the last rendering of every feed."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now().astimezone())
        self.reads: dict[str, ReadResult] = {}
        self._rendered: dict[tuple[str, str], tuple[Feed, bytes]] = {}
        self.last: BuildResult | None = None

    # -- reading ---------------------------------------------------------------------------

    def scan(self) -> dict[str, Fingerprint]:
        return {rel: (st.st_size, st.st_mtime_ns) for rel, st in sources.scan(self.settings.seeds_dir)}

    def refresh(self, scanned: dict[str, Fingerprint]) -> list[str]:
        """Re-read files whose fingerprint changed; forget deleted ones. Returns changed paths."""
        root = self.settings.seeds_dir
        sites = sources.SiteConfigs(root)
        changed = [rel for rel, fp in scanned.items() if self.reads.get(rel, None) is None
                   or self.reads[rel].fingerprint != fp]
        if any(os.path.basename(rel) == "_config.yml" for rel in changed):
            changed = list(scanned)
        for rel in changed:
            self.reads[rel] = read_one(root, rel, scanned[rel], self.settings, sites)
        gone = [rel for rel in self.reads if rel not in scanned]
        for rel in gone:
            del self.reads[rel]
        problems = [Problem(e.path, e.message, e.line, "error") for e in sites.errors]
        self._site_problems = problems
        return sorted(changed + gone)

    # -- assembling ------------------------------------------------------------------------

    def collect(self, result: BuildResult) -> list[Post]:
        """Posts that go into feeds: good, unique ids, drafts filtered."""
        posts: list[Post] = []
        owners: dict[str, str] = {}
        page_slugs: set[str] = set()
        result.problems.extend(getattr(self, "_site_problems", []))
        for rel in sorted(self.reads):
            read = self.reads[rel]
            result.problems.extend(read.problems)
            if read.not_a_post:
                result.pages_skipped += 1
                continue
            if read.post is None:
                continue
            result.posts_read += 1
            post = read.post
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

    def outputs(self, feeds: list[Feed], posts: Iterable[Post]) -> dict[str, output.Output]:
        s = self.settings
        out: dict[str, output.Output] = {}
        for feed in feeds:
            for fmt in RENDERERS:
                out[f"{feed.stem}.{fmt}"] = output.Output(self.render_feed(feed, fmt), feed.updated)
        formats = [(fmt, r.media_type, r.label) for fmt, r in RENDERERS.items()]
        newest = feeds[0].updated if feeds else None
        out["index.html"] = output.Output(pages.index(s, feeds, formats), newest)
        opml_type = RENDERERS[s.opml_format].media_type
        out["feeds.opml"] = output.Output(pages.opml(s, feeds, s.opml_format, opml_type), newest)
        topic_urls = {f.topic.slug: feedplan.feed_url(s, f.stem, "atom") for f in feeds if f.topic}
        for post in posts:
            if post.page_slug:
                out[f"posts/{post.page_slug}.html"] = output.Output(pages.post_page(s, post, topic_urls), post.updated)
        return out

    # -- the pass --------------------------------------------------------------------------

    def build(self, scanned: dict[str, Fingerprint] | None = None) -> BuildResult:
        started = time.perf_counter()
        result = BuildResult(built_at=self.clock())
        scanned = self.scan() if scanned is None else scanned
        result.changed_paths = self.refresh(scanned)
        posts = self.collect(result)
        result.posts = posts
        result.feeds = feedplan.plan(posts, self.settings)
        outputs = self.outputs(result.feeds, posts)
        report = output.write_tree(self.settings.feeds_dir, outputs, prune=not result.errors)
        result.written, result.unchanged, result.removed = report.written, report.unchanged, report.removed
        result.duration_ms = (time.perf_counter() - started) * 1000
        self.last = result
        return result


def build(settings: Settings, clock: Callable[[], datetime] | None = None) -> BuildResult:
    """One full pass over seeds/ (what `syndicator build` and every scheduler tick do)."""
    return Builder(settings, clock).build()
