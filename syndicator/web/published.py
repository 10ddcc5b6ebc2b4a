"""A web node's copy of the published site, kept current from PostgreSQL: which bytes each
output has in memory, the bytes themselves on disk (web/spool.py), the ones served in a bounded cache.

`PublishedFiles.get(rel)` answers as `FileCache.get` does, from a snapshot (outputs, redirects,
generation) that is replaced whole, so a request sees one published generation, never a mix.
A thread keeps it current: it LISTENs on the publisher's channel and, on a notification or
every `check_interval` seconds without one (a notification can be lost with its connection),
compares the database's generation with its own and applies the changes since, read in one
snapshot; the bytes the spool has not got are fetched in that snapshot and written to it before
the new snapshot is swapped in. While PostgreSQL cannot be reached the node keeps answering
from the snapshot it has (stale but whole: every byte is in the spool), `/healthz` says
`degraded`, and it reconnects every second.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syndicator.compress import gzip_bytes
from syndicator.dates import rfc3339
from syndicator.formats import FEED_EXTENSIONS
from syndicator.publishers.database import CHANNEL, Changes, Row, changes_since, current_generation, fetch_bytes
from syndicator.publishers.directory import (
    DirectoryPublisher,
    atomic_write,
    has_twin,
    read_manifest,
    remove_output,
    repair_twin,
    same_bytes,
    sync_folders,
)
from syndicator.store.pg import Database, SchemaOutdated, Unreachable, require_current
from syndicator.web.files import CONTENT_TYPES, Entry, Served, entry_of
from syndicator.web.spool import Spool, twin_name

log = logging.getLogger("syndicator.web")

RECONNECT_DELAY = 1.0
UNREACHABLE = "PostgreSQL unreachable"


@dataclass(frozen=True, slots=True)
class Stored:
    """One published output as the node knows it: what names its bytes in the spool."""

    #: the ETag's hash: the bytes' name in the spool
    name: str
    size: int
    mtime_ns: int
    #: the generation that published these bytes (with size and mtime, the replayed answers' key)
    generation: int
    #: the gzip twin is published (and spooled); without one, it is made when first asked for
    twin: bool

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.generation, 0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    generation: int | None
    entries: dict[str, Stored] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    site: dict[str, Any] = field(default_factory=dict)
    loaded_at: float = 0.0


def name_of(etag: str) -> str:
    return etag.strip('"')


def stored(row: Row, generation: int) -> Stored | None:
    if os.path.splitext(row.rel)[1] not in CONTENT_TYPES:
        return None
    return Stored(name_of(row.etag), row.size, row.mtime_ns, generation, row.twin)


def applied(snapshot: Snapshot, changes: Changes, spool: Spool) -> Snapshot:
    """The snapshot after `changes`, with the spool's counts of the names it uses brought along."""
    if changes.full:
        spool.reset()
        entries: dict[str, Stored] = {}
    else:
        entries = dict(snapshot.entries)
    for rel in changes.gone:
        old = entries.pop(rel, None)
        if old is not None:
            spool.release(old.name)
    for row in changes.rows:
        made = stored(row, changes.generation)
        if made is None:
            continue
        spool.use(made.name)
        old = entries.get(rel := row.rel)
        if old is not None:
            spool.release(old.name)
        entries[rel] = made
    return Snapshot(changes.generation, entries, changes.redirects, changes.site, time.time())


class PublishedFiles:
    """The published outputs of the database at `url`: their bytes in a spool folder, and at most
    `cache_bytes` of the ones served in memory (see the module's doc)."""

    def __init__(self, url: str, spool: Path, check_interval: float = 1.0,
                 changed: Callable[[list[str]], None] | None = None,
                 loaded_hook: Callable[[], None] | None = None, cache_bytes: int = 16 << 20) -> None:
        self.url = url
        self.spool = Spool(spool)
        self._served = Served(cache_bytes)
        #: told the outputs that changed or went with each generation loaded after the first
        self.changed = changed
        #: called (with nothing: it must not take long) after each generation is loaded
        self.loaded_hook = loaded_hook
        self.check_interval = check_interval
        self.snapshot = Snapshot(None)
        self.loaded = threading.Event()
        self.stopping = threading.Event()
        #: what keeps the node from following the database (None: nothing), why, and since when
        self.trouble: tuple[str, str, float] | None = None
        #: called once the node stops following the database (what follows its snapshot)
        self.stopped: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None

    # -- what the web app asks -----------------------------------------------------------------

    def get(self, rel: str) -> Entry | None:
        for _attempt in range(2):
            made = self.snapshot.entries.get(rel)
            if made is None:
                return None
            found = self._served.get(rel, made.key, made.size, functools.partial(self._entry, rel, made))
            if found is not None:
                return found
            # swept: the snapshot it was looked up in is long gone; look again
        return None

    def _entry(self, rel: str, made: Stored) -> Entry | None:
        got = self.bytes_of(rel, made)
        if got is None:
            return None
        data, gz = got
        return entry_of(data, gz if gz is not None else gzip_bytes(data), made.mtime_ns // 1_000_000_000,
                        os.path.splitext(rel)[1], made.key, digest=made.name)

    def bytes_of(self, rel: str, made: Stored) -> tuple[bytes, bytes | None] | None:
        """An output's bytes and its published gzip twin (None: it has none), from the spool;
        None when they were swept (a newer generation names other bytes). Bytes of the current
        generation that are gone from the spool (a hand clearing the folder) are fetched from
        the database again."""
        try:
            data = self.spool.read(made.name)
            return data, self.spool.read(twin_name(made.name)) if made.twin else None
        except OSError:
            if self.snapshot.entries.get(rel) is not made:
                return None
        return self._fetch_again(rel, made)

    def _fetch_again(self, rel: str, made: Stored) -> tuple[bytes, bytes | None] | None:
        log.warning("the bytes of %s were gone from %s; fetching them again", rel, self.spool.root)
        db: Database | None = None
        try:
            db = Database(self.url)
            found = fetch_bytes(db, f'"{made.name}"')
        except Unreachable as e:
            log.warning("cannot fetch the bytes of %s: %s", rel, e)
            return None
        finally:
            if db is not None:
                db.close()
        if found is None:  # no longer published with these bytes: the next generation says what is
            return None
        data, gz = found
        gz = gz if made.twin else None
        try:
            self.spool.put(made.name, data, gz)
        except OSError as e:  # served from memory this once
            log.warning("cannot write %s: %s", self.spool.root, e)
        return data, gz

    @property
    def size(self) -> int:
        """Bytes held in memory (the served outputs' bytes and gzip bytes; `syndicator_file_cache_bytes`)."""
        return self._served.size

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
            reason = (f"{trouble[0]} for {time.time() - trouble[2]:.0f} s ({trouble[1]}); "
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
        for then in self.stopped:
            then()

    def _run(self) -> None:
        while not self.stopping.is_set():
            db: Database | None = None
            try:
                db = Database(self.url, watched=True)
                require_current(db)  # (checked at the start too, unless the database was away then)
                db.execute(f"LISTEN {CHANNEL}")
                self.refresh(db)
                while not self.stopping.is_set():
                    db.notifies(self.check_interval)  # a notification, or the periodic look
                    self.refresh(db)
            except Unreachable as e:
                self._troubled(UNREACHABLE, str(e))
            except SchemaOutdated as e:
                self._troubled("cannot serve the database", str(e))
            except OSError as e:  # the spool's: a full disk, a folder gone; the snapshot is whole still
                self._troubled(f"cannot write {self.spool.root}", e.strerror or str(e))
            except Exception:  # noqa: BLE001 - keep serving what we have; log it and try again
                log.exception("reading the published site failed; serving what was loaded")
                self._troubled(UNREACHABLE, "error reading the published site")
            finally:
                if db is not None:
                    db.close()
            self.stopping.wait(RECONNECT_DELAY)

    def refresh(self, db: Database) -> bool:
        """Apply what was published since our generation; True when something was."""
        snap = self.snapshot
        if snap.generation is not None and current_generation(db) == snap.generation:
            self.spool.sweep()
            self._reachable()
            return False
        spool = self.spool
        changes = changes_since(db, snap.generation,
                                wanted=lambda row: not spool.has(name_of(row.etag), row.size, row.twin),
                                keep=lambda etag, data, gz: spool.put(name_of(etag), data, gz))
        self.snapshot = applied(snap, changes, spool)
        spool.sweep()
        if self.changed is not None and not changes.full:
            self.changed([*(row.rel for row in changes.rows), *changes.gone])
        self.loaded.set()
        if self.loaded_hook is not None:
            self.loaded_hook()
        self._reachable()
        log.debug("published generation %d loaded (%d outputs changed, %d taken down)", changes.generation,
                  len(changes.rows), len(changes.gone))
        return True

    def _reachable(self) -> None:
        if self.trouble is not None:
            log.info("following PostgreSQL again; serving generation %s", self.snapshot.generation)
        self.trouble = None

    def _troubled(self, what: str, why: str) -> None:
        if self.trouble is None or self.trouble[:2] != (what, why):
            log.warning("%s (%s); serving the last generation loaded (%s)", what, why, self.snapshot.generation)
            self.trouble = (what, why, self.trouble[2] if self.trouble else time.time())


class FolderCopy:
    """The published site written to a folder as well (role `all`: `feeds/` for nginx), kept
    equal to a `PublishedFiles`' snapshot by a thread of its own: the bytes, the `.gz` twins of
    the outputs that have one, mtimes equal to the published Last-Modified, a manifest, the
    redirects table and the site record, as `DirectoryPublisher` writes them. Every file is
    replaced by a rename, so nginx never serves a half-written one; a pass of the builder
    reaches the folder file by file, as with `serve` over `feeds/`. Outputs taken down go, and
    so does anything an earlier run listed in the manifest that is no longer published."""

    def __init__(self, root: Path, files: PublishedFiles, durable: bool = False) -> None:
        self.root = root
        self.files = files
        self.durable = durable
        self.wake = threading.Event()
        self.stopping = threading.Event()
        #: the outputs written so far (a Stored is replaced when its bytes are)
        self._written: dict[str, Stored] | None = None
        self._thread: threading.Thread | None = None
        #: the generation last written in full
        self.generation: int | None = None
        #: outputs of that generation whose bytes could not be had (written at the next try)
        self.missed = 0

    def start(self) -> FolderCopy:
        self._thread = threading.Thread(target=self._run, name="syndicator-folder-copy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait()
            self.wake.clear()
            if self.stopping.is_set():
                return
            try:
                self.sync()
                if self.missed:  # try those again in a moment, whether a generation comes or not
                    self.stopping.wait(RECONNECT_DELAY)
                    self.wake.set()
            except OSError as e:  # a full disk, a folder made read-only: try again at the next generation
                log.error("writing the published site to %s failed: %s", self.root, e)
                self._written = None

    def sync(self) -> list[str]:
        """Write what the snapshot has that the folder has not; the paths written or removed."""
        snap = self.files.snapshot
        if snap.generation is None:
            return []
        publisher = DirectoryPublisher(self.root, durable=self.durable)
        known = self._written if self._written is not None else {}
        listed = set(known) if self._written is not None else set(read_manifest(self.root))
        missed: set[str] = set()
        done = [rel for rel, made in sorted(snap.entries.items()) if known.get(rel) is not made
                and self._write(rel, made, missed)]
        gone = sorted(listed - snap.entries.keys())
        for rel in gone:
            remove_output(self.root, rel)
        if gone or not listed.issuperset(snap.entries) or self._written is None:
            publisher.write_manifest(snap.entries)
        publisher.save_redirects(snap.redirects)
        publisher.save_site_record(snap.site)
        if self.durable:
            sync_folders(self.root, [*done, *gone])
        self._written = {rel: made for rel, made in snap.entries.items() if rel not in missed}
        self.missed = len(missed)
        self.generation = snap.generation
        if done or gone:
            log.debug("generation %s written to %s (%d files, %d taken down)", snap.generation, self.root,
                      len(done), len(gone))
        return [*done, *gone]

    def _write(self, rel: str, made: Stored, missed: set[str]) -> bool:
        """One output, with its twin; False when the folder already holds it, or when its bytes
        could not be had (then in `missed`, to be written at the next generation)."""
        path = self.root / rel
        mtime = made.mtime_ns // 1_000_000_000 * 1_000_000_000
        twin = has_twin(rel)
        got = self.files.bytes_of(rel, made)
        if got is None:  # swept (a newer generation is loaded: this copy follows it next) or lost
            missed.add(rel)
            return False
        data, twin_bytes = got
        try:
            if path.stat().st_mtime_ns == mtime and same_bytes(path, data):
                if twin:
                    repair_twin(path, data, self.durable)
                return False
        except OSError:
            pass
        gz = path.with_name(path.name + ".gz")
        if twin:
            atomic_write(gz, twin_bytes if twin_bytes is not None else gzip_bytes(data), mtime, self.durable)
        else:
            gz.unlink(missing_ok=True)
        atomic_write(path, data, mtime, self.durable)
        return True


def rfc3339_or_none(when: float) -> str | None:
    return rfc3339(datetime.fromtimestamp(when, UTC)) if when else None
