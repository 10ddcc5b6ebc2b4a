"""A standby builder's own read of its posts folder, kept warm so that taking over is fast.

Each machine has its copy of the posts, so the records a leader left in PostgreSQL carry that
leader's fingerprints (size, mtime): to a new leader every file would look changed, and its
first pass would read and parse the whole folder before publishing anything. A standby keeps
`WarmReads` current instead (a scan at start, then the watcher's events and scans, as the
leader's own builder does) and hands them to the Builder it makes when elected: a file whose
fingerprint is the one the warm read was made at is not read again. Nothing else changes: the
tracker still compares what was read with the shared records (an unchanged post keeps its id
and `updated`), and a file the warm read missed is read as before.

Reads made under other Jekyll `_config.yml` files than those of the pass are not used (the
whole warm read starts over when one of them changes). A refresh can be halted between chunks
(`halt`), so an election never waits for a warm-up to finish: what was read by then is used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from syndicator import parallel, sources
from syndicator.config import Settings
from syndicator.pipeline import read
from syndicator.pipeline.read import ReadResult
from syndicator.store import Fingerprint

log = logging.getLogger("syndicator.build")

#: Files read between two looks at `halt`.
CHUNK = 200


class WarmReads:
    """Every post file of `settings.seeds_dir` as last read, by path (see the module's doc)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root: Path = settings.seeds_dir
        self.reads: dict[str, ReadResult] = {}
        #: the Jekyll site configs the reads were made under
        self.site_fps: dict[str, Fingerprint] = {}
        #: set to end a refresh early (an election); the caller clears it to warm again
        self.halt = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time

    def get(self, rel: str, fingerprint: Fingerprint, site_fps: dict[str, Fingerprint]) -> ReadResult | None:
        """The read of `rel` made at exactly this fingerprint under these site configs."""
        if site_fps != self.site_fps:
            return None
        found = self.reads.get(rel)
        return found if found is not None and found.fingerprint == fingerprint else None

    def refresh(self) -> int:
        """Scan the folder and read what changed since the last refresh; how many files were read."""
        scanned = read.scan(self.root)
        posts, site_fps = read.split_sites(scanned)
        with self._lock:
            if site_fps != self.site_fps:
                self.reads = {}
                self.site_fps = site_fps
            for rel in self.reads.keys() - posts.keys():
                del self.reads[rel]
            done = self._read(posts.items())
        if done:
            log.info("kept warm: %d files of %s read (%d known)", done, self.root, len(self.reads))
        return done

    def refresh_paths(self, paths: Iterable[str]) -> int:
        """The watcher's events: look at these files only (a full refresh when only a scan can tell)."""
        found = read.stat_paths(self.root, paths)
        if found is None:
            return self.refresh()
        scanned, touched = found
        with self._lock:
            for rel in touched - scanned.keys():
                self.reads.pop(rel, None)
            done = self._read(scanned.items())
        if done:
            log.info("kept warm: %d files of %s read (%d known)", done, self.root, len(self.reads))
        return done

    def _read(self, items: Iterable[tuple[str, Fingerprint]]) -> int:
        to_read = [(rel, fp) for rel, fp in items if (known := self.reads.get(rel)) is None or known.fingerprint != fp]
        sites = sources.SiteConfigs(self.root)
        settings, root = self.settings, self.root
        done = 0
        for i in range(0, len(to_read), CHUNK):
            if self.halt.is_set():
                break
            chunk = to_read[i:i + CHUNK]
            for (rel, _), result in zip(chunk, parallel.read_many(
                    chunk, lambda item: read.read_one(root, *item, settings, sites), "keeping reads warm"),
                    strict=True):
                self.reads[rel] = result
            done += len(chunk)
        return done
