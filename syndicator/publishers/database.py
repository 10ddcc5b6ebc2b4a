"""The Publisher for PostgreSQL: outputs as rows that web nodes serve, one generation per pass.

A pass is one transaction: the outputs whose bytes changed (with their gzip twin where the
directory publisher would write one, their ETag and their Last-Modified), the take-downs (each
leaves a tombstone), a new row in `generations`, and a NOTIFY on `CHANNEL` whose payload is the
generation and the paths (just the generation when they would not fit: the payload limit is
8000 bytes). A web node that reads the changes since the generation it holds, in one snapshot,
never sees half a pass. The transaction begins with the fence: when another builder has been
elected since this one was, the pass is refused (`Fenced`) and nothing of it is written.

The read side (`changes_since`) is here too, so no SQL about outputs lives elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from syndicator import redirects
from syndicator.compress import gzip_bytes
from syndicator.publishers import Outputs, PublishReport
from syndicator.publishers.directory import has_twin, stamp
from syndicator.store.pg import Database

log = logging.getLogger("syndicator.publish")

CHANNEL = "syndicator_published"
#: Payloads longer than this carry the generation alone (PostgreSQL refuses 8000 bytes and more).
PAYLOAD_MAX = 7000
#: Rows sent to the server at once, or the rows rendered in this many seconds if fewer: the
#: transaction must not look idle to the server while outputs render (see cluster.LOCK_IDLE_MS).
_BATCH = 500
_BATCH_SECONDS = 0.5

#: Raises when this builder may no longer publish (called inside the pass's transaction).
Fence = Callable[[Database], None]


def etag_of(data: bytes) -> str:
    """The strong ETag `serve` gives these bytes (web/files.py): a hash of them."""
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


class DatabasePublisher:
    """Publishes into the `published` table. Keeps the ETag and stamp of every published output
    in memory (a builder publishes only while it is the elected one, so nobody else writes)."""

    def __init__(self, db: Database, fence: Fence | None = None, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.fence = fence
        self.clock = clock
        self._published = {rel: (etag, mtime) for rel, etag, mtime in
                           db.execute("SELECT rel, etag, mtime_ns FROM published")}

    def exists(self, rel: str) -> bool:
        return rel in self._published

    def listing(self, folder: str) -> set[str]:
        return {rel[len(folder):] for rel in self._published
                if rel.startswith(folder) and "/" not in rel[len(folder):]}

    def has_manifest(self) -> bool:
        return bool(self._published)

    def read(self, rel: str) -> bytes | None:
        """The published bytes of `rel`, None when it is not published (our own hub's deliveries)."""
        if rel not in self._published:
            return None
        rows = self.db.execute("SELECT data FROM published WHERE rel = %s", (rel,))
        return bytes(rows[0][0]) if rows else None

    def publish(self, outputs: Outputs, remove: Iterable[str],
                produced: AbstractSet[str] | None = None) -> PublishReport:
        now = self.clock()
        gone = set(remove)
        if produced is not None:
            gone |= self._published.keys() - produced
        gone = (gone - outputs.keys()) & self._published.keys()
        published = dict(self._published)
        report = PublishReport()
        with self.db.transaction():
            self._check_fence()
            generation = self._next_generation()
            self._write(outputs, now, generation, published, report)
            self._take_down(sorted(gone), generation, published, report)
            if report.written or report.removed:
                self._record(generation, report.written, report.removed)
        self._published = published
        return report

    def _check_fence(self) -> None:
        if self.fence is not None:
            self.fence(self.db)

    def _next_generation(self) -> int:
        return int(self.db.execute("SELECT coalesce(max(generation), 0) + 1 FROM generations")[0][0])

    def _write(self, outputs: Outputs, now: float, generation: int, published: dict[str, tuple[str, int]],
               report: PublishReport) -> None:
        rows: list[tuple[Any, ...]] = []
        sent = time.monotonic()
        for rel in sorted(outputs):
            if len(rows) >= _BATCH or time.monotonic() - sent > _BATCH_SECONDS:
                # (outputs rendered again to the same bytes send nothing: the server still hears
                # from the transaction, which it would otherwise end as idle)
                if rows:
                    self._upsert(rows)
                else:
                    self.db.execute("SELECT 1")
                rows, sent = [], time.monotonic()
            data = outputs.output(rel).data
            etag = etag_of(data)
            previous = published.get(rel)
            if previous is not None and previous[0] == etag:
                continue
            mtime = stamp(previous[1] if previous else None, now)
            rows.append((rel, data, gzip_bytes(data) if has_twin(rel) else None, etag, mtime, generation))
            published[rel] = (etag, mtime)
            report.written.append(rel)
        self._upsert(rows)
        if report.written:
            self.db.execute("DELETE FROM taken_down WHERE rel = ANY(%s)", (report.written,))

    def _upsert(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.db.many("INSERT INTO published VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (rel) DO UPDATE SET "
                         "data = excluded.data, gz = excluded.gz, etag = excluded.etag, "
                         "mtime_ns = excluded.mtime_ns, generation = excluded.generation", rows)

    def _take_down(self, rels: list[str], generation: int, published: dict[str, tuple[str, int]],
                   report: PublishReport) -> None:
        if not rels:
            return
        self.db.execute("DELETE FROM published WHERE rel = ANY(%s)", (rels,))
        self.db.many("INSERT INTO taken_down VALUES (%s, %s) ON CONFLICT (rel) DO UPDATE SET "
                     "generation = excluded.generation", [(rel, generation) for rel in rels])
        for rel in rels:
            del published[rel]
        report.removed.extend(rels)

    def _record(self, generation: int, written: list[str], removed: list[str]) -> None:
        epoch = self.db.execute("SELECT epoch FROM leadership")[0][0]
        self.db.execute("INSERT INTO generations (generation, epoch, written, removed) VALUES (%s, %s, %s, %s)",
                        (generation, epoch, len(written), len(removed)))
        payload = json.dumps({"generation": generation, "paths": [*written, *removed]}, ensure_ascii=False)
        if len(payload.encode()) > PAYLOAD_MAX:
            payload = json.dumps({"generation": generation})
        self.db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    # -- the site's own records ------------------------------------------------------------------

    def redirects(self) -> dict[str, str]:
        return redirects.loads(self._site_value("redirects") or "{}")

    def save_redirects(self, table: Mapping[str, str]) -> None:
        """Saved in a generation of its own when it changed, so web nodes see it."""
        text = redirects.dump(table).decode()
        if text == self._site_value("redirects") or (not table and self._site_value("redirects") is None):
            return
        with self.db.transaction():
            self._check_fence()
            self._set_site_value("redirects", text)
            self._record(self._next_generation(), [], [])

    def site_record(self) -> dict[str, Any]:
        try:
            data = json.loads(self._site_value("site_record") or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def save_site_record(self, record: Mapping[str, Any]) -> None:
        text = json.dumps(dict(record), sort_keys=True)
        if text != self._site_value("site_record"):
            with self.db.transaction():
                self._check_fence()
                self._set_site_value("site_record", text)

    def _site_value(self, key: str) -> str | None:
        rows = self.db.execute("SELECT value FROM site WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def _set_site_value(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO site VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value))


# -- the read side: what web nodes load -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """What identifies one published output's bytes (the bytes come apart, see `changes_since`)."""

    rel: str
    etag: str
    mtime_ns: int
    size: int
    #: it has a gzip twin (None in the table: the format has none; the reader compresses when asked)
    twin: bool


@dataclass
class Changes:
    """What changed after a generation, read in one snapshot: a whole pass or none of it."""

    generation: int
    #: everything published (not only what changed): the reader starts afresh
    full: bool
    rows: list[Row] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)
    site: dict[str, Any] = field(default_factory=dict)


def current_generation(db: Database) -> int:
    return int(db.execute("SELECT coalesce(max(generation), 0) FROM generations")[0][0])


#: Rows of bytes fetched at once: a batch is held in memory while it is kept (published files are
#: tens of KB; 2,000 of them were 55 MB).
_BYTES_BATCH = 100


def fetch_bytes(db: Database, etag: str) -> tuple[bytes, bytes | None] | None:
    """The bytes published with `etag` and their gzip twin (None: none), None when no output has them."""
    rows = db.execute("SELECT data, gz FROM published WHERE etag = %s ORDER BY gz IS NULL LIMIT 1", (etag,))
    if not rows:
        return None
    data, gz = rows[0]
    return bytes(data), bytes(gz) if gz is not None else None


def changes_since(db: Database, generation: int | None, wanted: Callable[[Row], bool],
                  keep: Callable[[str, bytes, bytes | None], None]) -> Changes:
    """The outputs changed and taken down after `generation` (None, or a generation the
    database does not have, as after a restore: everything). The bytes of the changed rows
    that `wanted` asks for are handed to `keep` (etag, bytes, gzip twin or None) as they
    arrive, in the same snapshot, each ETag once, so they are never all in memory at once."""
    with db.snapshot():
        now = current_generation(db)
        full = generation is None or generation > now
        changes = Changes(now, full)
        where, params = ("", ()) if full else (" WHERE generation > %s", (generation,))
        changes.rows = [Row(rel, etag, mtime, size, twin) for rel, etag, mtime, size, twin in db.rows(
            f"SELECT rel, etag, mtime_ns, length(data), gz IS NOT NULL FROM published{where}", params)]
        fetch = [row.rel for row in changes.rows if wanted(row)]
        if fetch:  # (a twin first: two outputs with the same bytes, one with a twin, get it)
            for etag, data, gz in db.rows("SELECT DISTINCT ON (etag) etag, data, gz FROM published "
                                          "WHERE rel = ANY(%s) ORDER BY etag, gz IS NULL", (fetch,),
                                          size=_BYTES_BATCH):
                keep(etag, bytes(data), bytes(gz) if gz is not None else None)
        if not full:
            changes.gone = [rel for (rel,) in db.execute("SELECT rel FROM taken_down WHERE generation > %s",
                                                         (generation,))]
        site = dict(db.execute("SELECT key, value FROM site"))
    changes.redirects = redirects.loads(site.get("redirects", "{}"))
    try:
        record = json.loads(site.get("site_record", "{}"))
        changes.site = record if isinstance(record, dict) else {}
    except ValueError:
        pass
    return changes
