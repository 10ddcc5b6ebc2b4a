"""A web node's copy of the published site: every output in memory, kept current from PostgreSQL.

`PublishedFiles.get(rel)` answers as `FileCache.get` does, from a snapshot (outputs, redirects,
generation) that is replaced whole, so a request sees one published generation, never a mix.
A thread keeps it current: it LISTENs on the publisher's channel and, on a notification or
every `check_interval` seconds without one (a notification can be lost with its connection),
compares the database's generation with its own and applies the changes since, read in one
snapshot. While PostgreSQL cannot be reached the node keeps answering from the snapshot it has
(stale but whole), `/healthz` says `degraded`, and it reconnects every second.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

from syndicator.compress import gzip_bytes
from syndicator.dates import rfc3339
from syndicator.formats import FEED_EXTENSIONS
from syndicator.publishers.database import CHANNEL, Changes, Row, changes_since, current_generation
from syndicator.store.pg import Database, Unreachable
from syndicator.web.files import CONTENT_TYPES, Entry

log = logging.getLogger("syndicator.web")

RECONNECT_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    generation: int | None
    entries: dict[str, Entry] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    site: dict[str, Any] = field(default_factory=dict)
    loaded_at: float = 0.0


def entry(row: Row, generation: int) -> Entry | None:
    content_type = CONTENT_TYPES.get(os.path.splitext(row.rel)[1])
    if content_type is None:
        return None
    seconds = row.mtime_ns // 1_000_000_000
    return Entry(key=(len(row.data), row.mtime_ns, generation, 0), data=row.data, etag=row.etag,
                 gz=row.gz if row.gz is not None else gzip_bytes(row.data), gz_etag=row.etag[:-1] + '-gzip"',
                 last_modified=formatdate(seconds, usegmt=True), mtime=seconds, content_type=content_type)


def applied(snapshot: Snapshot, changes: Changes) -> Snapshot:
    entries = {} if changes.full else dict(snapshot.entries)
    for rel in changes.gone:
        entries.pop(rel, None)
    for row in changes.rows:
        made = entry(row, changes.generation)
        if made is not None:
            entries[row.rel] = made
    return Snapshot(changes.generation, entries, changes.redirects, changes.site, time.time())


class PublishedFiles:
    """The published outputs of the database at `url`, in memory (see the module's doc)."""

    def __init__(self, url: str, check_interval: float = 1.0,
                 changed: Callable[[list[str]], None] | None = None) -> None:
        self.url = url
        #: told the outputs that changed or went with each generation loaded after the first
        self.changed = changed
        self.check_interval = check_interval
        self.snapshot = Snapshot(None)
        self.loaded = threading.Event()
        self.stopping = threading.Event()
        #: why the database cannot be reached (None: it can), and since when
        self.trouble: tuple[str, float] | None = None
        self._thread: threading.Thread | None = None

    # -- what the web app asks -----------------------------------------------------------------

    def get(self, rel: str) -> Entry | None:
        return self.snapshot.entries.get(rel)

    def key(self, rel: str) -> tuple[int, int, int, int] | None:
        """What identifies the bytes `rel` is served with (for the server's replayed answers)."""
        found = self.snapshot.entries.get(rel)
        return None if found is None else found.key

    def redirects(self) -> dict[str, str]:
        return self.snapshot.redirects

    def status(self) -> dict[str, Any]:
        snap, trouble = self.snapshot, self.trouble
        reason = None
        if trouble is not None:
            reason = (f"PostgreSQL unreachable for {time.time() - trouble[1]:.0f} s ({trouble[0]}); "
                      f"serving generation {snap.generation}")
        feeds = sum(1 for rel in snap.entries if rel.endswith(FEED_EXTENSIONS) and "/archive/" not in rel)
        return {
            # nothing published yet: a builder's first pass is still to come
            "status": "starting" if not snap.generation else ("degraded" if reason else "ok"),
            "reason": reason,
            "last_build": rfc3339_or_none(snap.loaded_at),
            "posts": snap.site.get("posts", 0) if isinstance(snap.site.get("posts"), int) else 0,
            "feeds": feeds,
            "errors": [],
            "generation": snap.generation,
        }

    # -- keeping it current ----------------------------------------------------------------------

    def start(self) -> PublishedFiles:
        self._thread = threading.Thread(target=self._run, name="syndicator-published", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.check_interval + 5)

    def _run(self) -> None:
        while not self.stopping.is_set():
            db: Database | None = None
            try:
                db = Database(self.url, watched=True)
                db.execute(f"LISTEN {CHANNEL}")
                self.refresh(db)
                while not self.stopping.is_set():
                    db.notifies(self.check_interval)  # a notification, or the periodic look
                    self.refresh(db)
            except Unreachable as e:
                self._unreachable(str(e))
            except Exception:  # noqa: BLE001 - keep serving what we have; log it and try again
                log.exception("reading the published site failed; serving what was loaded")
                self._unreachable("error reading the published site")
            finally:
                if db is not None:
                    db.close()
            self.stopping.wait(RECONNECT_DELAY)

    def refresh(self, db: Database) -> bool:
        """Apply what was published since our generation; True when something was."""
        snap = self.snapshot
        if snap.generation is not None and current_generation(db) == snap.generation:
            self._reachable()
            return False
        changes = changes_since(db, snap.generation)
        self.snapshot = applied(snap, changes)
        if self.changed is not None and not changes.full:
            self.changed([*(row.rel for row in changes.rows), *changes.gone])
        self.loaded.set()
        self._reachable()
        log.debug("published generation %d loaded (%d outputs changed, %d taken down)", changes.generation,
                  len(changes.rows), len(changes.gone))
        return True

    def _reachable(self) -> None:
        if self.trouble is not None:
            log.info("PostgreSQL reachable again; serving generation %s", self.snapshot.generation)
        self.trouble = None

    def _unreachable(self, why: str) -> None:
        if self.trouble is None:
            log.warning("%s; serving the last generation loaded (%s)", why, self.snapshot.generation)
            self.trouble = (why, time.time())


def rfc3339_or_none(when: float) -> str | None:
    return rfc3339(datetime.fromtimestamp(when, UTC)) if when else None
