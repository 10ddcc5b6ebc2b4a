"""Tracking stage: what a scan changed, and what each file's record becomes.

Keeps one `Record` per file: ids stay stable across moves and edits, `updated` means "what
readers see last changed" (an edit of fields no output shows is no change), and a post that
breaks keeps its last good version. Records are committed to
the Store before anything is published, so after a crash the next start renders the same
`updated` times instead of minting new ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from syndicator import parallel, slugs, sources
from syndicator.config import Settings
from syndicator.model import Problem
from syndicator.normalize import minted_alike
from syndicator.pipeline.read import NOT_UTF8, ReadResult, read_one, split_sites
from syndicator.render import shown
from syndicator.store import Fingerprint, Record, Store

if TYPE_CHECKING:
    from syndicator.pipeline.warm import WarmReads

log = logging.getLogger("syndicator.build")

#: A file modified less than this long ago may still be being written; an error waits at most
#: this long after it was first seen, whatever the file's mtime says.
SETTLE_NS = 1_000_000_000


@dataclass
class Change:
    """What one refresh found."""

    #: paths read again or gone, sorted
    paths: list[str] = field(default_factory=list)
    #: (old path, new path) of posts that moved and kept their id
    moved: list[tuple[str, str]] = field(default_factory=list)


class Tracker:
    """Every known file's record, kept current scan by scan."""

    def __init__(self, settings: Settings, store: Store, warm: WarmReads | None = None,
                 lighten: bool = False) -> None:
        self.settings = settings
        self.store = store
        #: posts read from their files are held as the store's posts once saved (Store.lighten):
        #: a service's, which lives on (a command exits first)
        self.lighten = lighten
        #: a standby's reads of the folder, used by full passes instead of reading again
        self.warm = warm
        #: files the last refresh read, and those of them the warm reads gave
        self.read_counts = (0, 0)
        self._records: dict[str, Record] | None = None
        #: path -> fingerprint of an error read that waits for its retry (daemon mode), and
        #: when (time.monotonic_ns) that version was first read.
        self.tentative: dict[str, tuple[Fingerprint, int]] = {}
        #: fingerprints of the Jekyll _config.yml files the records were read with
        self.site_fps: dict[str, Fingerprint] = store.site_configs()
        self.site_problems: list[Problem] = []
        #: paths of the last full scan whose names are not UTF-8
        self.name_problems: list[Problem] = []

    @property
    def records(self) -> dict[str, Record]:
        """Every known file's record: loaded from the store on first use (a `build` that
        finds the folder as the last pass left it never needs them; see Builder.build)."""
        if self._records is None:
            self._records = self.store.load()
            slugs.remember(_topic_slugs(self._records.values()))
        return self._records

    @property
    def loaded(self) -> bool:
        return self._records is not None

    def pending(self, scanned: dict[str, Fingerprint]) -> bool:
        """True when a refresh would change something: a file added, changed or deleted, a
        site config changed, or an error waiting for its retry."""
        posts, sites = split_sites(scanned)
        if self.tentative or len(posts) != len(self.records) or sites != self.site_fps:
            return True
        return any(rel not in self.records or self.records[rel].fingerprint != fp for rel, fp in posts.items())

    def narrowed(self, scanned: dict[str, Fingerprint], most: int) -> tuple[dict[str, Fingerprint], set[str]] | None:
        """A full scan as the watcher's paths would give it (`touched`, their part of
        `scanned`), when it found at most `most` files added or changed and nothing else: no
        file gone, no site config changed, no name that is not UTF-8 (then only a full pass
        sees everything that changed). None otherwise."""
        posts, sites = split_sites(scanned)
        bad_names: tuple[str, ...] = getattr(scanned, "not_utf8", ())
        if sites != self.site_fps or bad_names or self.name_problems:
            return None
        records, changed, added = self.records, set(), 0
        for rel, fp in posts.items():
            known = records.get(rel)
            if known is None or known.fingerprint != fp:
                changed.add(rel)
                added += known is None
                if len(changed) > most:
                    return None
        if len(posts) - added != len(records):  # (a file gone)
            return None
        touched = changed | self.tentative.keys()
        return {rel: posts[rel] for rel in touched if rel in posts}, touched

    def touches(self, scanned: dict[str, Fingerprint], touched: set[str]) -> bool:
        """`pending` for the watcher's paths only."""
        records = self.records
        return bool(self.tentative) or any(
            (rel in scanned) != (rel in records) or (rel in records and records[rel].fingerprint != scanned[rel])
            for rel in touched)

    def refresh(self, scanned: dict[str, Fingerprint], touched: set[str] | None, now: datetime,
                settle: bool) -> Change:
        """Re-read files whose fingerprint changed; forget deleted ones. `touched`: `scanned`
        covers only these paths (the watcher's events), not the folder. `settle`: an error
        right after a change waits one more pass before it counts (an editor or a copy may
        still be writing the file)."""
        posts, site_fps = split_sites(scanned)
        if touched is not None:
            site_fps = self.site_fps
        sites = sources.SiteConfigs(self.settings.seeds_dir)
        fresh = self._read_changed(posts, self._stale_under_sites(site_fps), sites, settle,
                                   None if touched is not None else site_fps)
        for rel in [r for r in self.tentative if r not in posts and (touched is None or r in touched)]:
            del self.tentative[rel]
        gone = [rel for rel in (self.records if touched is None else sorted(touched))
                if rel not in posts and rel in self.records]
        change = Change(sorted([*fresh, *gone]))
        moves = self._moves(fresh, gone)
        for new, old in moves.items():
            log.info("moved %s -> %s (keeps id %s)", old, new, self.records[old].id)
            change.moved.append((old, new))
        self._commit([self._advance(rel, read, moves.get(rel), now) for rel, read in fresh.items()], gone)
        self._read_site_configs(sites, site_fps)
        if touched is None:
            self.name_problems = [Problem(name, NOT_UTF8, None, "error")
                                  for name in getattr(scanned, "not_utf8", ())]
        self.site_problems += self.name_problems
        return change

    def _read_changed(self, posts: dict[str, Fingerprint], stale: set[str], sites: sources.SiteConfigs,
                      settle: bool, site_fps: dict[str, Fingerprint] | None = None) -> dict[str, ReadResult]:
        """`site_fps`: the site configs of a full scan (warm reads made under them are used)."""
        root, settings = self.settings.seeds_dir, self.settings
        to_read = [(rel, fp) for rel, fp in posts.items() if rel in stale or rel in self.tentative
                   or (known := self.records.get(rel)) is None or known.fingerprint != fp]
        warm: dict[str, ReadResult] = {}
        if self.warm is not None and site_fps is not None:
            warm = {rel: found for rel, fp in to_read if (found := self.warm.get(rel, fp, site_fps)) is not None}
        reading = [item for item in to_read if item[0] not in warm]
        done = iter(parallel.read_many(reading, lambda item: read_one(root, *item, settings, sites), "reading posts"))
        reads = [warm[rel] if rel in warm else next(done) for rel, _ in to_read]
        self.read_counts = (len(to_read), len(warm))
        fresh: dict[str, ReadResult] = {}
        for (rel, _), read in zip(to_read, reads, strict=True):
            if settle and self._defer(rel, read):
                continue
            self.tentative.pop(rel, None)
            fresh[rel] = read
        return fresh

    def _commit(self, changed: list[Record], gone: list[str]) -> None:
        # a file read again and found the same (another copy of the posts, a touch): its
        # fingerprint is all the store has to learn
        restamped = [r for r in changed if (prev := self.records.get(r.path)) is not None
                     and prev.fingerprint != r.fingerprint and replace(r, fingerprint=prev.fingerprint) == prev]
        if restamped:
            same = {r.path for r in restamped}
            changed = [r for r in changed if r.path not in same]
        for rel in gone:
            del self.records[rel]
        for record in [*changed, *restamped]:
            self.records[record.path] = record
        if changed or gone or restamped:
            self.store.save(changed, gone, restamped)
            if self.lighten:  # (they read back from the rows just saved)
                for record in self.store.lighten([*changed, *restamped]):
                    self.records[record.path] = record

    def _read_site_configs(self, sites: sources.SiteConfigs, site_fps: dict[str, Fingerprint]) -> None:
        for rel in site_fps:  # read every config, so a broken one is reported on every pass
            sites.for_post(rel)
        if site_fps != self.site_fps:
            self.site_fps = site_fps
            self.store.save_site_configs(site_fps)
        self.site_problems = [Problem(e.path, e.message, e.line, "error") for e in sites.errors]

    def _stale_under_sites(self, sites: dict[str, Fingerprint]) -> set[str]:
        """Posts to re-read because a _config.yml above them appeared, changed or went away."""
        known = self.site_fps
        dirs = {rel.rpartition("/")[0] for rel in set(sites) ^ set(known)}
        dirs |= {rel.rpartition("/")[0] for rel in sites if rel in known and sites[rel] != known[rel]}
        if not dirs:
            return set()
        return {rel for rel in self.records if any(not d or rel.startswith(d + "/") for d in dirs)}

    def _defer(self, rel: str, read: ReadResult) -> bool:
        """Whether an error read waits for a retry instead of counting: for a file still being
        written, or the first error after a change."""
        if read.post is not None or read.not_a_post:
            return False
        seen = self.tentative.get(rel)
        if seen is None or seen[0] != read.fingerprint:
            self.tentative[rel] = (read.fingerprint, time.monotonic_ns())
            return True
        # an mtime in the future (a skewed clock, a copied file) must not defer it for ever
        age = time.time_ns() - read.fingerprint[1]
        return 0 <= age < SETTLE_NS and time.monotonic_ns() - seen[1] < SETTLE_NS

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
        """The new record of `rel` after reading it."""
        prev = self.records.get(moved_from or rel)
        if read.post is None:
            return _broken(rel, read, prev, now)
        return _good(rel, read, prev, moved_from is not None, now)


def _topic_slugs(records: Iterable[Record]) -> Iterator[tuple[str, str]]:
    """The (name, slug) of each topic of the records read with this code and settings (those
    with a fingerprint: a changed cache key clears them, and their posts are read again)."""
    seen: set[int] = set()
    for record in records:
        if record.fingerprint is None or record.good is None:
            continue
        for topic in record.good.topics:
            if id(topic) not in seen:  # (decoded records share one object per topic)
                seen.add(id(topic))
                yield topic.name, topic.slug


def _broken(rel: str, read: ReadResult, prev: Record | None, now: datetime) -> Record:
    """A file that gave no post: it keeps serving its last good version (unless it is no post
    at all any more)."""
    keep = prev if prev is not None and prev.good is not None and not read.not_a_post else None
    return Record(
        path=rel, fingerprint=read.fingerprint, hash=read.digest, problems=read.problems,
        not_a_post=read.not_a_post, current=False, id=keep.id if keep else None,
        own_id=keep.own_id if keep else None, good=keep.good if keep else None,
        good_hash=keep.good_hash if keep else None,
        first_seen=prev.first_seen if prev else now, changed=prev.changed if prev else now,
    )


def _good(rel: str, read: ReadResult, prev: Record | None, moved: bool, now: datetime) -> Record:
    """A file that gave a post: stable id, `updated` = the last change readers can see."""
    post = read.post
    assert post is not None
    if prev is None or prev.good is None:
        # first seen: the post's own dates are all we know
        post_id, updated, first_seen, changed = post.id, post.updated, prev.first_seen if prev else now, now
    else:
        same = read.digest == prev.good_hash or shown(post) == shown(prev.good)
        # a moved post keeps its id; so does an edit, unless the author changed the id itself (a
        # tag: id minted under another authority or date is the same id: the settings moved)
        kept = moved or post.id == prev.own_id or minted_alike(post.id, prev.own_id, rel)
        post_id = (prev.id or post.id) if kept else post.id
        # (an author's own update date still counts when it is newer than what readers see)
        updated = max(prev.good.updated, post.updated) if same else max(now, post.updated)
        first_seen, changed = prev.first_seen, prev.changed if same else now
    good = post if (post_id, updated) == (post.id, post.updated) else replace(post, id=post_id, updated=updated)
    return Record(
        path=rel, fingerprint=read.fingerprint, hash=read.digest, problems=read.problems, not_a_post=False,
        current=True, id=post_id or None, own_id=post.id, good=good, good_hash=read.digest,
        first_seen=first_seen, changed=changed,
    )


#: For type checkers: the clock the Builder injects.
Clock = Callable[[], datetime]
